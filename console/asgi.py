"""ASGI entry point: HTTP through Django, websockets through the registry in ``console.realtime``."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
django_asgi_app = get_asgi_application()

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
