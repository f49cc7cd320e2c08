"""The embedded default's channel layer: channels' in-memory layer with its expiry walk bounded."""

from __future__ import annotations

import time

from channels.layers import InMemoryChannelLayer as ChannelsInMemoryChannelLayer

SWEEP_INTERVAL_SECONDS = 1.0


class InMemoryChannelLayer(ChannelsInMemoryChannelLayer):
    """channels walks every channel and group to drop expired messages on every receive and group
    send. Each connected device has a channel, so that made each new connection O(devices): 69% of
    the gateway's CPU at 8,000 devices (docs/performance.md). Walk at most once a second; an
    expired message may then wait up to a second longer to be dropped."""

    _swept_at = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._swept_at >= SWEEP_INTERVAL_SECONDS:
            self._swept_at = now
            super()._clean_expired()
