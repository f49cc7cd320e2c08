"""/v1 event routes: publishing (POST /v1/devices/events) and the account-wide SSE streams
(GET /v1/events/:prefix, GET /v1/devices/events[/:prefix])."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.response import Response

from console.api.errors import json_error_response
from console.api.views import QuantaAPIView
from console.errors import ApplicationError
from events import sse
from events.hub import Subscription
from events.services import event_publish_by_user
from products.selectors import product_access, product_ids_for_user

MAX_TTL = 16_777_215


def _ttl(value) -> int:
    if value is None or value == "":
        return 60
    try:
        ttl = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        ttl = None
    if ttl is None or not 0 <= ttl <= MAX_TTL or (isinstance(value, float) and not value.is_integer()):
        raise ApplicationError(f"ttl is a whole number of seconds from 0 to {MAX_TTL}.", field="ttl")
    return ttl


def _private(value) -> bool:
    if value is None or value == "":
        return True
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "1", "false", "0"}:
        return value.lower() in {"true", "1"}
    raise ApplicationError("private is true or false.", field="private")


def _data(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ApplicationError("data is a string; send JSON as a string (JSON.stringify it first).", field="data")


def publish_from_request(*, user, data, product=None) -> None:
    """Parse the API's publish fields and publish for the user (to a product's stream, if given)."""
    event_publish_by_user(
        user=user,
        product=product,
        name=data.get("name"),
        data=_data(data.get("data")),
        ttl=_ttl(data.get("ttl")),
        private=_private(data.get("private")),
    )


class EventPublishView(QuantaAPIView):
    """POST /v1/devices/events, reached through ``devices_events`` (one path serves the stream
    too), so its schema is written out in console/api/schema.py."""

    def post(self, request):
        publish_from_request(user=request.user, data=request.data)
        return Response({"ok": True})


_publish_view = EventPublishView.as_view()


class ProductEventPublishView(QuantaAPIView):
    def post(self, request, product: str):
        access = product_access(user=request.user, id_or_slug=product, action="event.publish")
        publish_from_request(user=request.user, data=request.data, product=access.product)
        return Response({"ok": True})


_product_publish_view = ProductEventPublishView.as_view()


# --- Server-Sent Events -------------------------------------------------------------------------------
async def user_event_stream(
    request: HttpRequest, prefix: str | None, *, prefix_required: bool = False
) -> HttpResponse:
    """The caller's devices' events and their own (``/v1/devices/events``, Particle's "mine");
    for ``/v1/events/:prefix`` (a required prefix) also every product team's they are on."""
    try:
        user = await sse.stream_user(request)
        if prefix_required and not prefix:
            raise sse.StreamRefused(
                400,
                "An event name prefix is required: /v1/events/:prefix, or /v1/devices/events for all of yours.",
            )
        product_ids = await sse.run_sync(product_ids_for_user, user=user) if prefix_required else []
        subscription = Subscription(
            user_id=user.pk, product_ids=product_ids, prefix=sse.decode_prefix(prefix)
        )
    except sse.StreamRefused as refused:
        return refused.response()
    return await sse.event_stream_response(request, subscription)


@login_not_required
@csrf_exempt
async def devices_events(request: HttpRequest, prefix: str | None = None) -> HttpResponse:
    """GET streams the caller's devices' events; POST publishes one (Particle uses one path)."""
    if request.method == "POST" and prefix is None:
        return await sync_to_async(_publish_view)(request)
    if request.method in ("GET", "HEAD"):
        return await user_event_stream(request, prefix)
    return json_error_response(405, f'Method "{request.method}" not allowed.')


@login_not_required
@csrf_exempt
async def events_stream(request: HttpRequest, prefix: str | None = None) -> HttpResponse:
    """GET /v1/events/:prefix. Particle dropped the unfiltered firehose; so does Quanta, and it
    only ever streams what the caller may see."""
    if request.method not in ("GET", "HEAD"):
        return json_error_response(405, f'Method "{request.method}" not allowed.')
    return await user_event_stream(request, prefix, prefix_required=True)


@login_not_required
@csrf_exempt
async def product_events(request: HttpRequest, product: str, prefix: str | None = None) -> HttpResponse:
    """GET streams every event of a product's devices and team; POST publishes to it."""
    if request.method == "POST" and prefix is None:
        return await sync_to_async(_product_publish_view)(request, product=product)
    if request.method not in ("GET", "HEAD"):
        return json_error_response(405, f'Method "{request.method}" not allowed.')
    try:
        user = await sse.stream_user(request)
        prefix = sse.decode_prefix(prefix)
        access = await sse.run_sync(product_access, user=user, id_or_slug=product, action="event.read")
    except sse.StreamRefused as refused:
        return refused.response()
    except ApplicationError as error:
        return json_error_response(error.status_code, error.message)
    return await sse.event_stream_response(
        request, Subscription(product_ids=[access.product.id], prefix=prefix)
    )
