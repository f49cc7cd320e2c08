"""Device groups in a real browser against a live server: create a group on the Groups page, add
two devices to it with the Devices page's bulk action, then filter the Devices page by it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from console.accounts.models import User
from console.platforms import PLATFORMS
from devices.models import Device
from devices.services import devices_provision
from products.models import DeviceGroup
from products.services import product_create
from tests.browser.test_products_browser import sign_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ada(transactional_db) -> User:
    return User.objects.create_user(email="ada@example.com", password=PASSWORD)


def test_create_a_group_add_two_devices_in_bulk_and_filter_by_it(page, ada):
    product = product_create(user=ada, name="Greenhouse sensors", platform_id=PLATFORMS[13].id)
    devices = [p.device for p in devices_provision(platform=PLATFORMS[13], count=3, product=product)]
    for device, name in zip(devices, ("alder", "birch", "cedar"), strict=True):
        Device.objects.filter(pk=device.pk).update(name=name)

    sign_in(page)
    page.goto(f"/products/{product.slug}/")
    sidebar = page.get_by_role("navigation", name="Product: Greenhouse sensors")
    sidebar.get_by_role("link", name="Groups").click()
    page.wait_for_url(re.compile(r"/groups/$"))
    expect(page.get_by_role("heading", name="No groups in Greenhouse sensors yet")).to_be_visible()

    # Create it: a name that breaks the rule is refused with the rule, in the dialog.
    page.get_by_role("button", name="New group").click()
    dialog = page.get_by_role("dialog", name="New group")
    dialog.get_by_label("Name").fill("North Field")
    dialog.get_by_label("Description").fill("Soil probes on the north line")
    dialog.get_by_title("Green").click()
    expect(dialog.get_by_label("Green")).to_be_checked()
    dialog.get_by_role("button", name="Create group").click()
    dialog = page.get_by_role("dialog", name="New group")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_text("'North Field' has capitals and a space.")).to_be_visible()
    dialog.get_by_label("Name").fill("north-field")
    dialog.get_by_role("button", name="Create group").click()
    expect(page.get_by_text("Created the group north-field.")).to_be_visible()
    row = page.locator('tr[data-group="north-field"]')
    expect(row).to_contain_text("Soil probes on the north line")
    expect(row.get_by_role("link", name="0 devices in north-field")).to_be_visible()
    assert DeviceGroup.objects.get().color == "#16a34a"

    # Add two devices with the bulk bar.
    sidebar.get_by_role("link", name="Devices").click()
    page.wait_for_url(re.compile(r"/devices/$"))
    bar = page.get_by_role("form", name="Change the selected devices")
    expect(bar).to_be_hidden()
    page.get_by_role("checkbox", name="Select alder").check()
    page.get_by_role("checkbox", name="Select cedar").check()
    expect(bar).to_be_visible()
    expect(bar.get_by_role("status")).to_have_text("2 devices selected")
    bar.get_by_role("button", name="Add to group").click()
    add = page.get_by_role("dialog", name="Add to group")
    add.get_by_label("Group").fill("north-field")
    add.get_by_role("button", name="Add to group").click()
    expect(page.get_by_text("Added 2 devices to north-field.")).to_be_visible()
    expect(page.locator(f'tr[data-device-id="{devices[0].id}"] .group-chip')).to_have_text("north-field")
    expect(page.locator(f'tr[data-device-id="{devices[1].id}"] .group-chip')).to_have_count(0)

    # Filter the Devices page by it.
    page.get_by_role("combobox", name="Group", exact=True).select_option("north-field")
    expect(page).to_have_url(re.compile(r"group=north-field"))
    expect(page.locator("tr[data-device-id]")).to_have_count(2)
    expect(page.locator("#device-count")).to_have_text("2 devices in north-field")

    # And from the Groups page, its count links to the same list.
    page.goto(f"/products/{product.slug}/groups/")
    page.get_by_role("link", name="2 devices in north-field").click()
    page.wait_for_url(re.compile(r"/devices/\?group=north-field$"))
    expect(page.locator("tr[data-device-id]")).to_have_count(2)
