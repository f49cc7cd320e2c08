"""Particle's publish rules (PROTOCOL.md "Limits")."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

MAX_NAME_LENGTH = 64
RESERVED_PREFIXES = ("spark", "particle")


@dataclass(frozen=True)
class PublishRefused(Exception):
    code: str  # bad_name, too_large, rate_limited
    message: str


def validate_name(name: object, *, cloud: bool = False) -> str:
    if not isinstance(name, str) or not name:
        raise PublishRefused("bad_name", "An event needs a name of 1 to 64 characters.")
    if len(name) > MAX_NAME_LENGTH:
        raise PublishRefused("bad_name", f"Event names are at most 64 characters; this one has {len(name)}.")
    if not name.isascii() or not name.isprintable():
        raise PublishRefused("bad_name", "Event names must be printable ASCII characters.")
    if not cloud and name.lower().startswith(RESERVED_PREFIXES):
        raise PublishRefused(
            "bad_name", f"Event names starting with 'spark' or 'particle' are reserved: {name!r}."
        )
    return name


def validate_data(data: object, *, limit: int | None = None) -> str | None:
    if data is None:
        return None
    if not isinstance(data, str):
        raise PublishRefused(
            "too_large" if isinstance(data, bytes) else "bad_data", "Event data must be a string."
        )
    limit = limit or settings.QUANTA_EVENT_DATA_LIMIT
    size = len(data.encode("utf-8"))
    if size > limit:
        raise PublishRefused("too_large", f"Event data is at most {limit} bytes; this is {size}.")
    return data
