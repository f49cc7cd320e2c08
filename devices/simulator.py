"""Simulated devices speaking the device protocol (docs/device-protocol.md), for demos and load tests.

A ``SimulatedDevice`` is one device: it connects to the gateway, signs the challenge with its
private key, publishes sensor readings, answers function calls, variable reads and pings, and
reconnects with backoff when its connection drops. ``run_fleet`` drives many of them from one
asyncio process: each device is exactly one task and one connection, and waits for its next frame,
publish or heartbeat with a single timeout, so thousands of devices cost no timers of their own.
Devices take firmware updates (OTA) as real ones do: they resume an interrupted transfer, check
the image's SHA-256, and restart into the new version.

This module uses ``websockets`` and ``cryptography`` only (no Django), so it also serves as a
reference client.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import logging
import math
import random
import re
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from devices.keys import sign

logger = logging.getLogger(__name__)

DEFAULT_URL = "ws://127.0.0.1:8000/device/v1"
DEFAULT_SYSTEM_VERSION = "6.2.1"
FIRMWARE_NAME = "env-monitor"

# Close codes the gateway sends (devices/gateway.py).
CLOSE_UNAUTHORIZED = 4401
CLOSE_REPLACED = 4409

FUNCTIONS = ("led", "reboot", "setInterval")
VARIABLES = {"temp": "double", "humidity": "double", "uptime": "int32", "firmware": "string"}
MAX_FRAME_BYTES = 64 * 1024
HANDSHAKE_TIMEOUT_SECONDS = 10.0
DEFAULT_HEARTBEAT_SECONDS = 30.0

# The cloud allows 1 publish per second on average with bursts of 4 (a token bucket). The device
# keeps its own bucket, refilled a little slower, so network jitter never gets it refused.
PUBLISH_REFILL_PER_SECOND = 0.9
PUBLISH_BURST = 4
MAX_PUBLISH_RATE = 1.0
BURST_PROBABILITY = 0.05
MIN_INTERVAL_SECONDS = 1.0
MAX_INTERVAL_SECONDS = 86_400.0

RECONNECT_BASE_SECONDS = 1.0
RECONNECT_MAX_SECONDS = 60.0
UNAUTHORIZED_RETRY_SECONDS = (60.0, 180.0)
INT32_MAX = 2**31 - 1
UINT32_MAX = 2**32 - 1

# Firmware updates (docs/device-protocol.md, "Firmware updates"): a binary chunk frame starts with
# the first 8 bytes of the ota_id, the chunk's offset and its length.
OTA_HEADER = struct.Struct(">8sII")
OTA_ACK_EVERY_CHUNKS = 4  # the cloud keeps 8 chunks in flight, so acking every 4 never stalls it
OTA_REBOOT_SECONDS = (1.0, 3.0)
SHA256_MISMATCH = "sha256 mismatch"

_DEVICE_ID = re.compile(r"^[0-9a-f]{24}$")
_OTA_ID = re.compile(r"^[0-9a-f]{32}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# --- Keys ------------------------------------------------------------------------------------------


class KeyFileError(ValueError):
    """A key file that cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class DeviceKey:
    """One line of a key file (``manage.py provision_devices --out``)."""

    device_id: str
    private_key: bytes  # Ed25519, 32 raw bytes
    platform_id: int
    serial_number: str = ""
    iccid: str = ""
    product_id: int | None = None
    product_version: int | None = None


def _optional_count(entry: dict, field: str) -> int | None:
    value = entry.get(field)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{field} must be a non-negative integer, not {value!r}")
    return value


def _optional_text(entry: dict, field: str) -> str:
    value = entry.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string, not {value!r}")
    return value


def device_key_from_entry(entry: Any) -> DeviceKey:
    """A ``DeviceKey`` from one decoded key-file line; ``ValueError`` says what is wrong."""
    if not isinstance(entry, dict):
        raise ValueError("expected a JSON object")
    missing = [field for field in ("device_id", "private_key", "platform_id") if entry.get(field) is None]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    device_id = entry["device_id"]
    if not isinstance(device_id, str) or not _DEVICE_ID.match(device_id.lower()):
        raise ValueError(f"device_id must be 24 hex characters, not {device_id!r}")
    encoded = entry["private_key"]
    try:
        private_key = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else b""
    except (binascii.Error, ValueError):
        raise ValueError("private_key is not valid base64") from None
    if len(private_key) != 32:
        raise ValueError(
            f"private_key must be the base64 of a 32-byte Ed25519 private key; it has {len(private_key)} bytes"
        )
    platform_id = _optional_count(entry, "platform_id")
    assert platform_id is not None
    return DeviceKey(
        device_id=device_id.lower(),
        private_key=private_key,
        platform_id=platform_id,
        serial_number=_optional_text(entry, "serial_number"),
        iccid=_optional_text(entry, "iccid"),
        product_id=_optional_count(entry, "product_id"),
        product_version=_optional_count(entry, "product_version"),
    )


def load_keys(path: str | Path) -> list[DeviceKey]:
    """The devices of a key file (JSON lines). ``KeyFileError`` names the line that is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise KeyFileError(f"{path}: cannot read the key file ({error})") from None
    keys: list[DeviceKey] = []
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as error:
            raise KeyFileError(f"{path}:{number}: not valid JSON ({error})") from None
        try:
            key = device_key_from_entry(entry)
        except ValueError as error:
            raise KeyFileError(f"{path}:{number}: {error}") from None
        if key.device_id in lines:
            raise KeyFileError(
                f"{path}:{number}: device {key.device_id} is already on line {lines[key.device_id]}"
            )
        lines[key.device_id] = number
        keys.append(key)
    if not keys:
        raise KeyFileError(f"{path}: the key file lists no devices")
    return keys


# --- Counters ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class FleetStats:
    """What a fleet has done so far; devices update it as they go."""

    devices: int = 0
    started: int = 0
    connected: int = 0
    handshakes: int = 0
    events: int = 0
    acked: int = 0
    rate_limited: int = 0
    calls: int = 0  # function calls, variable reads and pings answered
    disconnects: int = 0
    errors: int = 0
    stopped: int = 0  # devices that gave up (replaced by another session of the same device)
    ota_applied: int = 0  # firmware updates verified and restarted into
    ota_failed: int = 0  # firmware updates answered with ok: false
    last_error: str = ""

    def error(self, message: str) -> None:
        self.errors += 1
        self.last_error = message

    def snapshot(self) -> FleetStats:
        return replace(self)

    def line(self, previous: FleetStats | None = None, elapsed: float = 0.0) -> str:
        rate = ""
        if previous is not None and elapsed > 0:
            rate = f" ({(self.events - previous.events) / elapsed:.0f}/s)"
        parts = [
            f"connected {self.connected}/{self.devices}",
            f"handshakes {self.handshakes}",
            f"events {self.events}{rate}",
            f"calls answered {self.calls}",
            f"errors {self.errors}",
        ]
        if self.rate_limited:
            parts.append(f"rate-limited {self.rate_limited}")
        if self.stopped:
            parts.append(f"stopped {self.stopped}")
        if self.ota_applied or self.ota_failed:
            parts.append(f"updates applied {self.ota_applied}, failed {self.ota_failed}")
        if self.errors and (previous is None or self.errors != previous.errors):
            parts.append(f"last error: {self.last_error}")
        return "  ".join(parts)


# --- One device ---------------------------------------------------------------------------------------


class HandshakeFailed(Exception):
    pass


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake up as soon as ``stop`` is set (no extra task: the timeout wraps the wait)."""
    if seconds <= 0 or stop.is_set():
        return
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        pass


def _handshake_frame(raw: str | bytes, expected: str) -> dict:
    try:
        frame = json.loads(raw)
    except ValueError:
        frame = None
    if not isinstance(frame, dict) or frame.get("type") != expected:
        if isinstance(frame, dict) and frame.get("type") == "error":
            raise HandshakeFailed(f"the cloud refused the hello: {frame.get('message')}")
        raise HandshakeFailed(f"expected a {expected} frame, got {raw!r:.100}")
    return frame


def _dumps(frame: dict) -> str:
    return json.dumps(frame, separators=(",", ":"))


@dataclass(slots=True)
class OtaTransfer:
    """The one firmware update a device is receiving, kept across reconnects so it can resume.

    The image itself is not kept: the check needs only a running SHA-256 and the count of bytes
    received in order, so a fleet of thousands of devices stays small whatever the image's size.
    """

    ota_id: str
    version: int
    size: int
    sha256: str
    chunk_size: int
    held: int = 0  # bytes received contiguously from the start
    unacked: int = 0  # chunks taken since the last ota_ack
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)

    @property
    def prefix(self) -> bytes:
        return bytes.fromhex(self.ota_id)[:8]

    @property
    def image(self) -> tuple[str, int, int, str]:
        """What identifies the update: a resumed transfer must be of the very same image."""
        return (self.ota_id, self.version, self.size, self.sha256)


def _u32(frame: dict, name: str, minimum: int = 0, maximum: int = UINT32_MAX) -> int:
    value = frame.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        raise ValueError(f"bad ota_begin: {name} must be an integer from {minimum} to {maximum}")
    return value


def ota_offer(frame: dict) -> OtaTransfer:
    """The transfer an ``ota_begin`` frame offers; ``ValueError`` says why the device cannot take it."""
    ota_id, sha256 = frame.get("ota_id"), frame.get("sha256")
    if not isinstance(ota_id, str) or not _OTA_ID.match(ota_id.lower()):
        raise ValueError("bad ota_begin: ota_id must be 32 hex digits")
    if not isinstance(sha256, str) or not _SHA256.match(sha256.lower()):
        raise ValueError("bad ota_begin: sha256 must be 64 hex digits")
    return OtaTransfer(
        ota_id=ota_id.lower(),
        version=_u32(frame, "version"),
        size=_u32(frame, "size", minimum=1),
        sha256=sha256.lower(),
        # A bigger chunk would not fit in a frame this device accepts (it would close with 1009).
        chunk_size=_u32(frame, "chunk_size", minimum=1, maximum=MAX_FRAME_BYTES - OTA_HEADER.size),
    )


class SimulatedDevice:
    """One simulated device: an environment sensor with an LED.

    Functions ``led`` (``on``/``off`` → 1/0, anything else → -1), ``reboot`` (→ 1, then it
    disconnects and comes back a few seconds later) and ``setInterval`` (seconds between
    publishes → the new interval, or -1); variables ``temp`` and ``humidity`` (double), ``uptime``
    (int32) and ``firmware`` (string). It publishes ``env`` readings (``{"t":21.4,"h":48}``) and
    ``status`` (``ok`` / ``battery low``), now and then a quick burst of 2 to 4 events, never more
    than the cloud's limit allows. It takes firmware updates (``ota_begin``), and with probability
    ``ota_fail_rate`` corrupts one so that its SHA-256 check fails.
    """

    __slots__ = (
        "_rebooted",
        "_replaced",
        "battery",
        "booted_at",
        "churn_per_minute",
        "connection",
        "humidity",
        "key",
        "last_sent",
        "led",
        "next_id",
        "next_publish",
        "ota",
        "ota_fail_rate",
        "ota_reboot_seconds",
        "product_id",
        "product_version",
        "publish_interval",
        "rng",
        "signaling",
        "stats",
        "system_version",
        "temp",
        "temp_baseline",
        "tokens",
        "tokens_at",
        "url",
    )

    def __init__(
        self,
        key: DeviceKey,
        url: str,
        *,
        rng: random.Random,
        publish_rate: float = 0.2,
        product_id: int | None = None,
        product_version: int | None = None,
        system_version: str = DEFAULT_SYSTEM_VERSION,
        churn_per_minute: float = 0.0,
        ota_fail_rate: float = 0.0,
        ota_reboot_seconds: tuple[float, float] = OTA_REBOOT_SECONDS,
        stats: FleetStats | None = None,
    ) -> None:
        if not 0 <= publish_rate <= MAX_PUBLISH_RATE:
            raise ValueError(f"publish_rate is 0 to {MAX_PUBLISH_RATE} events per second")
        if churn_per_minute < 0:
            raise ValueError("churn_per_minute cannot be negative")
        if not 0 <= ota_fail_rate <= 1:
            raise ValueError("ota_fail_rate is a probability, from 0 to 1")
        if not 0 <= ota_reboot_seconds[0] <= ota_reboot_seconds[1]:
            raise ValueError("ota_reboot_seconds is a (shortest, longest) pair of seconds")
        self.key = key
        self.url = url
        self.rng = rng
        self.publish_interval = 1 / publish_rate if publish_rate > 0 else math.inf
        self.product_id = product_id if product_id is not None else key.product_id
        self.product_version = product_version if product_version is not None else key.product_version
        self.system_version = system_version
        self.churn_per_minute = churn_per_minute
        self.ota_fail_rate = ota_fail_rate
        self.ota_reboot_seconds = ota_reboot_seconds
        self.ota: OtaTransfer | None = None  # at most one partial update, kept across reconnects
        self.stats = stats if stats is not None else FleetStats(devices=1)
        self.led = False
        self.signaling = False
        self.temp_baseline = rng.uniform(17.0, 26.0)
        self.temp = round(self.temp_baseline + rng.uniform(-1, 1), 1)
        self.humidity = float(rng.randint(35, 60))
        self.battery = rng.uniform(30.0, 100.0)
        self.booted_at = time.monotonic()
        self.tokens = float(PUBLISH_BURST)
        self.tokens_at: float | None = None  # loop time of the last refill; None: full
        self.next_id = 1
        self.next_publish = math.inf
        self.last_sent = 0.0
        self.connection: ClientConnection | None = None  # while connected and past the handshake
        self._rebooted = False
        self._replaced = False

    @property
    def device_id(self) -> str:
        return self.key.device_id

    # --- the connection loop ------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected until ``stop`` is set (noticed at the device's next wake-up; cancel the
        task to stop at once) or another session of this device replaces it (close 4409)."""
        failures = 0
        while not stop.is_set():
            pause: float | None = None
            established = False
            try:
                async with connect(
                    self.url,
                    compression=None,
                    max_queue=4,
                    max_size=MAX_FRAME_BYTES,
                    ping_interval=None,  # the protocol's heartbeats keep the session alive
                    open_timeout=HANDSHAKE_TIMEOUT_SECONDS,
                    close_timeout=2,
                    user_agent_header=f"quanta-simulator {FIRMWARE_NAME}",
                ) as ws:
                    heartbeat_s = await self._handshake(ws)
                    established = True
                    self.stats.handshakes += 1
                    self.stats.connected += 1
                    self.connection = ws
                    try:
                        pause = await self._serve(ws, heartbeat_s, stop)
                    finally:
                        self.connection = None
                        self.stats.connected -= 1
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else None
                if code == CLOSE_REPLACED:
                    self.stats.stopped += 1
                    if self.stats.stopped == 1:  # the status line counts the others
                        logger.warning("%s: another session of this device took over (4409); it stops", self)
                    return
                if code == CLOSE_UNAUTHORIZED:
                    self.stats.error("refused (4401): the cloud does not know this device or its key")
                    pause = self.rng.uniform(*UNAUTHORIZED_RETRY_SECONDS)  # retrying soon is pointless
                elif established:
                    self.stats.disconnects += 1
                    if not stop.is_set():
                        self.stats.error(f"disconnected by the cloud ({code or 'no close frame'})")
                elif not stop.is_set():
                    self.stats.error(f"closed during the handshake ({code or 'no close frame'})")
            except (OSError, InvalidHandshake, TimeoutError, HandshakeFailed) as error:
                self.stats.error(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)
            except InvalidURI:
                raise
            except Exception as error:  # a bug here must not take the whole fleet down
                logger.exception("%s: unexpected error", self)
                self.stats.error(f"{type(error).__name__}: {error}")
            if stop.is_set():
                return
            if pause is None:  # the connection failed: back off, with jitter
                failures = 1 if established else failures + 1
                ceiling = min(RECONNECT_MAX_SECONDS, RECONNECT_BASE_SECONDS * 2 ** min(failures - 1, 16))
                pause = self.rng.uniform(ceiling / 2, ceiling)
            else:
                failures = 0
            await _wait(stop, pause)

    async def _handshake(self, ws: ClientConnection) -> float:
        """challenge → hello → welcome; returns the heartbeat interval the cloud asked for."""
        async with asyncio.timeout(HANDSHAKE_TIMEOUT_SECONDS):
            challenge = _handshake_frame(await ws.recv(), "challenge")
            try:
                nonce = base64.b64decode(challenge["nonce"], validate=True)
            except (KeyError, TypeError, ValueError):
                raise HandshakeFailed("the challenge carries no base64 nonce") from None
            hello: dict[str, Any] = {
                "type": "hello",
                "device_id": self.key.device_id,
                "signature": base64.b64encode(sign(self.key.private_key, nonce)).decode(),
                "platform_id": self.key.platform_id,
                "system_version": self.system_version,
                "functions": list(FUNCTIONS),
                "variables": VARIABLES,
            }
            if self.product_id is not None:
                hello["product_id"] = self.product_id
            if self.product_version is not None:
                hello["product_version"] = self.product_version
            if self.key.iccid:
                hello["iccid"] = self.key.iccid
            await ws.send(_dumps(hello))
            welcome = _handshake_frame(await ws.recv(), "welcome")
        if self._rebooted:
            self._rebooted = False
            self.booted_at = time.monotonic()
        heartbeat_s = welcome.get("heartbeat_s")
        return float(heartbeat_s) if isinstance(heartbeat_s, int | float) and heartbeat_s > 0 else 30.0

    async def _serve(self, ws: ClientConnection, heartbeat_s: float, stop: asyncio.Event) -> float:
        """The connected session: one loop that sleeps until the next frame, publish, heartbeat or
        churn. Returns how long to stay away before reconnecting (0 when asked to stop)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.last_sent = now
        self.next_publish = now + self.rng.uniform(0.1, 1.0) * self.publish_interval  # spread out
        churn_at = math.inf
        if self.churn_per_minute > 0:
            churn_at = now + self.rng.expovariate(self.churn_per_minute / 60)
        while not stop.is_set():
            now = loop.time()
            if now >= churn_at:
                ws.transport.abort()  # a dropped link, not a goodbye
                self.stats.disconnects += 1
                return self.rng.uniform(1.0, 10.0)
            if now >= self.next_publish:
                await self._publish_due(ws, now)
                self.next_publish = now + self.publish_interval * self.rng.uniform(0.7, 1.3)
            if now - self.last_sent >= heartbeat_s:
                await self._send(ws, {"type": "heartbeat"})
            deadline = min(self.next_publish, self.last_sent + heartbeat_s, churn_at)
            try:
                async with asyncio.timeout_at(deadline):
                    raw = await ws.recv()
            except TimeoutError:
                continue
            pause = await self._on_frame(ws, raw)
            if pause is not None:
                return pause
        return 0.0

    async def _send(self, ws: ClientConnection, frame: dict) -> None:
        await ws.send(_dumps(frame))
        self.last_sent = asyncio.get_running_loop().time()

    # --- publishing -----------------------------------------------------------------------------------
    def _refill(self, now: float) -> None:
        if self.tokens_at is not None:
            refill = (now - self.tokens_at) * PUBLISH_REFILL_PER_SECOND
            self.tokens = min(float(PUBLISH_BURST), self.tokens + refill)
        self.tokens_at = now

    async def _publish_due(self, ws: ClientConnection, now: float) -> None:
        """Publish what is due at ``now`` (loop time): one event, now and then a quick burst."""
        self._refill(now)
        if self.tokens < 1:
            return  # skip this one; the bucket refills by the next
        count = 1
        if self.tokens >= 2 and self.rng.random() < BURST_PROBABILITY:
            count = self.rng.randint(2, min(PUBLISH_BURST, int(self.tokens)))
        for _ in range(count):
            name, data = self._next_event()
            frame = {"type": "publish", "name": name, "data": data, "ttl": 60, "private": True}
            frame["id"] = self.next_id
            self.next_id += 1
            self.tokens -= 1
            await self._send(ws, frame)
            self.stats.events += 1

    async def publish(
        self, name: str, data: str | None = None, *, ttl: int = 60, private: bool = True
    ) -> int:
        """Publish one event now, besides the readings (call it on the device's event loop); returns
        the frame's id, which the cloud's ack or error carries. The cloud's limit still applies,
        and this spends a token of the device's own bucket, as the readings do."""
        ws = self.connection
        if ws is None:
            raise ConnectionError(f"{self} is not connected")
        self._refill(asyncio.get_running_loop().time())
        self.tokens = max(0.0, self.tokens - 1)
        frame_id = self.next_id
        self.next_id += 1
        frame = {
            "type": "publish",
            "name": name,
            "data": data,
            "ttl": ttl,
            "private": private,
            "id": frame_id,
        }
        await self._send(ws, frame)
        self.stats.events += 1
        return frame_id

    def _next_event(self) -> tuple[str, str]:
        rng = self.rng
        self.temp += (self.temp_baseline - self.temp) * 0.05 + rng.gauss(0, 0.2)
        self.humidity = min(95.0, max(10.0, self.humidity + rng.gauss(0, 0.8)))
        self.battery -= rng.uniform(0.0, 0.4)
        if self.battery < 10 and rng.random() < 0.2:
            self.battery = 100.0  # someone swapped the battery
        if rng.random() < 0.15:
            return "status", "battery low" if self.battery < 20 else "ok"
        return "env", _dumps({"t": round(self.temp, 1), "h": round(self.humidity)})

    # --- frames from the cloud ------------------------------------------------------------------------
    async def _on_frame(self, ws: ClientConnection, raw: str | bytes) -> float | None:
        """Handle one frame; returns a pause when the device is to disconnect (a reboot)."""
        if not isinstance(raw, str):
            return await self._on_chunk(ws, raw)  # binary frames carry firmware
        try:
            frame = json.loads(raw)
        except ValueError:
            self.stats.error("the cloud sent a frame that is not JSON")
            return None
        if not isinstance(frame, dict):
            return None
        kind = frame.get("type")
        if kind == "ack":
            self.stats.acked += 1
        elif kind == "error":
            if frame.get("code") == "rate_limited":
                self.stats.rate_limited += 1
                # Wait for the bucket to refill from empty.
                self.tokens, self.tokens_at = 0.0, asyncio.get_running_loop().time()
            else:
                self.stats.error(f"cloud error {frame.get('code')}: {frame.get('message')}")
        elif kind == "call":
            function = str(frame.get("function"))
            value = self.call(function, str(frame.get("arg", "")))
            await self._send(ws, {"type": "result", "id": frame.get("id"), "return_value": value})
            self.stats.calls += 1
            if function == "setInterval" and value > 0:
                self.next_publish = min(self.next_publish, self.last_sent + self.publish_interval)
            elif function == "reboot":
                pause = self.rng.uniform(2.0, 5.0)
                self._rebooted = True
                logger.info("%s: rebooting", self)
                return pause
        elif kind == "get":
            value = self.read(str(frame.get("variable")))
            await self._send(ws, {"type": "result", "id": frame.get("id"), "result": value})
            self.stats.calls += 1
        elif kind == "ping":
            await self._send(ws, {"type": "pong", "id": frame.get("id")})
            self.stats.calls += 1
        elif kind == "signal":
            self.signaling = bool(frame.get("on"))
            logger.info("%s: signal %s (rainbow LED)", self, "on" if self.signaling else "off")
        elif kind == "ota_begin":
            await self._on_ota_begin(ws, frame)
        # event, lagged, pong and frame types this device does not know are ignored.
        return None

    # --- firmware updates -----------------------------------------------------------------------------
    async def _on_ota_begin(self, ws: ClientConnection, frame: dict) -> None:
        """Answer an offer with how many bytes of it the device already holds."""
        try:
            offer = ota_offer(frame)
        except ValueError as error:
            self.stats.ota_failed += 1
            await self._send(
                ws, {"type": "ota_done", "ota_id": frame.get("ota_id"), "ok": False, "error": str(error)}
            )
            return
        # Another update (or the same id describing another image) replaces the partial one.
        if self.ota is None or self.ota.image != offer.image:
            self.ota = offer
        self.ota.unacked = 0
        await self._send(ws, {"type": "ota_ready", "ota_id": self.ota.ota_id, "offset": self.ota.held})

    async def _on_chunk(self, ws: ClientConnection, raw: bytes) -> float | None:
        """Take one chunk in order; anything else is ignored and answered with what the device
        holds, so the cloud resends from there. Returns the reboot pause after a good update."""
        transfer = self.ota
        if transfer is None:
            return None  # no update under way: nothing to acknowledge
        if len(raw) < OTA_HEADER.size:
            await self._ota_ack(ws, transfer)
            return None
        prefix, offset, length = OTA_HEADER.unpack_from(raw)
        chunk = raw[OTA_HEADER.size :]
        if prefix != transfer.prefix or offset != transfer.held or length != len(chunk):
            await self._ota_ack(ws, transfer)
            return None
        if transfer.held + length > transfer.size:
            self.ota = None
            self.stats.ota_failed += 1
            await self._ota_done(ws, transfer, "size mismatch")
            return None
        last = transfer.held + length == transfer.size
        # Only draw when failures are asked for, so a seeded run without them is unchanged.
        if last and self.ota_fail_rate > 0 and self.rng.random() < self.ota_fail_rate:
            corrupted = bytearray(chunk)
            corrupted[self.rng.randrange(length)] ^= 0xFF  # a bad flash write
            chunk = bytes(corrupted)
        transfer.digest.update(chunk)
        transfer.held += length
        transfer.unacked += 1
        if last or transfer.unacked >= OTA_ACK_EVERY_CHUNKS:
            await self._ota_ack(ws, transfer)
        if not last:
            return None
        self.ota = None
        if transfer.digest.hexdigest() != transfer.sha256:
            self.stats.ota_failed += 1
            logger.info("%s: firmware %s failed its check; keeps running the old one", self, transfer.version)
            await self._ota_done(ws, transfer, SHA256_MISMATCH)
            return None
        # Verified: the device runs the new firmware from now on, even if the answer is lost.
        self.product_version = transfer.version
        self.stats.ota_applied += 1
        self._rebooted = True
        logger.info("%s: firmware %s verified; restarting into it", self, transfer.version)
        await self._ota_done(ws, transfer)
        return self.rng.uniform(*self.ota_reboot_seconds)

    async def _ota_ack(self, ws: ClientConnection, transfer: OtaTransfer) -> None:
        transfer.unacked = 0
        await self._send(ws, {"type": "ota_ack", "ota_id": transfer.ota_id, "offset": transfer.held})

    async def _ota_done(self, ws: ClientConnection, transfer: OtaTransfer, error: str = "") -> None:
        frame: dict[str, Any] = {"type": "ota_done", "ota_id": transfer.ota_id, "ok": not error}
        if error:
            frame["error"] = error
        await self._send(ws, frame)

    def call(self, function: str, arg: str) -> int:
        """A function's return value (Particle functions return an int; -1 for a bad argument)."""
        if function == "led":
            command = arg.strip().lower()
            if command not in {"on", "off"}:
                return -1
            self.led = command == "on"
            return 1 if self.led else 0
        if function == "reboot":
            return 1
        if function == "setInterval":
            try:
                seconds = float(arg)
            except ValueError:
                return -1
            if not MIN_INTERVAL_SECONDS <= seconds <= MAX_INTERVAL_SECONDS:
                return -1
            self.publish_interval = seconds
            return round(seconds)
        return -1

    def read(self, variable: str) -> float | int | str | None:
        if variable == "temp":
            return round(self.temp, 2)
        if variable == "humidity":
            return round(self.humidity, 1)
        if variable == "uptime":
            return min(INT32_MAX, max(0, int(time.monotonic() - self.booted_at)))
        if variable == "firmware":
            return f"{FIRMWARE_NAME} v{self.product_version or 1} (Device OS {self.system_version})"
        return None

    def __repr__(self) -> str:
        return f"device {self.key.device_id}"


# --- A fleet -----------------------------------------------------------------------------------------


def url_host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in {"ws", "wss"} or not parts.hostname:
        raise ValueError(f"{url!r} is not a ws:// or wss:// URL")
    return parts.hostname, parts.port or (443 if parts.scheme == "wss" else 80)


async def wait_for_server(url: str, stop: asyncio.Event, *, timeout: float) -> bool:
    """Wait until the server accepts TCP connections; False if ``timeout`` passed (or stopped)."""
    host, port = url_host_port(url)
    deadline = time.monotonic() + timeout
    while not stop.is_set():
        try:
            async with asyncio.timeout(2):
                _reader, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError):
            if time.monotonic() >= deadline:
                return False
            await _wait(stop, 0.25)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False


async def run_fleet(
    keys: Sequence[DeviceKey],
    url: str = DEFAULT_URL,
    *,
    devices: int | None = None,
    rate: float = 0.2,
    churn: float = 0.0,
    ota_fail_rate: float = 0.0,
    ramp: float = 50.0,
    product_id: int | None = None,
    product_version: int | None = None,
    system_version: str = DEFAULT_SYSTEM_VERSION,
    seconds: float | None = None,
    status_interval: float = 5.0,
    seed: int | None = None,
    stop: asyncio.Event | None = None,
    report: Callable[[str], None] = print,
) -> FleetStats:
    """Run ``devices`` of ``keys`` (all by default) until ``stop`` is set or ``seconds`` pass.

    Devices connect ``ramp`` per second; each publishes ``rate`` events per second on average
    and, with ``churn`` > 0, drops its connection that many times a minute on average; it corrupts
    a firmware update it receives with probability ``ota_fail_rate``. A status line goes to
    ``report`` every ``status_interval`` seconds. Returns the final counters.
    """
    chosen = list(keys if devices is None else keys[:devices])
    if devices is not None and devices > len(keys):
        raise ValueError(f"{devices} devices asked for, but the key file has {len(keys)}")
    if ramp <= 0:
        raise ValueError("ramp is a number of connections per second, more than 0")
    if not 0 <= ota_fail_rate <= 1:
        raise ValueError("ota_fail_rate is a probability, from 0 to 1")
    url_host_port(url)
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    # One generator for the whole fleet (the loop is single-threaded); simulation, not secrets.
    rng = random.Random(seed)  # noqa: S311
    stats = FleetStats(devices=len(chosen))
    fleet = [
        SimulatedDevice(
            key,
            url,
            rng=rng,
            publish_rate=rate,
            product_id=product_id,
            product_version=product_version,
            system_version=system_version,
            churn_per_minute=churn,
            ota_fail_rate=ota_fail_rate,
            stats=stats,
        )
        for key in chosen
    ]
    timer = loop.call_later(seconds, stop.set) if seconds is not None else None
    tasks: list[asyncio.Task[None]] = []

    async def start_all() -> None:
        began = loop.time()
        for index, device in enumerate(fleet):
            delay = began + index / ramp - loop.time()
            if delay > 0.02:
                await _wait(stop, delay)
            if stop.is_set():
                return
            tasks.append(loop.create_task(device.run(stop), name=f"device-{device.device_id}"))
            stats.started += 1

    starter = loop.create_task(start_all(), name="fleet-starter")
    plural = "s" if len(fleet) != 1 else ""
    corrupting = f", corrupting {ota_fail_rate * 100:g}% of firmware updates" if ota_fail_rate else ""
    report(
        f"starting {len(fleet)} device{plural} against {url} "
        f"({ramp:g} connections/s, {rate:g} events/s each{corrupting})"
    )
    began = previous_at = loop.time()
    previous = stats.snapshot()
    all_connected = False
    try:
        while not stop.is_set():
            await _wait(stop, min(1.0, status_interval))
            if stop.is_set():
                break
            if starter.done() and tasks and all(task.done() for task in tasks):
                report("every device has stopped")
                break
            now = loop.time()
            if not all_connected and stats.connected == len(fleet):
                all_connected = True
                report(f"all {len(fleet)} devices connected in {now - began:.1f} s")
            if now - previous_at >= status_interval:
                report(stats.line(previous, now - previous_at))
                previous, previous_at = stats.snapshot(), now
    finally:
        stop.set()
        if timer is not None:
            timer.cancel()
        starter.cancel()
        for task in tasks:
            task.cancel()  # each closes its connection on the way out
        await asyncio.gather(starter, *tasks, return_exceptions=True)
    report("stopped: " + stats.line())
    return stats
