"""particle-cli 3.43.1 `flash` against a live server, with the device simulator taking the update.

The CLI sends the binary with `PUT /v1/devices/:id` (multipart `file`). The device receives it over
the gateway, checks its SHA-256, restarts and comes back reporting the binary's PRODUCT_VERSION, and
only then is the update recorded as a success. (3.43.1 has no `--product` option for `flash`; the
product route, after marking the device as a development device, is driven through api-js in
test_firmware_api_js.py.)"""

from __future__ import annotations

import hashlib

import pytest

from devices.models import Device
from firmware.binary import ModuleFunction
from firmware.encoder import build_module
from firmware.models import FirmwareUpdate, UpdateState
from tests.clients.conftest import provision, wait_until

pytestmark = pytest.mark.clients

BORON = 13


def application(tmp_path, *, version: int, product_id: int = 0xFFFF, platform_id: int = BORON):
    path = tmp_path / "app.bin"
    path.write_bytes(
        build_module(
            platform_id=platform_id,
            product_id=product_id,
            product_version=version,
            dependencies=[(int(ModuleFunction.SYSTEM_PART), 1, 6101)],
            payload_size=6000,
        )
    )
    return path


def test_flash_a_binary_to_my_device(logged_in, account, connect_device, tmp_path):
    provisioned = provision("boron", owner=account)
    connect_device(provisioned, product_version=3)
    binary = application(tmp_path, version=4)

    result = logged_in.run("flash", provisioned.device.id, str(binary), timeout=60)

    assert result.exit_code == 0, result.output
    assert "Flash success!" in result.stdout
    update = wait_until(
        lambda: FirmwareUpdate.objects.filter(
            device_id=provisioned.device.id, state=UpdateState.SUCCESS
        ).first(),
        timeout=20,
        what="the device to come back running the new firmware",
    )
    assert update.version == 4
    assert update.sha256 == hashlib.sha256(binary.read_bytes()).hexdigest()
    assert Device.objects.get(pk=provisioned.device.id).firmware_version == 4


def test_flash_a_binary_for_another_platform_is_refused(logged_in, account, connect_device, tmp_path):
    provisioned = provision("boron", owner=account)
    connect_device(provisioned)
    binary = application(tmp_path, version=4, platform_id=6)

    result = logged_in.run("flash", provisioned.device.id, str(binary), timeout=60)

    assert result.exit_code != 0
    assert "built for Photon (platform 6)" in result.output
    assert not FirmwareUpdate.objects.exists()
