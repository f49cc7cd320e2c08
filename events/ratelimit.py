"""Token buckets: Particle's publish limit is 1 event per second on average, bursts of 4."""

from __future__ import annotations

import threading
import time

from django.conf import settings


class TokenBucket:
    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, *, rate: float, capacity: float, now: float | None = None) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = time.monotonic() if now is None else now

    def take(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


# A token bucket kept in Redis, so every server process draws from the same one: returns 0 when a
# token was taken, else the milliseconds until one will be.
_REDIS_BUCKET = """
local rate, capacity, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens, updated = tonumber(state[1]) or capacity, tonumber(state[2]) or now
tokens = math.min(capacity, tokens + (now - updated) / 1000 * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate * 1000) end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'updated', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return wait
"""


class SharedBuckets:
    """Named token buckets shared by this deployment's processes (Redis), or by this process."""

    def __init__(self) -> None:
        self._local: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        self._script = None

    def clear(self) -> None:
        with self._lock:
            self._local.clear()

    def take(self, name: str, *, rate: float, capacity: float) -> float:
        """Take a token from bucket ``name``: 0 if there was one, else the seconds to wait."""
        if settings.REDIS_URL:
            from events.hub import hub

            if self._script is None:
                self._script = hub._redis().register_script(_REDIS_BUCKET)
            waited_ms = self._script(
                keys=[f"quanta:bucket:{name}"], args=[rate, capacity, int(time.time() * 1000)]
            )
            return int(waited_ms) / 1000
        with self._lock:
            bucket = self._local.get(name)
            if bucket is None or bucket.rate != rate or bucket.capacity != capacity:
                bucket = self._local[name] = TokenBucket(rate=rate, capacity=capacity)
            if bucket.take():
                return 0.0
            return (1 - bucket.tokens) / rate


buckets = SharedBuckets()
