"""The /v1 base classes: pagination meta, sealed querysets, error shapes."""

from __future__ import annotations

import pytest
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from console.api.errors import exception_handler
from console.api.pagination import PageNumberPagination
from console.api.views import ScopedAPIView
from console.errors import Conflict, RateLimited


def _request(query: str = "") -> Request:
    return Request(APIRequestFactory().get(f"/v1/things{query}"))


def test_pagination_meta():
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(list(range(60)), _request("?page=2&per_page=25"))
    assert page == list(range(25, 50))
    response = paginator.get_paginated_response(page)
    assert response.data["meta"] == {"page": 2, "per_page": 25, "total_pages": 3, "total": 60}


def test_pagination_caps_page_size():
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(list(range(5000)), _request("?per_page=100000"))
    assert len(page) == paginator.max_page_size


def test_pagination_past_the_end_is_a_404():
    with pytest.raises(exceptions.NotFound):
        PageNumberPagination().paginate_queryset(list(range(3)), _request("?page=9"))


def test_scoped_view_refuses_to_build_an_unscoped_queryset():
    class Forgetful(ScopedAPIView):
        pass

    with pytest.raises(NotImplementedError, match="must scope its queryset"):
        Forgetful().get_queryset()


@pytest.mark.parametrize(
    ("exc", "status", "body"),
    [
        (Conflict("Name taken.", field="name"), 409, {"ok": False, "error": "Name taken.", "field": "name"}),
        (exceptions.ValidationError({"name": ["Required."]}), 400, {"ok": False, "error": "name: Required."}),
        (exceptions.NotAuthenticated(), 400, {"error": "invalid_request"}),
        (exceptions.MethodNotAllowed("PATCH"), 405, {"ok": False}),
        (RuntimeError("boom"), 500, {"ok": False, "error": "Internal server error."}),
    ],
)
def test_error_shapes(exc, status, body):
    response = exception_handler(exc, {})
    assert response.status_code == status
    assert body.items() <= response.data.items()
    assert response.data["error_description"]


def test_rate_limited_sets_retry_after():
    response = exception_handler(RateLimited("Slow down.", retry_after=7), {})
    assert (response.status_code, response["Retry-After"]) == (429, "7")
