"""The per-process hub: the one place an event meets this process's subscribers.

Each server process holds one hub. Published events reach every hub once, through one Redis
pub/sub channel when ``REDIS_URL`` is set or directly in the embedded default, and each hub hands
them to its local subscriptions (console websockets, SSE streams, subscribed devices): never one
channel-layer dispatch per subscriber, which measured ten times slower (docs/architecture.md).

Each subscription has a bounded buffer; when a slow subscriber falls behind, the oldest events
are dropped and counted, so it can be told it lagged, and the server's memory never grows.
Events that arrive together are handed over together (one wake-up per subscriber per batch).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from collections.abc import Iterable

from django.conf import settings

from events import history
from events.types import Event

logger = logging.getLogger(__name__)

_BATCH_LIMIT = 512


class Subscription:
    """What one subscriber may see, and the events waiting for it."""

    def __init__(
        self,
        *,
        user_id: int | None = None,
        product_ids: Iterable[int] = (),
        prefix: str = "",
        device_id: str | None = None,
        buffer_size: int | None = None,
    ) -> None:
        self.user_id = user_id
        self.product_ids = frozenset(product_ids)
        self.prefix = prefix
        self.device_id = device_id
        self.buffer: collections.deque[Event] = collections.deque(
            maxlen=buffer_size or settings.QUANTA_SUBSCRIBER_BUFFER
        )
        self.dropped = 0
        self.closed = False
        self._ready = asyncio.Event()

    def matches(self, event: Event) -> bool:
        visible = (self.user_id is not None and event.owner_id == self.user_id) or (
            event.product_id is not None and event.product_id in self.product_ids
        )
        return (
            visible
            and event.name.startswith(self.prefix)
            and (self.device_id is None or event.coreid == self.device_id)
        )

    def offer(self, event: Event) -> None:
        if len(self.buffer) == self.buffer.maxlen:
            self.dropped += 1  # the deque drops the oldest
        self.buffer.append(event)
        self._ready.set()

    async def next_batch(self) -> tuple[list[Event], int]:
        """Wait for events; return them with how many were dropped since the last call."""
        while not self.buffer and not self.closed:
            self._ready.clear()
            await self._ready.wait()
        events, dropped = list(self.buffer), self.dropped
        self.buffer.clear()
        self.dropped = 0
        return events, dropped

    def close(self) -> None:
        self.closed = True
        self._ready.set()


class Hub:
    def __init__(self) -> None:
        self.by_user: dict[int, set[Subscription]] = collections.defaultdict(set)
        self.by_product: dict[int, set[Subscription]] = collections.defaultdict(set)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._listener: asyncio.Task | None = None
        self._listening = asyncio.Event()
        self._sync_redis = None
        self._async_redis = None
        self._async_redis_loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        # Events published from the event loop wait here for the pipeline in flight to return,
        # then go together in the next one: one round trip for everything that arrived meanwhile
        # (a quarter of the CPU per event under load, measured), and no added wait when idle.
        self._outbox: list[tuple[Event, asyncio.Future]] = []
        self._outbox_task: asyncio.Task | None = None

    # --- subscribing (on the server's event loop) ----------------------------------------------
    def subscribe(self, subscription: Subscription) -> Subscription:
        self._bind(asyncio.get_running_loop())
        if subscription.user_id is not None:
            self.by_user[subscription.user_id].add(subscription)
        for product_id in subscription.product_ids:
            self.by_product[product_id].add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.close()
        if subscription.user_id is not None:
            self._discard(self.by_user, subscription.user_id, subscription)
        for product_id in subscription.product_ids:
            self._discard(self.by_product, product_id, subscription)

    @staticmethod
    def _discard(index: dict, key: int, subscription: Subscription) -> None:
        members = index.get(key)
        if members is not None:
            members.discard(subscription)
            if not members:
                del index[key]

    @property
    def subscriber_count(self) -> int:
        return len({s for members in (*self.by_user.values(), *self.by_product.values()) for s in members})

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.loop is loop:
            return
        # A new loop (a test's, or a restarted server's): start over on it.
        if self._listener is not None:
            self._listener.cancel()
        self.by_user.clear()
        self.by_product.clear()
        self.loop = loop
        self._listening = asyncio.Event()
        if settings.REDIS_URL:
            self._listener = loop.create_task(self._listen())
        else:
            self._listener = None
            self._listening.set()

    async def listening(self, timeout: float = 2.0) -> None:
        """Wait (briefly) until this process's Redis subscription is live, so a stream that says it
        is connected does not miss an event published right after."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._listening.wait()

    # --- dispatching ------------------------------------------------------------------------------
    def dispatch(self, events: list[Event]) -> int:
        """Hand events to matching local subscriptions; returns the number of deliveries."""
        delivered = 0
        for event in events:
            targets = set(self.by_user.get(event.owner_id, ())) if event.owner_id is not None else set()
            if event.product_id is not None:
                targets.update(self.by_product.get(event.product_id, ()))
            for subscription in targets:
                if subscription.matches(event):
                    subscription.offer(event)
                    delivered += 1
        return delivered

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        while True:
            client = aioredis.Redis.from_url(settings.REDIS_URL)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(settings.QUANTA_EVENT_CHANNEL)
                    # Live once Redis confirms: only then is every later publish sure to arrive.
                    while (await pubsub.get_message(timeout=5) or {}).get("type") != "subscribe":
                        pass
                    self._listening.set()
                    while True:
                        message = await pubsub.get_message(timeout=None)
                        batch = [message] if message else []
                        # Coalesce what has already arrived, then yield so sockets can flush.
                        while len(batch) < _BATCH_LIMIT:
                            more = await pubsub.get_message(timeout=0)
                            if more is None:
                                break
                            batch.append(more)
                        self.dispatch([Event.loads(m["data"]) for m in batch if m.get("type") == "message"])
                        await asyncio.sleep(0)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Event hub lost its Redis subscription; reconnecting")
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()

    # --- publishing (from anywhere) --------------------------------------------------------------
    # Publishing records the event in the recent history and broadcasts it to every process's hub:
    # with Redis, the history XADDs and the PUBLISH go in one pipelined round trip.
    def publish(self, event: Event) -> None:
        """Publish from synchronous code (any thread)."""
        if settings.REDIS_URL:
            self._pipeline(self._redis(), event).execute()
            return
        history.ring.append(event)
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.dispatch, [event])

    async def apublish(self, event: Event) -> None:
        """Publish from the event loop."""
        if settings.REDIS_URL:
            loop = asyncio.get_running_loop()
            sent = loop.create_future()
            self._outbox.append((event, sent))
            if (
                self._outbox_task is None
                or self._outbox_task.done()
                or self._outbox_task.get_loop() is not loop
            ):
                self._outbox_task = loop.create_task(self._send_outbox())
            await sent
        elif self.loop is asyncio.get_running_loop():
            history.ring.append(event)
            self.dispatch([event])
        else:
            self.publish(event)

    async def _send_outbox(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox[:_BATCH_LIMIT], self._outbox[_BATCH_LIMIT:]
            try:
                await self._pipeline(self._aredis(), *(event for event, _ in batch)).execute()
            except Exception as error:
                for _, sent in batch:
                    if not sent.done():
                        sent.set_exception(error)
            else:
                for _, sent in batch:
                    if not sent.done():
                        sent.set_result(None)

    @staticmethod
    def _pipeline(client, *events: Event):
        pipe = client.pipeline(transaction=False)
        size = settings.QUANTA_EVENT_HISTORY_SIZE
        for event in events:
            raw = event.dumps()
            for key in history.history_keys(event):
                pipe.xadd(key, {"e": raw}, maxlen=size, approximate=True)
            pipe.publish(settings.QUANTA_EVENT_CHANNEL, raw)
        return pipe

    def recent(
        self, *, user_id: int | None = None, product_ids: Iterable[int] = (), limit: int
    ) -> list[Event]:
        """The newest ``limit`` events of a user's devices and of products, oldest first."""
        keys = history.scope_keys(user_id=user_id, product_ids=product_ids)
        if not keys or limit <= 0:
            return []
        if settings.REDIS_URL:
            return history.redis_recent(self._redis(), keys, limit)
        return history.ring.recent(keys, limit)

    async def arecent(
        self, *, user_id: int | None = None, product_ids: Iterable[int] = (), limit: int
    ) -> list[Event]:
        """``recent`` from the event loop, without blocking it on Redis."""
        keys = history.scope_keys(user_id=user_id, product_ids=product_ids)
        if not keys or limit <= 0:
            return []
        if settings.REDIS_URL:
            return await history.aredis_recent(self._aredis(), keys, limit)
        return history.ring.recent(keys, limit)

    def _redis(self):
        if self._sync_redis is None:
            import redis

            with self._lock:
                self._sync_redis = self._sync_redis or redis.Redis.from_url(settings.REDIS_URL)
        return self._sync_redis

    def _aredis(self):
        loop = asyncio.get_running_loop()
        if self._async_redis is None or self._async_redis_loop is not loop:
            import redis.asyncio as aioredis

            # Bounded, and waiting for a free connection rather than failing: a thousand streams
            # opened at once must queue their slot bookkeeping, not exhaust Redis connections.
            pool = aioredis.BlockingConnectionPool.from_url(
                settings.REDIS_URL, max_connections=settings.QUANTA_REDIS_STREAM_CONNECTIONS, timeout=20
            )
            self._async_redis = aioredis.Redis(connection_pool=pool)
            self._async_redis_loop = loop
        return self._async_redis


hub = Hub()
