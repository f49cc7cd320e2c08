"""Every API error as JSON, in the shapes the official clients read (PARTICLE_API.md §2.9).

OAuth-style errors (``invalid_token``, ``invalid_request``) carry ``error`` as a code; the others
are ``{ok: false, error, error_description}`` with a human message in both, since api-js shows
``error_description`` and older tools show ``error``. Validation errors also list each field.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response

from console.errors import ApplicationError, RateLimited

logger = logging.getLogger(__name__)

TOKEN_NOT_FOUND = "The access token was not found"  # noqa: S105 (a message)


def error_body(message: str, *, code: str | None = None, **extra) -> dict:
    if code is not None:
        return {"error": code, "error_description": message, **extra}
    return {"ok": False, "error": message, "error_description": message, **extra}


def _flatten(detail, prefix: str = "") -> list[dict]:
    if isinstance(detail, dict):
        items: list[dict] = []
        for key, value in detail.items():
            field = key if key != "non_field_errors" else ""
            items.extend(_flatten(value, f"{prefix}.{field}" if prefix and field else field or prefix))
        return items
    if isinstance(detail, list):
        return [item for value in detail for item in _flatten(value, prefix)]
    return [{"field": prefix or None, "message": str(detail)}]


def _validation_response(detail) -> Response:
    errors = _flatten(detail)
    first = errors[0] if errors else {"field": None, "message": "Invalid input."}
    message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    return Response(error_body(message, errors=errors), status=400)


def exception_handler(exc, context) -> Response:
    if isinstance(exc, Http404):
        return Response(
            error_body(str(exc) if str(exc) and "No " not in str(exc) else "Not found."), status=404
        )
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, ApplicationError):
        extra = {"field": exc.field} if exc.field else {}
        response = Response(error_body(exc.message, **extra, **exc.extra), status=exc.status_code)
        if isinstance(exc, RateLimited):
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, exceptions.NotAuthenticated):
        return Response(error_body(TOKEN_NOT_FOUND, code="invalid_request"), status=400)
    if isinstance(exc, exceptions.AuthenticationFailed):
        return Response(
            error_body(str(exc.detail), code="invalid_token"),
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="api", error="invalid_token"'},
        )
    if isinstance(exc, exceptions.ValidationError):
        return _validation_response(exc.detail)
    if isinstance(exc, exceptions.Throttled):
        wait = int(exc.wait or 1)
        response = Response(error_body(f"Too many requests. Try again in {wait} seconds."), status=429)
        response["Retry-After"] = str(wait)
        return response
    if isinstance(exc, exceptions.APIException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return Response(error_body(str(detail)), status=exc.status_code)
    logger.exception("Unhandled API error", exc_info=exc)
    return Response(error_body("Internal server error."), status=500)


def json_error_response(status: int, message: str) -> JsonResponse:
    """The same shape for errors raised outside DRF (unknown /v1 routes, CSRF, crashes)."""
    return JsonResponse(error_body(message), status=status)
