"""Access token values and lifetimes, in Particle's conventions."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings

from console.errors import ApplicationError

# ``expires_in=0`` asks for a token that never expires; it is stored a century out and reported
# as ``expires_at: null``.
PERMANENT_TOKEN_SECONDS = 100 * 365 * 24 * 3600
_PERMANENT_AFTER = timedelta(days=50 * 365)
MAX_EXPIRES_IN = PERMANENT_TOKEN_SECONDS


def generate_access_token(request=None) -> str:
    """40 hex characters, the shape of Particle's tokens (160 bits of randomness)."""
    return secrets.token_hex(20)


def token_checksum(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_expires_in(raw: object) -> int:
    """Seconds of validity for a requested ``expires_in``: empty means the default, 0 never expires."""
    if raw is None or raw == "":
        return settings.QUANTA_DEFAULT_TOKEN_SECONDS
    try:
        seconds = int(str(raw).strip())
    except ValueError:
        raise ApplicationError(
            f"expires_in must be a whole number of seconds (0 for a token that never expires), not {raw!r}.",
            field="expires_in",
        ) from None
    if seconds < 0 or seconds > MAX_EXPIRES_IN:
        raise ApplicationError(
            f"expires_in must be between 0 and {MAX_EXPIRES_IN} seconds, not {seconds}.", field="expires_in"
        )
    return seconds or PERMANENT_TOKEN_SECONDS


def is_permanent(*, created: datetime, expires: datetime) -> bool:
    return expires - created > _PERMANENT_AFTER


def expires_at_for(*, created: datetime, expires: datetime) -> datetime | None:
    return None if is_permanent(created=created, expires=expires) else expires
