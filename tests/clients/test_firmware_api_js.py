"""particle-api-js 12.0.3 product firmware methods against a live server: upload, list, get, edit,
download, release, lock and unlock, development devices, and flashing a development device by hand
with a simulated device taking the update."""

from __future__ import annotations

import base64

import pytest

from console.platforms import platform_from_string
from devices.models import Device
from devices.services import devices_provision
from firmware.binary import ModuleFunction
from firmware.encoder import build_module
from firmware.models import FirmwareRelease, FirmwareUpdate, ProductFirmware, UpdateState
from products.services import product_create
from tests.clients.conftest import wait_until
from tests.clients.test_products_api_js import failed, succeeded

pytestmark = pytest.mark.clients

BORON = 13


@pytest.fixture
def product(account):
    return product_create(user=account, name="Greenhouse", platform_id=BORON)


def build(product, version: int, *, platform_id: int = BORON) -> bytes:
    return build_module(
        platform_id=platform_id,
        product_id=product.id,
        product_version=version,
        dependencies=[(int(ModuleFunction.SYSTEM_PART), 1, 1201)],
        payload_size=4000 + version,
    )


def binary_file(tmp_path, product, version: int, **options):
    path = tmp_path / f"v{version}.bin"
    path.write_bytes(build(product, version, **options))
    return path


def upload(api_js, token, product, path, version: int, title: str = "A build"):
    return api_js.call(
        "uploadProductFirmware",
        {
            "product": product.id,
            "file": str(path),
            "version": version,
            "title": title,
            "description": "from api-js",
            "auth": token,
        },
    )


def test_upload_list_get_edit_and_download(api_js, account_token, product, tmp_path):
    path = binary_file(tmp_path, product, 1)

    created = succeeded(upload(api_js, account_token, product, path, 1, "First"), 201)
    assert created["version"] == 1
    assert created["size"] == path.stat().st_size
    assert created["current"] is False

    listed = succeeded(api_js.call("listProductFirmware", {"product": product.id, "auth": account_token}))
    assert [entry["version"] for entry in listed] == [1]

    got = succeeded(
        api_js.call("getProductFirmware", {"product": product.slug, "version": 1, "auth": account_token})
    )
    assert (got["title"], got["description"]) == ("First", "from api-js")

    edited = succeeded(
        api_js.call(
            "updateProductFirmware",
            {
                "product": product.id,
                "version": 1,
                "title": "Renamed",
                "description": "Edited",
                "auth": account_token,
            },
        )
    )
    assert edited["title"] == "Renamed"
    assert ProductFirmware.objects.get(product=product, version=1).description == "Edited"

    downloaded = api_js.call(
        "downloadProductFirmware", {"product": product.id, "version": 1, "auth": account_token}
    )
    assert downloaded["ok"], downloaded
    assert base64.b64decode(downloaded["body"]["base64"]) == path.read_bytes()


def test_a_mismatched_version_is_refused_with_both_values(api_js, account_token, product, tmp_path):
    path = binary_file(tmp_path, product, 2)

    refused = failed(upload(api_js, account_token, product, path, 3), 400)

    assert refused["shortErrorDescription"].startswith(
        "The binary's PRODUCT_VERSION is 2, but the version entered is 3"
    )
    assert not ProductFirmware.objects.exists()


def test_release_after_a_device_ran_it(api_js, account_token, product, tmp_path):
    succeeded(upload(api_js, account_token, product, binary_file(tmp_path, product, 1), 1), 201)
    [provisioned] = devices_provision(platform=platform_from_string("boron"), count=1, product=product)

    too_early = failed(
        api_js.call(
            "releaseProductFirmware",
            {"product": product.id, "version": 1, "product_default": True, "auth": account_token},
        ),
        409,
    )
    assert "has not run on any device of this product yet" in too_early["shortErrorDescription"]

    Device.objects.filter(pk=provisioned.device.pk).update(firmware_version=1)
    released = succeeded(
        api_js.call(
            "releaseProductFirmware",
            {"product": product.id, "version": 1, "product_default": True, "auth": account_token},
        )
    )
    assert released["product_default"] is True
    assert FirmwareRelease.objects.get(product=product).firmware.version == 1


def test_lock_unlock_and_development(api_js, account_token, product, tmp_path):
    succeeded(upload(api_js, account_token, product, binary_file(tmp_path, product, 1), 1), 201)
    [provisioned] = devices_provision(platform=platform_from_string("boron"), count=1, product=product)
    device_id = provisioned.device.id

    locked = succeeded(
        api_js.call(
            "lockDeviceProductFirmware",
            {
                "deviceId": device_id,
                "desiredFirmwareVersion": 1,
                "flash": True,
                "product": product.id,
                "auth": account_token,
            },
        )
    )
    assert locked["desired_firmware_version"] == 1
    assert Device.objects.get(pk=device_id).desired_firmware_version == 1

    unlocked = succeeded(
        api_js.call(
            "unlockDeviceProductFirmware",
            {"deviceId": device_id, "product": product.id, "auth": account_token},
        )
    )
    assert unlocked["desired_firmware_version"] is None

    marked = succeeded(
        api_js.call(
            "markAsDevelopmentDevice",
            {"deviceId": device_id, "development": True, "product": product.id, "auth": account_token},
        )
    )
    assert marked["development"] is True
    assert Device.objects.get(pk=device_id).development

    missing = failed(
        api_js.call(
            "lockDeviceProductFirmware",
            {
                "deviceId": device_id,
                "desiredFirmwareVersion": 9,
                "product": product.id,
                "auth": account_token,
            },
        ),
        400,
    )
    assert "No firmware version 9 in this product" in missing["shortErrorDescription"]


def test_flash_a_development_device_by_hand(api_js, account_token, product, connect_device, tmp_path):
    [provisioned] = devices_provision(platform=platform_from_string("boron"), count=1, product=product)
    connect_device(provisioned, product_version=1)
    path = binary_file(tmp_path, product, 5)
    device_id = provisioned.device.id
    succeeded(
        api_js.call(
            "markAsDevelopmentDevice",
            {"deviceId": device_id, "development": True, "product": product.id, "auth": account_token},
        )
    )

    flashed = succeeded(
        api_js.call(
            "flashDevice",
            {
                "deviceId": device_id,
                "product": product.id,
                "files": {"app.bin": str(path)},
                "auth": account_token,
            },
        )
    )

    assert flashed["status"] == "Update started"
    wait_until(
        lambda: FirmwareUpdate.objects.filter(device_id=device_id, state=UpdateState.SUCCESS).exists(),
        timeout=20,
        what="the device to come back running the flashed firmware",
    )
    assert Device.objects.get(pk=device_id).firmware_version == 5
