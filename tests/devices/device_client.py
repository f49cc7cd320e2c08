"""A device speaking the gateway protocol (docs/device-protocol.md) through a
``WebsocketCommunicator``, and small helpers for the tests that drive it."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

from channels.testing import WebsocketCommunicator
from django.utils import timezone

from console.asgi import application
from devices.keys import sign
from devices.runtime import runtime
from events.hub import Subscription, hub
from events.types import Event

DEFAULT_IP = "192.0.2.10"
PROBE_USER_ID = -1


class DeviceClient:
    """One device connection. ``handshake()`` does the challenge/hello/welcome dance."""

    def __init__(
        self,
        device_id: str | None = None,
        private_key: bytes | None = None,
        *,
        platform_id: int | None = None,
        ip: str = DEFAULT_IP,
    ) -> None:
        self.device_id = device_id
        self.private_key = private_key
        self.platform_id = platform_id
        self.communicator = WebsocketCommunicator(application, "/device/v1")
        # The communicator's scope has no client address; the gateway records and rate-limits by it.
        self.communicator.scope["client"] = [ip, 50000]
        self.challenge: dict | None = None
        self.welcome: dict | None = None

    @classmethod
    def of(cls, provisioned, **kwargs) -> DeviceClient:
        """A client for a ``devices.services.ProvisionedDevice``."""
        return cls(
            provisioned.device.id,
            provisioned.keys.private_key,
            platform_id=provisioned.device.platform_id,
            **kwargs,
        )

    # --- the handshake ---------------------------------------------------------------------------
    async def connect(self) -> dict:
        connected, _ = await self.communicator.connect()
        assert connected, "the gateway refused the websocket"
        self.challenge = await self.receive()
        assert self.challenge["type"] == "challenge", self.challenge
        return self.challenge

    @property
    def nonce(self) -> bytes:
        assert self.challenge is not None, "connect first"
        return base64.b64decode(self.challenge["nonce"])

    def signature(self, nonce: bytes | None = None, private_key: bytes | None = None) -> str:
        key = private_key or self.private_key
        assert key is not None, "this client has no key"
        return base64.b64encode(sign(key, self.nonce if nonce is None else nonce)).decode()

    def hello_frame(self, **fields: Any) -> dict:
        frame = {
            "type": "hello",
            "device_id": self.device_id,
            "signature": self.signature() if self.private_key else "",
            "platform_id": self.platform_id,
            "product_id": 94,
            "product_version": 3,
            "system_version": "6.1.1",
            "functions": ["led"],
            "variables": {"temp": "double"},
        }
        frame.update(fields)
        return {key: value for key, value in frame.items() if value is not None}

    async def hello(self, **fields: Any) -> dict | int:
        """Send a hello; the gateway's answer: a frame, or the close code if it closed."""
        if self.challenge is None:
            await self.connect()
        await self.send(self.hello_frame(**fields))
        return await self.receive_or_close()

    async def handshake(self, **fields: Any) -> dict:
        reply = await self.hello(**fields)
        assert isinstance(reply, dict), f"the gateway closed the connection with {reply}"
        assert reply["type"] == "welcome", reply
        self.welcome = reply
        return reply

    # --- frames ----------------------------------------------------------------------------------
    async def send(self, frame: Any) -> None:
        await self.communicator.send_to(text_data=json.dumps(frame))

    async def send_text(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def receive(self, timeout: float = 1) -> dict:
        """The next frame, which must be a JSON text frame (not a close)."""
        message = await self.communicator.receive_output(timeout)
        assert message["type"] == "websocket.send", f"expected a frame, got {message}"
        return json.loads(message["text"])

    async def receive_or_close(self, timeout: float = 1) -> dict | int:
        message = await self.communicator.receive_output(timeout)
        if message["type"] == "websocket.close":
            return message.get("code", 1000)
        return json.loads(message["text"])

    async def closed(self, timeout: float = 1) -> int:
        """Wait for the gateway to close the connection; its close code."""
        message = await self.communicator.receive_output(timeout)
        assert message["type"] == "websocket.close", f"expected a close, got {message}"
        return message.get("code", 1000)

    async def nothing(self, timeout: float = 0.1) -> bool:
        """True if the gateway sends nothing for ``timeout`` seconds."""
        return await self.communicator.receive_nothing(timeout)

    async def sync(self) -> None:
        """Round-trip a ping: every frame sent before it has been handled."""
        await self.send({"type": "ping", "id": "sync"})
        assert await self.receive() == {"type": "pong", "id": "sync"}

    async def disconnect(self, code: int = 1000) -> None:
        """The socket goes away (also after the gateway closed it): the gateway's cleanup runs."""
        await self.communicator.disconnect(code)
        await runtime.flush()  # the gateway batches offline writes; write them now


# --- the hub ------------------------------------------------------------------------------------------
async def hub_ready(timeout: float = 3) -> None:
    """With Redis, the hub's listener subscribes asynchronously after its first local
    subscription: wait until a probe event makes the round trip. Immediate when embedded."""
    probe = hub.subscribe(Subscription(user_id=PROBE_USER_ID))
    deadline = time.monotonic() + timeout
    try:
        while True:
            await hub.apublish(
                Event(
                    name="probe",
                    data=None,
                    published_at=timezone.now(),
                    coreid="probe",
                    owner_id=PROBE_USER_ID,
                )
            )
            try:
                await asyncio.wait_for(probe.next_batch(), 0.05)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
    finally:
        hub.unsubscribe(probe)


async def subscribe_owner(user_id: int, **kwargs: Any) -> Subscription:
    """A hub subscription for everything ``user_id`` may see, live when this returns."""
    subscription = hub.subscribe(Subscription(user_id=user_id, **kwargs))
    await hub_ready()
    return subscription


async def next_events(subscription: Subscription, count: int = 1, timeout: float = 1) -> list[Event]:
    """Exactly the next ``count`` events (waits for them; fails on timeout)."""
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    while len(events) < count:
        batch, _ = await asyncio.wait_for(subscription.next_batch(), max(0.01, deadline - time.monotonic()))
        events.extend(batch)
    assert len(events) == count, f"expected {count} events, got {[(e.name, e.data) for e in events]}"
    return events


async def no_events(subscription: Subscription, timeout: float = 0.1) -> bool:
    try:
        events, _ = await asyncio.wait_for(subscription.next_batch(), timeout)
    except TimeoutError:
        return True
    assert not events, f"unexpected events: {[(e.name, e.data, e.coreid) for e in events]}"
    return True
