"""The Celery application.

With ``REDIS_URL`` set, tasks go to Redis and run on workers (one per queue in production, see the
Procfile). Without it, tasks run in-process (``task_always_eager``) and the in-process scheduler in
``console.scheduler`` runs the beat schedule.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("quanta")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Retries are bounded everywhere: a task that declares autoretry gets these unless it says otherwise.
app.conf.task_annotations = {"*": {"max_retries": 5, "retry_backoff": True, "retry_backoff_max": 600}}
