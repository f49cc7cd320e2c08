"""Base classes for /v1 views.

Deny by default: every view requires an authenticated principal unless it explicitly sets
``permission_classes = [AllowAny]`` (the route-walking test lists those). Tenant data is read
through ``scoped_queryset()``, which subclasses implement with a selector that takes the acting
user; ``get_queryset`` is sealed so nobody builds an unscoped queryset by accident.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import generics
from rest_framework.views import APIView

from console.api.errors import json_error_response


class QuantaAPIView(APIView):
    """A /v1 endpoint. Parse input, call one service or selector, render."""


class ScopedAPIView(generics.GenericAPIView):
    def scoped_queryset(self) -> QuerySet:
        raise NotImplementedError(f"{type(self).__name__} must scope its queryset to the acting user.")

    def get_queryset(self) -> QuerySet:
        return self.scoped_queryset()


@login_not_required
@csrf_exempt
def api_not_found(request: HttpRequest) -> JsonResponse:
    return json_error_response(404, f"No API route matches {request.method} {request.path}.")
