"""Events a device publishes through the gateway carry its name, in the live stream and in its
owner's history, and a device renamed while connected publishes under its new name."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import transaction

from console.platforms import PLATFORMS
from devices import services
from devices.models import Device
from devices.runtime import runtime
from devices.services import devices_provision
from events.hub import hub
from tests.devices.device_client import DeviceClient, next_events, subscribe_owner

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _gateway(settings):
    settings.QUANTA_DEVICE_HANDSHAKE_TIMEOUT_SECONDS = 5
    settings.QUANTA_GATEWAY_FLUSH_SECONDS = 60  # housekeeping runs only where a test asks for it
    settings.QUANTA_EVENT_USAGE_FLUSH_SECONDS = 3600  # no background usage writes from these tests
    runtime.connections.clear()
    runtime.pending_last_heard.clear()
    runtime.usage.clear()
    yield
    runtime.connections.clear()
    runtime.pending_last_heard.clear()
    runtime.usage.clear()


async def online(owner):
    [provisioned] = await database_sync_to_async(devices_provision)(
        platform=PLATFORMS[13], count=1, owner=owner
    )
    client = DeviceClient.of(provisioned)
    await client.handshake()
    return provisioned.device, client


async def owner_history(user) -> list:
    return await sync_to_async(hub.recent)(user_id=user.pk, limit=20)


async def wait_for_name(device_id: str, name: str, timeout: float = 2) -> None:
    """The device's connection has handled its ``device.renamed`` message."""
    deadline = time.monotonic() + timeout
    while runtime.connections[device_id].device_name != name:
        assert time.monotonic() < deadline, f"the gateway never heard the name {name!r}"
        await asyncio.sleep(0.01)


async def test_published_events_carry_the_device_name_live_and_in_history(user):
    events = await subscribe_owner(user.pk)
    device, client = await online(user)
    assert device.name  # provisioned devices are named
    [status] = await next_events(events)
    assert (status.name, status.data, status.device_name) == ("spark/status", "online", device.name)

    await client.send({"type": "publish", "name": "temp", "data": "21.5", "ttl": 30, "id": 1})
    assert await client.receive() == {"type": "ack", "id": 1}
    [event] = await next_events(events)
    assert (event.name, event.data, event.ttl, event.coreid, event.owner_id, event.device_name) == (
        "temp",
        "21.5",
        30,
        device.id,
        user.pk,
        device.name,
    )
    assert event.console_wire()["device_name"] == device.name
    assert "device_name" not in event.wire()  # Particle's wire format does not carry it

    history = await owner_history(user)
    assert [(e.name, e.data, e.device_name) for e in history] == [
        ("spark/status", "online", device.name),
        ("temp", "21.5", device.name),
    ]
    await client.disconnect()


async def test_a_renamed_device_publishes_under_its_new_name(user):
    events = await subscribe_owner(user.pk, prefix="temp")
    device, client = await online(user)
    old = device.name
    await client.send({"type": "publish", "name": "temp", "data": "before", "id": 1})
    assert await client.receive() == {"type": "ack", "id": 1}
    assert [e.device_name for e in await next_events(events)] == [old]

    # A rename that rolls back tells the gateway nothing.
    def rename_rolled_back() -> None:
        row = Device.objects.get(pk=device.id)
        with contextlib.suppress(RuntimeError), transaction.atomic():
            services.device_rename(user=user, device=row, name="never-committed")
            raise RuntimeError("roll back")

    await database_sync_to_async(rename_rolled_back)()
    await asyncio.sleep(0.1)
    assert runtime.connections[device.id].device_name == old

    row = await database_sync_to_async(Device.objects.get)(pk=device.id)
    await database_sync_to_async(services.device_rename)(user=user, device=row, name="greenhouse-7")
    await wait_for_name(device.id, "greenhouse-7")

    await client.send({"type": "publish", "name": "temp", "data": "after", "id": 2})
    assert await client.receive() == {"type": "ack", "id": 2}
    [event] = await next_events(events)
    assert (event.data, event.device_name) == ("after", "greenhouse-7")
    history = await owner_history(user)
    assert [(e.data, e.device_name) for e in history if e.name == "temp"] == [
        ("before", old),
        ("after", "greenhouse-7"),
    ]

    # Going offline is reported under the new name too.
    status = await subscribe_owner(user.pk, prefix="spark/status")
    await client.disconnect()
    [offline] = await next_events(status)
    assert (offline.data, offline.device_name) == ("offline", "greenhouse-7")


async def test_a_product_device_publishes_up_to_its_products_data_limit(user):
    from products.services import product_create

    product = await database_sync_to_async(product_create)(user=user, name="Big payloads", platform_id=13)
    [provisioned] = await database_sync_to_async(devices_provision)(
        platform=PLATFORMS[13], count=1, owner=user, product=product
    )
    client = DeviceClient.of(provisioned)
    await client.handshake()
    await client.send({"type": "publish", "name": "blob", "data": "x" * 1025, "id": 1})
    refused = await client.receive()
    assert (refused["type"], refused["code"], refused["id"]) == ("error", "too_large", 1)
    assert "1024" in refused["message"]
    await client.disconnect()

    product.event_data_limit = 4096
    await database_sync_to_async(product.save)()
    client = DeviceClient.of(provisioned)
    await client.handshake()  # the limit is read at handshake
    await client.send({"type": "publish", "name": "blob", "data": "x" * 3000, "id": 2})
    assert await client.receive() == {"type": "ack", "id": 2}
    await client.send({"type": "publish", "name": "blob", "data": "x" * 4097, "id": 3})
    assert (await client.receive())["code"] == "too_large"
    await client.disconnect()
