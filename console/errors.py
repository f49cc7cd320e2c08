"""Business errors. Services raise these; the API error handler and console views render them."""

from __future__ import annotations


class ApplicationError(Exception):
    """A request that the domain refuses, with a message the user can act on."""

    status_code = 400
    error = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, extra: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}


class NotFound(ApplicationError):
    status_code = 404
    error = "not_found"


class PermissionDenied(ApplicationError):
    status_code = 403
    error = "forbidden"


class Conflict(ApplicationError):
    status_code = 409
    error = "conflict"


class RateLimited(ApplicationError):
    status_code = 429
    error = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
