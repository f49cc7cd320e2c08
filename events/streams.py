"""Live event streams for console tabs, fed by this process's hub."""

from __future__ import annotations

from collections.abc import AsyncIterator

from events.hub import Subscription, hub


class EventStream:
    """The events a user may see, optionally narrowed to a name prefix and one device."""

    def __init__(self, user, params: dict) -> None:
        prefix = params.get("prefix") or ""
        device_id = params.get("device_id") or None
        if not isinstance(prefix, str) or len(prefix) > 64:
            raise ValueError("prefix is a string of at most 64 characters.")
        if device_id is not None and not isinstance(device_id, str):
            raise ValueError("device_id is a device ID.")
        self.subscription = hub.subscribe(Subscription(user_id=user.pk, prefix=prefix, device_id=device_id))

    async def messages(self) -> AsyncIterator[dict]:
        while not self.subscription.closed:
            events, dropped = await self.subscription.next_batch()
            if events or dropped:
                yield {"events": [event.wire() for event in events], "dropped": dropped}

    def close(self) -> None:
        hub.unsubscribe(self.subscription)
