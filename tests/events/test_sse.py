"""The Server-Sent Events streams as Particle's clients read them, driven in-process: framing,
prefixes, authentication, keep-alives, the per-address stream limit, one device's stream, and a
slow reader that is told what it missed instead of growing the server's memory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from datetime import UTC, datetime

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.db import connections
from django.http import HttpResponse
from django.test import AsyncClient

from console.platforms import PLATFORMS
from devices.services import devices_provision
from events import sse
from events.hub import hub
from events.services import event_apublish
from events.types import Event
from tests.conftest import require_or_skip
from tests.devices.device_client import hub_ready

pytestmark = pytest.mark.django_db(transaction=True)

MILLIS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
AT = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
OK = b":ok\n\n"


@pytest.fixture(autouse=True)
async def _streams(settings):
    settings.QUANTA_EVENT_USAGE_FLUSH_SECONDS = 3600  # no background writes from these tests
    yield
    for stream in list(Stream.opened):
        await stream.close()
    Stream.opened.clear()
    # The views ran in asgiref's worker thread; the test client leaves its connection open.
    await sync_to_async(connections.close_all)()


class Stream:
    """An event stream read chunk by chunk, as a client reads it. A read that times out leaves
    the stream open (the server is never cancelled by a slow test); ``close()`` does what the
    server does when the client goes away: it cancels the read waiting on the stream."""

    opened: list[Stream] = []

    def __init__(self, response: HttpResponse) -> None:
        self.response = response
        self.chunks = response.streaming_content
        self._pending: asyncio.Future | None = None
        Stream.opened.append(self)

    def _next(self) -> asyncio.Future:
        if self._pending is None:
            self._pending = asyncio.ensure_future(anext(self.chunks))
        return self._pending

    async def read(self, timeout: float = 2) -> bytes:
        pending = self._next()
        done, _ = await asyncio.wait({pending}, timeout=timeout)
        if not done:
            raise TimeoutError("nothing arrived on the stream")
        self._pending = None
        return pending.result()

    async def nothing(self, timeout: float = 0.15) -> bool:
        done, _ = await asyncio.wait({self._next()}, timeout=timeout)
        assert not done, f"unexpected chunk: {self._pending.result()!r}"
        return True

    async def close(self) -> None:
        if self in Stream.opened:
            Stream.opened.remove(self)
        for _ in range(100):
            pending = self._next()
            await asyncio.sleep(0.01)
            self._pending = None
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending
                return
            if isinstance(pending.exception(), StopAsyncIteration):
                return


async def get(
    path: str, *, token: str | None = None, forwarded_for: str | None = None, **query
) -> HttpResponse:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    return await AsyncClient().get(path, query, headers=headers)


async def open_stream(path: str, token: str | None = None, **kwargs) -> Stream:
    """Open a stream and read its ``:ok``: subscribed and live (also over Redis) on return."""
    response = await get(path, token=token, **kwargs)
    assert response.status_code == 200, response.content
    stream = Stream(response)
    assert await stream.read() == OK
    await hub_ready()
    return stream


def event(name: str = "temp", data: str | None = "21.5", *, owner, coreid: str = "api", **fields) -> Event:
    return Event(
        name=name,
        data=data,
        published_at=fields.pop("published_at", AT),
        coreid=coreid,
        owner_id=owner.pk if owner is not None else None,
        **fields,
    )


def frame(name: str, body: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(body, separators=(',', ':'))}\n\n".encode()


def parse(chunk: bytes) -> list[tuple[str, dict]]:
    """The ``event:``/``data:`` pairs of a chunk (asserting the exact framing)."""
    pairs = []
    for block in chunk.decode().split("\n\n")[:-1]:
        name_line, data_line = block.split("\n")
        assert (name_line[:7], data_line[:6]) == ("event: ", "data: "), block
        pairs.append((name_line.removeprefix("event: "), json.loads(data_line.removeprefix("data: "))))
    assert chunk.endswith(b"\n\n")
    return pairs


async def held_slots(ip: str = "127.0.0.1") -> int:
    if django_settings.REDIS_URL:
        return await hub._aredis().zcard(f"quanta:sse:{ip}")
    return len(sse.slots._local.get(ip, ()))


async def provision(owner, count: int = 1):
    provisioned = await sync_to_async(devices_provision)(platform=PLATFORMS[13], count=count, owner=owner)
    return [item.device for item in provisioned]


# --- The stream and its framing ---------------------------------------------------------------------------
async def test_headers_ok_and_an_event_frame_exactly(user, token):
    response = await get("/v1/devices/events", token=token)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    assert response["X-Accel-Buffering"] == "no"
    stream = Stream(response)
    assert await stream.read() == OK
    await hub_ready()

    await event_apublish(event("temp", "21.5", owner=user, ttl=30))
    chunk = await stream.read()
    assert chunk == (
        b'event: temp\ndata: {"data":"21.5","ttl":30,"published_at":"2026-03-01T12:00:00.123Z",'
        b'"coreid":"api"}\n\n'
    )

    await event_apublish(event("door", None, owner=user, coreid="a" * 24, published_at=datetime.now(UTC)))
    [(name, body)] = parse(await stream.read())
    assert name == "door"
    assert set(body) == {"data", "ttl", "published_at", "coreid"}
    assert (body["data"], body["ttl"], body["coreid"]) == (None, 60, "a" * 24)
    assert MILLIS_Z.match(body["published_at"])


async def test_only_the_callers_events(user, other_user, token):
    stream = await open_stream("/v1/devices/events", token)
    await event_apublish(event("temp", "theirs", owner=other_user))
    await event_apublish(event("temp", "nobody's", owner=None))
    assert await stream.nothing()
    await event_apublish(event("temp", "mine", owner=user))
    assert [body["data"] for _, body in parse(await stream.read())] == ["mine"]


PREFIXES = {
    "/v1/devices/events/temp": ["temp", "temperature", "temp/inside"],
    "/v1/devices/events/temp%2Fin": ["temp/inside"],  # an encoded / is part of the prefix
    "/v1/devices/events/temp/in": ["temp/inside"],
    "/v1/events/temp%2Fin": ["temp/inside"],
    "/v1/events/hum": ["humidity"],
    "/v1/events/Temp": [],  # prefixes are case-sensitive
    "/v1/devices/events": ["temp", "humidity", "temperature", "temp/inside", "tem"],
}


async def test_prefixes(user, token):
    streams = {path: await open_stream(path, token) for path in PREFIXES}
    for name in ("temp", "humidity", "temperature", "temp/inside", "tem"):
        await event_apublish(event(name, name, owner=user))
    for path, seen in PREFIXES.items():
        received: list[str] = []
        while len(received) < len(seen):
            received += [name for name, _ in parse(await streams[path].read())]
        assert received == seen, path
    for path, stream in streams.items():
        assert await stream.nothing(0.05), path


async def test_the_token_may_come_in_the_query(user, token):
    stream = await open_stream("/v1/events/temp", access_token=token)
    await event_apublish(event(owner=user))
    assert [name for name, _ in parse(await stream.read())] == ["temp"]


async def test_a_long_prefix_is_refused(token):
    response = await get("/v1/devices/events/" + "p" * 65, token=token)
    assert response.status_code == 400
    assert "at most 64" in response.json()["error"]
    assert await held_slots() == 0


# --- Authentication ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/devices/events", "/v1/events/temp", "/v1/events"])
async def test_anonymous_and_bad_tokens_are_refused_before_anything_else(db, path):
    anonymous = await get(path)
    assert anonymous.status_code == 400
    assert anonymous.json() == {
        "error": "invalid_request",
        "error_description": "The access token was not found",
    }
    bad = await get(path, token="0" * 40)
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_token"
    assert bad["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'
    bad_query = await get(path, access_token="0" * 40)
    assert bad_query.status_code == 401
    assert await held_slots() == 0


async def test_the_events_firehose_needs_a_prefix_after_authentication(token):
    response = await get("/v1/events", token=token)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["ok"] is False
    assert "prefix is required" in body["error"]
    assert await held_slots() == 0


# --- Keep-alive ---------------------------------------------------------------------------------------------
async def test_a_keepalive_after_the_quiet_interval(settings, user, token):
    settings.QUANTA_SSE_KEEPALIVE_SECONDS = 0.2
    stream = await open_stream("/v1/devices/events", token)
    started = time.monotonic()
    assert await stream.read(1) == b"\n"
    assert await stream.read(1) == b"\n"
    assert time.monotonic() - started >= 0.3  # two intervals, not a busy loop
    await event_apublish(event(owner=user))
    assert [name for name, _ in parse(await stream.read())] == ["temp"]


# --- Streams per address ------------------------------------------------------------------------------------
async def test_streams_per_address_are_limited_and_closing_frees_a_slot(settings, token):
    settings.QUANTA_SSE_STREAMS_PER_IP = 2
    first = await open_stream("/v1/devices/events", token)
    await open_stream("/v1/events/temp", token)
    assert await held_slots() == 2

    refused = await get("/v1/devices/events", token=token)
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/json"
    assert refused.json() == {
        "ok": False,
        "error": "Too many event streams from your address: at most 2 may be open at once.",
        "error_description": "Too many event streams from your address: at most 2 may be open at once.",
    }
    # Another address (behind a trusted proxy) has slots of its own.
    settings.QUANTA_TRUSTED_PROXY_COUNT = 1
    assert (await get("/v1/devices/events", token=token, forwarded_for="192.0.2.99")).status_code == 200
    assert await held_slots("192.0.2.99") == 1
    settings.QUANTA_TRUSTED_PROXY_COUNT = 0

    await first.close()
    assert await held_slots() == 1
    assert (await get("/v1/devices/events", token=token)).status_code == 200


async def test_a_quiet_stream_keeps_its_slot_beyond_the_slot_keys_expiry(settings, token):
    """With Redis, a crashed process's slots expire; a live stream's keep-alives must keep its own."""
    require_or_skip(bool(settings.REDIS_URL), "needs REDIS_URL")
    settings.QUANTA_SSE_KEEPALIVE_SECONDS = 0.1  # slots go stale after 0.3 s; the key lives 1 s
    settings.QUANTA_SSE_STREAMS_PER_IP = 1
    stream = await open_stream("/v1/devices/events", token)
    deadline = time.monotonic() + 1.3
    while time.monotonic() < deadline:
        assert await stream.read() == b"\n"
    assert await held_slots() == 1
    assert (await get("/v1/devices/events", token=token)).status_code == 429


async def test_a_busy_stream_keeps_its_slot(settings, user, token):
    """A stream that always has events to send never times out into a keep-alive; its slot must
    not go stale for that."""
    require_or_skip(bool(settings.REDIS_URL), "needs REDIS_URL")
    settings.QUANTA_SSE_KEEPALIVE_SECONDS = 0.2  # slots go stale after 0.6 s
    settings.QUANTA_SSE_STREAMS_PER_IP = 1
    stream = await open_stream("/v1/devices/events", token)
    deadline = time.monotonic() + 0.9
    while time.monotonic() < deadline:
        await event_apublish(event(owner=user))
        assert parse(await stream.read())[0][0] == "temp"
        await asyncio.sleep(0.05)
    assert (await get("/v1/devices/events", token=token)).status_code == 429
    assert await held_slots() == 1


# --- One device's stream ------------------------------------------------------------------------------------
async def test_a_devices_stream_shows_only_that_device(user, token):
    mine, sibling = await provision(user, count=2)
    by_id = await open_stream(f"/v1/devices/{mine.id}/events", token)
    by_name = await open_stream(f"/v1/devices/{mine.name.upper()}/events/temp", token)

    await event_apublish(event("temp", "sibling", owner=user, coreid=sibling.id))
    await event_apublish(event("temp", "api", owner=user))
    await event_apublish(event("humidity", "40", owner=user, coreid=mine.id))
    await event_apublish(event("temp", "21.5", owner=user, coreid=mine.id))

    received = [(name, body["data"], body["coreid"]) for name, body in parse(await by_id.read())]
    if len(received) < 2:  # over Redis the two may arrive in two batches
        received += [(name, body["data"], body["coreid"]) for name, body in parse(await by_id.read())]
    assert received == [("humidity", "40", mine.id), ("temp", "21.5", mine.id)]
    assert [(name, body["data"]) for name, body in parse(await by_name.read())] == [("temp", "21.5")]
    assert await by_id.nothing()
    assert await by_name.nothing()


async def test_another_users_device_is_404_without_a_stream(user, other_user, token):
    [theirs] = await provision(other_user)
    for reference in (theirs.id, theirs.name, "0123456789abcdef01234567", "no-such-device"):
        response = await get(f"/v1/devices/{reference}/events", token=token)
        assert response.status_code == 404, reference
        assert response["Content-Type"] == "application/json"
        assert response.json() == {
            "ok": False,
            "error": f"Device {reference!r} not found.",
            "error_description": f"Device {reference!r} not found.",
        }
    assert await held_slots() == 0
    assert hub.subscriber_count == 0


async def test_a_devices_stream_refuses_anonymous_and_other_methods(user, token):
    [mine] = await provision(user)
    assert (await get(f"/v1/devices/{mine.id}/events")).status_code == 400
    response = await AsyncClient().post(
        f"/v1/devices/{mine.id}/events", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 405
    assert await held_slots() == 0


# --- A slow reader ------------------------------------------------------------------------------------------
async def test_a_slow_stream_does_not_grow_and_is_told_what_it_lost(settings, user, token):
    settings.QUANTA_SUBSCRIBER_BUFFER = 5
    stream = await open_stream("/v1/devices/events", token)
    [subscription] = hub.by_user[user.pk]

    for index in range(12):  # nobody reads the stream meanwhile
        await event_apublish(event("temp", str(index), owner=user))
    deadline = time.monotonic() + 2
    while subscription.dropped < 7 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert (len(subscription.buffer), subscription.buffer.maxlen, subscription.dropped) == (5, 5, 7)

    chunk = await stream.read()
    lagged = b": lagged, 7 events dropped\n\n"
    assert chunk.startswith(lagged)
    assert [body["data"] for _, body in parse(chunk[len(lagged) :])] == ["7", "8", "9", "10", "11"]

    await event_apublish(event("temp", "12", owner=user))
    assert await stream.read() == frame(
        "temp", {"data": "12", "ttl": 60, "published_at": "2026-03-01T12:00:00.123Z", "coreid": "api"}
    )


async def test_closing_a_stream_unsubscribes_it(user, token):
    stream = await open_stream("/v1/devices/events", token)
    assert len(hub.by_user[user.pk]) == 1
    [subscription] = hub.by_user[user.pk]
    await stream.close()
    assert subscription.closed
    assert user.pk not in hub.by_user
    assert await held_slots() == 0
