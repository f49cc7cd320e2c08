"""Publishing: every event, from a device, the API or the console, enters the bus here."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from events.hub import hub
from events.types import DEFAULT_TTL, Event
from events.validation import validate_data, validate_name


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
    )


def event_publish(**fields) -> Event:
    """Validate, build and publish one event from synchronous code."""
    event = event_build(**fields)
    hub.publish(event)
    return event


async def event_apublish(event: Event) -> None:
    """Publish an already-built event from the event loop (the gateway's path)."""
    await hub.apublish(event)


def device_status_event(
    *, device_id: str, owner_id: int | None, product_id: int | None, online: bool
) -> Event:
    """``spark/status`` ``online`` / ``offline``, published by the cloud for a device."""
    return Event(
        name="spark/status",
        data="online" if online else "offline",
        published_at=timezone.now(),
        coreid=device_id,
        owner_id=owner_id,
        product_id=product_id,
    )
