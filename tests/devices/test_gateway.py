"""The device gateway at /device/v1: handshake, every frame type, every refusal, cloud-to-device
requests, replacement, liveness, metering and the stale-session sweep."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
from datetime import datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.utils import timezone

from console.errors import ApplicationError, NotFound
from console.models import AuditEntry
from console.platforms import PLATFORMS
from devices import calls, services
from devices.models import DataUsage, Device, GatewayProcess
from devices.runtime import runtime
from devices.services import devices_provision
from devices.tasks import sweep_stale_sessions
from tests.devices.device_client import (
    DEFAULT_IP,
    DeviceClient,
    next_events,
    no_events,
    subscribe_owner,
)

pytestmark = pytest.mark.django_db(transaction=True)

BORON = PLATFORMS[13]
ARGON = PLATFORMS[12]
MILLIS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(autouse=True)
def _gateway_settings(settings):
    settings.QUANTA_DEVICE_HANDSHAKE_TIMEOUT_SECONDS = 5
    settings.QUANTA_GATEWAY_FLUSH_SECONDS = 60  # housekeeping runs only where a test asks for it
    settings.QUANTA_DEVICE_CALL_TIMEOUT_SECONDS = 2


@pytest.fixture(autouse=True)
def _fresh_runtime():
    """The runtime is per process: connections and counters of one test never reach the next."""
    runtime.connections.clear()
    runtime.pending_last_heard.clear()
    runtime.usage.clear()
    yield
    runtime.connections.clear()
    runtime.pending_last_heard.clear()
    runtime.usage.clear()


async def provision(owner, count: int = 1, platform=BORON):
    return await database_sync_to_async(devices_provision)(platform=platform, count=count, owner=owner)


async def online(provisioned, **hello) -> DeviceClient:
    client = DeviceClient.of(provisioned)
    await client.handshake(**hello)
    return client


async def row(device_id: str) -> Device:
    return await database_sync_to_async(Device.objects.get)(pk=device_id)


def in_thread(function, /, **kwargs) -> asyncio.Future:
    """A synchronous cloud-side call (what an API request does), run in a worker thread."""
    return asyncio.ensure_future(sync_to_async(function, thread_sensitive=False)(**kwargs))


def wire(frame: dict) -> int:
    """The size of a frame as the gateway serializes it."""
    return len(json.dumps(frame, separators=(",", ":")).encode())


# --- Handshake -----------------------------------------------------------------------------------------
async def test_challenge_hello_welcome_records_the_session_and_publishes_status(user, settings):
    [provisioned] = await provision(user)
    status = await subscribe_owner(user.pk)
    client = DeviceClient.of(provisioned)

    challenge = await client.connect()
    assert set(challenge) == {"type", "nonce", "server_time", "protocol"}
    assert len(base64.b64decode(challenge["nonce"], validate=True)) == 32
    assert MILLIS_Z.match(challenge["server_time"])
    server_time = datetime.fromisoformat(challenge["server_time"])
    assert abs((timezone.now() - server_time).total_seconds()) < 5

    welcome = await client.handshake(
        product_id=94,
        product_version=3,
        system_version="6.1.1",
        functions=["led", "reset"],
        variables={"temp": "double", "label": "string"},
    )
    assert set(welcome) == {"type", "session_id", "heartbeat_s"}
    assert re.fullmatch(r"[0-9a-f]{32}", welcome["session_id"])
    assert welcome["heartbeat_s"] == settings.QUANTA_DEVICE_HEARTBEAT_SECONDS

    device = await row(provisioned.device.id)
    assert device.online is True
    assert abs((timezone.now() - device.last_handshake_at).total_seconds()) < 5
    assert device.last_heard == device.last_handshake_at
    assert device.last_ip_address == DEFAULT_IP
    assert (device.firmware_product_id, device.firmware_version) == (94, 3)
    assert device.system_firmware_version == "6.1.1"
    assert device.functions == ["led", "reset"]
    assert device.variables == {"temp": "double", "label": "string"}
    assert device.session_id == welcome["session_id"]
    assert device.gateway_process == runtime.process_id
    assert device.gateway_channel
    assert await database_sync_to_async(GatewayProcess.objects.filter(id=runtime.process_id).exists)()

    [online_event] = await next_events(status)
    assert (online_event.name, online_event.data, online_event.coreid) == (
        "spark/status",
        "online",
        provisioned.device.id,
    )
    assert online_event.owner_id == user.pk

    await client.disconnect()
    [offline_event] = await next_events(status)
    assert (offline_event.name, offline_event.data, offline_event.coreid) == (
        "spark/status",
        "offline",
        provisioned.device.id,
    )
    device = await row(provisioned.device.id)
    assert device.online is False
    assert (device.session_id, device.gateway_process, device.gateway_channel) == ("", "", "")
    assert await no_events(status)


async def test_every_connection_gets_a_fresh_nonce(user):
    [provisioned] = await provision(user)
    first, second = DeviceClient.of(provisioned), DeviceClient.of(provisioned)
    assert (await first.connect())["nonce"] != (await second.connect())["nonce"]
    await first.disconnect()
    await second.disconnect()


async def test_hello_records_an_iccid_only_when_none_is_known(user):
    [cellular] = await provision(user, platform=BORON)
    [wifi] = await provision(user, platform=ARGON)
    a = await online(cellular, iccid="89014103211118510720")
    b = await online(wifi, iccid="89014103211118510720")
    assert (await row(cellular.device.id)).iccid == cellular.device.iccid
    assert (await row(wifi.device.id)).iccid == "89014103211118510720"
    await a.disconnect()
    await b.disconnect()


# --- Refused handshakes ----------------------------------------------------------------------------------
async def refused_audit_entries() -> list[AuditEntry]:
    return await database_sync_to_async(
        lambda: list(AuditEntry.objects.filter(action="device.handshake_refused").order_by("id"))
    )()


async def test_unknown_device_is_refused_with_one_audit_entry_per_address(user):
    [provisioned] = await provision(user)
    attempts = [
        {"device_id": secrets.token_hex(12)},  # well formed, not provisioned
        {"device_id": "not-a-device"},
        {"device_id": None},
        {"device_id": 12345},
    ]
    for fields in attempts:
        client = DeviceClient(private_key=provisioned.keys.private_key)
        assert await client.hello(**fields) == 4401
        await client.disconnect()

    [entry] = await refused_audit_entries()
    assert entry.target_id == attempts[0]["device_id"]
    assert entry.metadata == {"reason": "unknown device"}
    assert entry.ip_address == DEFAULT_IP
    assert entry.via == "device"

    # The limit is per address: another address gets its own line.
    client = DeviceClient(secrets.token_hex(12), provisioned.keys.private_key, ip="198.51.100.7")
    assert await client.hello() == 4401
    await client.disconnect()
    assert len(await refused_audit_entries()) == 2


async def test_bad_signatures_are_refused(user):
    [provisioned] = await provision(user)
    cases = {
        "garbage": "not base64 at all!",
        "zeros": base64.b64encode(b"\x00" * 64).decode(),
        "empty": "",
        "missing": None,
        "number": 12345,
    }
    for index, (case, signature) in enumerate(cases.items()):
        client = DeviceClient.of(provisioned, ip=f"198.51.100.{index + 1}")
        await client.connect()
        fields = {key: value for key, value in client.hello_frame().items() if key != "signature"}
        if signature is not None:
            fields["signature"] = signature
        await client.send(fields)
        assert await client.closed() == 4401, case
        await client.disconnect()
    device = await row(provisioned.device.id)
    assert (device.online, device.last_handshake_at) == (False, None)
    entries = await refused_audit_entries()
    assert [entry.metadata for entry in entries] == [{"reason": "bad signature"}] * len(cases)
    assert {entry.target_id for entry in entries} == {provisioned.device.id}


async def test_signature_over_something_else_is_refused(user):
    [provisioned] = await provision(user)
    client = DeviceClient.of(provisioned)
    await client.connect()
    assert await client.hello(signature=client.signature(nonce=b"\x01" * 32)) == 4401
    await client.disconnect()


async def test_replayed_signature_from_an_earlier_session_is_refused(user):
    [provisioned] = await provision(user)
    earlier = DeviceClient.of(provisioned)
    await earlier.connect()
    captured = earlier.signature()
    await earlier.handshake(signature=captured)
    await earlier.disconnect()

    replay = DeviceClient.of(provisioned, ip="203.0.113.9")
    await replay.connect()
    assert await replay.hello(signature=captured) == 4401
    await replay.disconnect()
    assert (await row(provisioned.device.id)).online is False


async def test_hello_for_another_device_signed_with_own_key_is_refused(user, other_user):
    [mine] = await provision(user)
    [theirs] = await provision(other_user)
    client = DeviceClient(theirs.device.id, mine.keys.private_key, platform_id=BORON.id)
    assert await client.hello() == 4401
    await client.disconnect()
    victim = await row(theirs.device.id)
    assert (victim.online, victim.last_handshake_at, victim.session_id, victim.functions) == (
        False,
        None,
        "",
        [],
    )


async def test_second_hello_after_the_handshake_is_an_error(user):
    [provisioned] = await provision(user)
    client = await online(provisioned)
    session = (await row(provisioned.device.id)).session_id
    reply = await client.hello(signature=client.signature())
    assert reply["type"] == "error"
    assert "already complete" in reply["message"]
    await client.sync()  # still connected
    assert (await row(provisioned.device.id)).session_id == session
    await client.disconnect()


async def test_frames_before_hello_are_errors_and_the_handshake_still_works(user):
    [provisioned] = await provision(user)
    client = DeviceClient.of(provisioned)
    await client.connect()
    for frame in ({"type": "publish", "name": "x", "id": 1}, {"type": "ping"}, {"type": "subscribe"}):
        await client.send(frame)
        reply = await client.receive()
        assert reply["type"] == "error"
        assert "hello first" in reply["message"]
    await client.handshake()
    await client.disconnect()


async def test_bad_frames_are_answered_with_an_error_and_the_connection_stays(user):
    [provisioned] = await provision(user)
    client = await online(provisioned)
    cases = {
        "malformed": "{not json",
        "array": "[1, 2]",
        "string": '"hello"',
        "number": "42",
        "null": "null",
        "no-type": '{"no": "type"}',
        "type-not-string": '{"type": 7}',
        "unknown-type": '{"type": "warp"}',
    }
    for case, text in cases.items():
        await client.send_text(text)
        reply = await client.receive()
        assert (reply["type"], reply["code"]) == ("error", "bad_frame"), case
        assert reply["message"], case
        await client.sync()
    await client.disconnect()


async def test_binary_frames_are_refused_outside_firmware_transfers(user):
    [provisioned] = await provision(user)
    client = await online(provisioned)
    await client.communicator.send_to(bytes_data=b"\x00\x01")
    reply = await client.receive()
    assert reply["type"] == "error"
    assert "Binary" in reply["message"]
    await client.disconnect()


async def test_twenty_bad_frames_in_a_minute_close_with_4400(user, settings):
    assert settings.QUANTA_DEVICE_BAD_FRAME_LIMIT == 20
    [provisioned] = await provision(user)
    client = await online(provisioned)
    for _ in range(19):
        await client.send_text("{oops")
        assert (await client.receive())["type"] == "error"
    await client.sync()
    await client.send_text("{oops")
    assert (await client.receive())["type"] == "error"
    assert await client.closed() == 4400
    await client.disconnect()


async def test_a_frame_over_64_kb_closes_with_1009(user):
    [provisioned] = await provision(user)
    for handshake in (False, True):
        client = DeviceClient.of(provisioned)
        await client.connect()
        if handshake:
            await client.handshake()
        await client.send({"type": "heartbeat", "padding": "x" * (64 * 1024)})
        assert await client.closed() == 1009, f"handshake={handshake}"
        await client.disconnect()


async def test_a_frame_of_exactly_64_kb_is_accepted(user):
    [provisioned] = await provision(user)
    client = await online(provisioned)
    frame = {"type": "heartbeat", "padding": ""}
    frame["padding"] = "x" * (64 * 1024 - len(json.dumps(frame)))
    assert len(json.dumps(frame)) == 64 * 1024
    await client.send(frame)
    await client.sync()
    await client.disconnect()


async def test_handshake_not_completed_in_time_closes_with_4408(user, settings):
    settings.QUANTA_DEVICE_HANDSHAKE_TIMEOUT_SECONDS = 0.2
    [provisioned] = await provision(user)
    idle = DeviceClient.of(provisioned)
    await idle.connect()
    assert await idle.closed(timeout=2) == 4408
    await idle.disconnect()

    prompt = await online(provisioned)  # a completed handshake cancels the timer
    assert await prompt.nothing(0.4)
    await prompt.sync()
    await prompt.disconnect()


HELLO_PROBLEMS = {
    "platform-mismatch": ({"platform_id": 10}, "provisioned as platform 13, not 10"),
    "too-many-functions": ({"functions": [f"f{i}" for i in range(65)]}, "functions is a list of at most 64"),
    "functions-not-a-list": ({"functions": "led"}, "functions is a list"),
    "too-many-variables": ({"variables": {f"v{i}": "int" for i in range(65)}}, "variables maps at most 64"),
    "bad-variable-type": ({"variables": {"temp": "float"}}, "Variable 'temp' has unknown type 'float'"),
    "function-name-too-long": ({"functions": ["f" * 65]}, "Function names are 1 to 64 characters"),
    "function-name-empty": ({"functions": [""]}, "Function names are 1 to 64 characters"),
    "variable-name-too-long": ({"variables": {"v" * 65: "int"}}, "Variable names are 1 to 64 characters"),
    "negative-product": ({"product_id": -1}, "product_id must be a non-negative integer"),
    "version-not-int": ({"product_version": "3"}, "product_version must be a non-negative integer"),
    "system-version-not-string": ({"system_version": 6}, "system_version"),
    "claim-code-too-long": ({"claim_code": "c" * 65}, "claim_code"),
}


async def test_hello_problems_are_named_and_nothing_is_recorded(user):
    [provisioned] = await provision(user)
    status = await subscribe_owner(user.pk)
    for case, (fields, fragment) in HELLO_PROBLEMS.items():
        client = DeviceClient.of(provisioned)
        reply = await client.hello(**fields)
        assert reply["type"] == "error", case
        assert fragment in reply["message"], (case, reply["message"])

        # The challenge was spent: this connection cannot try again, and says so.
        again = await client.hello()
        assert again["type"] == "error", case
        assert "reconnect" in again["message"], case
        await client.disconnect()

    device = await row(provisioned.device.id)
    assert (device.online, device.last_handshake_at, device.functions) == (False, None, [])
    assert await no_events(status)


# --- Publishing ------------------------------------------------------------------------------------------
async def test_publish_with_id_is_acked_and_without_id_is_not(user):
    [provisioned] = await provision(user)
    client = await online(provisioned)
    events = await subscribe_owner(user.pk, prefix="temp")

    await client.send(
        {"type": "publish", "name": "temp", "data": "21.5", "ttl": 30, "private": True, "id": 7}
    )
    assert await client.receive() == {"type": "ack", "id": 7}
    [event] = await next_events(events)
    assert (event.name, event.data, event.ttl, event.private) == ("temp", "21.5", 30, True)
    assert (event.coreid, event.owner_id, event.product_id) == (provisioned.device.id, user.pk, None)

    await client.send({"type": "publish", "name": "temp", "data": "22"})
    [event] = await next_events(events)
    assert (event.data, event.ttl) == ("22", 60)
    assert await client.nothing()
    await client.disconnect()


async def test_a_device_cannot_publish_as_another_device(user, other_user):
    [mine] = await provision(user)
    [theirs] = await provision(other_user)
    client = await online(mine)
    events = await subscribe_owner(user.pk, prefix="temp")
    theirs_events = await subscribe_owner(other_user.pk)
    await client.send(
        {"type": "publish", "name": "temp", "coreid": theirs.device.id, "owner_id": other_user.pk, "id": 1}
    )
    assert await client.receive() == {"type": "ack", "id": 1}
    [event] = await next_events(events)
    assert (event.coreid, event.owner_id) == (mine.device.id, user.pk)
    assert await no_events(theirs_events)
    await client.disconnect()


PUBLISH_REFUSALS = {
    "empty": ({"name": ""}, "bad_name"),
    "missing": ({}, "bad_name"),
    "not-a-string": ({"name": 5}, "bad_name"),
    "too-long": ({"name": "n" * 65}, "bad_name"),
    "spark": ({"name": "spark/status"}, "bad_name"),
    "spark-any-case": ({"name": "Spark-anything"}, "bad_name"),
    "particle": ({"name": "particle/device/name"}, "bad_name"),
    "too-large": ({"name": "temp", "data": "x" * 1025}, "too_large"),
    "too-large-utf8": ({"name": "temp", "data": "é" * 513}, "too_large"),  # 1026 bytes
    "data-not-string": ({"name": "temp", "data": 21.5}, "bad_data"),
}


async def test_refused_publishes_say_why_and_publish_nothing(user):
    [provisioned] = await provision(user)
    events = await subscribe_owner(user.pk)
    client = await online(provisioned)
    assert [e.data for e in await next_events(events)] == ["online"]
    for index, (case, (fields, code)) in enumerate(PUBLISH_REFUSALS.items()):
        await client.send({"type": "publish", "id": index, **fields})
        reply = await client.receive()
        assert reply["type"] == "error", case
        assert (reply["id"], reply["code"]) == (index, code), case
        assert reply["message"], case
    assert await no_events(events)
    await client.disconnect()


async def test_largest_allowed_publish_is_accepted(user):
    [provisioned] = await provision(user)
    client = await online(provisioned)
    await client.send({"type": "publish", "name": "n" * 64, "data": "x" * 1024, "id": 1})
    assert await client.receive() == {"type": "ack", "id": 1}
    await client.disconnect()


async def test_publish_with_bad_ttl_is_an_error(user):
    [provisioned] = await provision(user)
    client = await online(provisioned)
    for index, ttl in enumerate([-1, "60", 16_777_216, True, None]):
        await client.send({"type": "publish", "name": "temp", "ttl": ttl, "id": index})
        reply = await client.receive()
        assert (reply["type"], reply["id"]) == ("error", index), ttl
        assert "ttl" in reply["message"], ttl
    await client.disconnect()


async def test_publish_rate_limit_is_a_token_bucket(user, settings):
    settings.QUANTA_PUBLISH_RATE_PER_SECOND = 2  # one token every 500 ms: slack for a busy machine
    assert settings.QUANTA_PUBLISH_BURST == 4
    [provisioned] = await provision(user)
    client = await online(provisioned)

    # Refused names spend no tokens.
    for index in range(4):
        await client.send({"type": "publish", "name": "spark/x", "id": 100 + index})
        assert (await client.receive())["code"] == "bad_name"
    for index in range(4):
        await client.send({"type": "publish", "name": "temp", "id": index})
        assert await client.receive() == {"type": "ack", "id": index}
    await client.send({"type": "publish", "name": "temp", "id": 4})
    reply = await client.receive()
    assert (reply["type"], reply["id"], reply["code"]) == ("error", 4, "rate_limited")

    await asyncio.sleep(0.55)
    await client.send({"type": "publish", "name": "temp", "id": 5})
    assert await client.receive() == {"type": "ack", "id": 5}
    await client.send({"type": "publish", "name": "temp", "id": 6})
    assert (await client.receive())["code"] == "rate_limited"
    await client.disconnect()


# --- Device subscriptions --------------------------------------------------------------------------------
async def test_events_reach_subscribed_devices_of_the_same_owner_only(user, other_user):
    publisher, sibling = await provision(user, count=2)
    [stranger] = await provision(other_user)
    a, b, c = await online(publisher), await online(sibling), await online(stranger)
    await subscribe_owner(user.pk)  # makes sure the hub is listening (Redis)

    await b.send({"type": "subscribe", "prefix": "temp"})
    await c.send({"type": "subscribe", "prefix": ""})
    await b.sync()
    await c.sync()

    await a.send({"type": "publish", "name": "temperature", "data": "21.5", "id": 1})
    assert await a.receive() == {"type": "ack", "id": 1}
    event = await b.receive()
    assert set(event) == {"type", "name", "data", "ttl", "published_at", "coreid"}
    assert {k: v for k, v in event.items() if k != "published_at"} == {
        "type": "event",
        "name": "temperature",
        "data": "21.5",
        "ttl": 60,
        "coreid": publisher.device.id,
    }
    assert MILLIS_Z.match(event["published_at"])
    assert await c.nothing()

    # Another prefix does not match.
    await a.send({"type": "publish", "name": "humidity", "data": "40", "id": 2})
    assert await a.receive() == {"type": "ack", "id": 2}
    assert await b.nothing()

    await b.send({"type": "unsubscribe", "prefix": "temp"})
    await b.sync()
    await a.send({"type": "publish", "name": "temperature", "data": "22", "id": 3})
    assert await a.receive() == {"type": "ack", "id": 3}
    assert await b.nothing()
    assert await c.nothing()
    for client in (a, b, c):
        await client.disconnect()


async def test_subscription_limits(user):
    [provisioned] = await provision(user)
    client = await online(provisioned)
    await client.send({"type": "subscribe", "prefix": "p" * 65})
    assert "at most 64" in (await client.receive())["message"]
    for index in range(10):
        await client.send({"type": "subscribe", "prefix": f"p{index}"})
    await client.send({"type": "subscribe", "prefix": "p0"})  # a repeat is not another one
    await client.sync()
    await client.send({"type": "subscribe", "prefix": "p10"})
    assert "at most 10 subscriptions" in (await client.receive())["message"]
    await client.disconnect()


# --- Ping and heartbeat -----------------------------------------------------------------------------------
async def test_ping_is_answered_and_heartbeat_is_not(user):
    [provisioned] = await provision(user)
    client = await online(provisioned)
    await client.send({"type": "ping"})
    assert await client.receive() == {"type": "pong"}
    await client.send({"type": "ping", "id": 9})
    assert await client.receive() == {"type": "pong", "id": 9}
    await client.send({"type": "heartbeat"})
    assert await client.nothing()
    await client.disconnect()


# --- Requests from the cloud ------------------------------------------------------------------------------
async def test_function_call_round_trip(user):
    [provisioned] = await provision(user)
    client = await online(provisioned, functions=["led"])
    device = await row(provisioned.device.id)

    call = in_thread(calls.device_function_call, device=device, function="led", argument="on")
    frame = await client.receive()
    assert set(frame) == {"type", "id", "function", "arg"}
    assert (frame["type"], frame["function"], frame["arg"]) == ("call", "led", "on")
    await client.send({"type": "result", "id": frame["id"], "return_value": 1})
    assert await call == 1

    call = in_thread(calls.device_function_call, device=device, function="led", argument="")
    frame = await client.receive()
    await client.send({"type": "result", "id": frame["id"], "return_value": "yes"})
    with pytest.raises(ApplicationError, match="integer return_value"):
        await call
    await client.disconnect()


async def test_variable_read_round_trip(user):
    [provisioned] = await provision(user)
    client = await online(provisioned, variables={"temp": "double"})
    device = await row(provisioned.device.id)
    read = in_thread(calls.device_variable_get, device=device, variable="temp")
    frame = await client.receive()
    assert {k: v for k, v in frame.items() if k != "id"} == {"type": "get", "variable": "temp"}
    await client.send({"type": "result", "id": frame["id"], "result": 21.5})
    assert await read == 21.5
    await client.disconnect()


async def test_cloud_ping_and_signal(user):
    [provisioned] = await provision(user)
    client = await online(provisioned)
    device = await row(provisioned.device.id)

    ping = in_thread(calls.device_ping, device=device)
    frame = await client.receive()
    assert frame["type"] == "ping"
    await client.send({"type": "pong", "id": frame["id"]})
    assert await ping is True

    await in_thread(calls.device_signal, device=device, on=True)
    assert await client.receive() == {"type": "signal", "on": True}
    await in_thread(calls.device_signal, device=device, on=False)
    assert await client.receive() == {"type": "signal", "on": False}
    await client.disconnect()


async def test_unknown_function_or_variable_and_long_arguments_never_reach_the_device(user):
    [provisioned] = await provision(user)
    client = await online(provisioned, functions=["led"], variables={"temp": "int"})
    device = await row(provisioned.device.id)
    with pytest.raises(NotFound, match="Function nope not found"):
        await in_thread(calls.device_function_call, device=device, function="nope", argument="")
    with pytest.raises(NotFound, match="Variable nope not found"):
        await in_thread(calls.device_variable_get, device=device, variable="nope")
    with pytest.raises(ApplicationError, match="at most 1024 bytes") as refused:
        await in_thread(calls.device_function_call, device=device, function="led", argument="é" * 513)
    assert refused.value.field == "arg"
    assert await client.nothing()

    call = in_thread(calls.device_function_call, device=device, function="led", argument="x" * 1024)
    frame = await client.receive()
    await client.send({"type": "result", "id": frame["id"], "return_value": 0})
    assert await call == 0
    await client.disconnect()


async def test_requests_to_an_offline_device(user):
    [provisioned] = await provision(user)
    client = await online(provisioned)
    await client.disconnect()
    device = await row(provisioned.device.id)
    assert device.online is False
    with pytest.raises(calls.DeviceOffline) as offline:
        await in_thread(calls.device_function_call, device=device, function="led", argument="")
    assert offline.value.status_code == 404
    with pytest.raises(calls.DeviceOffline):
        await in_thread(calls.device_variable_get, device=device, variable="temp")
    with pytest.raises(calls.DeviceOffline):
        await in_thread(calls.device_signal, device=device, on=True)
    assert await in_thread(calls.device_ping, device=device) is False


async def test_a_silent_device_times_out(user, settings, monkeypatch):
    settings.QUANTA_DEVICE_CALL_TIMEOUT_SECONDS = 0.2
    monkeypatch.setattr(calls, "PING_TIMEOUT_SECONDS", 0.2)
    [provisioned] = await provision(user)
    client = await online(provisioned)
    device = await row(provisioned.device.id)

    call = in_thread(calls.device_function_call, device=device, function="led", argument="")
    assert (await client.receive())["type"] == "call"
    with pytest.raises(calls.DeviceTimeout) as timeout:
        await call
    assert timeout.value.status_code == 408

    ping = in_thread(calls.device_ping, device=device)
    assert (await client.receive())["type"] == "ping"
    assert await ping is False
    await client.disconnect()


async def test_requests_a_device_never_answered_are_forgotten(user, settings, monkeypatch):
    settings.QUANTA_DEVICE_CALL_TIMEOUT_SECONDS = 0.1
    monkeypatch.setattr(calls, "PING_TIMEOUT_SECONDS", 0.1)
    [provisioned] = await provision(user)
    client = await online(provisioned)
    device = await row(provisioned.device.id)
    consumer = runtime.connections[provisioned.device.id]
    ignored = [
        in_thread(calls.device_function_call, device=device, function="led", argument="") for _ in range(3)
    ]
    for _ in ignored:
        await client.receive()
    assert len(consumer.pending) == 3
    for call in ignored:
        with pytest.raises(calls.DeviceTimeout):
            await call
    await asyncio.sleep(0.25)  # past twice the longest timeout: nobody waits for those answers

    call = in_thread(calls.device_function_call, device=device, function="led", argument="")
    frame = await client.receive()
    assert list(consumer.pending) == [frame["id"]]
    await client.send({"type": "result", "id": frame["id"], "return_value": 5})
    assert await call == 5
    assert consumer.pending == {}
    await client.disconnect()


async def test_a_device_disconnecting_mid_request_answers_offline(user):
    [provisioned] = await provision(user)
    client = await online(provisioned)
    device = await row(provisioned.device.id)
    read = in_thread(calls.device_variable_get, device=device, variable="temp")
    assert (await client.receive())["type"] == "get"
    await client.disconnect()
    with pytest.raises(calls.DeviceOffline, match="disconnected"):
        await read


async def test_results_nobody_asked_for_are_errors(user):
    [provisioned] = await provision(user)
    client = await online(provisioned)
    for frame in (
        {"type": "result", "id": "nope", "return_value": 1},
        {"type": "result"},
        {"type": "pong", "id": "x"},
    ):
        await client.send(frame)
        reply = await client.receive()
        assert reply["type"] == "error"
        assert "No request is waiting" in reply["message"]
    await client.disconnect()


async def test_a_device_cannot_answer_another_devices_request(user):
    target, intruder = await provision(user, count=2)
    a, b = await online(target), await online(intruder)
    device = await row(target.device.id)
    call = in_thread(calls.device_function_call, device=device, function="led", argument="on")
    frame = await a.receive()

    await b.send({"type": "result", "id": frame["id"], "return_value": 666})
    reply = await b.receive()
    assert (reply["type"], reply["id"]) == ("error", frame["id"])
    assert not call.done()

    await a.send({"type": "result", "id": frame["id"], "return_value": 1})
    assert await call == 1
    await a.disconnect()
    await b.disconnect()


# --- One connection per device ---------------------------------------------------------------------------
async def test_a_second_connection_replaces_the_first(user):
    [provisioned] = await provision(user)
    status = await subscribe_owner(user.pk)
    first = await online(provisioned)
    assert [e.data for e in await next_events(status)] == ["online"]

    second = DeviceClient.of(provisioned, ip="198.51.100.20")
    welcome = await second.handshake()
    assert await first.closed() == 4409
    await first.disconnect()
    assert [e.data for e in await next_events(status)] == ["online"]
    assert await no_events(status, 0.2)  # the replaced connection's end is no "offline"

    device = await row(provisioned.device.id)
    assert device.online is True
    assert device.session_id == welcome["session_id"]
    assert device.last_ip_address == "198.51.100.20"
    assert runtime.connections[provisioned.device.id] is not None

    # Requests now go to the second connection.
    call = in_thread(calls.device_function_call, device=device, function="led", argument="")
    frame = await second.receive()
    await second.send({"type": "result", "id": frame["id"], "return_value": 2})
    assert await call == 2

    await second.disconnect()
    assert [e.data for e in await next_events(status)] == ["offline"]
    assert (await row(provisioned.device.id)).online is False
    assert provisioned.device.id not in runtime.connections


# --- Liveness ---------------------------------------------------------------------------------------------
async def test_a_silent_device_is_closed_after_two_heartbeats_and_shows_offline(user, settings):
    settings.QUANTA_DEVICE_HEARTBEAT_SECONDS = 0.2
    settings.QUANTA_GATEWAY_FLUSH_SECONDS = 0.05
    silent_device, chatty_device = await provision(user, count=2)
    status = await subscribe_owner(user.pk)
    silent = await online(silent_device)
    assert silent.welcome["heartbeat_s"] == 0.2
    chatty = await online(chatty_device)
    await next_events(status, 2)

    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started < 0.7:
        await chatty.send({"type": "heartbeat"})
        await asyncio.sleep(0.1)
    assert await silent.closed(timeout=1) == 4410
    assert loop.time() - started >= 0.4
    await silent.disconnect()
    [event] = await next_events(status)
    assert (event.coreid, event.data) == (silent_device.device.id, "offline")
    assert (await row(silent_device.device.id)).online is False

    await chatty.sync()  # kept alive by its heartbeats
    assert (await row(chatty_device.device.id)).online is True
    await chatty.disconnect()


async def test_last_heard_is_written_at_most_once_per_resolution(user, settings):
    [provisioned] = await provision(user)
    client = await online(provisioned)
    at_handshake = (await row(provisioned.device.id)).last_heard

    for _ in range(3):
        await client.sync()
    assert provisioned.device.id not in runtime.pending_last_heard  # heard at the handshake
    await runtime.flush()
    assert (await row(provisioned.device.id)).last_heard == at_handshake

    settings.QUANTA_LAST_HEARD_RESOLUTION_SECONDS = 0.1
    await asyncio.sleep(0.15)
    await client.sync()
    assert runtime.pending_last_heard == {provisioned.device.id}
    last_heard_at = runtime.connections[provisioned.device.id].last_heard_at
    await client.sync()  # within the resolution: not noted again
    assert runtime.connections[provisioned.device.id].last_heard_at == last_heard_at
    await runtime.flush()
    assert runtime.pending_last_heard == set()
    assert (await row(provisioned.device.id)).last_heard > at_handshake
    await client.disconnect()


async def test_bytes_in_and_out_are_metered_per_device_and_day(user):
    [provisioned] = await provision(user)
    client = DeviceClient.of(provisioned)
    challenge = await client.connect()
    hello = client.hello_frame()
    welcome = await client.handshake()
    await client.send({"type": "ping", "id": 1})
    pong = await client.receive()

    await runtime.flush()
    usage = await database_sync_to_async(DataUsage.objects.get)(device_id=provisioned.device.id)
    assert usage.day == timezone.now().date()
    # Everything the device sent and was sent on this session, the handshake included.
    assert usage.bytes_in == len(json.dumps(hello).encode()) + len(json.dumps({"type": "ping", "id": 1}))
    assert usage.bytes_out == wire(challenge) + wire(welcome) + wire(pong)

    await client.send({"type": "heartbeat"})
    await client.sync()
    await runtime.flush()
    again = await database_sync_to_async(DataUsage.objects.get)(device_id=provisioned.device.id)
    assert again.bytes_in == usage.bytes_in + len(json.dumps({"type": "heartbeat"})) + len(
        json.dumps({"type": "ping", "id": "sync"})
    )
    assert again.bytes_out == usage.bytes_out + wire({"type": "pong", "id": "sync"})
    await client.disconnect()


# --- Crashed gateway processes ----------------------------------------------------------------------------
async def test_the_sweep_task_takes_devices_of_dead_processes_offline(user):
    dead_device, live_device, connected_device = await provision(user, count=3)
    status = await subscribe_owner(user.pk)
    connected = await online(connected_device)
    assert [e.data for e in await next_events(status)] == ["online"]

    def arrange() -> None:
        now = timezone.now()
        GatewayProcess.objects.create(
            id="dead:1", hostname="dead", pid=1, heartbeat_at=now - timedelta(hours=1)
        )
        GatewayProcess.objects.create(id="live:2", hostname="live", pid=2, heartbeat_at=now)
        Device.objects.filter(pk=dead_device.device.id).update(
            online=True, gateway_process="dead:1", gateway_channel="x"
        )
        Device.objects.filter(pk=live_device.device.id).update(
            online=True, gateway_process="live:2", gateway_channel="y"
        )

    await database_sync_to_async(arrange)()
    assert await database_sync_to_async(sweep_stale_sessions)() == 1
    [event] = await next_events(status)
    assert (event.name, event.data, event.coreid) == ("spark/status", "offline", dead_device.device.id)

    assert (await row(dead_device.device.id)).online is False
    assert (await row(live_device.device.id)).online is True
    assert (await row(connected_device.device.id)).online is True
    assert not await database_sync_to_async(GatewayProcess.objects.filter(id="dead:1").exists)()
    await connected.disconnect()


# --- Ownership changes while connected --------------------------------------------------------------------
async def wait_for_owner(device_id: str, owner_id: int | None, timeout: float = 2) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while runtime.connections[device_id].owner_id != owner_id:
        assert loop.time() < deadline, f"the connection's owner did not become {owner_id!r}"
        await asyncio.sleep(0.01)


async def test_claiming_and_unclaiming_a_connected_device_reroutes_its_events(user, other_user):
    [provisioned] = await provision(None)
    [sibling] = await provision(user)
    device_id = provisioned.device.id
    client = await online(provisioned)
    await client.send({"type": "subscribe", "prefix": "temp"})
    await client.sync()
    mine = await subscribe_owner(user.pk, prefix="temp")
    sibling_client = await online(sibling)

    await database_sync_to_async(services.device_claim)(user=user, device_id=device_id)
    await wait_for_owner(device_id, user.pk)
    await client.send({"type": "publish", "name": "temp", "data": "claimed", "id": 1})
    # Its own subscription follows the owner; the echo may overtake the ack.
    frames = sorted([await client.receive(), await client.receive()], key=lambda frame: frame["type"])
    assert frames[0] == {"type": "ack", "id": 1}
    assert (frames[1]["type"], frames[1]["data"]) == ("event", "claimed")
    [event] = await next_events(mine)
    assert (event.data, event.owner_id) == ("claimed", user.pk)
    await sibling_client.send({"type": "publish", "name": "temp", "data": "from a sibling", "id": 2})
    assert await sibling_client.receive() == {"type": "ack", "id": 2}
    assert (await client.receive())["data"] == "from a sibling"
    await next_events(mine)

    device = await row(device_id)
    await database_sync_to_async(services.device_unclaim)(user=user, device=device)
    await wait_for_owner(device_id, None)
    await client.send({"type": "publish", "name": "temp", "data": "not yours any more", "id": 3})
    assert await client.receive() == {"type": "ack", "id": 3}
    assert await no_events(mine)
    await sibling_client.send({"type": "publish", "name": "temp", "data": "private", "id": 4})
    assert await sibling_client.receive() == {"type": "ack", "id": 4}
    await next_events(mine)
    assert await client.nothing()  # the former owner's events no longer reach it
    await client.disconnect()
    await sibling_client.disconnect()
