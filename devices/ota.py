"""Firmware transfers over a device's gateway connection (docs/device-protocol.md, "Firmware updates").

devices drives the wire protocol; what to send and what an outcome means belong to firmware,
which registers an ``OtaBackend`` (and a handshake hook) at app ready, so devices never imports it.
One ``OtaTransfer`` per connection at a time: ``ota_begin``, wait for ``ota_ready`` (resuming from
the device's offset), binary chunks with at most a window in flight beyond the last ``ota_ack``,
then ``ota_done``. A device that stops answering fails the attempt; a dropped connection only
interrupts it (it resumes at the next handshake).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from channels.db import database_sync_to_async
from django.conf import settings

if TYPE_CHECKING:
    from devices.gateway import GatewayConsumer

logger = logging.getLogger(__name__)

CHUNK_HEADER = struct.Struct(">8sII")  # ota tag, offset, length
MAX_CHUNK_BYTES = 16 * 1024  # the protocol's promise: a chunk and its header fit any device's frame


class OtaBackend(Protocol):
    """What firmware does for the gateway. Synchronous: called through database_sync_to_async."""

    def binary(self, offer: OtaOffer) -> bytes: ...
    def started(self, offer: OtaOffer, offset: int) -> None: ...
    def progress(self, offer: OtaOffer, acked: int) -> None: ...
    def transferred(self, offer: OtaOffer) -> None: ...
    def failed(self, offer: OtaOffer, reason: str) -> None: ...
    def interrupted(self, offer: OtaOffer, acked: int) -> None: ...


@dataclass(frozen=True)
class OtaOffer:
    """An update firmware asks a connection to transfer (sent through the channel layer)."""

    update_id: int
    ota_id: str
    version: int | None
    size: int
    sha256: str

    @classmethod
    def from_message(cls, message: dict) -> OtaOffer:
        return cls(
            update_id=int(message["update_id"]),
            ota_id=str(message["ota_id"]),
            version=message.get("version"),
            size=int(message["size"]),
            sha256=str(message["sha256"]),
        )

    def as_message(self) -> dict:
        return {
            "type": "device.ota",
            "update_id": self.update_id,
            "ota_id": self.ota_id,
            "version": self.version,
            "size": self.size,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class HandshakeSeen:
    device_id: str
    product_id: int | None
    firmware_version: int | None


_backend: OtaBackend | None = None
_handshake_hooks: list[Callable[[list[HandshakeSeen]], None]] = []


def ota_backend_register(backend: OtaBackend) -> None:
    global _backend
    _backend = backend


def ota_backend() -> OtaBackend | None:
    return _backend


_flash_handler: Callable[..., dict] | None = None


def flash_handler_register(handler: Callable[..., dict]) -> None:
    """``handler(actor=, device=, data=, via=)`` flashes a binary by hand (``particle flash``) and
    answers the API's response body; firmware registers it."""
    global _flash_handler
    _flash_handler = handler


def flash_handler() -> Callable[..., dict] | None:
    return _flash_handler


def handshake_hook_register(hook: Callable[[list[HandshakeSeen]], None]) -> None:
    """``hook(handshakes)`` runs in a worker thread with batches of completed handshakes."""
    if hook not in _handshake_hooks:
        _handshake_hooks.append(hook)


def handshake_hooks_run(handshakes: list[HandshakeSeen]) -> None:
    for hook in _handshake_hooks:
        try:
            hook(handshakes)
        except Exception:
            logger.exception("A handshake hook failed for %d handshakes", len(handshakes))


class OtaTransfer:
    """One transfer on one connection."""

    def __init__(self, consumer: GatewayConsumer, offer: OtaOffer, backend: OtaBackend) -> None:
        self.consumer = consumer
        self.offer = offer
        self.backend = backend
        self.tag = bytes.fromhex(offer.ota_id)[:8]
        self.chunk = min(settings.QUANTA_OTA_CHUNK_BYTES, MAX_CHUNK_BYTES)
        self.window = settings.QUANTA_OTA_WINDOW_CHUNKS * self.chunk
        self.data: bytes | None = None
        self.sent = 0  # bytes sent from the start of the file
        self.acked = 0
        self.ready = False
        self.finished = False
        self.last_answer = time.monotonic()
        self.reported_at = 0.0
        self.watchdog: asyncio.Task | None = None
        self.progress_write: asyncio.Future | None = None  # at most one progress write at a time

    async def begin(self) -> None:
        self.data = await database_sync_to_async(self.backend.binary)(self.offer)
        if len(self.data) != self.offer.size:
            await self._fail("the firmware binary changed size while it was offered")
            return
        await self.consumer.send_frame(
            {
                "type": "ota_begin",
                "ota_id": self.offer.ota_id,
                "version": self.offer.version or 0,
                "size": self.offer.size,
                "sha256": self.offer.sha256,
                "chunk_size": self.chunk,
            }
        )
        self.last_answer = time.monotonic()
        self.watchdog = asyncio.ensure_future(self._watch())

    async def on_ready(self, offset: object) -> None:
        start = offset if isinstance(offset, int) and not isinstance(offset, bool) else 0
        if not 0 <= start <= self.offer.size:
            start = 0
        self.ready = True
        self.sent = self.acked = start
        self.last_answer = time.monotonic()
        await database_sync_to_async(self.backend.started)(self.offer, start)
        await self._pump()

    async def on_ack(self, offset: object) -> None:
        if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= self.offer.size:
            return
        self.last_answer = time.monotonic()
        # Frames arrive in order over one connection, so the device only ever moves forward.
        self.acked = max(self.acked, min(offset, self.sent))
        now = time.monotonic()
        if now - self.reported_at >= settings.QUANTA_OTA_PROGRESS_SECONDS and self.progress_write is None:
            self.reported_at = now
            # Written beside the transfer, not before its next chunks: with hundreds of transfers
            # every acknowledgement would otherwise queue behind the database thread.
            self.progress_write = asyncio.ensure_future(self._report_progress(self.acked))
        await self._pump()

    async def _report_progress(self, acked: int) -> None:
        try:
            await database_sync_to_async(self.backend.progress)(self.offer, acked)
        except Exception:
            logger.exception("Could not record the progress of transfer %s", self.offer.ota_id)
        finally:
            self.progress_write = None

    async def on_done(self, ok: object, error: object) -> None:
        self.finished = True
        self._stop_watchdog()
        if ok is True:
            await database_sync_to_async(self.backend.transferred)(self.offer)
        else:
            reason = str(error or "the device refused the update")[:200]
            await database_sync_to_async(self.backend.failed)(self.offer, f"the device reported: {reason}")

    async def interrupted(self) -> None:
        """The connection closed mid-transfer: keep what the device acknowledged, for a resume."""
        if self.finished:
            return
        self.finished = True
        self._stop_watchdog()
        await database_sync_to_async(self.backend.interrupted)(self.offer, self.acked)

    async def cancel(self) -> None:
        """A newer offer replaced this one on the connection."""
        self.finished = True
        self._stop_watchdog()

    async def _pump(self) -> None:
        assert self.data is not None
        while (
            self.ready
            and not self.finished
            and self.sent < self.offer.size
            and self.sent - self.acked < self.window
        ):
            chunk = self.data[self.sent : self.sent + self.chunk]
            frame = CHUNK_HEADER.pack(self.tag, self.sent, len(chunk)) + chunk
            self.sent += len(chunk)
            await self.consumer.send_binary(frame)

    async def _fail(self, reason: str) -> None:
        self.finished = True
        self._stop_watchdog()
        await database_sync_to_async(self.backend.failed)(self.offer, reason)

    async def _watch(self) -> None:
        stall = settings.QUANTA_OTA_STALL_SECONDS
        while not self.finished:
            await asyncio.sleep(min(stall, 1.0))
            if not self.finished and time.monotonic() - self.last_answer > stall:
                self.watchdog = None  # we are it: do not cancel ourselves
                await self._fail(f"the device stopped answering for {stall:g} seconds during the transfer")
                self.consumer.ota_finished(self)
                return

    def _stop_watchdog(self) -> None:
        if self.watchdog is not None and not self.watchdog.done():
            self.watchdog.cancel()
        self.watchdog = None
