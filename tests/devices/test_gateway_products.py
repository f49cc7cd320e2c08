"""A device whose firmware names a product asks to join it at handshake: quarantined or approved
per the product's policy, refused when the product denied it or is for another platform."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from console.models import AuditEntry
from console.platforms import PLATFORMS
from devices.imports import device_ids_parse, device_remove_from_product, devices_import
from devices.models import ClaimCode, Device
from devices.runtime import runtime
from devices.services import claim_code_create, devices_provision
from products.models import Product
from products.services import product_create
from tests.devices.device_client import DeviceClient, no_events, subscribe_owner

pytestmark = pytest.mark.django_db(transaction=True)

BORON = PLATFORMS[13]
ARGON = PLATFORMS[12]
CLOSE_DENIED = 4403


@pytest.fixture(autouse=True)
def _gateway_settings(settings):
    settings.QUANTA_DEVICE_HANDSHAKE_TIMEOUT_SECONDS = 5
    settings.QUANTA_GATEWAY_FLUSH_SECONDS = 60


@pytest.fixture(autouse=True)
def _fresh_runtime():
    runtime.connections.clear()
    runtime.pending_last_heard.clear()
    runtime.usage.clear()
    yield
    runtime.connections.clear()
    runtime.pending_last_heard.clear()
    runtime.usage.clear()


@database_sync_to_async
def provision(*, owner=None, platform=BORON, product=None):
    [provisioned] = devices_provision(platform=platform, count=1, owner=owner, product=product)
    return provisioned


@database_sync_to_async
def make_product(user, *, policy: str = "quarantine", platform=BORON, name: str = "Greenhouse") -> Product:
    product = product_create(user=user, name=name, platform_id=platform.id)
    Product.objects.filter(pk=product.pk).update(quarantine_policy=policy)
    product.refresh_from_db()
    return product


@database_sync_to_async
def row(device_id: str) -> Device:
    return Device.objects.get(pk=device_id)


@database_sync_to_async
def snapshot(device_id: str) -> dict:
    return Device.objects.filter(pk=device_id).values().get()


async def connect(provisioned, **hello) -> DeviceClient:
    client = DeviceClient.of(provisioned)
    await client.handshake(**hello)
    return client


# --- Joining ------------------------------------------------------------------------------------------------
async def test_an_unknown_device_joins_quarantined_under_the_quarantine_policy(user):
    product = await make_product(user, policy="quarantine")
    provisioned = await provision()
    client = await connect(provisioned, product_id=product.id, product_version=2)
    device = await row(provisioned.device.id)
    assert (device.product_id, device.quarantined, device.online) == (product.id, True, True)
    assert (device.firmware_product_id, device.firmware_version) == (product.id, 2)
    await client.disconnect()

    # It stays quarantined when it comes back, until the team approves it (by importing it).
    client = await connect(provisioned, product_id=product.id)
    device = await row(provisioned.device.id)
    assert (device.product_id, device.quarantined) == (product.id, True)
    await client.disconnect()

    result = await database_sync_to_async(devices_import)(
        actor=user, product=product, parsed=device_ids_parse([device.id])
    )
    assert result.updated == [device.id]
    client = await connect(provisioned, product_id=product.id)
    assert (await row(device.id)).quarantined is False
    await client.disconnect()


async def test_an_unknown_device_joins_at_once_under_the_approve_policy(user):
    product = await make_product(user, policy="approve")
    provisioned = await provision(owner=user)
    client = await connect(provisioned, product_id=product.id)
    device = await row(provisioned.device.id)
    assert (device.product_id, device.quarantined, device.online) == (product.id, False, True)
    assert device.owner_id == user.id  # joining a product keeps the owner
    await client.disconnect()


async def test_an_imported_device_stays_in_and_is_not_quarantined(user):
    product = await make_product(user, policy="quarantine")
    provisioned = await provision()
    await database_sync_to_async(devices_import)(
        actor=user, product=product, parsed=device_ids_parse([provisioned.device.id])
    )
    client = await connect(provisioned, product_id=product.id)
    device = await row(provisioned.device.id)
    assert (device.product_id, device.quarantined, device.online) == (product.id, False, True)
    await client.disconnect()


async def test_a_device_in_a_product_stays_there_whatever_its_firmware_names(user, other_user):
    mine = await make_product(user)
    theirs = await make_product(other_user, policy="approve", name="Orchard")
    provisioned = await provision(product=mine)
    client = await connect(provisioned, product_id=theirs.id)
    device = await row(provisioned.device.id)
    assert (device.product_id, device.quarantined, device.firmware_product_id) == (mine.id, False, theirs.id)
    await client.disconnect()


# --- Refused ------------------------------------------------------------------------------------------------
async def assert_refused(provisioned, product_id: int, message: str, owner_id: int) -> None:
    before = await snapshot(provisioned.device.id)
    status = await subscribe_owner(owner_id)
    client = DeviceClient.of(provisioned)
    reply = await client.hello(product_id=product_id, product_version=7)
    assert reply == {"type": "error", "code": "denied", "message": message}
    assert await client.closed() == CLOSE_DENIED
    await client.disconnect()
    assert await snapshot(provisioned.device.id) == before  # not online, nothing recorded
    assert provisioned.device.id not in runtime.connections
    assert await no_events(status)  # no online status


@pytest.mark.parametrize("policy", ["quarantine", "approve"])
async def test_a_denied_device_is_refused_with_4403_and_its_row_is_unchanged(user, policy):
    product = await make_product(user, policy=policy)
    provisioned = await provision(owner=user, product=product)
    await database_sync_to_async(device_remove_from_product)(
        actor=user, product=product, device=provisioned.device, deny=True
    )
    await assert_refused(provisioned, product.id, f"Product {product.id} denied this device.", user.id)
    device = await row(provisioned.device.id)
    assert (device.product_id, device.online) == (None, False)

    # Importing lifts the denial: the next handshake is welcome.
    await database_sync_to_async(devices_import)(
        actor=user, product=product, parsed=device_ids_parse([provisioned.device.id])
    )
    client = await connect(provisioned, product_id=product.id)
    device = await row(provisioned.device.id)
    assert (device.product_id, device.quarantined, device.online) == (product.id, False, True)
    await client.disconnect()


async def test_a_denial_by_one_product_does_not_keep_a_device_out_of_another(user):
    denying = await make_product(user)
    welcoming = await make_product(user, policy="approve", name="Orchard")
    provisioned = await provision(product=denying)
    await database_sync_to_async(device_remove_from_product)(
        actor=user, product=denying, device=provisioned.device, deny=True
    )
    client = await connect(provisioned, product_id=welcoming.id)
    assert (await row(provisioned.device.id)).product_id == welcoming.id
    await client.disconnect()


async def test_a_product_of_another_platform_is_refused_with_4403(user):
    product = await make_product(user, policy="approve", platform=BORON)
    provisioned = await provision(owner=user, platform=ARGON)
    await assert_refused(
        provisioned, product.id, f"Product {product.id} is for Boron devices, not Argon devices.", user.id
    )
    assert (await row(provisioned.device.id)).product_id is None


async def test_a_refused_device_does_not_spend_a_claim_code(user, other_user):
    product = await make_product(user)
    provisioned = await provision(product=product)
    await database_sync_to_async(device_remove_from_product)(
        actor=user, product=product, device=provisioned.device, deny=True
    )
    claim = await database_sync_to_async(claim_code_create)(user=other_user)
    client = DeviceClient.of(provisioned)
    reply = await client.hello(product_id=product.id, claim_code=claim.code)
    assert (reply["type"], reply["code"]) == ("error", "denied")
    assert await client.closed() == CLOSE_DENIED
    await client.disconnect()
    assert (await row(provisioned.device.id)).owner_id is None
    claim = await database_sync_to_async(ClaimCode.objects.get)(pk=claim.pk)
    assert (claim.used_at, claim.device_id) == (None, None)
    assert not await database_sync_to_async(AuditEntry.objects.filter(action="device.claim").exists)()


# --- Ignored ------------------------------------------------------------------------------------------------
async def test_a_product_that_does_not_exist_leaves_the_device_outside(user):
    provisioned = await provision(owner=user)
    client = await connect(provisioned, product_id=987_654)
    device = await row(provisioned.device.id)
    assert (device.product_id, device.quarantined, device.online) == (None, False, True)
    assert device.firmware_product_id == 987_654
    await client.disconnect()


@pytest.mark.parametrize("product_id", [BORON.id, 94, 999, None])
async def test_a_platform_id_or_no_product_id_is_ignored(user, product_id):
    await make_product(user, policy="approve")
    provisioned = await provision(owner=user)
    client = await connect(provisioned, product_id=product_id)
    device = await row(provisioned.device.id)
    assert (device.product_id, device.quarantined, device.online) == (None, False, True)
    assert device.firmware_product_id == product_id
    await client.disconnect()


async def test_firmware_product_ids_and_versions_up_to_32_bits_are_recorded(user):
    [provisioned] = await database_sync_to_async(devices_provision)(
        platform=PLATFORMS[13], count=1, owner=user
    )
    client = DeviceClient.of(provisioned)
    await client.handshake(product_id=2**32 - 1, product_version=2**32 - 1)
    stored = await row(provisioned.device.id)
    assert (stored.firmware_product_id, stored.firmware_version, stored.product_id) == (
        2**32 - 1,
        2**32 - 1,
        None,
    )
    await client.disconnect()
