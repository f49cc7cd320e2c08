"""Websocket plumbing: the route registry later apps add to, and the console's per-tab consumer.

Browser routes are wrapped with session authentication and an Origin check; device routes (the
gateway) are registered raw, since devices authenticate with their own keys and send no Origin.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from asgiref.sync import async_to_sync
from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from channels.security.websocket import AllowedHostsOriginValidator
from django.db import transaction
from django.urls import URLPattern, path

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
MAX_STREAMS_PER_CONNECTION = 8

_routes: list[URLPattern] = []
_browser_routes: set[str] = set()


class Stream(Protocol):
    """A live feed a console tab subscribes to (the events app offers "events")."""

    def messages(self) -> AsyncIterator[dict | str]: ...  # a dict, or a JSON object's text

    def close(self) -> None: ...


# name -> factory(user, params) -> Stream (or an awaitable of one, when opening it reads the
# database); raises ValueError with a message for bad params.
StreamFactory = Callable[[Any, dict], Stream]
_streams: dict[str, StreamFactory] = {}


def stream_register(name: str, factory: StreamFactory) -> None:
    """Offer a stream to console tabs; higher apps register theirs in ``AppConfig.ready()``."""
    _streams[name] = factory


def websocket_route_register(route: str, consumer_app: Any, *, browser: bool = True) -> None:
    """Register a websocket route. ``browser`` routes get the session user and an Origin check."""
    app = AllowedHostsOriginValidator(AuthMiddlewareStack(consumer_app)) if browser else consumer_app
    _routes.append(path(route, app))
    if browser:
        _browser_routes.add(route)


def websocket_urlpatterns(*, browser_only: bool = False) -> list[URLPattern]:
    return [p for p in _routes if not browser_only or str(p.pattern) in _browser_routes]


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
        self.user = user
        self.streams: dict[str, tuple[Stream, asyncio.Task]] = {}
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "user": user.email})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        for stream_id in list(getattr(self, "streams", {})):
            self._stop_stream(stream_id)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "subscribe":
            await self._subscribe(content)
        elif kind == "unsubscribe":
            self._stop_stream(str(content.get("id")))
        else:
            await self.send_json({"type": "error", "message": f"Unknown message type {kind!r}."})

    async def _subscribe(self, content: dict) -> None:
        stream_id, name = str(content.get("id", "")), content.get("stream")
        factory = _streams.get(name)
        if not stream_id or factory is None:
            await self.send_json({"type": "error", "id": stream_id, "message": f"Unknown stream {name!r}."})
            return
        if stream_id not in self.streams and len(self.streams) >= MAX_STREAMS_PER_CONNECTION:
            await self.send_json(
                {"type": "error", "id": stream_id, "message": "Too many streams on one connection."}
            )
            return
        # A subscription under a taken id replaces that stream, also when the new one is refused.
        self._stop_stream(stream_id)
        try:
            stream = factory(self.user, content.get("params") or {})
            if inspect.isawaitable(stream):
                stream = await stream
        except ValueError as error:
            await self.send_json({"type": "error", "id": stream_id, "message": str(error)})
            return
        self.streams[stream_id] = (stream, asyncio.ensure_future(self._forward(stream_id, stream)))
        await self.send_json({"type": "subscribed", "id": stream_id})

    async def _forward(self, stream_id: str, stream: Stream) -> None:
        try:
            async for message in stream.messages():
                if isinstance(message, str):  # a JSON object the stream encoded itself
                    await self.send(text_data=f'{{"type":"stream","id":{json.dumps(stream_id)},{message[1:]}')
                else:
                    await self.send_json({"type": "stream", "id": stream_id, **message})
        except asyncio.CancelledError:
            raise
        except Exception:
            # Tell the tab instead of leaving it waiting on a stream that died.
            logger.exception("Console stream %s failed", stream_id)
            self.streams.pop(stream_id, None)
            stream.close()
            await self.send_json(
                {"type": "error", "id": stream_id, "message": "This live view stopped; reload the page."}
            )

    def _stop_stream(self, stream_id: str) -> None:
        entry = self.streams.pop(stream_id, None)
        if entry is not None:
            stream, task = entry
            stream.close()
            task.cancel()

    async def notify(self, event: dict) -> None:
        await self.send_json({"type": "notify", "level": event["level"], "message": event["message"]})


websocket_route_register("ws/console", ConsoleConsumer.as_asgi())
