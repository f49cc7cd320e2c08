"""ASGI entry point: HTTP through Django, websockets through the registry in ``console.realtime``."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
django_asgi_app = get_asgi_application()

# A server holding thousands of connections has a large heap, and Python's default collection
# thresholds stop every connection for a full pass every few seconds (254-309 ms pauses measured
# under fan-out, docs/performance.md). What is loaded by now lives as long as the process: freeze
# it out of the collector's passes, and collect the young generation far less often.
gc.freeze()
gc.set_threshold(*(int(value) for value in os.environ.get("QUANTA_GC_THRESHOLDS", "50000,20,100").split(",")))

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from console import realtime, scheduler  # noqa: E402


class StartBackgroundServices:
    """Starts per-process services on the first connection (daphne sends no lifespan events)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        scheduler.ensure_started()
        return await self.app(scope, receive, send)


application = StartBackgroundServices(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": URLRouter(realtime.websocket_urlpatterns()),
        }
    )
)
