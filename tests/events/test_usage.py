"""Usage counters (events per product or per user per UTC day, added to the database in batches)
and the publish hooks every published event is handed to."""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from django.db import connections

from events import hooks, usage
from events.hub import hub
from events.models import EventCount
from events.services import event_apublish, event_publish
from events.types import Event
from events.usage import UsageCounter

OWNER, PRODUCT = 1, 500
DAY = date(2026, 3, 1)


@pytest.fixture(autouse=True)
def _no_background_usage_flush(settings):
    settings.QUANTA_EVENT_USAGE_FLUSH_SECONDS = 3600


@pytest.fixture
def own_hooks(monkeypatch) -> list:
    """An empty hook list for the test; the registered hooks come back afterwards."""
    registered: list = []
    monkeypatch.setattr(hooks, "_hooks", registered)
    return registered


def event(*, owner_id=OWNER, product_id=None, at=datetime(2026, 3, 1, 12, tzinfo=UTC), name="temp") -> Event:
    return Event(
        name=name, data="1", published_at=at, coreid="a" * 24, owner_id=owner_id, product_id=product_id
    )


def rows() -> dict[tuple[str, date], int]:
    return {(row.scope, row.day): row.count for row in EventCount.objects.all()}


# --- Counting ---------------------------------------------------------------------------------------------
def test_counts_per_product_or_else_per_user_per_utc_day():
    counter = UsageCounter()
    late_in_berlin = datetime(2026, 3, 2, 0, 30, tzinfo=timezone(timedelta(hours=1)))  # 23:30 UTC
    early_in_new_york = datetime(2026, 3, 1, 20, 0, tzinfo=timezone(timedelta(hours=-5)))  # 01:00 UTC
    for published in (
        event(),
        event(at=late_in_berlin),
        event(at=early_in_new_york),
        event(product_id=PRODUCT),  # a product's device counts for the product, not its owner
        event(owner_id=None, product_id=PRODUCT),
        event(owner_id=2),
        event(owner_id=None),  # nobody's: not counted
    ):
        counter.count(published)
    assert counter.pending() == {
        ("user:1", DAY): 2,
        ("user:1", date(2026, 3, 2)): 1,
        ("product:500", DAY): 2,
        ("user:2", DAY): 1,
    }
    assert usage.usage_scope(event(owner_id=None)) is None


def test_flush_upserts_and_twice_adds_up(db):
    counter = UsageCounter()
    for _ in range(3):
        counter.count(event())
    counter.count(event(product_id=PRODUCT))
    counter.flush()
    assert counter.pending() == {}
    assert rows() == {("user:1", DAY): 3, ("product:500", DAY): 1}

    counter.count(event())
    counter.count(event(at=datetime(2026, 3, 2, 1, tzinfo=UTC)))
    counter.flush()
    assert rows() == {("user:1", DAY): 4, ("user:1", date(2026, 3, 2)): 1, ("product:500", DAY): 1}

    counter.flush()  # nothing pending: nothing written
    assert rows() == {("user:1", DAY): 4, ("user:1", date(2026, 3, 2)): 1, ("product:500", DAY): 1}


def test_a_failing_flush_keeps_the_counts(db, monkeypatch):
    counter = UsageCounter()
    counter.count(event())
    counter.count(event())

    def broken(counts):
        raise RuntimeError("database down")

    monkeypatch.setattr(usage, "event_counts_add", broken)
    with pytest.raises(RuntimeError, match="database down"):
        counter.flush()
    assert counter.pending() == {("user:1", DAY): 2}
    assert rows() == {}

    counter.count(event())  # counted meanwhile: added to what was kept
    monkeypatch.undo()
    counter.flush()
    assert counter.pending() == {}
    assert rows() == {("user:1", DAY): 3}


def test_discard_forgets_what_was_not_written(db):
    counter = UsageCounter()
    counter.count(event())
    counter.discard()
    counter.flush()
    assert (counter.pending(), rows()) == ({}, {})


@pytest.mark.usefixtures("transactional_db")
def test_the_flush_interval_triggers_a_background_flush(settings):
    settings.QUANTA_EVENT_USAGE_FLUSH_SECONDS = 0
    counter = UsageCounter()
    counter.count(event())
    deadline = time.monotonic() + 5
    while rows() != {("user:1", DAY): 1} and time.monotonic() < deadline:
        time.sleep(0.02)
    assert rows() == {("user:1", DAY): 1}
    while counter._flushing and time.monotonic() < deadline:
        time.sleep(0.01)
    assert counter.pending() == {}

    # Not due yet: counted, not written.
    settings.QUANTA_EVENT_USAGE_FLUSH_SECONDS = 3600
    counter.count(event())
    time.sleep(0.1)
    assert counter.pending() == {("user:1", DAY): 1}
    assert rows() == {("user:1", DAY): 1}
    connections.close_all()


@pytest.mark.usefixtures("transactional_db")
def test_a_failing_background_flush_logs_and_keeps_the_counts(settings, monkeypatch, caplog):
    settings.QUANTA_EVENT_USAGE_FLUSH_SECONDS = 0

    def broken(counts):
        raise RuntimeError("database down")

    monkeypatch.setattr(usage, "event_counts_add", broken)
    counter = UsageCounter()
    with caplog.at_level(logging.ERROR, logger="events.usage"):
        counter.count(event())
        deadline = time.monotonic() + 5
        while "Could not record event usage" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.02)
        while counter._flushing and time.monotonic() < deadline:
            time.sleep(0.01)
    assert "Could not record event usage; will retry" in caplog.text
    assert counter.pending() == {("user:1", DAY): 1}
    assert rows() == {}


def test_publishing_counts_usage():
    usage.counter.discard()
    event_publish(event(product_id=PRODUCT))
    event_publish(name="temp", data="1", coreid="api", owner_id=OWNER, published_at=event().published_at)
    event_publish(event(owner_id=None))
    assert usage.counter.pending() == {("product:500", DAY): 1, ("user:1", DAY): 1}


# --- Publish hooks ----------------------------------------------------------------------------------------
def test_hooks_hear_every_published_event(own_hooks):
    heard: list[Event] = []
    hooks.publish_hook_register(heard.append)
    hooks.publish_hook_register(heard.append)  # registering twice is once
    assert own_hooks == [heard.append]

    first = event_publish(event(name="one"))
    second = event_publish(name="two", data=None, coreid="api", owner_id=OWNER)
    assert heard == [first, second]


async def test_hooks_hear_events_published_on_the_loop(own_hooks):
    heard: list[Event] = []
    hooks.publish_hook_register(heard.append)
    published = event(name="from-the-loop")
    await event_apublish(published)
    assert heard == [published]


def test_a_failing_hook_does_not_stop_publishing(own_hooks, caplog):
    heard: list[str] = []

    def broken(event):
        raise RuntimeError("integration down")

    hooks.publish_hook_register(broken)
    hooks.publish_hook_register(lambda event: heard.append(event.name))
    later = datetime(2026, 3, 1, 12, 1, tzinfo=UTC)
    with caplog.at_level(logging.ERROR, logger="events.hooks"):
        first = event_publish(event(name="still-published"))
        second = event_publish(event(name="and-again", at=later))
    assert heard == ["still-published", "and-again"]
    assert caplog.text.count("Publish hook") == 2
    assert "integration down" in caplog.text
    assert hub.recent(user_id=OWNER, limit=5) == [first, second]
    assert usage.counter.pending() == {("user:1", DAY): 2}
