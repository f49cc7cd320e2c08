"""Per-process state of the device gateway: its identity, its live connections, and the batched
writes it owes the database (last-heard times, byte counters, its own liveness).

Started on the first device connection (daphne sends no lifespan events). One task per process
does the periodic work, so 10,000 connections cost no timers of their own.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import socket
import time
import uuid
from typing import TYPE_CHECKING

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from devices import services
from devices.ota import HandshakeSeen, handshake_hooks_run
from events.services import device_status_event, event_apublish

if TYPE_CHECKING:
    from devices.gateway import GatewayConsumer

logger = logging.getLogger(__name__)


class GatewayRuntime:
    def __init__(self) -> None:
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.connections: dict[str, GatewayConsumer] = {}
        self.pending_last_heard: set[str] = set()
        # Sessions that ended: session id -> (device id, owner id, product id, device name).
        self.pending_offline: dict[str, tuple[str, int | None, int | None, str]] = {}
        self.usage: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
        self.loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        self._reconciled_at = 0.0
        self._locks: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = {}
        # Completed handshakes for the hooks (firmware's OTA targeting), handed over in batches.
        self.pending_handshakes: list[HandshakeSeen] = []
        self._handshakes_scheduled: asyncio.AbstractEventLoop | None = None  # the loop a batch waits on

    async def ensure_started(self) -> None:
        loop = asyncio.get_running_loop()
        if self.loop is loop and self._task is not None:
            return
        async with self._lock("start"):
            if self.loop is loop and self._task is not None:
                return
            # Our row must exist before any handshake names this process, or a sweep in another
            # process could take the new sessions for a dead process's.
            await database_sync_to_async(services.gateway_process_heartbeat)(
                process_id=self.process_id, hostname=socket.gethostname(), pid=os.getpid()
            )
            self.loop = loop
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run())

    def _lock(self, name: str) -> asyncio.Lock:
        """A lock of this loop: a lock left held by a loop that went away must not block the next."""
        loop = asyncio.get_running_loop()
        owner, lock = self._locks.get(name, (None, None))
        if owner is not loop or lock is None:
            lock = asyncio.Lock()
            self._locks[name] = (loop, lock)
        return lock

    # --- bookkeeping called by connections -------------------------------------------------------------
    def register(self, device_id: str, consumer: GatewayConsumer) -> None:
        self.connections[device_id] = consumer

    def unregister(self, device_id: str, consumer: GatewayConsumer) -> None:
        if self.connections.get(device_id) is consumer:
            del self.connections[device_id]

    def session_ended(
        self,
        *,
        device_id: str,
        session_id: str,
        owner_id: int | None,
        product_id: int | None,
        device_name: str = "",
    ) -> None:
        """Queue the offline write. Disconnects never wait on the database: after a mass
        disconnect, thousands of them would queue behind one database thread, and the server
        cancels consumers that are still running some seconds after their socket closed."""
        self.pending_offline[session_id] = (device_id, owner_id, product_id, device_name)
        if self._wake is not None:
            self._wake.set()

    def handshake_seen(self, handshake: HandshakeSeen) -> None:
        """Queue a completed handshake for the hooks. Those arriving within a few milliseconds of
        each other go together: a fleet reconnecting after a restart makes one batch per tick, not
        one database round trip per device."""
        self.pending_handshakes.append(handshake)
        loop = asyncio.get_running_loop()
        # Scheduled on this loop only: a loop that ended (a test's, a restarted server's) never runs
        # what it was given, and its batch must not wait forever.
        if self._handshakes_scheduled is not loop:
            self._handshakes_scheduled = loop
            loop.call_later(
                settings.QUANTA_HANDSHAKE_BATCH_SECONDS,
                lambda: asyncio.ensure_future(self._run_handshake_hooks()),
            )

    async def _run_handshake_hooks(self) -> None:
        batch, self.pending_handshakes = self.pending_handshakes, []
        self._handshakes_scheduled = None
        if batch:
            await database_sync_to_async(handshake_hooks_run)(batch)

    def count_bytes(self, device_id: str, *, received: int = 0, sent: int = 0) -> None:
        counters = self.usage[device_id]
        counters[0] += received
        counters[1] += sent

    # --- the periodic work -------------------------------------------------------------------------------
    async def _run(self) -> None:
        interval = settings.QUANTA_GATEWAY_FLUSH_SECONDS
        last_heartbeat = 0.0
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), interval)
                await asyncio.sleep(0.1)  # a disconnect rarely comes alone: gather the others
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                self._close_silent_connections()
                await self.flush()
                if time.monotonic() - self._reconciled_at >= settings.QUANTA_DEVICE_HEARTBEAT_SECONDS:
                    await self.reconcile()
                if time.monotonic() - last_heartbeat >= settings.QUANTA_DEVICE_HEARTBEAT_SECONDS / 3:
                    await database_sync_to_async(services.gateway_process_heartbeat)(
                        process_id=self.process_id, hostname=socket.gethostname(), pid=os.getpid()
                    )
                    last_heartbeat = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Gateway housekeeping failed; retrying")

    def _close_silent_connections(self) -> None:
        limit = 2 * settings.QUANTA_DEVICE_HEARTBEAT_SECONDS
        now = time.monotonic()
        for consumer in list(self.connections.values()):
            if now - consumer.last_frame_at > limit:
                consumer.close_silent()

    async def flush(self) -> None:
        """Write what has accumulated: ended sessions (one UPDATE, then their offline events),
        last-heard times (at most once a minute per device, one UPDATE) and byte counters (one
        upsert). Concurrent callers wait for the flush in progress, so after ``await flush()`` the
        database holds everything queued before the call."""
        async with self._lock("flush"):
            await self._flush()

    async def _flush(self) -> None:
        ended, self.pending_offline = self.pending_offline, {}
        if ended:
            went_offline = await database_sync_to_async(services.device_sessions_end)(session_ids=list(ended))
            for session_id in went_offline:
                device_id, owner_id, product_id, name = ended[session_id]
                await event_apublish(
                    device_status_event(
                        device_id=device_id,
                        owner_id=owner_id,
                        product_id=product_id,
                        online=False,
                        device_name=name or None,
                    )
                )
        heard, self.pending_last_heard = self.pending_last_heard, set()
        usage, self.usage = self.usage, collections.defaultdict(lambda: [0, 0])
        if heard:
            await database_sync_to_async(services.devices_last_heard_record)(
                device_ids=heard, at=timezone.now()
            )
        if usage:
            await database_sync_to_async(services.data_usage_add)(
                usage={device_id: (counts[0], counts[1]) for device_id, counts in usage.items()},
                day=timezone.now().date(),
            )

    async def reconcile(self) -> None:
        """Safety net: a device this process is recorded as holding but no longer holds (a
        write lost to a crash of the consumer, say) goes offline."""
        self._reconciled_at = time.monotonic()
        recorded = await database_sync_to_async(services.device_sessions_held)(process_id=self.process_id)
        live = {consumer.session_id for consumer in self.connections.values()}
        for session_id, device in recorded.items():
            if session_id not in live and session_id not in self.pending_offline:
                self.pending_offline[session_id] = device


runtime = GatewayRuntime()
