"""/v1/devices/:id/events[/:prefix]: one device's events as Server-Sent Events. Devices checks
that the caller may see the device, then streams with the events primitives."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from console.api.errors import json_error_response
from console.errors import NotFound
from devices import selectors
from events import sse
from events.hub import Subscription


@login_not_required
@csrf_exempt
async def device_events(request: HttpRequest, device: str, prefix: str | None = None) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return json_error_response(405, f'Method "{request.method}" not allowed.')
    try:
        user = await sse.stream_user(request)
        prefix = sse.decode_prefix(prefix)
        found = await sse.run_sync(selectors.device_get_for_user, user=user, id_or_name=device)
    except sse.StreamRefused as refused:
        return refused.response()
    except NotFound as missing:
        return json_error_response(404, missing.message)
    subscription = Subscription(user_id=user.pk, prefix=prefix, device_id=found.id)
    return await sse.event_stream_response(request, subscription)
