"""A product device's page in a real browser against a live server: a developer on the team opens
a device its owner claimed, sees its owner, groups and firmware, and its events arrive live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from console.accounts.models import User
from console.permissions import Role
from console.platforms import PLATFORMS
from devices.groups import devices_groups_add
from devices.models import Device
from devices.services import devices_provision
from products.groups import group_create
from products.models import Membership
from products.services import product_create
from tests.browser.test_devices_browser import FakeDevice
from tests.browser.test_products_browser import sign_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BORON = PLATFORMS[13]
# Set QUANTA_SCREENSHOTS to a directory to keep pictures of the page (desktop and phone, light and dark).
SCREENSHOTS = os.environ.get("QUANTA_SCREENSHOTS", "")


def _screenshots(page, name: str) -> None:
    if not SCREENSHOTS:
        return
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    # A tall window rather than a full-page capture, which repeats the sticky bars mid-page.
    for width, height, size in ((1280, 1500, "desktop"), (390, 2600, "phone")):
        page.set_viewport_size({"width": width, "height": height})
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            page.screenshot(path=str(folder / f"{name}-{size}-{scheme}.png"), animations="disabled")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.emulate_media(color_scheme="light")


def test_a_developer_sees_a_teammates_device_and_its_live_events(page, live_asgi_server, transactional_db):
    ada = User.objects.create_user(email="ada@example.com", password=PASSWORD)
    grace = User.objects.create_user(email="grace@example.com", password=PASSWORD)
    product = product_create(user=ada, name="Greenhouse sensors", platform_id=BORON.id)
    Membership.objects.create(product=product, user=grace, role=Role.DEVELOPER)
    provisioned = devices_provision(platform=BORON, count=1, owner=ada, product=product)[0]
    sensor = provisioned.device
    Device.objects.filter(pk=sensor.pk).update(
        name="north-sensor",
        firmware_product_id=product.id,
        firmware_version=7,
        system_firmware_version="6.1.1",
        notes="Mounted on the north wall.",
    )
    group_create(actor=ada, product=product, name="north-field", color="#16a34a")
    devices_groups_add(actor=ada, product=product, device_ids=[sensor.id], names=["north-field", "beta"])

    sign_in(page, "grace@example.com")
    page.goto(f"/products/{product.slug}/devices/")
    page.get_by_role("link", name="north-sensor").click()
    page.wait_for_url(f"**/products/{product.slug}/devices/{sensor.id}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("north-sensor")
    expect(page.locator(".topbar-breadcrumb")).to_have_text(
        "Products / Greenhouse sensors / Devices / north-sensor"
    )
    expect(page.locator("[data-device-owner]")).to_have_text("ada@example.com")
    groups = page.get_by_role("list", name="Groups of north-sensor").get_by_role("link")
    expect(groups).to_have_text(["beta", "north-field"])
    firmware = page.get_by_role("region", name="Firmware", exact=True)
    expect(firmware).to_contain_text("v7")
    expect(firmware).to_contain_text(str(product.id))
    expect(firmware).to_contain_text("6.1.1")
    expect(page.get_by_role("button", name="Edit groups")).to_be_visible()
    expect(page.get_by_role("button", name="Mark as development")).to_be_visible()
    expect(page.locator("#event-export-button")).to_have_count(0)  # the export is the owner's events only

    page.locator("[data-device-detail][data-live=on]").wait_for()
    page.locator("[data-event-log][data-ready]").wait_for()
    device = FakeDevice(live_asgi_server.url, provisioned).connect()
    try:
        expect(page.locator(".device-header [data-device-status]")).to_have_text("Online")
        device.publish("greenhouse/temp", "22.4")
        events = page.locator("[data-event-log] [role=option]")
        expect(events).to_have_count(2)  # and the cloud's spark/status online
        expect(events.first).to_contain_text("greenhouse/temp")
        expect(events.first).to_contain_text("22.4")
        events.first.click()
        _screenshots(page, "product-device")
    finally:
        device.close()
    expect(page.locator(".device-header [data-device-status]")).to_have_text("Offline")

    # Edit groups: the dialog sets the device's groups to exactly the checked ones and the new ones.
    page.get_by_role("button", name="Edit groups").click()
    dialog = page.get_by_role("dialog", name="Edit groups")
    dialog.get_by_label("beta").uncheck()
    dialog.get_by_label("And new groups").fill("south-field")
    dialog.get_by_role("button", name="Save groups").click()
    expect(
        page.get_by_text("north-sensor (" + sensor.id + ") is in north-field, south-field.")
    ).to_be_visible()
    expect(groups).to_have_text(["north-field", "south-field"])
