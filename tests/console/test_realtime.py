"""The console's websocket: session-authenticated, Origin-checked, notifications per user."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import Client

from console.asgi import application
from console.realtime import user_group, websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return (
        f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"
    )


def _communicator(cookie: str | None = None, origin: str = "http://localhost") -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode()), (b"host", b"localhost")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, "/ws/console", headers=headers)


async def refused_code(communicator: WebsocketCommunicator) -> int | None:
    """The close code of a refused connection (accepted then closed, or a failed handshake)."""
    connected, code = await communicator.connect()
    if not connected:
        return code
    message = await communicator.receive_output()
    assert message["type"] == "websocket.close", f"expected a close, got {message}"
    return message.get("code")


async def test_anonymous_is_refused():
    assert await refused_code(_communicator()) == 4401


async def test_foreign_origin_is_refused(user):
    communicator = _communicator(await sync_to_async(_session_cookie)(user), origin="https://evil.example")
    connected, _ = await communicator.connect()
    assert not connected


async def test_signed_in_user_connects_pings_and_gets_notifications(user, other_user):
    communicator = _communicator(await sync_to_async(_session_cookie)(user))
    connected, _ = await communicator.connect()
    assert connected
    assert await communicator.receive_json_from() == {"type": "hello", "user": user.email}

    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}

    await communicator.send_json_to({"type": "bogus"})
    assert (await communicator.receive_json_from())["type"] == "error"

    layer = get_channel_layer()
    await layer.group_send(
        user_group(other_user.pk), {"type": "notify", "level": "info", "message": "not yours"}
    )
    await layer.group_send(
        user_group(user.pk), {"type": "notify", "level": "success", "message": "hello ada"}
    )
    assert await communicator.receive_json_from() == {
        "type": "notify",
        "level": "success",
        "message": "hello ada",
    }
    assert await communicator.receive_nothing()
    await communicator.disconnect()


def test_every_browser_websocket_route_refuses_anonymous():
    """Routes registered later are covered here without anyone listing them."""
    import asyncio

    async def check(route: str) -> None:
        communicator = WebsocketCommunicator(
            application, "/" + route, headers=[(b"origin", b"http://localhost")]
        )
        assert await refused_code(communicator) is not None, f"/{route} accepted an anonymous websocket"

    for pattern in websocket_urlpatterns(browser_only=True):
        asyncio.run(check(str(pattern.pattern)))
