"""Keeps every /v1 and /oauth response JSON, even for crashes with DEBUG on."""

from __future__ import annotations

import logging

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
