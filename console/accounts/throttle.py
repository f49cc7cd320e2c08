"""Login throttling, shared by the console's login form and ``POST /oauth/token``.

Two rules, both settings:
- consecutive failures from one IP (10 by default, as Particle's ``/oauth/token``) lock that IP out
  for 30 minutes; a success from the IP resets its count;
- failures against one account are capped per hour (100 by default, OWASP ASVS V2.2.1), whatever
  the source address, so a distributed guess at one password is bounded too.

Counters live in the cache (Redis when configured), so they hold across processes.
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache

from console.errors import RateLimited


def _ip_failures_key(ip: str) -> str:
    return f"login:ip-failures:{ip}"


def _ip_locked_until_key(ip: str) -> str:
    return f"login:ip-locked-until:{ip}"


def _account_window_key(username: str) -> str:
    return f"login:account-window:{username.strip().lower()}"


def _account_failures_key(username: str) -> str:
    return f"login:account-failures:{username.strip().lower()}"


def _minutes(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def login_check_allowed(*, ip: str, username: str, now: float | None = None) -> None:
    """Raise ``RateLimited`` (with the seconds to wait) if this attempt must be refused unseen."""
    now = now or time.time()
    locked_until = cache.get(_ip_locked_until_key(ip))
    if locked_until and locked_until > now:
        wait = locked_until - now
        raise RateLimited(
            f"Too many failed sign-in attempts from your network. Try again in {_minutes(wait)}.",
            retry_after=math.ceil(wait),
        )
    if username:
        window_started = cache.get(_account_window_key(username))
        failures = cache.get(_account_failures_key(username), 0)
        if window_started and failures >= settings.QUANTA_LOGIN_ACCOUNT_FAILURE_LIMIT:
            wait = window_started + settings.QUANTA_LOGIN_ACCOUNT_WINDOW_SECONDS - now
            if wait > 0:
                raise RateLimited(
                    f"Too many failed sign-in attempts for this account. Try again in {_minutes(wait)}.",
                    retry_after=math.ceil(wait),
                )


def login_record_failure(*, ip: str, username: str, now: float | None = None) -> None:
    now = now or time.time()
    lockout = settings.QUANTA_LOGIN_IP_LOCKOUT_SECONDS
    failures_key = _ip_failures_key(ip)
    cache.add(failures_key, 0, timeout=lockout)
    if cache.incr(failures_key) >= settings.QUANTA_LOGIN_IP_FAILURE_LIMIT:
        cache.set(_ip_locked_until_key(ip), now + lockout, timeout=lockout)
        cache.delete(failures_key)
    if username:
        window = settings.QUANTA_LOGIN_ACCOUNT_WINDOW_SECONDS
        # The window opens at the first failure and closes an hour later with its count.
        if cache.add(_account_window_key(username), now, timeout=window):
            cache.set(_account_failures_key(username), 0, timeout=window)
        try:
            cache.incr(_account_failures_key(username))
        except ValueError:  # the count expired between the two calls: start again
            cache.set(_account_failures_key(username), 1, timeout=window)


def login_record_success(*, ip: str) -> None:
    cache.delete(_ip_failures_key(ip))
