"""Pagination as Particle's lists do it: ``page`` and ``per_page`` in, ``meta`` out."""

from __future__ import annotations

from rest_framework import pagination
from rest_framework.response import Response


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 25
    page_size_query_param = "per_page"
    max_page_size = 1000
    results_key = "results"

    def get_paginated_response(self, data) -> Response:
        return Response({self.results_key: data, "meta": self.meta()})

    def meta(self) -> dict:
        page = self.page
        return {
            "page": page.number,
            "per_page": page.paginator.per_page,
            "total_pages": page.paginator.num_pages,
            "total": page.paginator.count,
        }

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "properties": {
                self.results_key: schema,
                "meta": {
                    "type": "object",
                    "properties": {
                        name: {"type": "integer"} for name in ("page", "per_page", "total_pages", "total")
                    },
                },
            },
        }
