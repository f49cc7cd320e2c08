"""Websocket plumbing: the route registry later apps add to, and the console's per-tab consumer.

Browser routes are wrapped with session authentication and an Origin check; device routes (the
gateway) are registered raw, since devices authenticate with their own keys and send no Origin.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from channels.security.websocket import AllowedHostsOriginValidator
from django.db import transaction
from django.urls import URLPattern, path

CLOSE_UNAUTHENTICATED = 4401

_routes: list[URLPattern] = []


def websocket_route_register(route: str, consumer_app: Any, *, browser: bool = True) -> None:
    """Register a websocket route. ``browser`` routes get the session user and an Origin check."""
    app = AllowedHostsOriginValidator(AuthMiddlewareStack(consumer_app)) if browser else consumer_app
    _routes.append(path(route, app))


def websocket_urlpatterns() -> list[URLPattern]:
    return list(_routes)


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def user_notify(*, user_id: int, message: str, level: str = "info") -> None:
    """Show a toast in every open console tab of the user, once the current transaction commits."""
    layer = get_channel_layer()
    if layer is None:
        return
    payload = {"type": "notify", "level": level, "message": message}
    transaction.on_commit(lambda: async_to_sync(layer.group_send)(user_group(user_id), payload))


class ConsoleConsumer(AsyncJsonWebsocketConsumer):
    """One connection per console tab: notifications now, event streams as apps register them."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Accept, then close with our code: a refused handshake would look like a network
            # error to the browser, which would keep retrying.
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "user": user.email})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.send_json({"type": "error", "message": f"Unknown message type {kind!r}."})

    async def notify(self, event: dict) -> None:
        await self.send_json({"type": "notify", "level": event["level"], "message": event["message"]})


websocket_route_register("ws/console", ConsoleConsumer.as_asgi())
