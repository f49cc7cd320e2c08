"""Console pages for events: Event Logs, its Publish button and the history download.

The log itself is live over the console websocket (the "events" stream, events/streams.py);
these views render the page, publish for the signed-in user and export the filtered history.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from console.errors import ApplicationError, RateLimited
from events import export
from events.filters import MODIFIERS, FilterError, parse_filter
from events.forms import PublishForm
from events.selectors import event_history_for_user
from events.services import event_publish_by_user


def event_log_context(*, filter_text: str, device=None) -> dict:
    """What the Event Logs component needs, on its own page and on a device's page."""
    try:
        parse_filter(filter_text)
        filter_error = None
    except FilterError as error:
        filter_error = error.message
    return {
        "filter_text": filter_text,
        "filter_error": filter_error,
        "modifiers": MODIFIERS,
        "device": device,
        "publish_form": PublishForm(),
    }


@require_GET
def event_logs(request: HttpRequest) -> HttpResponse:
    return render(request, "events/logs.html", event_log_context(filter_text=request.GET.get("q", "")[:1000]))


@require_POST
def event_publish(request: HttpRequest) -> JsonResponse:
    """The Publish event modal: JSON back, with the field a message belongs to."""
    form = PublishForm(request.POST)
    if not form.is_valid():
        errors = {field: " ".join(messages) for field, messages in form.errors.items()}
        return JsonResponse({"ok": False, "errors": errors}, status=400)
    try:
        event = event_publish_by_user(
            user=request.user, name=form.cleaned_data["name"], data=form.cleaned_data["data"] or None
        )
    except RateLimited as limited:
        response = JsonResponse({"ok": False, "errors": {"__all__": limited.message}}, status=429)
        response["Retry-After"] = str(limited.retry_after)
        return response
    except ApplicationError as error:
        return JsonResponse({"ok": False, "errors": {error.field or "__all__": error.message}}, status=400)
    return JsonResponse({"ok": True, "event": event.console_wire()})


@require_GET
def event_export(request: HttpRequest) -> HttpResponse:
    """The recent history that passes the filter (``q``), optionally one device's, as a file."""
    kind = request.GET.get("format", "csv")
    if kind not in ("csv", "ndjson"):
        return HttpResponse("format is csv or ndjson.", status=400, content_type="text/plain")
    try:
        event_filter = parse_filter(request.GET.get("q", ""))
    except FilterError as error:
        return HttpResponse(f"Filter: {error.message}", status=400, content_type="text/plain")
    events = event_history_for_user(
        user=request.user, event_filter=event_filter, device_id=request.GET.get("device") or None
    )
    lines = export.csv_lines(events) if kind == "csv" else export.ndjson_lines(events)
    content_type = "text/csv; charset=utf-8" if kind == "csv" else "application/x-ndjson"
    response = StreamingHttpResponse(lines, content_type=content_type)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="events-{stamp}.{kind}"'
    return response
