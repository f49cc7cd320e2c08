"""Reading recent events for the console: history narrowed by the Event Logs filter."""

from __future__ import annotations

from django.conf import settings

from events.filters import EventFilter
from events.hub import hub
from events.types import Event


def event_history_for_user(*, user, event_filter: EventFilter, device_id: str | None = None) -> list[Event]:
    """The user's recent events that pass the filter, oldest first."""
    recent = hub.recent(user_id=user.pk, limit=settings.QUANTA_EVENT_HISTORY_SIZE)
    return [
        event
        for event in recent
        if (device_id is None or event.coreid == device_id) and event_filter.matches(event)
    ]
