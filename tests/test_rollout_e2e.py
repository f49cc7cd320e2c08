"""A firmware rollout end to end, on the production topology (uvicorn, a Celery worker per queue and
beat on PostgreSQL and Redis): simulated devices on version 1, version 2 built by our encoder and
uploaded, one device locked to it with Flash now, then version 2 released as the product default.
Every unlocked, non-development device updates at its next handshake; the development device and the
device locked to version 1 stay on version 1. Targeting runs in the ``ota`` worker process."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest

from console.accounts.services import access_token_create
from console.platforms import platform_from_string
from devices.models import Device
from devices.services import devices_provision
from firmware.binary import ModuleFunction
from firmware.encoder import build_module
from firmware.models import FirmwareUpdate, UpdateState
from products.services import product_create
from tests.clients.conftest import OnlineDevice, wait_until
from tests.conftest import PASSWORD
from tests.test_topology import production_services, topology  # noqa: F401 (fixtures)

pytestmark = pytest.mark.topology

BORON = 13


def build(product_id: int, version: int) -> bytes:
    return build_module(
        platform_id=BORON,
        product_id=product_id,
        product_version=version,
        dependencies=[(int(ModuleFunction.SYSTEM_PART), 1, 6101)],
        payload_size=20_000 + version,
    )


def running(device_id: str) -> int | None:
    return Device.objects.get(pk=device_id).firmware_version


def test_a_rollout_from_lock_to_product_default(topology, django_user_model):  # noqa: F811
    url, _var_dir, _log = topology
    owner = django_user_model.objects.create_user(email="fleet@example.com", password=PASSWORD)
    product = product_create(user=owner, name="Rollout", platform_id=BORON)
    provisioned = devices_provision(platform=platform_from_string("boron"), count=5, product=product)
    canary, second, third, developer, held_back = (p.device.id for p in provisioned)
    token = access_token_create(user=owner, expires_in_seconds=3600).token
    api = httpx.Client(base_url=f"{url}/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    server = SimpleNamespace(url=url)

    for version in (1, 2):
        uploaded = api.post(
            f"/products/{product.id}/firmware",
            data={"version": str(version), "title": f"v{version}"},
            files={"file": ("firmware.bin", build(product.id, version), "application/octet-stream")},
        )
        assert uploaded.status_code == 201, uploaded.text
    assert (
        api.put(f"/products/{product.id}/devices/{developer}", json={"development": True}).status_code == 200
    )
    assert (
        api.put(
            f"/products/{product.id}/devices/{held_back}", json={"desired_firmware_version": 1}
        ).status_code
        == 200
    )
    fleet = [OnlineDevice(server, item, product_version=1).start() for item in provisioned]
    try:
        wait_until(
            lambda: all(running(d) == 1 for d in (canary, second, third, developer, held_back)), timeout=20
        )

        # The canary: locked to version 2 with Flash now, it updates while online.
        locked = api.put(
            f"/products/{product.id}/devices/{canary}", json={"desired_firmware_version": 2, "flash": True}
        )
        assert locked.status_code == 200, locked.text
        wait_until(lambda: running(canary) == 2, timeout=60, what="the canary to run version 2")
        wait_until(
            lambda: FirmwareUpdate.objects.filter(device_id=canary, state=UpdateState.SUCCESS).exists(),
            timeout=10,
        )

        # Version 2 has run on a device now, so it may be released as the product default.
        released = api.put(
            f"/products/{product.id}/firmware/release", json={"version": 2, "product_default": True}
        )
        assert released.status_code == 200, released.text
        impact = api.get(f"/products/{product.id}/impact", params={"version": 2, "product_default": "true"})
        assert impact.json()["devices"] == 0  # already released: nothing more would change

        # Their next handshake: every device reconnects.
        for device in fleet:
            device.stop()
        fleet = [
            OnlineDevice(server, item, product_version=1 if item.device.id != canary else 2).start()
            for item in provisioned
        ]
        wait_until(
            lambda: running(second) == 2 and running(third) == 2,
            timeout=60,
            what="the unlocked devices to run version 2",
        )
        assert running(canary) == 2
        assert running(developer) == 1
        assert running(held_back) == 1
        outcomes = dict(
            FirmwareUpdate.objects.filter(device__product=product).values_list("device_id", "state")
        )
        assert outcomes == {canary: "success", second: "success", third: "success"}
    finally:
        for device in fleet:
            device.stop()
        api.close()
