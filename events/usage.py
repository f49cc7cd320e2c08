"""Usage counters: events per product (or per user, outside products) per day, counted in memory
and added to the database in one batched upsert every few seconds."""

from __future__ import annotations

import atexit
import collections
import logging
import threading
import time
from datetime import UTC, date

from django.conf import settings
from django.db import connection, connections

from events.models import EventCount
from events.types import Event

logger = logging.getLogger(__name__)


def usage_scope(event: Event) -> str | None:
    if event.product_id is not None:
        return f"product:{event.product_id}"
    if event.owner_id is not None:
        return f"user:{event.owner_id}"
    return None


def event_counts_add(counts: dict[tuple[str, date], int]) -> None:
    """Add to the per-day counters in one statement."""
    if not counts:
        return
    table = EventCount._meta.db_table
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} (scope, day, count) VALUES (%s, %s, %s) "  # noqa: S608
            f"ON CONFLICT (scope, day) DO UPDATE SET count = {table}.count + excluded.count",
            [(scope, day, count) for (scope, day), count in counts.items()],
        )


class UsageCounter:
    def __init__(self) -> None:
        self._counts: collections.Counter[tuple[str, date]] = collections.Counter()
        self._lock = threading.Lock()
        self._flushing = False
        self._flushed_at = time.monotonic()

    def count(self, event: Event) -> None:
        scope = usage_scope(event)
        if scope is None:
            return
        with self._lock:
            self._counts[(scope, event.published_at.astimezone(UTC).date())] += 1
            due = (
                not self._flushing
                and time.monotonic() - self._flushed_at >= settings.QUANTA_EVENT_USAGE_FLUSH_SECONDS
            )
            if due:
                self._flushing = True
        if due:
            # Off the publishing path (often the event loop): a short-lived thread does the write.
            threading.Thread(target=self._flush_in_thread, name="event-usage-flush", daemon=True).start()

    def discard(self) -> None:
        """Forget what has not been written (tests, which must not flush into another database)."""
        with self._lock:
            self._counts.clear()

    def pending(self) -> dict[tuple[str, date], int]:
        with self._lock:
            return dict(self._counts)

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, collections.Counter()
            self._flushed_at = time.monotonic()
        try:
            event_counts_add(counts)
        except Exception:
            # Keep the counts for the next flush rather than lose them.
            with self._lock:
                self._counts.update(counts)
            raise

    def _flush_in_thread(self) -> None:
        try:
            self.flush()
        except Exception:
            logger.exception("Could not record event usage; will retry")
        finally:
            connections.close_all()
            with self._lock:
                self._flushing = False


counter = UsageCounter()


@atexit.register
def _flush_at_exit() -> None:
    if counter.pending():
        try:
            counter.flush()
        except Exception:
            logger.exception("Could not record event usage at exit")
