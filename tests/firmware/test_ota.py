"""Firmware updates over the gateway: offered after a handshake (or at once with Flash now),
transferred in acknowledged chunks, resumed after a dropped connection, counted a success only when
the device comes back running the new version, retried with backoff, and left failed with a reason."""

from __future__ import annotations

import asyncio
import hashlib
import json
import struct
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from console.platforms import PLATFORMS
from devices.models import Device
from devices.runtime import runtime
from devices.services import devices_provision
from firmware.locks import firmware_lock
from firmware.models import FirmwareRelease, FirmwareUpdate, UpdateState
from firmware.ota import updates_sweep
from firmware.services import firmware_upload
from products.services import product_create
from tests.devices.device_client import DeviceClient, subscribe_owner
from tests.firmware.test_api import app_binary

pytestmark = pytest.mark.django_db(transaction=True)

BORON = PLATFORMS[13]
HEADER = struct.Struct(">8sII")


@pytest.fixture(autouse=True)
def _ota_settings(settings):
    settings.QUANTA_DEVICE_HANDSHAKE_TIMEOUT_SECONDS = 5
    settings.QUANTA_GATEWAY_FLUSH_SECONDS = 60
    settings.QUANTA_OTA_CHUNK_BYTES = 1024
    settings.QUANTA_OTA_WINDOW_CHUNKS = 4
    settings.QUANTA_HANDSHAKE_BATCH_SECONDS = 0.001


@pytest.fixture(autouse=True)
def _fresh_runtime():
    runtime.connections.clear()
    runtime.pending_handshakes.clear()
    yield
    runtime.connections.clear()


class Fleet:
    """A product with versions 1 and 2 uploaded and devices running version 1."""

    def __init__(self, user, count: int = 1) -> None:
        self.user = user
        self.product = product_create(user=user, name="Greenhouse", platform_id=BORON.id)
        self.binaries = {v: app_binary(self.product, v, payload_size=5000) for v in (1, 2, 3)}
        self.firmware = {
            v: firmware_upload(actor=user, product=self.product, data=data, version=v, title=f"v{v}")
            for v, data in self.binaries.items()
        }
        self.provisioned = devices_provision(platform=BORON, count=count, owner=user, product=self.product)

    def client(self, index: int = 0) -> DeviceClient:
        return DeviceClient.of(self.provisioned[index])

    def device_id(self, index: int = 0) -> str:
        return self.provisioned[index].device.id


@pytest.fixture
def fleet(user):
    return Fleet(user)


async def hello(client: DeviceClient, fleet: Fleet, version: int) -> None:
    await client.handshake(product_id=fleet.product.id, product_version=version)


async def receive_raw(client: DeviceClient, timeout: float = 2) -> dict:
    return await client.communicator.receive_output(timeout)


async def next_frame(client: DeviceClient, kind: str, timeout: float = 2) -> dict:
    """The next text frame of this type (skipping any others)."""
    while True:
        message = await receive_raw(client, timeout)
        assert message["type"] == "websocket.send", message
        if message.get("text"):
            frame = json.loads(message["text"])
            if frame["type"] == kind:
                return frame


async def take_transfer(
    client: DeviceClient, begin: dict, *, start: int = 0, stop_after: int | None = None
) -> bytes:
    """Answer ota_ready from ``start``, then receive and acknowledge chunks until the file is
    complete (or ``stop_after`` bytes were taken). Returns the bytes received."""
    await client.send({"type": "ota_ready", "ota_id": begin["ota_id"], "offset": start})
    received = bytearray()
    tag = bytes.fromhex(begin["ota_id"])[:8]
    chunks = 0
    while start + len(received) < begin["size"]:
        if stop_after is not None and len(received) >= stop_after:
            break
        message = await receive_raw(client)
        data = message.get("bytes")
        if data is None:
            continue  # a text frame (e.g. an event)
        chunk_tag, offset, length = HEADER.unpack(data[: HEADER.size])
        assert chunk_tag == tag
        assert offset == start + len(received), "chunks arrive in order from the resume offset"
        assert length == len(data) - HEADER.size <= begin["chunk_size"]
        received += data[HEADER.size :]
        chunks += 1
        if chunks % 2 == 0 or start + len(received) == begin["size"]:
            await client.send({"type": "ota_ack", "ota_id": begin["ota_id"], "offset": start + len(received)})
    return bytes(received)


async def flash_statuses(subscription, count: int, timeout: float = 3) -> list[str]:
    """The data of the next ``count`` spark/flash/status events (others skipped)."""
    found: list[str] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(found) < count:
        batch, _ = await asyncio.wait_for(
            subscription.next_batch(), max(0.01, deadline - asyncio.get_running_loop().time())
        )
        found.extend(event.data for event in batch if event.name == "spark/flash/status")
    return found


@database_sync_to_async
def lock(fleet: Fleet, version: int, index: int = 0) -> None:
    device = Device.objects.get(pk=fleet.device_id(index))
    firmware_lock(actor=fleet.user, product=fleet.product, device=device, version=version)


@database_sync_to_async
def update_of(device_id: str) -> FirmwareUpdate:
    return FirmwareUpdate.objects.filter(device_id=device_id).latest("created_at")


async def wait_for_state(device_id: str, state: str, timeout: float = 3) -> FirmwareUpdate:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        update = await update_of(device_id)
        if update.state == state or asyncio.get_running_loop().time() > deadline:
            assert update.state == state, (update.state, update.error)
            return update
        await asyncio.sleep(0.02)


# --- the whole way --------------------------------------------------------------------------------------
async def test_a_locked_device_is_updated_at_its_handshake_and_succeeds_when_it_comes_back(fleet):
    await lock(fleet, 2)
    events = await subscribe_owner(fleet.user.pk)
    client = fleet.client()
    await hello(client, fleet, version=1)

    begin = await next_frame(client, "ota_begin")
    assert (begin["version"], begin["size"]) == (2, len(fleet.binaries[2]))
    assert begin["sha256"] == hashlib.sha256(fleet.binaries[2]).hexdigest()
    image = await take_transfer(client, begin)
    assert image == fleet.binaries[2]
    await client.send({"type": "ota_done", "ota_id": begin["ota_id"], "ok": True})
    update = await wait_for_state(fleet.device_id(), UpdateState.TRANSFERRED)
    assert update.percent == 100
    await client.disconnect()

    again = fleet.client()
    await hello(again, fleet, version=2)
    update = await wait_for_state(fleet.device_id(), UpdateState.SUCCESS)
    assert (update.from_version, update.version, update.attempts) == (1, 2, 0)
    assert await flash_statuses(events, 2) == ["started", "success"]
    assert not await database_sync_to_async(
        lambda: FirmwareUpdate.objects.filter(state__in=["pending", "transferring"]).exists()
    )()
    await again.disconnect()


async def test_flash_now_offers_the_update_to_an_online_device_at_once(fleet, auth_client):
    client = fleet.client()
    await hello(client, fleet, version=1)
    assert await client.nothing(0.1)  # nothing targeted yet

    response = await database_sync_to_async(auth_client.put)(
        f"/v1/products/{fleet.product.id}/devices/{fleet.device_id()}",
        {"desired_firmware_version": 2, "flash": True},
        format="json",
    )

    assert response.status_code == 200
    begin = await next_frame(client, "ota_begin")
    assert begin["version"] == 2
    await client.disconnect()


async def test_a_dropped_connection_resumes_from_what_the_device_holds(fleet):
    await lock(fleet, 2)
    client = fleet.client()
    await hello(client, fleet, version=1)
    begin = await next_frame(client, "ota_begin")
    first = await take_transfer(client, begin, stop_after=2048)
    await client.send({"type": "ota_ack", "ota_id": begin["ota_id"], "offset": len(first)})
    await client.disconnect()  # frames are handled in order: the ack before the disconnect
    interrupted = await wait_for_state(fleet.device_id(), UpdateState.TRANSFERRING)
    assert interrupted.bytes_acked == len(first)

    again = fleet.client()
    await hello(again, fleet, version=1)
    resumed = await next_frame(again, "ota_begin")
    assert resumed["ota_id"] == begin["ota_id"]
    rest = await take_transfer(again, resumed, start=len(first))
    assert first + rest == fleet.binaries[2]
    await again.send({"type": "ota_done", "ota_id": begin["ota_id"], "ok": True})
    await wait_for_state(fleet.device_id(), UpdateState.TRANSFERRED)
    await again.disconnect()


# --- failures ---------------------------------------------------------------------------------------------
async def test_a_corrupt_image_is_a_failed_attempt_retried_later_and_never_counted_as_running(fleet):
    await lock(fleet, 2)
    events = await subscribe_owner(fleet.user.pk)
    client = fleet.client()
    await hello(client, fleet, version=1)
    begin = await next_frame(client, "ota_begin")
    await take_transfer(client, begin)

    await client.send(
        {"type": "ota_done", "ota_id": begin["ota_id"], "ok": False, "error": "sha256 mismatch"}
    )

    update = await wait_for_state(fleet.device_id(), UpdateState.RETRYING)
    assert update.attempts == 1
    assert update.error == "the device reported: sha256 mismatch"
    assert update.retry_at > timezone.now()
    assert await flash_statuses(events, 2) == ["started", "failed: the device reported: sha256 mismatch"]
    device = await database_sync_to_async(Device.objects.get)(pk=fleet.device_id())
    assert device.firmware_version == 1
    await client.disconnect()


async def test_a_device_that_comes_back_on_its_old_version_failed_that_attempt(fleet):
    await lock(fleet, 2)
    client = fleet.client()
    await hello(client, fleet, version=1)
    begin = await next_frame(client, "ota_begin")
    await take_transfer(client, begin)
    await client.send({"type": "ota_done", "ota_id": begin["ota_id"], "ok": True})
    await wait_for_state(fleet.device_id(), UpdateState.TRANSFERRED)
    await client.disconnect()

    again = fleet.client()
    await hello(again, fleet, version=1)

    update = await wait_for_state(fleet.device_id(), UpdateState.RETRYING)
    assert update.error == "the device came back running version 1 instead of version 2"
    assert await again.nothing(0.2)  # the retry waits for its time
    await again.disconnect()


async def test_a_due_retry_starts_a_new_attempt_and_the_last_failure_is_final(fleet, settings):
    settings.QUANTA_OTA_MAX_ATTEMPTS = 2
    await lock(fleet, 2)
    client = fleet.client()
    await hello(client, fleet, version=1)
    begin = await next_frame(client, "ota_begin")
    await client.send({"type": "ota_done", "ota_id": begin["ota_id"], "ok": False, "error": "low battery"})
    await wait_for_state(fleet.device_id(), UpdateState.RETRYING)

    await database_sync_to_async(
        lambda: FirmwareUpdate.objects.update(retry_at=timezone.now() - timedelta(seconds=1))
    )()
    await database_sync_to_async(updates_sweep)()
    second = await next_frame(client, "ota_begin")
    assert second["ota_id"] != begin["ota_id"]
    await client.send({"type": "ota_done", "ota_id": second["ota_id"], "ok": False, "error": "low battery"})

    update = await wait_for_state(fleet.device_id(), UpdateState.FAILED)
    assert update.attempts == 2
    await client.disconnect()
    again = fleet.client()
    await hello(again, fleet, version=1)
    assert await again.nothing(0.3)  # given up: no more offers for this version
    await again.disconnect()


async def test_a_device_that_stops_answering_fails_the_attempt(fleet, settings):
    settings.QUANTA_OTA_STALL_SECONDS = 0.3
    await lock(fleet, 2)
    client = fleet.client()
    await hello(client, fleet, version=1)
    await next_frame(client, "ota_begin")

    update = await wait_for_state(fleet.device_id(), UpdateState.RETRYING, timeout=4)

    assert "stopped answering" in update.error
    await client.disconnect()


async def test_a_device_that_never_comes_back_fails_at_the_sweep(fleet):
    await lock(fleet, 2)
    client = fleet.client()
    await hello(client, fleet, version=1)
    begin = await next_frame(client, "ota_begin")
    await take_transfer(client, begin)
    await client.send({"type": "ota_done", "ota_id": begin["ota_id"], "ok": True})
    await wait_for_state(fleet.device_id(), UpdateState.TRANSFERRED)
    await client.disconnect()
    await database_sync_to_async(
        lambda: FirmwareUpdate.objects.update(transferred_at=timezone.now() - timedelta(hours=1))
    )()

    await database_sync_to_async(updates_sweep)()

    update = await update_of(fleet.device_id())
    assert update.state == UpdateState.RETRYING
    assert "did not come back within 10 minutes" in update.error


async def test_frames_for_an_unknown_transfer_are_refused(fleet):
    client = fleet.client()
    await hello(client, fleet, version=1)

    await client.send({"type": "ota_ack", "ota_id": "0" * 32, "offset": 10})

    reply = await client.receive()
    assert reply["code"] == "unknown_ota"
    await client.disconnect()


# --- who is targeted ---------------------------------------------------------------------------------------
async def test_development_devices_and_devices_locked_to_what_they_run_are_left_alone(user):
    fleet = await database_sync_to_async(Fleet)(user, count=3)
    await database_sync_to_async(
        lambda: FirmwareRelease.objects.create(product=fleet.product, firmware=fleet.firmware[2])
    )()
    await database_sync_to_async(
        lambda: Device.objects.filter(pk=fleet.device_id(0)).update(development=True)
    )()
    await lock(fleet, 1, index=1)
    clients = [fleet.client(i) for i in range(3)]
    for client in clients:
        await hello(client, fleet, version=1)

    begin = await next_frame(clients[2], "ota_begin")  # the product default reaches the third

    assert begin["version"] == 2
    assert await clients[0].nothing(0.2)
    assert await clients[1].nothing(0.1)
    for client in clients:
        await client.disconnect()


async def test_a_handshake_marks_the_version_as_having_run(fleet):
    client = fleet.client()
    await hello(client, fleet, version=3)
    await asyncio.sleep(0.05)

    firmware = await database_sync_to_async(
        lambda: fleet.firmware[3].__class__.objects.get(pk=fleet.firmware[3].pk)
    )()
    assert firmware.first_run_at is not None
    await client.disconnect()


# --- flashing by hand ---------------------------------------------------------------------------------------
async def test_flashing_by_hand_sends_the_binary_now_and_succeeds_when_the_device_returns(fleet, auth_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = fleet.client()
    await hello(client, fleet, version=1)
    image = app_binary(fleet.product, 7, payload_size=3000)

    response = await database_sync_to_async(auth_client.put)(
        f"/v1/devices/{fleet.device_id()}",
        {"file": SimpleUploadedFile("app.bin", image), "latest": "true"},
        format="multipart",
    )

    assert response.status_code == 200, response.content
    assert response.json() == {"id": fleet.device_id(), "status": "Update started"}
    begin = await next_frame(client, "ota_begin")
    assert begin["version"] == 7
    assert await take_transfer(client, begin) == image
    await client.send({"type": "ota_done", "ota_id": begin["ota_id"], "ok": True})
    await wait_for_state(fleet.device_id(), UpdateState.TRANSFERRED)
    await client.disconnect()
    again = fleet.client()
    await hello(again, fleet, version=7)
    update = await wait_for_state(fleet.device_id(), UpdateState.SUCCESS)
    assert update.firmware_id is None
    await again.disconnect()


async def test_a_binary_for_another_platform_is_refused_before_anything_is_sent(fleet, auth_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = fleet.client()
    await hello(client, fleet, version=1)
    photon = app_binary(fleet.product, 7, platform_id=6)

    response = await database_sync_to_async(auth_client.put)(
        f"/v1/devices/{fleet.device_id()}",
        {"file": SimpleUploadedFile("app.bin", photon)},
        format="multipart",
    )

    assert response.status_code == 400
    assert "built for Photon (platform 6)" in response.json()["error_description"]
    assert await client.nothing(0.1)
    assert not await database_sync_to_async(FirmwareUpdate.objects.exists)()
    await client.disconnect()


async def test_a_flash_to_an_offline_device_waits_for_its_connection(fleet, auth_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    image = app_binary(fleet.product, 7)
    response = await database_sync_to_async(auth_client.put)(
        f"/v1/devices/{fleet.device_id()}", {"file": SimpleUploadedFile("app.bin", image)}, format="multipart"
    )
    assert response.json()["status"].startswith("Update queued")

    client = fleet.client()
    await hello(client, fleet, version=1)

    begin = await next_frame(client, "ota_begin")
    assert begin["size"] == len(image)
    await client.disconnect()


async def test_an_intelligent_release_offers_the_update_to_online_devices_at_once(fleet, auth_client):
    client = fleet.client()
    await hello(client, fleet, version=2)  # version 2 has run on a device: it may be released
    await client.disconnect()
    other = DeviceClient.of(
        (await database_sync_to_async(devices_provision)(platform=BORON, count=1, product=fleet.product))[0]
    )
    await hello(other, fleet, version=1)
    assert await other.nothing(0.2)

    response = await database_sync_to_async(auth_client.put)(
        f"/v1/products/{fleet.product.id}/firmware/release",
        {"version": 2, "product_default": True, "intelligent": True},
        format="json",
    )

    assert response.status_code == 200, response.content
    begin = await next_frame(other, "ota_begin")
    assert begin["version"] == 2
    await other.disconnect()
