"""Publishing: every event, from a device, the API, the console or the cloud, enters the bus here:
recorded in the recent history, broadcast to every process's hub, counted for usage, and handed
to the publish hooks (integrations)."""

from __future__ import annotations

import math
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from console.errors import ApplicationError, RateLimited
from events import usage
from events.hooks import publish_hooks_run
from events.hub import hub
from events.ratelimit import buckets
from events.types import API_COREID, DEFAULT_TTL, Event
from events.validation import PublishRefused, validate_data, validate_name


def event_build(
    *,
    name: str,
    data: str | None,
    coreid: str,
    owner_id: int | None,
    product_id: int | None = None,
    ttl: int = DEFAULT_TTL,
    private: bool = True,
    published_at: datetime | None = None,
    data_limit: int | None = None,
    reserved_name_allowed: bool = False,
    device_name: str | None = None,
) -> Event:
    """Validate and build an event (``PublishRefused`` says why not). Only the cloud itself may
    use the reserved ``spark``/``particle`` names."""
    return Event(
        name=validate_name(name, cloud=reserved_name_allowed),
        data=validate_data(data, limit=data_limit),
        published_at=published_at or timezone.now(),
        coreid=coreid,
        owner_id=owner_id,
        product_id=product_id,
        ttl=ttl,
        private=private,
        device_name=device_name,
    )


def event_publish(event: Event | None = None, /, **fields) -> Event:
    """Publish one event from synchronous code: an already-built one, or validate and build it
    from ``fields`` first (``PublishRefused`` says why not)."""
    event = event if event is not None else event_build(**fields)
    hub.publish(event)
    _after_publish(event)
    return event


async def event_apublish(event: Event) -> None:
    """Publish an already-built event from the event loop (the gateway's path)."""
    await hub.apublish(event)
    _after_publish(event)


def event_publish_by_user(
    *, user, name: str, data: str | None, ttl: int = DEFAULT_TTL, private: bool = True, product=None
) -> Event:
    """A user publishes to their own devices' stream (the API and the console's Publish button),
    as Particle allows: 1 event per second on average with bursts of 4, across all processes.
    A refused event does not use up the allowance. To a ``product`` (whose access the caller
    checked), it goes to the product's team and devices, with the product's data limit."""
    try:
        event = event_build(
            name=name,
            data=data,
            coreid=API_COREID,
            owner_id=user.pk if product is None else None,
            product_id=product.id if product is not None else None,
            data_limit=product.event_data_limit if product is not None else None,
            ttl=ttl,
            private=private,
        )
    except PublishRefused as refused:
        raise ApplicationError(
            refused.message, field="data" if refused.code in {"too_large", "bad_data"} else "name"
        ) from None
    wait = buckets.take(
        f"publish:user:{user.pk}",
        rate=settings.QUANTA_PUBLISH_RATE_PER_SECOND,
        capacity=settings.QUANTA_PUBLISH_BURST,
    )
    if wait:
        raise RateLimited(
            f"Too many events: publish at most {settings.QUANTA_PUBLISH_RATE_PER_SECOND:g} per second "
            f"on average, with bursts of {settings.QUANTA_PUBLISH_BURST}. Try again in {wait:.1f} s.",
            retry_after=max(1, math.ceil(wait)),
        )
    return event_publish(event)


def _after_publish(event: Event) -> None:
    usage.counter.count(event)
    publish_hooks_run(event)


def device_status_event(
    *,
    device_id: str,
    owner_id: int | None,
    product_id: int | None,
    online: bool,
    device_name: str | None = None,
) -> Event:
    """``spark/status`` ``online`` / ``offline``, published by the cloud for a device."""
    return Event(
        name="spark/status",
        data="online" if online else "offline",
        published_at=timezone.now(),
        coreid=device_id,
        owner_id=owner_id,
        product_id=product_id,
        device_name=device_name,
    )
