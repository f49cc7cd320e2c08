"""Firmware updates in the fleet simulator, against a small fake cloud that speaks the gateway's
handshake and the update frames (docs/device-protocol.md, "Firmware updates (OTA)")."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from websockets.asyncio.server import ServerConnection, serve

from devices import simulator
from devices.keys import key_pair_generate, signature_valid
from devices.simulator import OTA_HEADER, DeviceKey, FleetStats, SimulatedDevice, ota_offer

PAIR = key_pair_generate()
KEY = DeviceKey(device_id="0123456789abcdef01234567", private_key=PAIR.private_key, platform_id=13)
CHUNK = 1024
WINDOW = 8  # chunks the cloud keeps in flight beyond the last acknowledged offset
IMAGE = random.Random(0).randbytes(10 * CHUNK + 100)  # 11 chunks, the last one short
OTA_ID = "0123456789abcdef" * 2
OTHER_ID = "fedcba9876543210" * 2
TIMEOUT = 3.0


# --- A fake cloud ---------------------------------------------------------------------------------


class Session:
    """One connection of the device to the fake cloud, past the welcome."""

    def __init__(self, ws: ServerConnection, hello: dict) -> None:
        self.ws = ws
        self.hello = hello

    async def send(self, frame: dict) -> None:
        await self.ws.send(json.dumps(frame))

    async def chunk(
        self, offset: int, data: bytes, *, ota_id: str = OTA_ID, length: int | None = None
    ) -> None:
        header = OTA_HEADER.pack(bytes.fromhex(ota_id)[:8], offset, len(data) if length is None else length)
        await self.ws.send(header + data)

    async def next(self, *kinds: str) -> dict:
        """The next frame of one of ``kinds``, skipping the others (publishes, heartbeats)."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                frame = json.loads(await self.ws.recv())
                if frame["type"] in kinds:
                    return frame

    async def ping(self) -> None:
        """A round trip: the device has handled every frame sent before this one."""
        await self.send({"type": "ping", "id": "sync"})
        assert await self.next("pong", "ota_ack", "ota_ready", "ota_done") == {"type": "pong", "id": "sync"}


class FakeCloud:
    """The gateway's side of the handshake (challenge, signed hello, welcome), then each session is
    handed to the test, which plays the cloud's part of the update."""

    def __init__(self) -> None:
        self.url = ""
        self.heartbeat_s: float = 30
        self.sessions: asyncio.Queue[Session] = asyncio.Queue()

    async def handler(self, ws: ServerConnection) -> None:
        nonce = os.urandom(32)
        challenge = {"type": "challenge", "nonce": base64.b64encode(nonce).decode(), "protocol": 1}
        await ws.send(json.dumps(challenge))
        hello = json.loads(await ws.recv())
        if hello.get("type") != "hello" or not signature_valid(PAIR.public_key, nonce, hello["signature"]):
            await ws.close(4401)
            return
        await ws.send(json.dumps({"type": "welcome", "session_id": "s1", "heartbeat_s": self.heartbeat_s}))
        await self.sessions.put(Session(ws, hello))
        await ws.wait_closed()

    async def session(self) -> Session:
        async with asyncio.timeout(TIMEOUT):
            return await self.sessions.get()


@pytest.fixture
async def cloud() -> AsyncIterator[FakeCloud]:
    fake = FakeCloud()
    async with serve(fake.handler, "127.0.0.1", 0, compression=None, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        fake.url = f"ws://127.0.0.1:{port}/device/v1"
        yield fake


@pytest.fixture
async def start_device(
    cloud: FakeCloud, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[..., SimulatedDevice]]:
    monkeypatch.setattr(simulator, "RECONNECT_BASE_SECONDS", 0.02)  # come back at once after a drop
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    def start(**options: Any) -> SimulatedDevice:
        device = SimulatedDevice(
            KEY,
            cloud.url,
            rng=random.Random(3),
            publish_rate=0,
            product_version=3,
            ota_reboot_seconds=(0.01, 0.02),
            **options,
        )
        tasks.append(asyncio.create_task(device.run(stop)))
        return device

    yield start
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def begin(image: bytes = IMAGE, *, ota_id: str = OTA_ID, sha256: str | None = None) -> dict:
    return {
        "type": "ota_begin",
        "ota_id": ota_id,
        "version": 4,
        "size": len(image),
        "sha256": sha256 or hashlib.sha256(image).hexdigest(),
        "chunk_size": CHUNK,
    }


async def send_image(
    session: Session, image: bytes = IMAGE, *, ota_id: str = OTA_ID, start: int = 0
) -> tuple[list[int], dict]:
    """Send ``image`` from ``start`` as the cloud does, at most ``WINDOW`` chunks beyond the last
    acknowledged offset; returns the offsets the device acknowledged and its ``ota_done``."""
    acks: list[int] = []
    acked = sent = start
    while True:
        while sent < len(image) and sent < acked + WINDOW * CHUNK:
            await session.chunk(sent, image[sent : sent + CHUNK], ota_id=ota_id)
            sent += CHUNK
        frame = await session.next("ota_ack", "ota_done")
        if frame["type"] == "ota_done":
            return acks, frame
        assert frame["ota_id"] == ota_id
        acked = frame["offset"]
        acks.append(acked)


def ready(offset: int, ota_id: str = OTA_ID) -> dict:
    return {"type": "ota_ready", "ota_id": ota_id, "offset": offset}


def ack(offset: int, ota_id: str = OTA_ID) -> dict:
    return {"type": "ota_ack", "ota_id": ota_id, "offset": offset}


MISMATCH = {"type": "ota_done", "ota_id": OTA_ID, "ok": False, "error": "sha256 mismatch"}


# --- Updates --------------------------------------------------------------------------------------


async def test_an_update_is_acknowledged_verified_and_restarted_into(cloud, start_device):
    device = start_device()
    first = await cloud.session()
    assert first.hello["product_version"] == 3

    await first.send(begin())
    assert await first.next("ota_ready") == ready(0)
    acks, done = await send_image(first)
    assert acks == [4 * CHUNK, 8 * CHUNK, len(IMAGE)]  # every 4 chunks, and after the last
    assert done == {"type": "ota_done", "ota_id": OTA_ID, "ok": True}

    # The restart: a normal close, then a new session whose hello reports the new version.
    async with asyncio.timeout(TIMEOUT):
        await first.ws.wait_closed()
    assert first.ws.close_code == 1000
    second = await cloud.session()
    assert second.hello["product_version"] == 4
    assert device.read("firmware").startswith(f"{simulator.FIRMWARE_NAME} v4 ")
    assert device.read("uptime") == 0
    assert (device.stats.ota_applied, device.stats.ota_failed, device.stats.errors) == (1, 0, 0)
    assert device.ota is None


async def test_a_corrupt_image_is_refused_and_the_old_version_kept(cloud, start_device):
    device = start_device()
    session = await cloud.session()
    await session.send(begin(sha256=hashlib.sha256(b"another image").hexdigest()))
    assert await session.next("ota_ready") == ready(0)
    _acks, done = await send_image(session)
    assert done == MISMATCH

    await session.ping()  # still connected: no restart
    assert device.product_version == 3
    assert (device.stats.ota_applied, device.stats.ota_failed) == (0, 1)
    await session.send(begin())  # the bytes were dropped: a retry starts over
    assert await session.next("ota_ready") == ready(0)
    assert cloud.sessions.empty()


async def test_a_dropped_transfer_resumes_from_what_the_device_holds(cloud, start_device):
    cloud.heartbeat_s = 0.05
    device = start_device()
    first = await cloud.session()
    await first.send(begin())
    assert await first.next("ota_ready") == ready(0)
    for index in range(6):
        await first.chunk(index * CHUNK, IMAGE[index * CHUNK : (index + 1) * CHUNK])
    assert await first.next("ota_ack") == ack(4 * CHUNK)
    await first.next("heartbeat")  # the session's timers keep running during a transfer
    await first.ping()
    first.ws.transport.abort()  # the link drops without a close frame

    second = await cloud.session()
    assert second.hello["product_version"] == 3
    await second.send(begin())
    assert await second.next("ota_ready") == ready(6 * CHUNK)  # more than it had acknowledged
    acks, done = await send_image(second, start=6 * CHUNK)
    assert acks == [10 * CHUNK, len(IMAGE)]
    assert done["ok"] is True

    third = await cloud.session()
    assert third.hello["product_version"] == 4
    assert (device.stats.disconnects, device.stats.ota_applied) == (1, 1)


async def test_another_update_replaces_the_partial_one(cloud, start_device):
    device = start_device()
    session = await cloud.session()
    await session.send(begin())
    assert await session.next("ota_ready") == ready(0)
    await session.chunk(0, IMAGE[:CHUNK])
    await session.ping()
    assert device.ota is not None
    assert device.ota.held == CHUNK

    await session.send(begin(ota_id=OTHER_ID))
    assert await session.next("ota_ready") == ready(0, OTHER_ID)
    await session.send(begin())  # the first one's bytes are gone
    assert await session.next("ota_ready") == ready(0)
    # The same id describing another image starts over too.
    await session.chunk(0, IMAGE[:CHUNK])
    await session.send(begin(IMAGE[:-1]))
    assert await session.next("ota_ready") == ready(0)


async def test_stray_chunks_are_ignored_and_answered_with_what_the_device_holds(cloud, start_device):
    start_device()
    session = await cloud.session()
    await session.chunk(0, IMAGE[:CHUNK])  # no update under way: nothing to acknowledge
    await session.ping()

    await session.send(begin())
    assert await session.next("ota_ready") == ready(0)
    await session.chunk(0, IMAGE[:CHUNK])
    await session.chunk(CHUNK, IMAGE[CHUNK : 2 * CHUNK])
    strays = [
        session.chunk(2 * CHUNK, IMAGE[2 * CHUNK : 3 * CHUNK], ota_id=OTHER_ID),  # another update
        session.chunk(5 * CHUNK, IMAGE[5 * CHUNK : 6 * CHUNK]),  # ahead
        session.chunk(0, IMAGE[:CHUNK]),  # a repeat
        session.chunk(2 * CHUNK, IMAGE[2 * CHUNK : 3 * CHUNK], length=CHUNK + 1),  # a lying header
        session.ws.send(b"\x00" * 5),  # shorter than a header
    ]
    for stray in strays:
        await stray
        assert await session.next("ota_ack") == ack(2 * CHUNK)

    acks, done = await send_image(session, start=2 * CHUNK)
    assert acks == [6 * CHUNK, 10 * CHUNK, len(IMAGE)]
    assert done["ok"] is True


async def test_with_a_fail_rate_of_1_every_update_fails_its_check(cloud, start_device):
    device = start_device(ota_fail_rate=1.0)
    session = await cloud.session()
    for attempt in range(3):
        ota_id = f"{attempt:032x}"
        await session.send(begin(ota_id=ota_id))
        assert await session.next("ota_ready") == ready(0, ota_id)
        _acks, done = await send_image(session, ota_id=ota_id)
        assert done == MISMATCH | {"ota_id": ota_id}
    await session.ping()
    assert device.product_version == 3
    assert (device.stats.ota_applied, device.stats.ota_failed) == (0, 3)
    assert device.stats.line().endswith("updates applied 0, failed 3")


async def test_an_update_the_device_cannot_take_is_refused(cloud, start_device):
    device = start_device()
    session = await cloud.session()
    await session.send(begin() | {"chunk_size": simulator.MAX_FRAME_BYTES})
    done = await session.next("ota_done")
    assert (done["ota_id"], done["ok"]) == (OTA_ID, False)
    assert "chunk_size" in done["error"]

    await session.send(begin(IMAGE[:100]))  # a chunk running past the announced size
    assert await session.next("ota_ready") == ready(0)
    await session.chunk(0, IMAGE[:200])
    assert await session.next("ota_ack", "ota_done") == {
        "type": "ota_done",
        "ota_id": OTA_ID,
        "ok": False,
        "error": "size mismatch",
    }
    assert device.ota is None
    assert device.stats.ota_failed == 2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ota_id": "0123"}, "ota_id must be 32 hex digits"),
        ({"ota_id": None}, "ota_id must be 32 hex digits"),
        ({"sha256": "ab" * 31}, "sha256 must be 64 hex digits"),
        ({"version": -1}, "version must be an integer from 0"),
        ({"version": True}, "version must be an integer"),
        ({"size": 0}, "size must be an integer from 1"),
        ({"size": 2**32}, "size must be an integer from 1 to 4294967295"),
        ({"chunk_size": 0}, "chunk_size must be an integer from 1"),
        ({"chunk_size": simulator.MAX_FRAME_BYTES - 15}, "chunk_size must be an integer from 1 to 65520"),
    ],
)
def test_ota_begin_fields_are_checked(fields, message):
    with pytest.raises(ValueError, match=message):
        ota_offer(begin() | fields)


def test_an_offer_is_read_in_lowercase():
    offer = ota_offer(begin(ota_id=OTA_ID.upper(), sha256="AB" * 32) | {"chunk_size": 65520})
    assert (offer.ota_id, offer.sha256, offer.held) == (OTA_ID, "ab" * 32, 0)
    assert offer.prefix == bytes.fromhex(OTA_ID)[:8]


def test_the_fail_rate_is_a_probability():
    with pytest.raises(ValueError, match="ota_fail_rate"):
        SimulatedDevice(KEY, simulator.DEFAULT_URL, rng=random.Random(1), ota_fail_rate=1.5)


# --- The fleet and the command --------------------------------------------------------------------


async def test_the_fleet_passes_its_fail_rate_to_every_device(cloud):
    lines: list[str] = []
    stop = asyncio.Event()
    fleet = asyncio.create_task(
        simulator.run_fleet(
            [KEY], cloud.url, rate=0, ota_fail_rate=1.0, seed=1, stop=stop, report=lines.append
        )
    )
    try:
        session = await cloud.session()
        await session.send(begin())
        assert await session.next("ota_ready") == ready(0)
        _acks, done = await send_image(session)
        assert done == MISMATCH
    finally:
        stop.set()
        stats = await fleet
    assert stats.ota_failed == 1
    assert "corrupting 100% of firmware updates" in lines[0]
    assert lines[-1].endswith("updates applied 0, failed 1")


def _key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.jsonl"
    entry = {"device_id": KEY.device_id, "private_key": PAIR.private_key_b64, "platform_id": 13}
    path.write_text(json.dumps(entry) + "\n")
    return path


def test_the_command_takes_a_fail_rate(tmp_path, monkeypatch):
    options: dict[str, Any] = {}

    async def run_fleet(keys: list[DeviceKey], url: str, **kwargs: Any) -> FleetStats:
        options.update(kwargs)
        return FleetStats()

    monkeypatch.setattr(simulator, "run_fleet", run_fleet)
    keys = _key_file(tmp_path)
    call_command("simulate_fleet", "--keys", str(keys), "--ota-fail-rate", "0.25", stdout=io.StringIO())
    assert options["ota_fail_rate"] == 0.25
    call_command("simulate_fleet", "--keys", str(keys), stdout=io.StringIO())
    assert options["ota_fail_rate"] == 0.0
    for wrong in ("1.5", "-0.1", "nan", "half"):
        with pytest.raises(CommandError, match="--ota-fail-rate: expected a number"):
            call_command("simulate_fleet", "--keys", str(keys), "--ota-fail-rate", wrong)
