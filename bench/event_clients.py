"""Load clients for bench/events_throughput.py: one process holds event subscribers (console
websockets and SSE streams), simulated devices publishing through the gateway, or a publisher
that writes straight to Redis.

Started by events_throughput.py, never by hand: its one argument is a JSON configuration, then it
reads one JSON command per line on stdin and answers each with one JSON line on stdout.

The clients are written for cost, so that the server, not the client, limits the figures: a
websocket client of a few dozen lines on ``asyncio.Protocol`` (frames parsed from one buffer,
pings answered, nothing else) and an SSE client that reads the chunked body, on uvloop when it is
installed. Events are recognised without decoding JSON: every event the benchmark publishes
carries ``"STEP SEQUENCE UNIX-TIME [padding]"`` as its data, and the client finds each ``"data":``
key in a message and splits the string after it. Latency is the receive time (``time.time()`` when
the bytes arrived) minus the publish time in the data: one clock, one machine.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import gc
import json
import os
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NB = 16_000  # latency buckets: 0.1 ms up to 1 s, then 10 ms up to 60 s, then one overflow bucket
CONNECT_TIMEOUT = 30.0
DATA_KEY = b'"data":'
BENCH_NAME = "bench"


def bucket(latency: float) -> int:
    if latency < 1.0:
        return int(latency * 10_000) if latency > 0 else 0
    if latency < 60.0:
        return 10_000 + int((latency - 1.0) * 100)
    return NB - 1


class StepCounts:
    """Events of one benchmark step seen by one kind of connection."""

    __slots__ = ("events", "frames", "hist", "last")

    def __init__(self) -> None:
        self.events = 0
        self.frames = 0
        self.last = 0.0  # when the last event of the step arrived
        self.hist = [0] * NB

    def snapshot(self) -> dict:
        return {
            "events": self.events,
            "frames": self.frames,
            "last": self.last,
            "hist": {i: count for i, count in enumerate(self.hist) if count},
        }


class Kind:
    """All connections of one kind (``ws``, ``sse``, ``slow_ws``, ``slow_sse``, ``devices``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.connections: list = []
        self.steps: dict[int, StepCounts] = collections.defaultdict(StepCounts)
        self.failures: collections.Counter = collections.Counter()  # connections that never got ready
        self.closes: collections.Counter = collections.Counter()  # ready connections that closed
        self.dropped = 0  # events the server said it dropped ("dropped": n, ": lagged, n events dropped")
        self.lag_notices = 0
        self.errors = 0  # error messages from the server
        self.error_sample = ""
        self.other_frames = 0  # frames that carried no benchmark event (hello, spark/status, keep-alives)

    def snapshot(self) -> dict:
        per_connection = {}
        for step in self.steps:
            counts = [conn.counts.get(step, 0) for conn in self.connections if conn.ready]
            # the fewest and most events of the step one connection got, and how many got none
            per_connection[step] = [min(counts, default=0), max(counts, default=0), counts.count(0)]
        return {
            "connections": len(self.connections),
            "open": sum(1 for conn in self.connections if conn.ready and not conn.closed),
            "steps": {step: counts.snapshot() for step, counts in self.steps.items()},
            "per_connection": per_connection,
            "failures": dict(self.failures),
            "closes": dict(self.closes),
            "dropped": self.dropped,
            "lag_notices": self.lag_notices,
            "errors": self.errors,
            "error_sample": self.error_sample,
            "other_frames": self.other_frames,
        }


def scan(kind: Kind, conn, payload: bytes, now: float) -> int:
    """Count the benchmark events in one message or SSE write; returns how many."""
    found = 0
    first_step = None
    index = payload.find(DATA_KEY)
    while index != -1:
        start = index + 7
        if payload[start : start + 1] == b" ":
            start += 1
        if payload[start : start + 1] != b'"':
            index = payload.find(DATA_KEY, start)
            continue
        end = payload.find(b'"', start + 1)
        parts = payload[start + 1 : end].split(b" ", 3)
        index = payload.find(DATA_KEY, end)
        if len(parts) < 3 or not parts[0].isdigit():
            continue  # not one of ours (spark/status online, ...)
        step = int(parts[0])
        counts = kind.steps[step]
        counts.events += 1
        counts.hist[bucket(now - float(parts[2]))] += 1
        counts.last = now
        conn.counts[step] = conn.counts.get(step, 0) + 1
        if first_step is None:
            first_step = step
        found += 1
    if first_step is None:
        kind.other_frames += 1
    else:
        kind.steps[first_step].frames += 1
    return found


# --- Websockets ------------------------------------------------------------------------------------------


def mask_payload(payload: bytes, mask: bytes) -> bytes:
    size = len(payload)
    if not size:
        return payload
    key = int.from_bytes((mask * (size // 4 + 1))[:size], "little")
    return (int.from_bytes(payload, "little") ^ key).to_bytes(size, "little")


class WsConnection(asyncio.Protocol):
    """A websocket client: the upgrade, then frames parsed from one buffer; pings are answered, a
    close is recorded and answered. Subclasses handle messages."""

    def __init__(self, kind: Kind, host: str, port: int, path: str, headers: dict[str, str]) -> None:
        self.kind = kind
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            + "\r\n"
        ).encode()
        self.mask = os.urandom(4)
        self.buffer = bytearray()
        self.upgraded = False
        self.fragments: bytearray | None = None
        self.transport: asyncio.Transport | None = None
        self.ready = False
        self.closed = False
        self.close_reason = ""
        self.counts: dict[int, int] = {}
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()

    # asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc) -> None:
        if not self.closed:
            self.closed = True
            self.close_reason = self.close_reason or ("reset" if exc else "closed, no close frame")
        if self.ready:
            self.kind.closes[self.close_reason] += 1
        self.fail(self.close_reason)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buffer[:end]).split(b"\r\n", 1)[0].split(b" ")
            if len(status) < 2 or status[1] != b"101":
                self.close_reason = f"HTTP {status[1].decode() if len(status) > 1 else '?'}"
                self.closed = True
                self.transport.close()
                return
            del buffer[: end + 4]
            self.upgraded = True
            self.on_open()
        position, size = 0, len(buffer)
        while size - position >= 2:
            first, second = buffer[position], buffer[position + 1]
            length, header = second & 0x7F, 2
            if length == 126:
                if size - position < 4:
                    break
                length, header = int.from_bytes(buffer[position + 2 : position + 4]), 4
            elif length == 127:
                if size - position < 10:
                    break
                length, header = int.from_bytes(buffer[position + 2 : position + 10]), 10
            end = position + header + length
            if end > size:
                break
            payload = bytes(buffer[position + header : end])
            position = end
            opcode = first & 0x0F
            if opcode == 0:  # continuation
                if self.fragments is None:
                    continue
                self.fragments += payload
                if not first & 0x80:
                    continue
                payload, self.fragments, opcode = bytes(self.fragments), None, 1
            elif opcode in (1, 2) and not first & 0x80:
                self.fragments = bytearray(payload)
                continue
            if opcode in (1, 2):
                self.on_message(payload, now)
            elif opcode == 9:
                self.send_frame(0xA, payload)
            elif opcode == 8:
                code = int.from_bytes(payload[:2]) if len(payload) >= 2 else 1005
                self.close_reason = f"close {code}"
                self.closed = True
                self.send_frame(0x8, payload[:2])
                self.transport.close()
                break
        if position:
            del buffer[:position]

    def send_frame(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        size = len(payload)
        if size < 126:
            header = bytes((0x80 | opcode, 0x80 | size))
        elif size < 65536:
            header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2)
        else:
            header = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8)
        self.transport.write(header + self.mask + mask_payload(payload, self.mask))

    def send_text(self, text: bytes) -> None:
        self.send_frame(0x1, text)

    def set_ready(self) -> None:
        self.ready = True
        if not self.opened.done():
            self.opened.set_result(True)

    def fail(self, reason: str) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(reason))

    def on_open(self) -> None:
        pass

    def on_message(self, payload: bytes, now: float) -> None:
        raise NotImplementedError


SUBSCRIBE = json.dumps(
    {"type": "subscribe", "id": "x", "stream": "events", "params": {"history": False}}
).encode()


class ConsoleSubscriber(WsConnection):
    """A console tab subscribed to the "events" stream (events/streams.py)."""

    def __init__(self, *args, slow: bool = False) -> None:
        super().__init__(*args)
        self.slow = slow

    def on_open(self) -> None:
        self.send_text(SUBSCRIBE)

    def on_message(self, payload: bytes, now: float) -> None:
        kind = self.kind
        if not self.ready:
            if b"subscribed" in payload:
                self.set_ready()
                if self.slow:
                    self.transport.pause_reading()
            elif b'"error"' in payload:
                self.close_reason = "error: " + payload[:200].decode(errors="replace")
                self.transport.close()
            return
        scan(kind, self, payload, now)
        dropped_at = payload.rfind(b'"dropped":')
        if dropped_at != -1:
            tail = payload[dropped_at + 10 : dropped_at + 30].lstrip()
            digits = tail[: len(tail) - len(tail.lstrip(b"0123456789"))]
            if digits and int(digits):
                kind.dropped += int(digits)
                kind.lag_notices += 1
        elif b'"error"' in payload:
            kind.errors += 1
            kind.error_sample = kind.error_sample or payload[:300].decode(errors="replace")


class SseSubscriber(asyncio.Protocol):
    """``GET /v1/devices/events`` with a Bearer token, the chunked body read one write at a time."""

    def __init__(self, kind: Kind, host: str, port: int, path: str, headers: dict[str, str], slow: bool):
        self.kind = kind
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            + "\r\n"
        ).encode()
        self.slow = slow
        self.buffer = bytearray()
        self.headers_done = False
        self.chunked = True
        self.transport: asyncio.Transport | None = None
        self.ready = False
        self.closed = False
        self.close_reason = ""
        self.counts: dict[int, int] = {}
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc) -> None:
        if not self.closed:
            self.closed = True
            self.close_reason = self.close_reason or ("reset" if exc else "closed by the server")
        if self.ready:
            self.kind.closes[self.close_reason] += 1
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(self.close_reason))

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buffer = self.buffer
        buffer += data
        if not self.headers_done:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end])
            status = head.split(b"\r\n", 1)[0].split(b" ")
            if len(status) < 2 or status[1] != b"200":
                self.close_reason = f"HTTP {status[1].decode() if len(status) > 1 else '?'}"
                self.closed = True
                self.transport.close()
                return
            self.chunked = b"transfer-encoding: chunked" in head.lower()
            del buffer[: end + 4]
            self.headers_done = True
        if not self.chunked:  # one write is not visible: take what ends with a blank line
            end = buffer.rfind(b"\n\n")
            if end >= 0:
                self.on_write(bytes(buffer[: end + 2]), now)
                del buffer[: end + 2]
            return
        position, size = 0, len(buffer)
        while True:
            eol = buffer.find(b"\r\n", position)
            if eol < 0:
                break
            length = int(buffer[position:eol].split(b";", 1)[0], 16)
            if length == 0:
                self.close_reason = "stream ended"
                self.transport.close()
                break
            end = eol + 2 + length
            if end + 2 > size:
                break
            self.on_write(bytes(buffer[eol + 2 : end]), now)
            position = end + 2
        if position:
            del buffer[:position]

    def on_write(self, chunk: bytes, now: float) -> None:
        if not self.ready:
            if chunk.startswith(b":ok"):
                self.ready = True
                self.opened.set_result(True)
                if self.slow:
                    self.transport.pause_reading()
                chunk = chunk[5:]
                if not chunk:
                    return
            else:
                return
        kind = self.kind
        lagged = chunk.find(b": lagged, ")
        if lagged != -1:
            kind.dropped += int(chunk[lagged + 10 :].split(b" ", 1)[0])
            kind.lag_notices += 1
        scan(kind, self, chunk, now)


# --- Devices ----------------------------------------------------------------------------------------------


class Device(WsConnection):
    """A simulated device on /device/v1: the Ed25519 handshake, then publishes with an id, acked."""

    def __init__(self, client: Clients, key: dict, *args) -> None:
        super().__init__(*args)
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.client = client
        self.device_id = key["device_id"]
        self.platform_id = key["platform_id"]
        self.private_key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(key["private_key"]))

    def on_message(self, payload: bytes, now: float) -> None:
        client = self.client
        if payload.startswith(b'{"type":"ack"'):
            entry = client.in_flight.pop(int(payload[payload.rfind(b":") + 1 : -1]), None)
            if entry is not None:
                step, sent_at = entry
                counts = self.kind.steps[step]
                counts.events += 1
                counts.hist[bucket(now - sent_at)] += 1
                counts.last = now
            return
        frame = json.loads(payload)
        kind = frame.get("type")
        if not self.ready:
            if kind == "challenge":
                signature = self.private_key.sign(base64.b64decode(frame["nonce"]))
                hello = {
                    "type": "hello",
                    "device_id": self.device_id,
                    "signature": base64.b64encode(signature).decode(),
                    "platform_id": self.platform_id,
                    "system_version": "6.2.1",
                }
                self.send_text(json.dumps(hello, separators=(",", ":")).encode())
            elif kind == "welcome":
                self.set_ready()
            else:
                self.close_reason = f"{kind}: {frame.get('message', '')}"[:200]
                self.transport.close()
            return
        if kind == "error":
            client.in_flight.pop(frame.get("id"), None)
            client.publish_errors[frame.get("code", "?")] += 1
            self.kind.errors += 1
            self.kind.error_sample = self.kind.error_sample or payload[:300].decode(errors="replace")
        else:
            self.kind.other_frames += 1

    def publish(self, step: int, seq: int, sent_at: float, pad: str) -> None:
        self.send_text(
            b'{"type":"publish","name":"bench","data":"%d %d %.6f%s","id":%d}'
            % (step, seq, sent_at, pad.encode(), seq)
        )


# --- The process ------------------------------------------------------------------------------------------


class Clients:
    def __init__(self, config: dict) -> None:
        self.config = config
        self.kinds = {name: Kind(name) for name in ("ws", "sse", "slow_ws", "slow_sse", "devices")}
        self.in_flight: dict[int, tuple[int, float]] = {}  # publish id -> (step, sent at)
        self.publish_errors: collections.Counter = collections.Counter()
        self.seq = 0
        self.redis = None
        self.event_class = None

    # --- connecting ---
    async def open_one(self, kind: Kind, factory, port: int, rcvbuf: int | None) -> None:
        loop = asyncio.get_running_loop()
        host = self.config["host"]
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                if rcvbuf:
                    # A client that reads nothing: a small receive window, so what the server sends
                    # piles up on the server's side, not in this kernel's buffers.
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
                    sock.setblocking(False)
                    await loop.sock_connect(sock, (host, port))
                    _, conn = await loop.create_connection(factory, sock=sock)
                else:
                    _, conn = await loop.create_connection(factory, host, port)
                kind.connections.append(conn)
                await conn.opened
        except (OSError, TimeoutError, ConnectionError) as error:
            kind.failures[str(error) or type(error).__name__] += 1

    async def connect(self) -> dict:
        config = self.config
        host = config["host"]
        semaphore = asyncio.Semaphore(config.get("connect_concurrency", 50))
        jobs = []

        def plan(kind_name: str, count: int, factory, port: int, rcvbuf: int | None = None) -> None:
            kind = self.kinds[kind_name]
            for _ in range(count):
                jobs.append((kind, factory, port, rcvbuf))

        ws_args = (host, config.get("ws_port", 0), config.get("ws_path", ""), config.get("ws_headers", {}))
        sse_args = (
            host,
            config.get("sse_port", 0),
            config.get("sse_path", ""),
            config.get("sse_headers", {}),
        )
        rcvbuf = config.get("slow_rcvbuf", 4096)
        plan("ws", config.get("ws", 0), lambda: ConsoleSubscriber(self.kinds["ws"], *ws_args), ws_args[1])
        plan(
            "sse",
            config.get("sse", 0),
            lambda: SseSubscriber(self.kinds["sse"], *sse_args, False),
            sse_args[1],
        )
        plan(
            "slow_ws",
            config.get("slow_ws", 0),
            lambda: ConsoleSubscriber(self.kinds["slow_ws"], *ws_args, slow=True),
            ws_args[1],
            rcvbuf,
        )
        plan(
            "slow_sse",
            config.get("slow_sse", 0),
            lambda: SseSubscriber(self.kinds["slow_sse"], *sse_args, True),
            sse_args[1],
            rcvbuf,
        )
        if config.get("key_file"):
            lines = Path(config["key_file"]).read_text().splitlines()
            first, last = config["device_range"]
            device_args = (host, config["device_port"], config.get("device_path", "/device/v1"), {})
            for line in lines[first:last]:
                key = json.loads(line)
                plan(
                    "devices",
                    1,
                    lambda key=key: Device(self, key, self.kinds["devices"], *device_args),
                    device_args[1],
                )

        async def job(kind, factory, port, rcvbuf) -> None:
            async with semaphore:
                await self.open_one(kind, factory, port, rcvbuf)

        started = time.perf_counter()
        await asyncio.gather(*(job(*entry) for entry in jobs))
        if config.get("redis_url"):
            import redis.asyncio as aioredis

            sys.path.insert(0, str(ROOT))
            from events.types import Event  # the bus's own event, serialised as a publish does

            self.event_class = Event
            self.redis = aioredis.Redis.from_url(config["redis_url"])
            await self.redis.ping()
        # Everything this process holds from now on lives until it ends: keep the collector off it.
        gc.collect()
        gc.freeze()
        return {
            "seconds": time.perf_counter() - started,
            "connected": {
                name: sum(1 for conn in kind.connections if conn.ready) for name, kind in self.kinds.items()
            },
            "failures": {name: dict(kind.failures) for name, kind in self.kinds.items() if kind.failures},
        }

    # --- publishing ---
    async def publish(self, step: int, rate: float, seconds: float, pad: int) -> dict:
        """Publish ``rate`` events per second for ``seconds`` on a fixed schedule (open loop): through
        the devices round-robin, or straight to Redis."""
        loop = asyncio.get_running_loop()
        padding = " " + "x" * (pad - 1) if pad > 0 else ""
        devices = [d for d in self.kinds["devices"].connections if d.ready and not d.closed]
        if self.redis is None and not devices:
            return {"sent": 0, "skipped": 0, "started": time.time(), "elapsed": 0.0, "max_lag": 0.0}
        total = int(rate * seconds)
        max_in_flight = max(2000, int(rate * 2))  # beyond this the server is not keeping up: skip
        sent = skipped = index = 0
        max_lag = 0.0
        started_wall, started = time.time(), loop.time()
        channel, owner_id, coreid = (
            self.config.get("channel"),
            self.config.get("owner_id"),
            self.config.get("coreid", "api"),
        )
        while sent + skipped < total:
            now = loop.time()
            due = min(total, int((now - started) * rate) + 1)
            if due > sent + skipped + 1:
                max_lag = max(max_lag, (due - sent - skipped - 1) / rate)
            if self.redis is not None:
                pipe = self.redis.pipeline(transaction=False)
                while sent + skipped < due:
                    self.seq += 1
                    event = self.event_class(
                        name=BENCH_NAME,
                        data=f"{step} {self.seq} {time.time():.6f}{padding}",
                        published_at=datetime.now(UTC),  # as event_build stamps it
                        coreid=coreid,
                        owner_id=owner_id,
                        device_name="bench",
                    )
                    pipe.publish(channel, event.dumps())
                    sent += 1
                await pipe.execute()
            else:
                while sent + skipped < due:
                    if len(self.in_flight) >= max_in_flight:
                        skipped += 1
                        continue
                    device = devices[index % len(devices)]
                    index += 1
                    self.seq += 1
                    sent_at = time.time()
                    self.in_flight[self.seq] = (step, sent_at)
                    device.publish(step, self.seq, sent_at, padding)
                    sent += 1
            if sent + skipped >= total:
                break
            # Whatever fell due meanwhile goes out together on the next turn: a 1 ms tick at least.
            next_due = started + (sent + skipped) / rate
            await asyncio.sleep(min(max(next_due - loop.time(), 0.001), 0.005))
        return {
            "sent": sent,
            "skipped": skipped,
            "started": started_wall,
            "elapsed": loop.time() - started,
            "max_lag": max_lag,
        }

    def slow(self, reading: bool) -> None:
        for name in ("slow_ws", "slow_sse"):
            for conn in self.kinds[name].connections:
                if conn.transport is not None and not conn.transport.is_closing():
                    if reading:
                        conn.transport.resume_reading()
                    else:
                        conn.transport.pause_reading()

    def stats(self) -> dict:
        return {
            "kinds": {name: kind.snapshot() for name, kind in self.kinds.items() if kind.connections},
            "in_flight": len(self.in_flight),
            "publish_errors": dict(self.publish_errors),
        }

    async def close(self) -> None:
        for kind in self.kinds.values():
            for conn in kind.connections:
                if conn.transport is not None:
                    conn.transport.abort()
        if self.redis is not None:
            await self.redis.aclose()


async def serve(config: dict) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    clients = Clients(config)

    def reply(body: dict) -> None:
        sys.stdout.write(json.dumps(body, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    while line := await reader.readline():
        command = json.loads(line)
        name = command["cmd"]
        if name == "connect":
            reply(await clients.connect())
        elif name == "publish":
            reply(
                await clients.publish(
                    command["step"], command["rate"], command["seconds"], command.get("pad", 0)
                )
            )
        elif name == "stats":
            reply(clients.stats())
        elif name in ("pause_slow", "resume_slow"):
            clients.slow(reading=name == "resume_slow")
            reply({"ok": True})
        elif name == "quit":
            await clients.close()
            reply({"ok": True})
            return
        else:
            reply({"error": f"unknown command {name!r}"})


def main() -> None:
    config = json.loads(sys.argv[1])
    gc.set_threshold(50_000, 20, 100)  # fewer, cheaper collections: this process allocates little that lives
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))


if __name__ == "__main__":
    main()
