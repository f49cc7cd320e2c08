"""Server-Sent Events as Particle's clients read them (PARTICLE_API.md §2.2).

The primitives every stream endpoint is built from: authenticate the caller from the token
(header or ``?access_token=``), take one of the caller's address's stream slots, and stream a hub
subscription: ``:ok`` first, then ``event:``/``data:`` pairs, and a keep-alive whenever
``QUANTA_SSE_KEEPALIVE_SECONDS`` pass in silence (clients reconnect after 15 s without bytes).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from console.accounts.selectors import access_token_authenticate
from console.accounts.services import access_token_touch
from console.api.authentication import INVALID_TOKEN
from console.api.errors import TOKEN_NOT_FOUND, error_body
from console.http import client_ip
from events.hub import Subscription, hub

logger = logging.getLogger(__name__)

OK = b":ok\n\n"
KEEPALIVE = b"\n"


class StreamRefused(Exception):
    """Answer the stream request with this status and message instead of a stream."""

    def __init__(self, status: int, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code

    def response(self) -> JsonResponse:
        response = JsonResponse(error_body(self.message, code=self.code), status=self.status)
        if self.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="api", error="invalid_token"'
        return response


def _token(request: HttpRequest) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.GET.get("access_token") or None


async def run_sync(function, /, **kwargs):
    """Run a database read for a stream in a worker thread, and hand its connection back at once.

    A streaming response ends its request only when the stream closes, and Django returns a
    request's database connections then: a stream would otherwise hold one for its whole life,
    and a few dozen open streams would exhaust the pool for every other request."""

    def call():
        try:
            return function(**kwargs)
        finally:
            for connection in connections.all(initialized_only=True):
                if not connection.in_atomic_block:  # (a test's transaction stays open)
                    connection.close()

    return await sync_to_async(call)()


async def stream_user(request: HttpRequest):
    """The user an access token names; ``StreamRefused`` as the API answers without one."""
    token = _token(request)
    if token is None:
        raise StreamRefused(400, TOKEN_NOT_FOUND, code="invalid_request")

    def authenticate():
        access_token = access_token_authenticate(token=token)
        if access_token is None or access_token.user is None:
            return None
        access_token_touch(access_token=access_token, ip_address=client_ip(request))
        return access_token.user

    user = await run_sync(authenticate)
    if user is None:
        raise StreamRefused(401, INVALID_TOKEN, code="invalid_token")
    return user


def decode_prefix(prefix: str | None) -> str:
    """Prefixes arrive URL-encoded (``%2F`` for ``/``); Django has decoded the path already."""
    prefix = prefix or ""
    if len(prefix) > 64:
        raise StreamRefused(400, "An event prefix is at most 64 characters.")
    return prefix


# --- concurrent streams per address -----------------------------------------------------------------
class StreamSlots:
    """At most ``QUANTA_SSE_STREAMS_PER_IP`` open streams per client address, across processes
    with Redis (a sorted set of slots refreshed with each keep-alive, so a crashed process's slots
    expire) and in this process otherwise."""

    def __init__(self) -> None:
        self._local: dict[str, set[str]] = {}

    def clear(self) -> None:
        self._local.clear()

    @staticmethod
    def _key(ip: str) -> str:
        return f"quanta:sse:{ip}"

    @staticmethod
    def _stale_before() -> float:
        return time.time() - 3 * settings.QUANTA_SSE_KEEPALIVE_SECONDS

    @staticmethod
    def _key_seconds() -> int:
        return int(6 * settings.QUANTA_SSE_KEEPALIVE_SECONDS) + 1

    async def acquire(self, ip: str) -> str | None:
        slot, limit = uuid.uuid4().hex, settings.QUANTA_SSE_STREAMS_PER_IP
        if not settings.REDIS_URL:
            held = self._local.setdefault(ip, set())
            if len(held) >= limit:
                return None
            held.add(slot)
            return slot
        key = self._key(ip)
        pipe = hub._aredis().pipeline(transaction=True)
        pipe.zremrangebyscore(key, "-inf", self._stale_before())
        pipe.zadd(key, {slot: time.time()})
        pipe.zcard(key)
        pipe.expire(key, self._key_seconds())
        _, _, held, _ = await pipe.execute()
        if held > limit:
            await hub._aredis().zrem(key, slot)
            return None
        return slot

    async def refresh(self, ip: str, slot: str) -> None:
        if settings.REDIS_URL:
            # The key's expiry too: it was set when the last stream opened, and long-lived
            # streams would otherwise lose every slot with it.
            key = self._key(ip)
            pipe = hub._aredis().pipeline(transaction=False)
            pipe.zadd(key, {slot: time.time()}, xx=True)
            pipe.expire(key, self._key_seconds())
            await pipe.execute()

    async def release(self, ip: str, slot: str) -> None:
        if not settings.REDIS_URL:
            held = self._local.get(ip)
            if held is not None:
                held.discard(slot)
                if not held:
                    del self._local[ip]
            return
        await hub._aredis().zrem(self._key(ip), slot)


slots = StreamSlots()


# --- the stream ---------------------------------------------------------------------------------------
def frame(event) -> str:
    return f"event: {event.name}\ndata: {event.sse_data()}\n\n"


async def _events(subscription: Subscription, *, ip: str, slot: str) -> AsyncIterator[bytes]:
    keepalive = settings.QUANTA_SSE_KEEPALIVE_SECONDS
    hub.subscribe(subscription)
    refreshed = time.monotonic()
    try:
        await hub.listening()
        yield OK
        while not subscription.closed:
            # Refreshed as often as keep-alives are due, also while events keep the stream busy
            # (and no keep-alive is sent), so a live stream's slot never goes stale.
            if time.monotonic() - refreshed >= keepalive:
                await slots.refresh(ip, slot)
                refreshed = time.monotonic()
            try:
                async with asyncio.timeout(keepalive):
                    events, dropped = await subscription.next_batch()
            except TimeoutError:
                yield KEEPALIVE
                continue
            # Everything that arrived together goes out as one write.
            chunk = "".join(frame(event) for event in events)
            if dropped:
                chunk = f": lagged, {dropped} events dropped\n\n" + chunk
            if chunk:
                yield chunk.encode()
    finally:
        hub.unsubscribe(subscription)
        try:
            await slots.release(ip, slot)
        except Exception:  # the slot expires on its own
            logger.warning("Could not release an SSE slot for %s", ip, exc_info=True)


def _stream_headers(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # proxies must pass each event on at once
    return response


async def event_stream_response(
    request: HttpRequest, subscription: Subscription
) -> StreamingHttpResponse | HttpResponse:
    """Stream ``subscription`` to the client (a HEAD request gets the headers only)."""
    if request.method == "HEAD":
        return _stream_headers(HttpResponse(content_type="text/event-stream"))
    ip = client_ip(request)
    slot = await slots.acquire(ip)
    if slot is None:
        limit = settings.QUANTA_SSE_STREAMS_PER_IP
        return StreamRefused(
            429, f"Too many event streams from your address: at most {limit} may be open at once."
        ).response()
    return _stream_headers(
        StreamingHttpResponse(_events(subscription, ip=ip, slot=slot), content_type="text/event-stream")
    )
