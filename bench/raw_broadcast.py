"""The ceiling for bench/events_throughput.py: the same events to the same clients, with nothing
of Quanta's around them (no Django, no Channels, no database).

Started by events_throughput.py as its own process, on uvloop when it is installed:

    raw_broadcast.py --port P --sse-port Q --owner-id N [--keys FILE] [--redis-url URL --channel NAME]

- A bare ``websockets`` server on P (compression off). ``/device/v1`` speaks the device handshake
  (challenge, hello signed with the device's Ed25519 key, welcome; the public keys come from the key
  file, in a dict) and then takes ``publish`` frames, answering ``ack`` with the frame's id. Any
  other path is a console tab: ``hello``, then it waits for a ``subscribe`` and answers
  ``subscribed``.
- A bare SSE server on Q (plain asyncio): any GET with an Authorization header gets 200,
  ``text/event-stream`` with a chunked body, and ``:ok``.
- Publishing does what ``events.hub`` does: with ``REDIS_URL``, the history ``XADD`` and the
  ``PUBLISH`` to the events channel, pipelined, the publishes waiting together in one round trip; one subscription to that channel takes
  every message that has already arrived (up to 512), hands them over as one batch, then yields to
  the loop. Without Redis, events published in one turn of the loop go out together.
- Each batch is serialised once: one websocket message ``{"type": "stream", "id": "x", "events":
  [...], "dropped": 0}`` for every console (``websockets.broadcast``) and one chunked SSE write for
  every stream, the bytes Quanta sends. A connection whose write buffer holds more than 256 KiB is
  skipped and its events counted as dropped, the counterpart of the hub's bounded buffers; its next
  message or write carries the count.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import secrets
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from events.types import Event, iso_millis  # noqa: E402 - plain Python, no Django

HOST = "127.0.0.1"
HISTORY_SIZE = 1000
BATCH_LIMIT = 512
WRITE_BUFFER_LIMIT = 256 * 1024
MAX_FRAME_BYTES = 64 * 1024
COMPACT = (",", ":")


def chunk(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(body), body)


class SseStream(asyncio.Protocol):
    def __init__(self, fanout: Fanout) -> None:
        self.fanout = fanout
        self.transport: asyncio.Transport | None = None
        self.request = b""
        self.streaming = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.streaming:
            return
        self.request += data
        if b"\r\n\r\n" not in self.request:
            return
        if not self.request.startswith(b"GET ") or b"\r\nauthorization: bearer " not in self.request.lower():
            self.transport.write(
                b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            self.transport.close()
            return
        self.streaming = True
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"X-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(b":ok\n\n")
        )
        self.fanout.streams.add(self)

    def connection_lost(self, exc) -> None:
        self.fanout.streams.discard(self)
        self.fanout.dropped.pop(self, None)


class Fanout:
    def __init__(self, owner_id: int, redis_url: str, channel: str) -> None:
        self.owner_id = owner_id
        self.redis_url = redis_url
        self.channel = channel
        self.consoles: set[ServerConnection] = set()
        self.streams: set[SseStream] = set()
        self.dropped: dict[object, int] = {}
        self.pending: list[Event] = []
        self.outbox: list[tuple[Event, asyncio.Future]] = []
        self.sender: asyncio.Task | None = None
        self.redis = None
        self.history_key = f"quanta:history:user:{owner_id}"

    # --- publishing ---
    async def publish(self, event: Event) -> None:
        if self.redis is not None:
            # Publishes waiting together share one pipelined round trip, as the hub's do.
            sent = asyncio.get_running_loop().create_future()
            self.outbox.append((event, sent))
            if self.sender is None or self.sender.done():
                self.sender = asyncio.ensure_future(self._send_outbox())
            await sent
            return
        if not self.pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self.pending.append(event)

    async def _send_outbox(self) -> None:
        while self.outbox:
            batch, self.outbox = self.outbox[:BATCH_LIMIT], self.outbox[BATCH_LIMIT:]
            pipe = self.redis.pipeline(transaction=False)
            for event, _ in batch:
                raw = event.dumps()
                pipe.xadd(self.history_key, {"e": raw}, maxlen=HISTORY_SIZE, approximate=True)
                pipe.publish(self.channel, raw)
            try:
                await pipe.execute()
            except Exception as error:  # noqa: BLE001 - every waiting publish hears why
                for _, sent in batch:
                    sent.set_exception(error)
            else:
                for _, sent in batch:
                    sent.set_result(None)

    def _flush(self) -> None:
        events, self.pending = self.pending, []
        self.dispatch(events)

    async def listen(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self.redis_url)
        async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(self.channel)
            while True:
                message = await pubsub.get_message(timeout=None)
                batch = [message] if message else []
                while len(batch) < BATCH_LIMIT:
                    more = await pubsub.get_message(timeout=0)
                    if more is None:
                        break
                    batch.append(more)
                self.dispatch([Event.loads(m["data"]) for m in batch if m.get("type") == "message"])
                await asyncio.sleep(0)

    # --- fan-out ---
    def dispatch(self, events: list[Event]) -> None:
        events = [event for event in events if event.owner_id == self.owner_id]
        if not events:
            return
        dropped = self.dropped
        wire = [event.console_wire() for event in events]
        consoles = []
        for ws in self.consoles:
            if ws.transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
                dropped[ws] = dropped.get(ws, 0) + len(events)
            elif ws in dropped:
                lost = dropped.pop(ws)
                broadcast([ws], json.dumps({"type": "stream", "id": "x", "events": wire, "dropped": lost}))
            else:
                consoles.append(ws)
        if consoles:
            message = json.dumps({"type": "stream", "id": "x", "events": wire, "dropped": 0}).encode()
            broadcast(consoles, message, text=True)
        if self.streams:
            body = "".join(f"event: {event.name}\ndata: {event.sse_data()}\n\n" for event in events).encode()
            whole = chunk(body)
            for stream in self.streams:
                transport = stream.transport
                if transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
                    dropped[stream] = dropped.get(stream, 0) + len(events)
                elif stream in dropped:
                    lost = dropped.pop(stream)
                    transport.write(chunk(f": lagged, {lost} events dropped\n\n".encode() + body))
                else:
                    transport.write(whole)


def load_public_keys(path: Path | None) -> dict[str, bytes]:
    keys = {}
    if path is None:
        return keys
    for line in path.read_text().splitlines():
        if line.strip():
            entry = json.loads(line)
            private = Ed25519PrivateKey.from_private_bytes(base64.b64decode(entry["private_key"]))
            keys[entry["device_id"]] = private.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
    return keys


def stop_on_failure(task: asyncio.Task) -> None:
    """Without its Redis subscription this server delivers nothing: end it, so the benchmark says so."""
    if not task.cancelled() and task.exception() is not None:
        print(
            f"raw_broadcast: the Redis subscription failed: {task.exception()!r}", file=sys.stderr, flush=True
        )
        os._exit(1)


async def main(args) -> None:
    fanout = Fanout(args.owner_id, args.redis_url, args.channel)
    public_keys = load_public_keys(args.keys)
    if args.redis_url:
        import redis.asyncio as aioredis

        # redis-py's pool raises once 100 connections are busy; this one waits for a free one.
        pool = aioredis.BlockingConnectionPool.from_url(args.redis_url, max_connections=100, timeout=None)
        fanout.redis = aioredis.Redis(connection_pool=pool)
        listener = asyncio.ensure_future(fanout.listen())
        listener.add_done_callback(stop_on_failure)

    async def device(ws: ServerConnection) -> None:
        nonce = secrets.token_bytes(32)
        challenge = {
            "type": "challenge",
            "nonce": base64.b64encode(nonce).decode(),
            "server_time": iso_millis(datetime.now(UTC)),
            "protocol": 1,
        }
        await ws.send(json.dumps(challenge, separators=COMPACT))
        try:
            async with asyncio.timeout(10):
                hello = json.loads(await ws.recv())
            device_id = hello["device_id"]
            signature = base64.b64decode(hello["signature"], validate=True)
            Ed25519PublicKey.from_public_bytes(public_keys[device_id]).verify(signature, nonce)
        except TimeoutError:
            await ws.close(4408)
            return
        except (InvalidSignature, KeyError, TypeError, ValueError):
            await ws.close(4401)
            return
        welcome = {"type": "welcome", "session_id": uuid.uuid4().hex, "heartbeat_s": 30}
        await ws.send(json.dumps(welcome, separators=COMPACT))
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("type") != "publish":
                continue
            await fanout.publish(
                Event(
                    name=frame["name"],
                    data=frame.get("data"),
                    published_at=datetime.now(UTC),
                    coreid=device_id,
                    owner_id=args.owner_id,
                    ttl=frame.get("ttl", 60),
                    device_name="bench",
                )
            )
            if "id" in frame:
                await ws.send(json.dumps({"type": "ack", "id": frame["id"]}, separators=COMPACT))

    async def console(ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "hello", "user": "bench"}))
        subscribe = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "subscribed", "id": subscribe.get("id")}))
        fanout.consoles.add(ws)
        try:
            async for _message in ws:
                pass
        finally:
            fanout.consoles.discard(ws)
            fanout.dropped.pop(ws, None)

    async def handler(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            await (device(ws) if ws.request.path.startswith("/device/") else console(ws))

    loop = asyncio.get_running_loop()
    sse_server = await loop.create_server(lambda: SseStream(fanout), HOST, args.sse_port, backlog=4096)
    websockets_server = serve(
        handler, HOST, args.port, compression=None, max_size=MAX_FRAME_BYTES, backlog=4096
    )
    async with websockets_server as server, sse_server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sse-port", type=int, required=True)
    parser.add_argument("--owner-id", type=int, required=True)
    parser.add_argument("--keys", type=Path)
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--channel", default="quanta:events", help="Quanta's QUANTA_EVENT_CHANNEL")
    arguments = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(arguments))
    else:
        uvloop.run(main(arguments))
