"""Request helpers shared by console views, the API and /oauth/token."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The client's address. Behind N trusted proxies, the Nth address from the right of
    X-Forwarded-For; never the left-most one, which the client chooses."""
    proxies = settings.QUANTA_TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [
            part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()
        ]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def is_api_path(path: str) -> bool:
    return path.startswith(("/v1/", "/oauth/")) or path == "/v1"
