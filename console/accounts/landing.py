"""Where a login lands when no page was asked for: apps above may claim it (products sends someone
with pending team invitations to answer them), registered in ``AppConfig.ready()``."""

from __future__ import annotations

from collections.abc import Callable

LoginLanding = Callable[[object], str | None]
_landings: list[LoginLanding] = []


def login_landing_register(landing: LoginLanding) -> None:
    if landing not in _landings:
        _landings.append(landing)


def login_landing(user) -> str | None:
    for landing in _landings:
        if url := landing(user):
            return url
    return None
