"""A product's Firmware page in a real browser against a live server: upload a version through the
dialog and watch its progress bar finish, see a refused upload's message on its field, then open the
Release dialog, watch the impact follow the boxes, and release."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from console.accounts.models import User
from console.platforms import PLATFORMS
from devices.groups import devices_groups_add
from devices.models import Device
from devices.services import devices_provision
from firmware.binary import ModuleFunction
from firmware.encoder import build_module
from firmware.models import FirmwareRelease, ProductFirmware
from products.groups import group_create
from products.services import product_create
from tests.browser.test_products_browser import sign_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BORON = PLATFORMS[13]
# Set QUANTA_SCREENSHOTS to a directory to keep pictures of the pages (desktop and phone, light and dark).
SCREENSHOTS = os.environ.get("QUANTA_SCREENSHOTS", "")


def _screenshots(page, name: str, *, phone_height: int = 1800) -> None:
    if not SCREENSHOTS:
        return
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    for width, height, size in ((1280, 1000, "desktop"), (390, phone_height, "phone")):
        page.set_viewport_size({"width": width, "height": height})
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            page.screenshot(path=str(folder / f"{name}-{size}-{scheme}.png"), animations="disabled")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.emulate_media(color_scheme="light")


def _binary(product, version: int) -> bytes:
    return build_module(
        platform_id=BORON.id,
        product_id=product.id,
        product_version=version,
        dependencies=[(int(ModuleFunction.SYSTEM_PART), 1, 5301)],
        payload_size=96 * 1024,
    )


def _drop(page, selector: str, name: str, data: bytes) -> None:
    """Drop a file on an element, as a person dragging it from their desktop would."""
    page.evaluate(
        """([selector, name, encoded]) => {
            const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "application/octet-stream" }));
            const target = document.querySelector(selector);
            for (const type of ["dragenter", "dragover", "drop"]) {
                target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: transfer }));
            }
        }""",
        [selector, name, base64.b64encode(data).decode()],
    )


def test_upload_with_progress_a_refusal_in_place_then_release_with_its_impact(page, transactional_db):
    ada = User.objects.create_user(email="ada@example.com", password=PASSWORD)
    product = product_create(user=ada, name="Greenhouse sensors", platform_id=BORON.id)
    fleet = [p.device for p in devices_provision(platform=BORON, count=7, owner=ada, product=product)]
    versions = [1, 1, 1, 2, None, None, None]
    for device, version in zip(fleet, versions, strict=True):
        Device.objects.filter(pk=device.pk).update(firmware_version=version)
    bench = group_create(actor=ada, product=product, name="bench", color="#0d9488")
    devices_groups_add(actor=ada, product=product, device_ids=[fleet[0].id], names=[bench.name])

    sign_in(page)
    page.goto(f"/products/{product.slug}/")
    page.get_by_role("navigation", name="Product: Greenhouse sensors").get_by_role(
        "link", name="Firmware"
    ).click()
    page.wait_for_url(re.compile(r"/firmware/$"))
    expect(page.get_by_role("heading", name="No firmware in Greenhouse sensors yet")).to_be_visible()
    expect(page.get_by_text(f"PRODUCT_ID({product.id});")).to_be_visible()
    _screenshots(page, "firmware-empty")

    # Upload version 1: the binary's PRODUCT_VERSION fills in the version; the bar finishes.
    page.get_by_role("button", name="Upload firmware").first.click()
    dialog = page.get_by_role("dialog", name="Upload firmware")
    dialog.locator("[data-upload-input]").set_input_files(
        {"name": "greenhouse-v1.bin", "mimeType": "application/octet-stream", "buffer": _binary(product, 1)}
    )
    expect(dialog.get_by_text("greenhouse-v1.bin")).to_be_visible()
    expect(dialog.get_by_text(re.compile(r"96\sKB · built as version 1"))).to_be_visible()
    expect(dialog.get_by_label("Version")).to_have_value("1")
    dialog.get_by_label("Title").fill("First field build")
    dialog.get_by_label("Description").fill("Reads the soil probe every minute.")
    dialog.get_by_role("button", name="Upload", exact=True).click()
    expect(dialog.locator("[data-upload-progress-bar]")).to_have_attribute("value", "100")
    expect(dialog.get_by_text("Done")).to_be_visible()
    expect(page.get_by_text("Uploaded version 1, “First field build”.")).to_be_visible()
    expect(page.locator('tr[data-firmware-version="1"]')).to_contain_text("3 devices")

    # A refused upload: dropped, then a version that is not the binary's; the message is on the field.
    page.get_by_role("button", name="Upload firmware").click()
    dialog = page.get_by_role("dialog", name="Upload firmware")
    _drop(page, "[data-upload-dropzone]", "greenhouse-v2.bin", _binary(product, 2))
    expect(dialog.get_by_text("greenhouse-v2.bin")).to_be_visible()
    expect(dialog.get_by_label("Version")).to_have_value("2")
    dialog.get_by_label("Version").fill("3")
    dialog.get_by_label("Title").fill("Faster reads")
    _screenshots(page, "firmware-upload-dialog", phone_height=1000)
    dialog.get_by_role("button", name="Upload", exact=True).click()
    error = dialog.locator("#firmware-upload-version_error")
    expect(error).to_contain_text("The binary's PRODUCT_VERSION is 2, but the version entered is 3")
    expect(dialog.get_by_label("Version")).to_have_attribute("aria-invalid", "true")
    _screenshots(page, "firmware-upload-refused", phone_height=1000)
    dialog.get_by_label("Version").fill("2")
    dialog.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_text("Uploaded version 2, “Faster reads”.")).to_be_visible()
    assert list(ProductFirmware.objects.order_by("version").values_list("version", flat=True)) == [1, 2]

    # Release v2: the impact follows the boxes.
    row = page.locator('tr[data-firmware-version="2"]')
    row.hover()
    row.get_by_role("button", name="Release v2").click()
    release = page.get_by_role("dialog", name="Release v2")
    expect(release).to_be_visible()
    impact = release.get_by_role("status")
    expect(impact).to_contain_text("No devices will update to v2")
    release.get_by_label("Product default").check()
    expect(impact).to_contain_text("6 devices will update to v2")
    expect(impact).to_contain_text("3 from v1, 3 never reported")
    release.get_by_label("Product default").uncheck()
    expect(impact).to_contain_text("No devices will update to v2")
    release.get_by_label("bench").check()
    expect(impact).to_contain_text("1 device will update to v2")
    expect(impact).to_contain_text("1 from v1")
    release.get_by_label("Product default").check()
    expect(impact).to_contain_text("6 devices will update to v2")
    _screenshots(page, "firmware-release-dialog", phone_height=1300)
    release.get_by_role("button", name="Release v2").click()
    expect(page.get_by_text("Released version 2 to the product default and bench.")).to_be_visible()
    expect(row).to_contain_text("Product default")
    expect(row).to_contain_text("bench")
    assert FirmwareRelease.objects.filter(firmware__version=2).count() == 2
    row.hover()
    _screenshots(page, "firmware-list")

    # v1 has not been released: its menu offers Delete; the keyboard reaches it.
    menu_button = page.get_by_role("button", name="Actions for v1")
    menu_button.focus()
    page.keyboard.press("ArrowDown")
    menu = page.get_by_role("menu")
    expect(menu.get_by_role("menuitem", name="Delete…")).to_be_visible()
    if SCREENSHOTS:
        page.screenshot(
            path=str(Path(SCREENSHOTS) / "firmware-menu-desktop-light.png"), animations="disabled"
        )
    page.keyboard.press("Escape")

    # The version's page: its module, as Device OS versions.
    row.get_by_role("link", name="v2", exact=True).click()
    page.wait_for_url(re.compile(r"/firmware/2/$"))
    expect(page.get_by_role("heading", name="v2 Faster reads")).to_be_visible()
    expect(page.get_by_text("Device OS 5.3.1").first).to_be_visible()
    expect(page.get_by_text("Device OS 4 and later builds no longer carry PRODUCT_ID")).to_be_visible()
    _screenshots(page, "firmware-version", phone_height=2600)
