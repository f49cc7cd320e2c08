"""The fleet simulator: key files, device behaviour, and three devices against a real gateway."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from console.platforms import PLATFORMS_BY_SLUG
from devices import gateway, simulator
from devices.calls import device_function_call, device_variable_get
from devices.models import Device
from devices.services import devices_provision
from devices.simulator import (
    DeviceKey,
    FleetStats,
    KeyFileError,
    SimulatedDevice,
    device_key_from_entry,
    load_keys,
)
from events.hub import Subscription, hub
from events.ratelimit import TokenBucket

KEY = base64.b64encode(bytes(range(32))).decode()
DEVICE_A = "0123456789abcdef01234567"
DEVICE_B = "fedcba9876543210fedcba98"


def _line(**fields) -> str:
    entry = {"device_id": DEVICE_A, "private_key": KEY, "platform_id": 13, **fields}
    return json.dumps({key: value for key, value in entry.items() if value is not ...})


def _write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "keys.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return path


# --- load_keys ------------------------------------------------------------------------------------


def test_load_keys_reads_every_device(tmp_path):
    path = _write(
        tmp_path,
        _line(serial_number="B40123", iccid="8901234567890123456"),
        "",
        _line(device_id=DEVICE_B.upper(), platform_id=12, iccid=None, product_id=94, product_version=3),
    )
    first, second = load_keys(path)
    assert first == DeviceKey(
        device_id=DEVICE_A,
        private_key=bytes(range(32)),
        platform_id=13,
        serial_number="B40123",
        iccid="8901234567890123456",
    )
    assert second.device_id == DEVICE_B  # normalized to lowercase
    assert (second.iccid, second.product_id, second.product_version) == ("", 94, 3)


def test_load_keys_names_the_line_that_is_not_json(tmp_path):
    path = _write(tmp_path, _line(), '{"device_id": "0123', _line(device_id=DEVICE_B))
    with pytest.raises(KeyFileError, match=r"keys\.jsonl:2: not valid JSON"):
        load_keys(path)


def test_load_keys_names_missing_fields(tmp_path):
    path = _write(tmp_path, json.dumps({"device_id": DEVICE_A}))
    with pytest.raises(KeyFileError, match=r"keys\.jsonl:1: missing private_key, platform_id$"):
        load_keys(path)
    with pytest.raises(KeyFileError, match=r":1: expected a JSON object"):
        load_keys(_write(tmp_path, "[1, 2]"))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"private_key": base64.b64encode(b"x" * 16).decode()},
            "private_key must be the base64 of a 32-byte Ed25519 private key; it has 16 bytes",
        ),
        ({"private_key": "not base64!"}, "private_key is not valid base64"),
        ({"device_id": "e00fce68"}, "device_id must be 24 hex characters"),
        ({"platform_id": "13"}, "platform_id must be a non-negative integer"),
        ({"product_version": -1}, "product_version must be a non-negative integer"),
    ],
)
def test_load_keys_rejects_bad_values(tmp_path, fields, message):
    path = _write(tmp_path, _line(device_id=DEVICE_B), _line(**fields))
    with pytest.raises(KeyFileError, match=rf"keys\.jsonl:2: {message}"):
        load_keys(path)


def test_load_keys_rejects_duplicates_missing_and_empty_files(tmp_path):
    with pytest.raises(KeyFileError, match=rf":3: device {DEVICE_A} is already on line 1"):
        load_keys(_write(tmp_path, _line(), _line(device_id=DEVICE_B), _line()))
    with pytest.raises(KeyFileError, match="no such key file"):
        load_keys(tmp_path / "missing.jsonl")
    with pytest.raises(KeyFileError, match="lists no devices"):
        load_keys(_write(tmp_path, "", "  "))


@pytest.mark.django_db
def test_provisioned_key_file_entries_load():
    [item] = devices_provision(platform=PLATFORMS_BY_SLUG["boron"], count=1)
    key = device_key_from_entry(json.loads(json.dumps(item.key_file_entry())))
    assert (key.device_id, key.private_key, key.platform_id) == (item.device.id, item.keys.private_key, 13)
    assert key.iccid == item.device.iccid


# --- One device's behaviour ------------------------------------------------------------------------


def _device(**options) -> SimulatedDevice:
    key = DeviceKey(device_id=DEVICE_A, private_key=bytes(32), platform_id=13)
    return SimulatedDevice(key, simulator.DEFAULT_URL, rng=random.Random(7), **options)


def test_the_simulator_agrees_with_the_gateway():
    assert simulator.CLOSE_UNAUTHORIZED == gateway.CLOSE_UNAUTHORIZED
    assert simulator.CLOSE_REPLACED == gateway.CLOSE_REPLACED
    assert set(simulator.VARIABLES.values()) <= gateway.VARIABLE_TYPES
    assert simulator.MAX_FRAME_BYTES == settings.QUANTA_DEVICE_MAX_FRAME_BYTES
    assert simulator.PUBLISH_BURST <= settings.QUANTA_PUBLISH_BURST
    assert simulator.PUBLISH_REFILL_PER_SECOND < settings.QUANTA_PUBLISH_RATE_PER_SECOND


def test_functions_and_variables():
    device = _device()
    assert device.call("led", "on") == 1
    assert device.led
    assert device.call("led", "OFF") == 0
    assert not device.led
    assert device.call("led", "blink") == -1
    assert device.call("setInterval", "2.5") == 2
    assert device.publish_interval == 2.5
    assert device.call("setInterval", "0") == -1
    assert device.call("setInterval", "soon") == -1
    assert device.call("reboot", "") == 1
    assert device.call("selfDestruct", "now") == -1
    python_types = {"double": float, "int32": int, "string": str}
    for name, kind in simulator.VARIABLES.items():
        assert isinstance(device.read(name), python_types[kind]), name
    assert device.read("missing") is None
    with pytest.raises(ValueError, match="publish_rate"):
        _device(publish_rate=2)


class _RecordingSocket:
    def __init__(self) -> None:
        self.frames: list[dict] = []

    async def send(self, text: str) -> None:
        self.frames.append(json.loads(text))


async def test_publishing_never_exceeds_the_clouds_limit(monkeypatch):
    """Even when every publish is a burst, the cloud's token bucket accepts every event."""
    monkeypatch.setattr(simulator, "BURST_PROBABILITY", 1.0)
    device, ws = _device(publish_rate=1.0), _RecordingSocket()
    cloud = TokenBucket(
        rate=settings.QUANTA_PUBLISH_RATE_PER_SECOND, capacity=settings.QUANTA_PUBLISH_BURST, now=0.0
    )
    accepted = 0
    for tick in range(1, 1201):  # every 50 ms for a minute
        now = tick * 0.05
        before = len(ws.frames)
        await device._publish_due(ws, now)  # the scheduling, driven by hand
        for frame in ws.frames[before:]:
            assert cloud.take(now), f"the cloud would refuse {frame} at {now:.2f} s"
            accepted += 1
    assert 50 <= accepted <= 64  # about 0.9 a second, after the first burst of 4
    assert {frame["name"] for frame in ws.frames} == {"env", "status"}
    assert [frame["id"] for frame in ws.frames] == list(range(1, accepted + 1))
    env = json.loads(next(frame["data"] for frame in ws.frames if frame["name"] == "env"))
    assert set(env) == {"t", "h"}


def test_status_line_is_compact():
    stats = FleetStats(devices=10, connected=9, handshakes=12, events=500, calls=3)
    line = stats.line(FleetStats(events=300), elapsed=10)
    assert line == "connected 9/10  handshakes 12  events 500 (20/s)  calls answered 3  errors 0"
    stats.error("refused (4401)")
    assert stats.line().endswith("errors 1  last error: refused (4401)")


# --- Three devices against the gateway ---------------------------------------------------------------


@pytest.fixture
async def gateway_url(transactional_db) -> AsyncIterator[str]:
    """The whole ASGI application served in this test's event loop, so the channel layer and the
    event hub are shared with the test (uvicorn: daphne cannot run inside an asyncio loop)."""
    import uvicorn

    from console.asgi import application

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(application, lifespan="off", log_level="warning", ws="websockets-sansio")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:
            await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}/device/v1"
    finally:
        server.should_exit = True
        await serving
        sock.close()


@pytest.fixture
def fleet_keys(user) -> list[DeviceKey]:
    provisioned = devices_provision(platform=PLATFORMS_BY_SLUG["boron"], count=3, owner=user)
    return [device_key_from_entry(item.key_file_entry()) for item in provisioned]


@sync_to_async
def _online_count(user) -> int:
    return Device.objects.filter(owner=user, online=True).count()


async def _until(condition: Callable[[], Awaitable[bool]], message: str, timeout: float = 8.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await condition():
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(message)


@pytest.mark.django_db(transaction=True)
async def test_three_devices_come_online_publish_and_answer(gateway_url, fleet_keys, user):
    stop = asyncio.Event()
    stats = FleetStats(devices=3)
    devices = [
        SimulatedDevice(key, gateway_url, rng=random.Random(index), publish_rate=1.0, stats=stats)
        for index, key in enumerate(fleet_keys)
    ]
    published = hub.subscribe(Subscription(user_id=user.pk))
    tasks = [asyncio.create_task(device.run(stop)) for device in devices]
    call = sync_to_async(device_function_call, thread_sensitive=False)
    read = sync_to_async(device_variable_get, thread_sensitive=False)

    async def online(expected: int) -> bool:
        return await _online_count(user) == expected

    async def rebooted_and_back() -> bool:
        return stats.handshakes == 4 and stats.connected == 3

    try:
        await _until(lambda: online(3), "the devices did not come online")
        assert stats.handshakes == 3
        assert stats.connected == 3

        publishers: set[str] = set()
        async with asyncio.timeout(8):
            while publishers != {key.device_id for key in fleet_keys}:
                events, _dropped = await published.next_batch()
                publishers |= {event.coreid for event in events if event.name in {"env", "status"}}

        device = await Device.objects.aget(pk=fleet_keys[0].device_id)
        assert device.functions == ["led", "reboot", "setInterval"]
        assert await call(device=device, function="led", argument="on") == 1
        assert devices[0].led is True
        assert await call(device=device, function="led", argument="blink") == -1
        assert await call(device=device, function="setInterval", argument="5") == 5
        assert isinstance(await read(device=device, variable="temp"), float)
        assert await read(device=device, variable="firmware") == devices[0].read("firmware")

        # A reboot: the device answers, drops its connection and comes back with a fresh uptime.
        rebooted = await Device.objects.aget(pk=fleet_keys[1].device_id)
        assert await call(device=rebooted, function="reboot", argument="") == 1
        await _until(rebooted_and_back, "the device did not come back after its reboot", timeout=10)
        assert devices[1].read("uptime") <= 2

        # A second session of the same device replaces the first, which stops (close 4409).
        twin = SimulatedDevice(fleet_keys[2], gateway_url, rng=random.Random(9), stats=stats)
        tasks.append(asyncio.create_task(twin.run(stop)))
        async with asyncio.timeout(5):
            await tasks[2]
        assert stats.stopped == 1
        assert stats.errors == 0, stats.last_error
        assert stats.rate_limited == 0
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        hub.unsubscribe(published)
    await _until(lambda: online(0), "the devices did not go offline")
