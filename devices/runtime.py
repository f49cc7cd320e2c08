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

if TYPE_CHECKING:
    from devices.gateway import GatewayConsumer

logger = logging.getLogger(__name__)


class GatewayRuntime:
    def __init__(self) -> None:
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.connections: dict[str, GatewayConsumer] = {}
        self.pending_last_heard: set[str] = set()
        self.usage: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
        self.loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._started = asyncio.Lock()

    async def ensure_started(self) -> None:
        loop = asyncio.get_running_loop()
        if self.loop is loop and self._task is not None:
            return
        async with self._started:
            if self.loop is loop and self._task is not None:
                return
            # Our row must exist before any handshake names this process, or a sweep in another
            # process could take the new sessions for a dead process's.
            await database_sync_to_async(services.gateway_process_heartbeat)(
                process_id=self.process_id, hostname=socket.gethostname(), pid=os.getpid()
            )
            self.loop = loop
            self._task = loop.create_task(self._run())

    # --- bookkeeping called by connections -------------------------------------------------------------
    def register(self, device_id: str, consumer: GatewayConsumer) -> None:
        self.connections[device_id] = consumer

    def unregister(self, device_id: str, consumer: GatewayConsumer) -> None:
        if self.connections.get(device_id) is consumer:
            del self.connections[device_id]

    def count_bytes(self, device_id: str, *, received: int = 0, sent: int = 0) -> None:
        counters = self.usage[device_id]
        counters[0] += received
        counters[1] += sent

    # --- the periodic work -------------------------------------------------------------------------------
    async def _run(self) -> None:
        interval = settings.QUANTA_GATEWAY_FLUSH_SECONDS
        last_heartbeat = 0.0
        while True:
            await asyncio.sleep(interval)
            try:
                self._close_silent_connections()
                await self.flush()
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
        """Write what has accumulated: last-heard times (at most once a minute per device, in one
        UPDATE) and byte counters (one upsert)."""
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


runtime = GatewayRuntime()
