"""The device gateway: a websocket at /device/v1 speaking docs/device-protocol.md.

One consumer per connected device. Frames are JSON text; every frame type has a handler named
``frame_<type>``; cloud-side requests (function calls, variable reads, pings, signals) arrive
through the channel layer at handlers named after their message types.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import time
import uuid
from collections import deque
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from console.services import audit_record
from devices import calls, services
from devices.calls import MAX_CALL_NAME_LENGTH
from devices.keys import signature_valid
from devices.ota import HandshakeSeen, OtaOffer, OtaTransfer, ota_backend
from devices.runtime import runtime
from devices.selectors import device_get_for_hello
from events.hub import Subscription, hub
from events.ratelimit import TokenBucket
from events.services import device_status_event, event_apublish, event_build
from events.types import iso_millis
from events.validation import PublishRefused

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
CLOSE_TOO_BIG = 1009
CLOSE_BAD_FRAMES = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_DENIED = 4403
CLOSE_HANDSHAKE_TIMEOUT = 4408
CLOSE_REPLACED = 4409
CLOSE_SILENT = 4410
MAX_SUBSCRIPTIONS = 10
MAX_FUNCTIONS = 64
MAX_VARIABLES = 64
VARIABLE_TYPES = {"bool", "int32", "int", "double", "string", "json"}


class BadFrame(Exception):
    def __init__(self, message: str, *, code: str = "bad_frame", frame_id: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.frame_id = frame_id


def _require_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_CALL_NAME_LENGTH:
        raise BadFrame(f"{what} names are 1 to {MAX_CALL_NAME_LENGTH} characters.")
    return value


def _optional_int(content: dict, key: str) -> int | None:
    value = content.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFFFFFF:
        raise BadFrame(f"{key} must be a non-negative integer.")
    return value


class GatewayConsumer(AsyncWebsocketConsumer):
    async def dispatch(self, message: dict) -> None:
        """channels' dispatch first hops to the database thread to close old connections, before
        every message: each heartbeat of each device. The handlers that use the database go through
        database_sync_to_async, which does that itself."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- connection lifecycle ---------------------------------------------------------------------
    async def connect(self) -> None:
        await runtime.ensure_started()
        self.device_id: str | None = None
        self.owner_id: int | None = None
        self.product_id: int | None = None
        self.device_name = ""
        self.data_limit: int | None = None
        self.session_id = uuid.uuid4().hex
        self.nonce: bytes | None = secrets.token_bytes(32)
        self.last_frame_at = time.monotonic()
        self.last_heard_at = 0.0
        self.bad_frames: deque[float] = deque()
        self.pending: dict[str, tuple[str, float]] = {}  # request id -> (reply channel, asked at)
        self.prefixes: list[str] = []
        self.subscription: Subscription | None = None
        self.forwarder: asyncio.Task | None = None
        self.bucket = TokenBucket(
            rate=settings.QUANTA_PUBLISH_RATE_PER_SECOND, capacity=settings.QUANTA_PUBLISH_BURST
        )
        self.closing = False
        self.hello_in_progress = False
        self.unmetered = [0, 0]  # bytes in and out before the hello named the device
        self.ota: OtaTransfer | None = None
        await self.accept()
        self.handshake_timer = asyncio.get_running_loop().call_later(
            settings.QUANTA_DEVICE_HANDSHAKE_TIMEOUT_SECONDS, self._handshake_expired
        )
        await self.send_frame(
            {
                "type": "challenge",
                "nonce": base64.b64encode(self.nonce).decode(),
                "server_time": iso_millis(timezone.now()),
                "protocol": PROTOCOL_VERSION,
            }
        )

    async def disconnect(self, code: int) -> None:
        self.handshake_timer.cancel()
        if self.ota is not None:
            transfer, self.ota = self.ota, None
            await transfer.interrupted()
        if self.forwarder is not None:
            self.forwarder.cancel()
        if self.subscription is not None:
            hub.unsubscribe(self.subscription)
        for reply_channel, _ in self.pending.values():
            await self.channel_layer.send(
                reply_channel, {"type": "device.reply", "ok": False, "error": "disconnected"}
            )
        self.pending.clear()
        if self.device_id is None:
            return
        runtime.unregister(self.device_id, self)
        runtime.session_ended(
            device_id=self.device_id,
            session_id=self.session_id,
            owner_id=self.owner_id,
            product_id=self.product_id,
            device_name=self.device_name,
        )

    def _handshake_expired(self) -> None:
        if self.device_id is not None or self.closing:
            return
        if self.hello_in_progress:
            # The hello arrived in time and waits on the database: look again shortly.
            self.handshake_timer = asyncio.get_running_loop().call_later(1, self._handshake_expired)
            return
        self.closing = True
        asyncio.ensure_future(self.close(code=CLOSE_HANDSHAKE_TIMEOUT))

    def close_silent(self) -> None:
        """Called by the runtime when the device missed two heartbeats."""
        if not self.closing:
            self.closing = True
            asyncio.ensure_future(self.close(code=CLOSE_SILENT))

    async def send_frame(self, content: dict) -> None:
        text = json.dumps(content, separators=(",", ":"))
        if self.device_id is not None:
            runtime.count_bytes(self.device_id, sent=len(text))
        else:
            self.unmetered[1] += len(text)
        await self.send(text_data=text)

    async def send_binary(self, data: bytes) -> None:
        if self.device_id is not None:
            runtime.count_bytes(self.device_id, sent=len(data))
        await self.send(bytes_data=data)

    # --- frames from the device -----------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if self.device_id is not None:
            runtime.count_bytes(self.device_id, received=size)
        else:
            self.unmetered[0] += size
        if size > settings.QUANTA_DEVICE_MAX_FRAME_BYTES:
            self.closing = True
            await self.close(code=CLOSE_TOO_BIG)
            return
        now = time.monotonic()
        self.last_frame_at = now
        if (
            self.device_id is not None
            and now - self.last_heard_at >= settings.QUANTA_LAST_HEARD_RESOLUTION_SECONDS
        ):
            self.last_heard_at = now
            runtime.pending_last_heard.add(self.device_id)
        content = None
        try:
            if text_data is None:
                raise BadFrame("Binary frames are only used for firmware transfers.")
            try:
                content = json.loads(text_data)
            except ValueError:
                raise BadFrame("Frames are JSON objects.") from None
            if not isinstance(content, dict) or not isinstance(content.get("type"), str):
                raise BadFrame("Frames are JSON objects with a string 'type'.")
            kind = content["type"]
            if self.device_id is None and kind != "hello":
                raise BadFrame("Say hello first: the handshake is not complete.")
            handler = getattr(self, f"frame_{kind}", None)
            if handler is None:
                raise BadFrame(f"Unknown frame type {kind!r}.")
            await handler(content)
        except BadFrame as error:
            frame_id = (
                error.frame_id
                if error.frame_id is not None
                else (content or {}).get("id")
                if isinstance(content, dict)
                else None
            )
            await self._refuse(error, frame_id)

    async def _refuse(self, error: BadFrame, frame_id: Any) -> None:
        reply = {"type": "error", "code": error.code, "message": error.message}
        if frame_id is not None:
            reply["id"] = frame_id
        await self.send_frame(reply)
        now = time.monotonic()
        self.bad_frames.append(now)
        while self.bad_frames and now - self.bad_frames[0] > 60:
            self.bad_frames.popleft()
        if len(self.bad_frames) >= settings.QUANTA_DEVICE_BAD_FRAME_LIMIT and not self.closing:
            self.closing = True
            await self.close(code=CLOSE_BAD_FRAMES)

    async def frame_hello(self, content: dict) -> None:
        if self.device_id is not None:
            raise BadFrame("The handshake is already complete.")
        if self.nonce is None:
            raise BadFrame(
                "This connection's challenge was used by a refused hello; reconnect for a new one."
            )
        nonce, self.nonce = self.nonce, None  # single use, whatever happens next
        self.hello_in_progress = True
        try:
            await self._handshake(content, nonce)
        finally:
            self.hello_in_progress = False

    async def _handshake(self, content: dict, nonce: bytes) -> None:
        device_id = content.get("device_id")
        signature = content.get("signature")
        device = (
            await database_sync_to_async(device_get_for_hello)(device_id=device_id)
            if isinstance(device_id, str)
            else None
        )
        if (
            device is None
            or not isinstance(signature, str)
            or not signature_valid(device.public_key, nonce, signature)
        ):
            await self._refuse_unauthorized(
                device_id, "unknown device" if device is None else "bad signature"
            )
            return
        functions = content.get("functions") or []
        variables = content.get("variables") or {}
        if not isinstance(functions, list) or len(functions) > MAX_FUNCTIONS:
            raise BadFrame(f"functions is a list of at most {MAX_FUNCTIONS} names.")
        if not isinstance(variables, dict) or len(variables) > MAX_VARIABLES:
            raise BadFrame(f"variables maps at most {MAX_VARIABLES} names to types.")
        for name in functions:
            _require_name(name, "Function")
        for name, kind in variables.items():
            _require_name(name, "Variable")
            if kind not in VARIABLE_TYPES:
                raise BadFrame(
                    f"Variable {name!r} has unknown type {kind!r}; use one of {sorted(VARIABLE_TYPES)}."
                )
        platform_id = _optional_int(content, "platform_id")
        if platform_id is not None and platform_id != device.platform_id:
            raise BadFrame(
                f"This device was provisioned as platform {device.platform_id}, not {platform_id}."
            )
        system_version = content.get("system_version") or ""
        claim_code = content.get("claim_code") or ""
        iccid = content.get("iccid") or ""
        if not all(isinstance(v, str) and len(v) <= 64 for v in (system_version, claim_code, iccid)):
            raise BadFrame("system_version, claim_code and iccid are strings of at most 64 characters.")
        result = await database_sync_to_async(services.device_handshake_record)(
            services.Handshake(
                device_id=device.id,
                session_id=self.session_id,
                gateway_process=runtime.process_id,
                gateway_channel=self.channel_name,
                ip_address=(self.scope.get("client") or [None])[0],
                platform_id=platform_id,
                firmware_product_id=_optional_int(content, "product_id"),
                firmware_version=_optional_int(content, "product_version"),
                system_version=system_version,
                functions=list(functions),
                variables=dict(variables),
                iccid=iccid,
                claim_code=claim_code,
            )
        )
        self.handshake_timer.cancel()
        if result.refused:
            await self.send_frame({"type": "error", "code": "denied", "message": result.refused})
            self.closing = True
            await self.close(code=CLOSE_DENIED)
            return
        self.device_id = device.id
        self.owner_id = result.device.owner_id
        self.product_id = result.device.product_id
        self.device_name = result.device.name
        self.data_limit = result.event_data_limit
        self.last_heard_at = time.monotonic()
        # The challenge, the hello and any errors before it were this device's data too.
        runtime.count_bytes(device.id, received=self.unmetered[0], sent=self.unmetered[1])
        runtime.register(device.id, self)
        if result.replaced_channel and result.replaced_channel != self.channel_name:
            await self.channel_layer.send(result.replaced_channel, {"type": "device.replaced"})
        await self.send_frame(
            {
                "type": "welcome",
                "session_id": self.session_id,
                "heartbeat_s": settings.QUANTA_DEVICE_HEARTBEAT_SECONDS,
            }
        )
        await event_apublish(
            device_status_event(
                device_id=device.id,
                owner_id=self.owner_id,
                product_id=self.product_id,
                online=True,
                device_name=self.device_name,
            )
        )
        runtime.handshake_seen(
            HandshakeSeen(
                device_id=device.id,
                product_id=self.product_id,
                firmware_version=result.device.firmware_version,
            )
        )

    async def _refuse_unauthorized(self, device_id: Any, reason: str) -> None:
        ip = (self.scope.get("client") or ["unknown"])[0]
        # Record one line per address per minute at most: a flood of bad handshakes writes nothing more.
        if cache.add(f"gateway:auth-failure:{ip}", 1, timeout=60):
            await database_sync_to_async(audit_record)(
                actor=None,
                action="device.handshake_refused",
                target_type="device",
                target_id=str(device_id)[:64] if device_id else "",
                metadata={"reason": reason},
                ip_address=ip if ip != "unknown" else None,
                via="device",
            )
        self.closing = True
        await self.close(code=CLOSE_UNAUTHORIZED)

    async def frame_publish(self, content: dict) -> None:
        frame_id = content.get("id")
        ttl = content.get("ttl", 60)
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= 16_777_215:
            raise BadFrame("ttl is a number of seconds from 0 to 16777215.", frame_id=frame_id)
        try:
            event = event_build(
                name=content.get("name"),
                data=content.get("data"),
                coreid=self.device_id,
                owner_id=self.owner_id,
                product_id=self.product_id,
                ttl=ttl,
                private=bool(content.get("private", True)),
                device_name=self.device_name,
                data_limit=self.data_limit,
            )
            if not self.bucket.take():
                raise PublishRefused(
                    "rate_limited", "Devices may publish 1 event per second, with bursts of 4."
                )
        except PublishRefused as refused:
            reply = {"type": "error", "code": refused.code, "message": refused.message}
            if frame_id is not None:
                reply["id"] = frame_id
            await self.send_frame(reply)
            return
        await event_apublish(event)
        if frame_id is not None:
            await self.send_frame({"type": "ack", "id": frame_id})

    async def frame_result(self, content: dict) -> None:
        waiting = self.pending.pop(str(content.get("id")), None)
        if waiting is None:
            raise BadFrame("No request is waiting for that result id.")
        await self.channel_layer.send(waiting[0], {"type": "device.reply", "ok": True, "frame": content})

    frame_pong = frame_result  # the answer to a cloud ping carries the ping's id

    async def frame_ping(self, content: dict) -> None:
        await self.send_frame({"type": "pong", **({"id": content["id"]} if "id" in content else {})})

    async def frame_heartbeat(self, content: dict) -> None:
        """Any frame keeps the connection alive; this one says nothing else."""

    async def frame_subscribe(self, content: dict) -> None:
        prefix = content.get("prefix", "")
        if not isinstance(prefix, str) or len(prefix) > 64:
            raise BadFrame("A subscription prefix is a string of at most 64 characters.")
        if prefix in self.prefixes:
            return
        if len(self.prefixes) >= MAX_SUBSCRIPTIONS:
            raise BadFrame(f"A device may hold at most {MAX_SUBSCRIPTIONS} subscriptions.")
        self.prefixes.append(prefix)
        if self.subscription is None:
            self._subscribe_hub()

    def _subscribe_hub(self) -> None:
        self.subscription = hub.subscribe(
            Subscription(
                user_id=self.owner_id,
                product_ids=[self.product_id] if self.product_id is not None else [],
                buffer_size=100,
            )
        )
        self.forwarder = asyncio.ensure_future(self._forward_events())

    async def frame_unsubscribe(self, content: dict) -> None:
        prefix = content.get("prefix", "")
        if prefix in self.prefixes:
            self.prefixes.remove(prefix)

    async def _forward_events(self) -> None:
        subscription = self.subscription
        while subscription is not None and not subscription.closed:
            events, dropped = await subscription.next_batch()
            if dropped:
                await self.send_frame({"type": "lagged", "dropped": dropped})
            for event in events:
                if any(event.name.startswith(prefix) for prefix in self.prefixes):
                    await self.send_frame({"type": "event", **event.wire()})

    # --- requests from the cloud (channel layer) -----------------------------------------------------
    async def device_request(self, message: dict) -> None:
        frame = message["frame"]
        if self.device_id is None or self.closing:
            await self.channel_layer.send(
                message["reply_channel"], {"type": "device.reply", "ok": False, "error": "offline"}
            )
            return
        self._forget_abandoned_requests()
        self.pending[str(frame["id"])] = (message["reply_channel"], time.monotonic())
        await self.send_frame(frame)

    def _forget_abandoned_requests(self) -> None:
        """Callers give up after their timeout; requests a device never answered are dropped long
        after that, so a device that ignores every request cannot grow this map."""
        oldest = time.monotonic() - 2 * max(
            settings.QUANTA_DEVICE_CALL_TIMEOUT_SECONDS, calls.PING_TIMEOUT_SECONDS
        )
        for request_id, (_, asked_at) in list(self.pending.items()):
            if asked_at >= oldest:
                break
            del self.pending[request_id]

    async def device_signal(self, message: dict) -> None:
        if self.device_id is not None:
            await self.send_frame({"type": "signal", "on": bool(message["on"])})

    async def device_owner(self, message: dict) -> None:
        """Claimed or unclaimed while connected: what it publishes and receives follows the new owner."""
        if self.device_id is None:
            return
        self.owner_id = message["owner_id"]
        if self.subscription is not None:
            self.forwarder.cancel()
            hub.unsubscribe(self.subscription)
            self._subscribe_hub()

    async def device_renamed(self, message: dict) -> None:
        if self.device_id is not None:
            self.device_name = message["name"]

    # --- firmware updates ----------------------------------------------------------------------------
    async def device_ota(self, message: dict) -> None:
        """firmware offers an update to this connection's device (devices/ota.py)."""
        backend = ota_backend()
        if self.device_id is None or self.closing or backend is None:
            return  # offline: the offer stays pending and is made again at the next handshake
        offer = OtaOffer.from_message(message)
        if self.ota is not None:
            if self.ota.offer.ota_id == offer.ota_id and not self.ota.finished:
                return  # already under way
            await self.ota.cancel()
        self.ota = OtaTransfer(self, offer, backend)
        await self.ota.begin()

    def ota_finished(self, transfer: OtaTransfer) -> None:
        if self.ota is transfer:
            self.ota = None

    def _transfer(self, content: dict) -> OtaTransfer:
        if self.ota is None or content.get("ota_id") != self.ota.offer.ota_id or self.ota.finished:
            raise BadFrame("No firmware transfer with that ota_id is under way.", code="unknown_ota")
        return self.ota

    async def frame_ota_ready(self, content: dict) -> None:
        await self._transfer(content).on_ready(content.get("offset", 0))

    async def frame_ota_ack(self, content: dict) -> None:
        await self._transfer(content).on_ack(content.get("offset"))

    async def frame_ota_done(self, content: dict) -> None:
        transfer = self._transfer(content)
        self.ota = None
        await transfer.on_done(content.get("ok"), content.get("error"))

    async def device_replaced(self, message: dict) -> None:
        # A newer session took over; it already recorded itself, so leave the row alone.
        if self.device_id is not None:
            runtime.unregister(self.device_id, self)
        self.device_id = None
        self.closing = True
        await self.close(code=CLOSE_REPLACED)
