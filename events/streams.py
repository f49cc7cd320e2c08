"""Live event streams for console tabs (the Event Logs component), fed by this process's hub.

The first message carries the recent history, filtered; the following ones carry live events
that pass the filter, with how many were dropped if the tab fell behind. Filtering happens here,
on the server, so the browser only renders.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from channels.db import database_sync_to_async
from django.conf import settings

from events.filters import FilterError, parse_filter
from events.hub import Subscription, hub
from events.types import Event
from products.selectors import product_ids_for_user


def _identity(event: Event) -> tuple:
    return (event.published_at, event.coreid, event.name, event.data)


class EventStream:
    """The events a user may see, narrowed to a name prefix, one device and a filter."""

    def __init__(self, user, params: dict, *, product_ids: Iterable[int] = ()) -> None:
        prefix = params.get("prefix") or ""
        device_id = params.get("device_id") or None
        text = params.get("filter") or ""
        if not isinstance(prefix, str) or len(prefix) > 64:
            raise ValueError("prefix is a string of at most 64 characters.")
        if device_id is not None and not isinstance(device_id, str):
            raise ValueError("device_id is a device ID.")
        if not isinstance(text, str):
            raise ValueError("filter is a string.")
        try:
            self.filter = parse_filter(text)
        except FilterError as error:
            raise ValueError(error.message) from None
        self.with_history = params.get("history", True) is not False
        self.user_id = user.pk if user is not None else None  # None: the products' events only
        self.product_ids = tuple(product_ids)
        self.subscription = hub.subscribe(
            Subscription(
                user_id=self.user_id, product_ids=self.product_ids, prefix=prefix, device_id=device_id
            )
        )

    @classmethod
    async def open(cls, user, params: dict) -> EventStream:
        """The console's factory: the user's own events and those of every product team they are
        on, or with ``product_id`` only that product's (a product's pages)."""
        product_ids = await database_sync_to_async(product_ids_for_user)(user=user)
        product_id = params.get("product_id")
        if product_id is None:
            return cls(user, params, product_ids=product_ids)
        if not isinstance(product_id, int) or product_id not in product_ids:
            raise ValueError("No such product on your teams.")
        return cls(None, params, product_ids=[product_id])

    def _keep(self, event: Event) -> bool:
        return self.subscription.matches(event) and self.filter.matches(event)

    async def messages(self) -> AsyncIterator[dict]:
        seen: set[tuple] = set()
        await hub.listening()
        if self.with_history:
            # Subscribed first, then read: an event published in between is in both, once shown.
            recent = await hub.arecent(
                user_id=self.user_id, product_ids=self.product_ids, limit=settings.QUANTA_EVENT_HISTORY_SIZE
            )
            kept = [event for event in recent if self._keep(event)]
            seen = {_identity(event) for event in recent[-50:]}
            yield {"history": [event.console_wire() for event in kept], "events": [], "dropped": 0}
        while not self.subscription.closed:
            events, dropped = await self.subscription.next_batch()
            if seen:
                events = [event for event in events if _identity(event) not in seen]
                seen = set()
            events = [event for event in events if self.filter.matches(event)]
            if events or dropped:
                # Pre-encoded: each event's JSON is made once for all the tabs it reaches.
                yield f'{{"events":[{",".join(event.console_json() for event in events)}],"dropped":{dropped}}}'

    def close(self) -> None:
        hub.unsubscribe(self.subscription)
