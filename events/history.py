"""Recent history: the last N events per user and per product, so a log never opens empty.

With Redis, one capped stream per scope (``XADD … MAXLEN ~ N``, written in the same round trip as
the publish). In the embedded default, a bounded ring in this process's memory. Neither writes
to the database per event.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable

from django.conf import settings

from events.types import Event

KEY_PREFIX = "quanta:history:"


def history_keys(event: Event) -> list[str]:
    """The scopes an event is remembered under: its owner's and its product's."""
    keys = []
    if event.owner_id is not None:
        keys.append(scope_key(user_id=event.owner_id))
    if event.product_id is not None:
        keys.append(scope_key(product_id=event.product_id))
    return keys


def scope_key(*, user_id: int | None = None, product_id: int | None = None) -> str:
    if (user_id is None) == (product_id is None):
        raise ValueError("A history scope is one user or one product.")
    return f"{KEY_PREFIX}user:{user_id}" if user_id is not None else f"{KEY_PREFIX}product:{product_id}"


def scope_keys(*, user_id: int | None = None, product_ids: Iterable[int] = ()) -> list[str]:
    keys = [scope_key(user_id=user_id)] if user_id is not None else []
    return keys + [scope_key(product_id=product_id) for product_id in product_ids]


class RingHistory:
    """The embedded default: bounded deques in this process, safe across threads."""

    def __init__(self) -> None:
        self._rings: dict[str, collections.deque[Event]] = {}
        self._lock = threading.Lock()

    def append(self, event: Event) -> None:
        size = settings.QUANTA_EVENT_HISTORY_SIZE
        with self._lock:
            for key in history_keys(event):
                ring = self._rings.get(key)
                if ring is None or ring.maxlen != size:
                    ring = self._rings[key] = collections.deque(ring or (), maxlen=size)
                ring.append(event)

    def recent(self, keys: Iterable[str], limit: int) -> list[Event]:
        with self._lock:
            found = [event for key in keys for event in self._rings.get(key, ())]
        return merge_recent([found], limit)

    def clear(self) -> None:
        with self._lock:
            self._rings.clear()


def merge_recent(sources: Iterable[list[Event]], limit: int) -> list[Event]:
    """Events from several scopes, oldest first, without the duplicates an event visible in two
    scopes (its owner's and its product's) would bring, at most ``limit`` of the newest."""
    seen: set[tuple] = set()
    merged: list[Event] = []
    for event in sorted((e for source in sources for e in source), key=lambda e: e.published_at):
        identity = (event.published_at, event.coreid, event.name, event.data)
        if identity not in seen:
            seen.add(identity)
            merged.append(event)
    return merged[-limit:] if limit else []


ring = RingHistory()


def _decoded(results: list, limit: int) -> list[Event]:
    return merge_recent([[Event.loads(fields[b"e"]) for _, fields in entries] for entries in results], limit)


def redis_recent(client, keys: Iterable[str], limit: int) -> list[Event]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.xrevrange(key, count=limit)
    return _decoded(pipe.execute(), limit)


async def aredis_recent(client, keys: Iterable[str], limit: int) -> list[Event]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.xrevrange(key, count=limit)
    return _decoded(await pipe.execute(), limit)
