"""A product's Devices page in a real browser against a live server: importing a file of device
IDs through the Import dialog and reading its report, approving and denying quarantined devices,
and live status."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from console.accounts.models import User
from console.platforms import PLATFORMS
from devices.models import Device, ProductDenial
from devices.services import devices_provision
from products.models import Product
from products.services import product_create
from tests.browser.test_devices_browser import FakeDevice
from tests.browser.test_products_browser import sign_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BORON = PLATFORMS[13]
ARGON = PLATFORMS[12]


@pytest.fixture
def ada(transactional_db) -> User:
    return User.objects.create_user(email="ada@example.com", password=PASSWORD)


@pytest.fixture
def product(ada) -> Product:
    return product_create(user=ada, name="Greenhouse sensors", platform_id=BORON.id)


def provision(count: int = 1, *, platform=BORON, owner=None, product=None):
    return devices_provision(platform=platform, count=count, owner=owner, product=product)


def devices_page(page, product: Product) -> None:
    page.goto(f"/products/{product.slug}/devices/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Devices")


def test_import_a_mixed_file_read_the_report_and_download_the_invalid_ids(page, ada, product):
    grace = User.objects.create_user(email="grace@example.com", password=PASSWORD)
    joining = [p.device for p in provision(2)]
    existing = provision(1, product=product)[0].device
    refused = provision(1, owner=grace)[0].device
    argon = provision(1, platform=ARGON)[0].device
    unknown = "0123456789abcdef01234567"
    lines = [
        joining[0].id,
        joining[1].id.upper(),
        existing.id,
        refused.id,
        argon.id,
        unknown,
        "not-a-device-id",
    ]
    content = ("\n".join(lines) + "\n").encode()

    sign_in(page)
    devices_page(page, product)
    expect(page.locator("tr[data-device-id]")).to_have_count(1)
    page.get_by_role("button", name="Import devices").click()
    dialog = page.get_by_role("dialog", name="Import devices")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Import", exact=True)).to_be_disabled()

    # An empty file is refused before anything is sent.
    dialog.locator('input[type="file"]').set_input_files(
        {"name": "empty.txt", "mimeType": "text/plain", "buffer": b""}
    )
    expect(dialog.get_by_role("alert")).to_have_text("empty.txt is empty. Put one device ID on each line.")
    expect(dialog.get_by_role("button", name="Import", exact=True)).to_be_disabled()

    # So is one over the server's limit, which the page knows.
    dialog.locator('input[type="file"]').set_input_files(
        {"name": "big.txt", "mimeType": "text/plain", "buffer": b"0" * (5 * 1024 * 1024)}
    )
    expect(dialog.get_by_role("alert")).to_have_text(
        "big.txt is 5\u00a0MB; imports take files of at most 4\u00a0MB (100,000 device IDs). "
        "Split it into several files."
    )
    expect(dialog.get_by_role("button", name="Import", exact=True)).to_be_disabled()

    dialog.locator('input[type="file"]').set_input_files(
        {"name": "greenhouse-ids.txt", "mimeType": "text/plain", "buffer": content}
    )
    expect(dialog.locator("[data-import-file-name]")).to_have_text("greenhouse-ids.txt")
    expect(dialog.locator("[data-import-file-size]")).to_have_text(f"{len(content)} bytes")
    dialog.get_by_role("button", name="Import", exact=True).click()

    report = dialog.get_by_role("region", name="Added 2 devices")
    expect(report).to_be_visible()
    expect(report).to_be_focused()
    expect(report).to_contain_text("greenhouse-ids.txt: 7 device IDs read.")
    counts = {
        key: report.locator(f'[data-import-category="{key}"] .import-category-count')
        for key in ("added", "existing", "refused", "invalid")
    }
    expect(counts["added"]).to_have_text("2")
    expect(counts["existing"]).to_have_text("1")
    expect(counts["refused"]).to_have_text("1")
    expect(counts["invalid"]).to_have_text("3")
    invalid = report.locator('[data-import-category="invalid"]')
    expect(invalid).to_contain_text(
        "1 of them is a device of another platform: this product takes only Boron devices."
    )
    expect(invalid.locator("code")).to_have_text(["not-a-device-id", argon.id, unknown])
    expect(report.locator('[data-import-category="added"] code')).to_have_text([d.id for d in joining])

    with page.expect_download() as download_info:
        invalid.get_by_role("link", name=re.compile("Download .txt")).click()
    download = download_info.value
    assert download.suggested_filename == f"{product.slug}-invalid-device-ids.txt"
    with open(download.path(), encoding="utf-8") as downloaded:
        assert downloaded.read().splitlines() == ["not-a-device-id", argon.id, unknown]

    assert set(Device.objects.filter(product=product).values_list("id", flat=True)) == {
        existing.id,
        *(d.id for d in joining),
    }
    dialog.get_by_role("button", name="Done").click()
    for device in joining:
        expect(page.locator(f'tr[data-device-id="{device.id}"]')).to_be_visible()
    expect(page.locator("tr[data-device-id]")).to_have_count(3)
    expect(page.get_by_role("link", name="All devices 3")).to_be_visible()


def test_a_file_the_server_refuses_shows_its_message_in_the_dialog(live_asgi_server, browser, ada, product):
    # Its own context: the browser logs the refusal's 400 as a console error, the one expected here.
    context = browser.new_context(base_url=live_asgi_server.url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        sign_in(page)
        devices_page(page, product)
        page.get_by_role("button", name="Import devices").first.click()
        dialog = page.get_by_role("dialog", name="Import devices")
        dialog.locator('input[type="file"]').set_input_files(
            {"name": "photo.txt", "mimeType": "text/plain", "buffer": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"}
        )
        dialog.get_by_role("button", name="Import", exact=True).click()
        expect(dialog.get_by_role("alert")).to_have_text(
            "That is not a text file. Upload a .txt file with one device ID per line."
        )
        expect(dialog.locator("[data-import-file-name]")).to_have_text("photo.txt")  # kept, to try again
        expect(dialog.get_by_role("button", name="Import", exact=True)).to_be_enabled()
    finally:
        context.close()
    assert problems == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]


def test_approve_and_deny_quarantined_devices(page, ada, product):
    waiting = [p.device for p in provision(2, product=product)]
    Device.objects.filter(pk__in=[d.pk for d in waiting]).update(quarantined=True)
    Device.objects.filter(pk=waiting[0].pk).update(name="basil")
    Device.objects.filter(pk=waiting[1].pk).update(name="thyme")

    sign_in(page)
    devices_page(page, product)
    expect(page.locator('tr.is-quarantined .badge:has-text("Quarantined")')).to_have_count(2)
    page.get_by_role("link", name="Quarantined 2").click()
    page.wait_for_url(re.compile(r"\?tab=quarantined$"))
    expect(page.get_by_role("link", name="Quarantined 2")).to_have_attribute("aria-current", "page")

    page.get_by_role("button", name="Approve basil").click()
    expect(
        page.get_by_text(f"Approved basil ({waiting[0].id}). It is in Greenhouse sensors now.")
    ).to_be_visible()
    page.wait_for_url(re.compile(r"\?tab=quarantined$"))
    expect(page.locator("tr[data-device-id]")).to_have_count(1)
    approved = Device.objects.get(pk=waiting[0].pk)
    assert (approved.product_id, approved.quarantined) == (product.id, False)

    page.get_by_role("button", name="Deny thyme").click()
    dialog = page.get_by_role("dialog", name="Deny this device?")
    expect(dialog).to_contain_text(f"thyme · {waiting[1].id}")
    expect(dialog).to_contain_text("refused at its handshake whenever it asks to join again")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    dialog.get_by_role("button", name="Deny device").click()
    expect(page.get_by_text(f"Denied thyme ({waiting[1].id}).")).to_be_visible()
    expect(page.get_by_role("heading", name="No devices waiting for approval")).to_be_visible()
    assert ProductDenial.objects.filter(device_id=waiting[1].id, product=product).exists()
    assert Device.objects.get(pk=waiting[1].pk).product_id is None


def test_remove_a_device_and_deny_it(page, ada, product):
    sensor = provision(1, product=product)[0].device
    Device.objects.filter(pk=sensor.pk).update(name="fern")
    provision(1, product=product)

    sign_in(page)
    devices_page(page, product)
    page.get_by_role("button", name="Remove fern from the product").click()
    dialog = page.get_by_role("dialog", name="Remove this device from the product?")
    dialog.get_by_label("Also deny it").check()
    dialog.get_by_role("button", name="Remove device").click()
    expect(
        page.get_by_text(f"Removed fern ({sensor.id}) from Greenhouse sensors. It is denied")
    ).to_be_visible()
    expect(page.locator(f'tr[data-device-id="{sensor.id}"]')).to_have_count(0)
    assert ProductDenial.objects.filter(device_id=sensor.id, product=product).exists()


def test_status_is_live(page, live_asgi_server, ada, product):
    provisioned = provision(1, product=product)[0]
    sign_in(page)
    devices_page(page, product)
    page.locator("[data-device-list][data-live='on']").wait_for()
    status = page.locator(f'tr[data-device-id="{provisioned.device.id}"] [data-device-status]')
    expect(status).to_have_text("Offline")
    sensor = FakeDevice(live_asgi_server.url, provisioned).connect()
    try:
        expect(status).to_have_text("Online")
    finally:
        sensor.close()
    expect(status).to_have_text("Offline")
