"""Request plumbing: every /v1 and /oauth response stays JSON (also for crashes with DEBUG on),
and chunked request bodies get their length."""

from __future__ import annotations

import logging
import os

from django.http import HttpRequest

from console.api.errors import json_error_response
from console.http import is_api_path

logger = logging.getLogger("django.request")


class ApiErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if not is_api_path(request.path):
            return None
        logger.exception("Unhandled error on %s %s", request.method, request.path, exc_info=exception)
        return json_error_response(500, "Internal server error.")


class ChunkedBodyLengthMiddleware:
    """Give a chunked request body its length.

    particle-api-js streams a file given as a path (``addDeviceToProduct({file})``, firmware
    uploads) with ``Transfer-Encoding: chunked`` and no ``Content-Length``. The ASGI server has
    already spooled the whole body to a file, but Django parses nothing without a length: take it
    from that file, before anything (CSRF, DRF) reads the body."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if request.method in ("POST", "PUT", "PATCH") and not request.META.get("CONTENT_LENGTH"):
            body = getattr(request, "_stream", None)
            if body is not None and callable(getattr(body, "seekable", None)) and body.seekable():
                start = body.tell()
                size = body.seek(0, os.SEEK_END)
                body.seek(start)
                request.META["CONTENT_LENGTH"] = str(size - start)
        return self.get_response(request)
