"""Console pages for devices: the list, a device's page, and the actions on them.

Actions are POSTs (CSRF-protected; the login middleware covers them all). Every device is looked up
through the selectors, so another user's device is a 404. htmx requests get a partial back, also
when the action failed: the partial explains the error in place (200, so htmx swaps it; the
``X-Quanta-Error`` header names the error). Other requests get a redirect with a message.
"""

from __future__ import annotations

import json
import time

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import F
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.dateformat import format as date_format
from django.views.decorators.http import require_GET, require_POST

from console.errors import ApplicationError, NotFound, PermissionDenied
from console.http import client_ip
from console.platforms import PLATFORMS
from devices import calls, selectors, services
from devices.forms import CallForm, ClaimForm, NotesForm, RenameForm, SignalForm, VariableForm
from devices.models import Device
from events.views import event_log_context

PAGE_SIZE = 50
SEARCH_MAX_LENGTH = 100
LIST_FIELDS = ("id", "name", "platform_id", "online", "last_heard", "owner_id")

# Each sort ends on a unique column so pages never overlap; the first column of each is indexed
# together with the owner (name, last heard) or cheap to sort among one user's devices (online).
SORTS = {
    "name": ("name", "id"),
    "-name": ("-name", "-id"),
    "-last_heard": (F("last_heard").desc(nulls_last=True), "id"),
    "last_heard": (F("last_heard").asc(nulls_first=True), "id"),
    "-online": ("-online", "name", "id"),
    "online": ("online", "name", "id"),
}
SORT_LABELS = {
    "name": "Name, A–Z",
    "-name": "Name, Z–A",
    "-last_heard": "Last heard, newest first",
    "last_heard": "Last heard, oldest first",
    "-online": "Online first",
    "online": "Offline first",
}
DEFAULT_SORT = "name"
# Which way a column sorts on its first click.
SORT_FIRST = {"name": "name", "last_heard": "-last_heard", "online": "-online"}

UNCLAIM_MESSAGE = (
    "It will be removed from your account and its notes are deleted. It keeps running and "
    "publishing, but you will no longer see it, call it or receive its events. It can be claimed "
    "again by anyone with its ID."
)

# Where simulate_fleet connects unless told otherwise (``make run`` serves there).
DEFAULT_GATEWAY_URLS = {"ws://127.0.0.1:8000/device/v1", "ws://localhost:8000/device/v1"}
INVALID = "invalid"  # the X-Quanta-Error of a form that did not validate
SOMEONE_ELSES = "That device belongs to someone else. Its owner has to unclaim it before you can claim it."


# --- helpers ----------------------------------------------------------------------------------------
def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true" and "HX-History-Restore-Request" not in request.headers


def _device_or_404(request: HttpRequest, device_id: str) -> Device:
    try:
        return selectors.device_get_for_user(user=request.user, id_or_name=device_id)
    except NotFound:
        raise Http404("No such device in your account.") from None


def _toast(response: HttpResponse, message: str, level: str = "success") -> HttpResponse:
    """Show a toast once htmx has handled the response (devices.js listens for the event)."""
    response["HX-Trigger"] = json.dumps({"quanta:toast": {"message": message, "level": level}})
    return response


def _partial(
    request: HttpRequest,
    template: str,
    context: dict,
    *,
    error: str | None = None,
    toast: tuple[str, str] | None = None,
) -> HttpResponse:
    response = render(request, template, context)
    if error:
        response["X-Quanta-Error"] = error
    if toast:
        _toast(response, *toast)
    return response


def _hx_redirect(url: str) -> HttpResponse:
    response = HttpResponse(status=204)
    response["HX-Redirect"] = url
    return response


def _first_error(form) -> str:
    for errors in form.errors.values():
        return str(errors[0])
    return "Check the form and try again."


# --- the list -----------------------------------------------------------------------------------------
def _sort_columns(sort: str) -> dict[str, dict]:
    columns = {}
    for column, first in SORT_FIRST.items():
        if sort.lstrip("-") == column:
            descending = sort.startswith("-")
            columns[column] = {
                "next": column if descending else f"-{column}",
                "aria": "descending" if descending else "ascending",
                "active": True,
            }
        else:
            columns[column] = {"next": first, "aria": None, "active": False}
    return columns


def _gateway_url_if_not_default(request: HttpRequest) -> str:
    """This server's device gateway, for the simulator's --url; empty when it is the default."""
    url = f"{'wss' if request.is_secure() else 'ws'}://{request.get_host()}/device/v1"
    return "" if url in DEFAULT_GATEWAY_URLS else url


@require_GET
def device_list(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:SEARCH_MAX_LENGTH]
    sort = request.GET.get("sort") or DEFAULT_SORT
    if sort not in SORTS:
        sort = DEFAULT_SORT
    devices = (
        selectors.device_list_for_user(user=request.user, search=search)
        .only(*LIST_FIELDS)
        .order_by(*SORTS[sort])
    )
    page_obj = Paginator(devices, PAGE_SIZE).get_page(request.GET.get("page"))
    count = page_obj.paginator.count
    # Only an empty search result needs to know whether the account has devices at all.
    has_devices = count > 0 or (bool(search) and selectors.device_list_for_user(user=request.user).exists())
    context = {
        "page_title": "Devices",
        "page_obj": page_obj,
        "count": count,
        "search": search,
        "sort": sort,
        "sort_columns": _sort_columns(sort),
        "sort_options": SORT_LABELS.items(),
        "has_devices": has_devices,
        "claim_form": ClaimForm(),
        "unclaim_message": UNCLAIM_MESSAGE,
        "simulate_platform": PLATFORMS[13].slug,
        "simulate_url": _gateway_url_if_not_default(request) if not has_devices else "",
    }
    template = "devices/list.html"
    if _is_htmx(request) and request.headers.get("HX-Target") == "device-table":
        template = "devices/list.html#device_table"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


@require_POST
def device_claim(request: HttpRequest) -> HttpResponse:
    form = ClaimForm(request.POST)
    error = INVALID
    device = None
    already_yours = False
    if form.is_valid():
        device_id = form.cleaned_data["device_id"]
        already_yours = selectors.device_list_for_user(user=request.user).filter(id=device_id).exists()
        try:
            device = services.device_claim(
                user=request.user, device_id=device_id, ip_address=client_ip(request), via="console"
            )
        except ApplicationError as refused:
            error = refused.error
            form.add_error(
                "device_id", SOMEONE_ELSES if isinstance(refused, PermissionDenied) else refused.message
            )
    if device is not None:
        messages.success(
            request,
            f"{device.name} is already in your account."
            if already_yours
            else f"Claimed {device.id}. It is named {device.name}; rename it whenever you like.",
        )
        url = reverse("devices:detail", args=[device.id])
        return _hx_redirect(url) if _is_htmx(request) else redirect(url)
    if _is_htmx(request):
        return _partial(request, "devices/_claim_dialog.html#claim_form", {"claim_form": form}, error=error)
    messages.error(request, f"Could not claim the device: {_first_error(form)}")
    return redirect("devices:list")


@require_POST
def claim_code_create(request: HttpRequest) -> HttpResponse:
    claim = services.claim_code_create(user=request.user)
    if _is_htmx(request):
        return _partial(request, "devices/_claim_dialog.html#claim_code", {"claim_code": claim})
    expires = date_format(timezone.localtime(claim.expires_at), "M j, Y H:i e")
    messages.info(request, f"Your claim code: {claim.code} (it works once, until {expires}).")
    return redirect("devices:list")


# --- one device -------------------------------------------------------------------------------------
@require_GET
def device_detail(request: HttpRequest, device_id: str) -> HttpResponse:
    device = _device_or_404(request, device_id)
    context = {
        "page_title": device.name,
        "device": device,
        "platform_name": device.platform_name,
        "functions": list(device.functions or []),
        "variables": sorted((device.variables or {}).items()),
        "notes_form": NotesForm(initial={"notes": device.notes}),
        "unclaim_message": UNCLAIM_MESSAGE,
        "signaling": False,
        **event_log_context(filter_text="", device=device),
    }
    return render(request, "devices/detail.html", context)


def _after_action(request: HttpRequest, device: Device, variant: str = "detail") -> HttpResponse:
    if variant == "list":
        return redirect("devices:list")
    return redirect("devices:detail", device_id=device.id)


@require_POST
def device_rename(request: HttpRequest, device_id: str) -> HttpResponse:
    device = _device_or_404(request, device_id)
    variant = "list" if request.POST.get("variant") == "list" else "detail"
    form = RenameForm(request.POST)
    original = device.name
    message: str | None = None
    error: str | None = None
    if not form.is_valid():
        message, error = _first_error(form), INVALID
    else:
        try:
            device = services.device_rename(
                user=request.user, device=device, name=form.cleaned_data["name"], via="console"
            )
        except ApplicationError as refused:
            device.name = original  # the service may have set it before the database refused
            message, error = refused.message, refused.error
    renamed = error is None and device.name != original
    if _is_htmx(request):
        context = {
            "device": device,
            "variant": variant,
            "editing": error is not None,
            "error": message,
            "value": request.POST.get("name", ""),
        }
        toast = (f"Renamed {original} to {device.name}.", "success") if renamed else None
        return _partial(request, "devices/_rename.html", context, error=error, toast=toast)
    if message:
        messages.error(request, f"Could not rename {original}: {message}")
    elif renamed:
        messages.success(request, f"Renamed {original} to {device.name}.")
    return _after_action(request, device, variant)


@require_POST
def device_notes(request: HttpRequest, device_id: str) -> HttpResponse:
    device = _device_or_404(request, device_id)
    form = NotesForm(request.POST)
    error: str | None = INVALID
    if form.is_valid():
        try:
            services.device_notes_update(
                user=request.user, device=device, notes=form.cleaned_data["notes"], via="console"
            )
            error = None
        except ApplicationError as refused:
            form.add_error("notes", refused.message)
            error = refused.error
    if _is_htmx(request):
        return _partial(
            request,
            "devices/detail.html#notes_form",
            {"device": device, "notes_form": form, "notes_saved": error is None},
            error=error,
        )
    if error is None:
        messages.success(request, "Notes saved.")
    else:
        messages.error(request, f"Could not save the notes: {_first_error(form)}")
    return _after_action(request, device)


@require_POST
def device_unclaim(request: HttpRequest, device_id: str) -> HttpResponse:
    device = _device_or_404(request, device_id)
    services.device_unclaim(user=request.user, device=device, ip_address=client_ip(request), via="console")
    messages.success(request, f"Unclaimed {device.name} ({device.id}). It is no longer in your account.")
    url = reverse("devices:list")
    return _hx_redirect(url) if _is_htmx(request) else redirect(url)


# --- talking to the device ----------------------------------------------------------------------------
@require_POST
def device_call(request: HttpRequest, device_id: str) -> HttpResponse:
    device = _device_or_404(request, device_id)
    form = CallForm(request.POST)
    function = request.POST.get("function", "")
    result: int | None = None
    message: str | None = None
    error: str | None = None
    elapsed_ms: int | None = None
    if not form.is_valid():
        message, error = _first_error(form), INVALID
    else:
        function = form.cleaned_data["function"]
        started = time.monotonic()
        try:
            result = calls.device_function_call(
                device=device, function=function, argument=form.cleaned_data["arg"]
            )
        except ApplicationError as refused:
            message, error = refused.message, refused.error
        elapsed_ms = round((time.monotonic() - started) * 1000)
    if _is_htmx(request):
        context = {"function": function, "result": result, "error": message, "elapsed_ms": elapsed_ms}
        return _partial(request, "devices/detail.html#call_result", context, error=error)
    if message:
        messages.error(request, f"Calling {function} failed: {message}")
    else:
        messages.success(request, f"{function} returned {result}.")
    return _after_action(request, device)


@require_GET
def device_variable(request: HttpRequest, device_id: str) -> HttpResponse:
    device = _device_or_404(request, device_id)
    form = VariableForm(request.GET)
    name = request.GET.get("name", "")
    value = None
    message: str | None = None
    error: str | None = None
    if not form.is_valid():
        message, error = _first_error(form), INVALID
    else:
        name = form.cleaned_data["name"]
        try:
            value = calls.device_variable_get(device=device, variable=name)
        except ApplicationError as refused:
            message, error = refused.message, refused.error
    if not _is_htmx(request):
        if message:
            messages.error(request, f"Reading {name} failed: {message}")
        else:
            messages.info(request, f"{name} = {json.dumps(value)}")
        return _after_action(request, device)
    context = {
        "name": name,
        "value": value,
        "value_text": value if isinstance(value, str) else json.dumps(value),
        "error": message,
        "read_at": None if message else timezone.now(),
    }
    response = _partial(request, "devices/detail.html#variable_value", context, error=error)
    add_never_cache_headers(response)
    return response


@require_POST
def device_ping(request: HttpRequest, device_id: str) -> HttpResponse:
    device = _device_or_404(request, device_id)
    started = time.monotonic()
    answered = calls.device_ping(device=device)
    elapsed_ms = round((time.monotonic() - started) * 1000)
    if answered:
        message, level = f"{device.name} answered the ping in {elapsed_ms} ms.", "success"
    elif device.online:
        message, level = f"{device.name} did not answer the ping.", "warning"
    else:
        message, level = f"{device.name} is offline: it is not connected to the cloud.", "warning"
    if _is_htmx(request):
        return _toast(HttpResponse(status=204), message, level)
    getattr(messages, level)(request, message)
    return _after_action(request, device)


@require_POST
def device_signal(request: HttpRequest, device_id: str) -> HttpResponse:
    device = _device_or_404(request, device_id)
    form = SignalForm(request.POST)
    on = signaling = False
    error: str | None = None
    if not form.is_valid():
        message, error = "Could not signal: send on=1 or on=0.", INVALID
    else:
        on = form.cleaned_data["on"]
        try:
            calls.device_signal(device=device, on=on)
        except ApplicationError as refused:
            message, error, signaling = (
                f"Could not signal {device.name}: {refused.message}",
                refused.error,
                not on,
            )
        else:
            signaling = on
            message = (
                f"{device.name} is signaling: its LED breathes in rainbow colours."
                if on
                else f"{device.name} stopped signaling."
            )
    level = "error" if error else "success"
    if _is_htmx(request):
        return _partial(
            request,
            "devices/detail.html#signal_button",
            {"device": device, "signaling": signaling},
            error=error,
            toast=(message, level),
        )
    getattr(messages, level)(request, message)
    return _after_action(request, device)
