"""In-process scheduler for the embedded default: runs Celery's beat schedule without a broker.

With ``REDIS_URL`` set, Celery beat runs the same schedule (``CELERY_BEAT_SCHEDULE``) instead.
Started lazily on the first request, since daphne has no ASGI lifespan.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from celery.schedules import schedule as celery_schedule
from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_started = False


def _as_schedule(value):
    """Beat accepts a timedelta or a number of seconds as well as schedule objects; so do we."""
    if isinstance(value, timedelta):
        return celery_schedule(run_every=value)
    if isinstance(value, int | float):
        return celery_schedule(run_every=timedelta(seconds=value))
    return value


class InProcessScheduler:
    def __init__(self, schedule: dict, *, now: datetime | None = None) -> None:
        start = now or datetime.now(UTC)
        self.entries = {
            name: {**entry, "schedule": _as_schedule(entry["schedule"]), "last_run_at": start}
            for name, entry in schedule.items()
        }
        self.tasks_loaded = False

    def run_pending(self) -> float:
        """Run the entries that are due; return the seconds until the next check."""
        from console.celery import app

        if not self.tasks_loaded:
            app.loader.import_default_modules()  # registers the tasks the schedule names
            self.tasks_loaded = True
        wait = 60.0
        for name, entry in self.entries.items():
            due, next_check = entry["schedule"].is_due(entry["last_run_at"])
            if due:
                entry["last_run_at"] = datetime.now(UTC)
                try:
                    app.tasks[entry["task"]].apply(args=entry.get("args", ()), kwargs=entry.get("kwargs", {}))
                except Exception:
                    logger.exception("Periodic job %s failed", name)
            wait = min(wait, max(float(next_check), 1.0))
        return wait

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            wait = self.run_pending()
            close_old_connections()  # this thread's connection must not outlive its use
            stop.wait(wait)


def ensure_started() -> None:
    """Start the scheduler thread once per process, when the embedded default needs it."""
    global _started
    if _started or settings.REDIS_URL or not settings.QUANTA_INPROCESS_SCHEDULER:
        return
    with _lock:
        if _started:
            return
        scheduler = InProcessScheduler(settings.CELERY_BEAT_SCHEDULE)
        thread = threading.Thread(
            target=scheduler.run_forever, args=(threading.Event(),), name="quanta-scheduler", daemon=True
        )
        thread.start()
        _started = True
