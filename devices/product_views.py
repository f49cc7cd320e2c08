"""A product's Devices page (``/products/<product>/devices/``): its devices with search, a status
filter, a group filter, sorting and pages, and the Quarantined tab of devices waiting for approval.
Managers (``device.import``, ``device.quarantine``, ``device.remove``) also import device IDs from a
file, approve or deny quarantined devices, and remove devices from the product. Rows have
checkboxes for bulk changes: adding to a group or removing from one (``group.manage``), marking
development devices (``device.update``).

A device's page (``/products/<product>/devices/<device_id>/``) is for the whole team, whoever owns
the device: its details, owner, groups (Edit groups sets them, ``group.manage``), firmware and
development flag (``device.update``), quarantine, and its live events.

The product is looked up through ``products.views._access`` with the action each view needs:
another team's product is a 404, an action the user's role does not allow is a 403 and changes
nothing. The import answers JSON for the page's script (``static/js/product-devices.js``); the
other actions are forms that redirect back to the list with a message.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from console.errors import ApplicationError, NotFound, PermissionDenied
from console.formatting import size_text
from console.permissions import role_can
from devices import groups as device_groups
from devices import imports, selectors
from devices.forms import ProductDeviceImportForm, ProductDeviceRemoveForm
from devices.models import Device
from devices.product_fields import product_device_panels
from events.views import event_log_context
from products.models import DeviceGroup, Product, QuarantinePolicy
from products.selectors import product_access
from products.views import _access, _is_htmx, _product_context

PAGE_SIZE = 50
SEARCH_MAX_LENGTH = 100
# What a row shows: no keys, variables or notes are read for a page of devices.
LIST_FIELDS = (
    "id",
    "name",
    "platform_id",
    "product_id",
    "online",
    "last_heard",
    "firmware_version",
    "quarantined",
    "development",
    "owner_id",
    "owner__email",
)

# The page's ``sort`` values: the selector's sort, and whether it is descending.
SORTS = {
    "name": ("name", False),
    "-name": ("name", True),
    "-last_heard": ("last_heard", True),
    "last_heard": ("last_heard", False),
    "-firmware_version": ("firmware_version", True),
    "firmware_version": ("firmware_version", False),
}
SORT_LABELS = {
    "name": "Name, A–Z",
    "-name": "Name, Z–A",
    "-last_heard": "Last heard, newest first",
    "last_heard": "Last heard, oldest first",
    "-firmware_version": "Firmware, newest first",
    "firmware_version": "Firmware, oldest first",
}
DEFAULT_SORT = "name"
# Which way a column sorts on its first click.
SORT_FIRST = {"name": "name", "last_heard": "-last_heard", "firmware_version": "-firmware_version"}
# The status filter: any, online, offline.
STATUSES = {"": None, "online": True, "offline": False}
STATUS_LABELS = {"": "Any status", "online": "Online", "offline": "Offline"}
TAB_QUARANTINED = "quarantined"

DENY_MESSAGE = (
    "It leaves the product and is refused at its handshake whenever it asks to join again. "
    "Importing its ID later lets it back in."
)
REMOVE_MESSAGE = (
    "It leaves the product. If its firmware still carries this product's ID, it asks to join "
    "again at its next handshake."
)


# --- helpers ----------------------------------------------------------------------------------------
def _list_url(product: Product) -> str:
    return reverse("product_devices:list", args=[product.slug])


def _back(request: HttpRequest, product: Product) -> HttpResponse:
    """Back to the list the action was taken from (its tab, search and page), or to the list."""
    url = _list_url(product)
    back = request.POST.get("next", "")
    if back.startswith(url) and "//" not in back and "\\" not in back:
        return redirect(back)
    return redirect(url)


def _device_or_404(product: Product, device_id: str) -> Device:
    try:
        return imports.product_device_get(product=product, id_or_name=device_id)
    except NotFound:
        raise Http404("No such device in this product.") from None


def _detail_url(product: Product, device: Device) -> str:
    return reverse("product_devices:detail", args=[product.slug, device.id])


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


def _label(device: Device) -> str:
    return f"{device.name} ({device.id})" if device.name else device.id


# --- the list -----------------------------------------------------------------------------------------
@require_GET
def product_device_list(request: HttpRequest, product: str) -> HttpResponse:
    access = _access(request, product, "device.read")
    product_obj = access.product
    search = request.GET.get("q", "").strip()[:SEARCH_MAX_LENGTH]
    sort = request.GET.get("sort") or DEFAULT_SORT
    if sort not in SORTS:
        sort = DEFAULT_SORT
    status = request.GET.get("status", "")
    if status not in STATUSES:
        status = ""
    tab = TAB_QUARANTINED if request.GET.get("tab") == TAB_QUARANTINED else ""
    group = request.GET.get("group", "").strip()[:SEARCH_MAX_LENGTH]
    product_groups = list(
        DeviceGroup.objects.filter(product=product_obj).only("id", "name", "color").order_by("name")
    )

    # The tabs' counts in one query over the product's index.
    counts = Device.objects.filter(product=product_obj).aggregate(
        total=Count("pk"), quarantined=Count("pk", filter=Q(quarantined=True))
    )
    selector_sort, descending = SORTS[sort]
    devices = selectors.product_device_list(
        product=product_obj,
        search=search,
        quarantined=True if tab else None,
        online=STATUSES[status],
        groups=[group] if group else None,
        sort=selector_sort,
        descending=descending,
    ).only(*LIST_FIELDS)
    paginator = Paginator(devices, PAGE_SIZE)
    if not search and not status and not group:
        paginator.count = counts["quarantined"] if tab else counts["total"]  # known: no COUNT query
    elif group and not search and not status and not tab:
        paginator.count = selectors.product_group_member_count(product=product_obj, names=[group])
    page_obj = paginator.get_page(request.GET.get("page"))
    count = paginator.count
    filtered = bool(search or status or group)
    can_group = role_can(access.role, "group.manage")
    can_develop = role_can(access.role, "device.update")

    context = {
        **_product_context(request, access),
        "page_title": f"Devices · {product_obj.name}",
        "page_obj": page_obj,
        "count": count,
        "total": counts["total"],
        "quarantined_total": counts["quarantined"],
        "search": search,
        "status": status,
        "status_options": STATUS_LABELS.items(),
        "group": group,
        "group_color": next((g.color for g in product_groups if g.name == group), ""),
        "product_groups": product_groups,
        "can_group": can_group,
        "can_develop": can_develop,
        "can_bulk": can_group or can_develop,
        "tab": tab,
        "filtered": filtered,
        "sort": sort,
        "sort_columns": _sort_columns(sort),
        "sort_options": SORT_LABELS.items(),
        "can_import": role_can(access.role, "device.import"),
        "can_quarantine": role_can(access.role, "device.quarantine"),
        "can_remove": role_can(access.role, "device.remove"),
        "quarantines": product_obj.quarantine_policy == QuarantinePolicy.QUARANTINE,
        "product_id_text": str(product_obj.id),
        "import_max_bytes": settings.QUANTA_IMPORT_MAX_BYTES,
        "import_max_size": size_text(settings.QUANTA_IMPORT_MAX_BYTES),
        "import_max_ids": f"{settings.QUANTA_IMPORT_MAX_IDS:,}",
        "deny_message": DENY_MESSAGE,
        "remove_message": REMOVE_MESSAGE,
    }
    template = "devices/product_list.html"
    if _is_htmx(request) and request.headers.get("HX-Target") == "device-table":
        template = "devices/product_list.html#device_table"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


# --- importing --------------------------------------------------------------------------------------
def _json_error(message: str, status: int, field: str | None = None) -> JsonResponse:
    return JsonResponse({"ok": False, "error": message, "field": field}, status=status)


@require_POST
def product_device_import(request: HttpRequest, product: str) -> JsonResponse:
    """The Import dialog posts a file here and shows the report: ``{ok, result}`` with the API's
    categories, or ``{ok: false, error}`` (400; 403 and 404 for roles and products)."""
    try:
        access = product_access(user=request.user, id_or_slug=product, action="device.import")
    except NotFound:
        return _json_error("No such product on your teams.", 404)
    except PermissionDenied as denied:
        return _json_error(denied.message, 403)
    form = ProductDeviceImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _json_error(str(form.errors["file"][0]), 400, "file")
    upload = form.cleaned_data["file"]
    try:
        imports.import_file_size_check(upload.size)  # before reading it
        parsed = imports.device_ids_from_file(upload.read())
        result = imports.devices_import(
            actor=request.user, product=access.product, parsed=parsed, via="console"
        )
    except ApplicationError as refused:
        return _json_error(refused.message, 400, refused.field)
    return JsonResponse({"ok": True, "result": result.as_api()})


# --- one device -----------------------------------------------------------------------------------------
@require_POST
def product_device_approve(request: HttpRequest, product: str, device_id: str) -> HttpResponse:
    """Approve a quarantined device: import its ID."""
    access = _access(request, product, "device.quarantine")
    device = _device_or_404(access.product, device_id)
    if not device.quarantined:
        messages.info(request, f"{_label(device)} is not waiting for approval: it is in the product.")
        return _back(request, access.product)
    result = imports.devices_import(
        actor=request.user,
        product=access.product,
        parsed=imports.ParsedIds(ids=[device.id]),
        via="console",
    )
    if device.id in result.updated:
        messages.success(request, f"Approved {_label(device)}. It is in {access.product.name} now.")
    elif device.id in result.nonmember:
        messages.error(
            request,
            f"Could not approve {_label(device)}: it is claimed by someone outside your team. "
            "Its owner has to unclaim it first, or deny it.",
        )
    else:
        messages.error(request, f"Could not approve {_label(device)}: it changed meanwhile. Try again.")
    return _back(request, access.product)


@require_POST
def product_device_deny(request: HttpRequest, product: str, device_id: str) -> HttpResponse:
    """Deny a quarantined device: out of the product, and refused when it asks again."""
    access = _access(request, product, "device.quarantine")
    device = _device_or_404(access.product, device_id)
    imports.device_remove_from_product(
        actor=request.user, product=access.product, device=device, deny=True, via="console"
    )
    messages.success(
        request,
        f"Denied {_label(device)}. It is refused when it asks to join again; import its ID to let it in.",
    )
    return _back(request, access.product)


@require_POST
def product_device_remove(request: HttpRequest, product: str, device_id: str) -> HttpResponse:
    """Remove a device from the product; with ``deny``, it is also refused when it asks again."""
    access = _access(request, product, "device.remove")
    device = _device_or_404(access.product, device_id)
    form = ProductDeviceRemoveForm(request.POST)
    deny = form.is_valid() and form.cleaned_data["deny"]
    imports.device_remove_from_product(
        actor=request.user, product=access.product, device=device, deny=deny, via="console"
    )
    message = f"Removed {_label(device)} from {access.product.name}."
    if deny:
        message += " It is denied: it is refused when it asks to join again."
    messages.success(request, message)
    return _back(request, access.product)


# --- a device's page -----------------------------------------------------------------------------------
@require_GET
def product_device_detail(request: HttpRequest, product: str, device_id: str) -> HttpResponse:
    access = _access(request, product, "device.read")
    product_obj = access.product
    try:
        device = selectors.product_device_get(product=product_obj, id_or_name=device_id)
    except NotFound:
        raise Http404("No such device in this product.") from None
    can_group = role_can(access.role, "group.manage")
    device_groups_shown = [group for group in device.groups.all() if group.product_id == product_obj.id]
    context = {
        **_product_context(request, access),
        **event_log_context(filter_text="", device=device),
        "page_title": f"{device.name or device.id} · {product_obj.name}",
        "device": device,
        "device_groups": device_groups_shown,
        "device_group_names": {group.name for group in device_groups_shown},
        # The Edit groups dialog lists every group of the product; only its editors need them.
        "product_groups": (
            list(DeviceGroup.objects.filter(product=product_obj).only("id", "name", "color").order_by("name"))
            if can_group
            else []
        ),
        "firmware_elsewhere": device.firmware_product_id not in (None, product_obj.id),
        "can_group": can_group,
        "can_develop": role_can(access.role, "device.update"),
        "can_quarantine": role_can(access.role, "device.quarantine"),
        "deny_message": DENY_MESSAGE,
        "device_panels": product_device_panels(request=request, access=access, device=device),
    }
    return render(request, "devices/product_detail.html", context)


@require_POST
def product_device_groups(request: HttpRequest, product: str, device_id: str) -> HttpResponse:
    """The Edit groups dialog: the device's groups become exactly the checked ones (``groups``) and
    the new names typed in (``new_groups``, comma-separated; they are created)."""
    access = _access(request, product, "group.manage")
    device = _device_or_404(access.product, device_id)
    names = request.POST.getlist("groups") + request.POST.get("new_groups", "").split(",")
    try:
        groups = device_groups.device_groups_set(
            actor=request.user,
            product=access.product,
            device=device,
            names=[name for name in names if name.strip()],
            via="console",
        )
    except ApplicationError as refused:
        messages.error(request, f"Could not change the groups of {_label(device)}: {refused.message}")
    else:
        if groups:
            messages.success(request, f"{_label(device)} is in {', '.join(groups)}.")
        else:
            messages.success(request, f"{_label(device)} is in no group now.")
    return redirect(_detail_url(access.product, device))


@require_POST
def product_device_development(request: HttpRequest, product: str, device_id: str) -> HttpResponse:
    """Mark the device as a development device (``development=1``) or not (``0``)."""
    access = _access(request, product, "device.update")
    device = _device_or_404(access.product, device_id)
    value = request.POST.get("development", "")
    if value not in {"0", "1"}:
        messages.error(request, "Choose whether it is a development device.")
        return redirect(_detail_url(access.product, device))
    development = value == "1"
    device_groups.devices_development_set(
        actor=request.user,
        product=access.product,
        device_ids=[device.id],
        development=development,
        via="console",
    )
    if development:
        messages.success(request, f"{_label(device)} is a development device now.")
    else:
        messages.success(request, f"{_label(device)} is no longer a development device.")
    return redirect(_detail_url(access.product, device))


# --- bulk changes -------------------------------------------------------------------------------------
# The bulk bar's actions: what each needs the role to allow.
BULK_ACTIONS = {
    "add_group": "group.manage",
    "remove_group": "group.manage",
    "development": "device.update",
    "not_development": "device.update",
}


def _devices_text(count: int) -> str:
    return f"{count} device{'' if count == 1 else 's'}"


@require_POST
def product_device_bulk(request: HttpRequest, product: str) -> HttpResponse:
    """The bulk bar posts the checked rows' IDs (``devices``) and an ``action``; back to the list
    with a message. IDs outside the product change nothing and are named in the error."""
    access = _access(request, product, "device.read")
    action = request.POST.get("action", "")
    if action not in BULK_ACTIONS:
        messages.error(request, "Choose what to do with the selected devices.")
        return _back(request, access.product)
    if not role_can(access.role, BULK_ACTIONS[action]):
        raise DjangoPermissionDenied(f"Your role does not allow {BULK_ACTIONS[action].replace('.', ' ')}.")
    ids = request.POST.getlist("devices")
    kwargs = {"actor": request.user, "product": access.product, "device_ids": ids, "via": "console"}
    try:
        if action == "add_group":
            name = request.POST.get("add_group", "")
            device_groups.devices_groups_add(names=[name], **kwargs)
            messages.success(request, f"Added {_devices_text(len(set(ids)))} to {name.strip()}.")
        elif action == "remove_group":
            name = request.POST.get("remove_group", "")
            device_groups.devices_groups_remove(names=[name], **kwargs)
            messages.success(request, f"Removed {_devices_text(len(set(ids)))} from {name.strip()}.")
        else:
            development = action == "development"
            device_groups.devices_development_set(development=development, **kwargs)
            if development:
                messages.success(request, f"Marked {_devices_text(len(set(ids)))} as development devices.")
            else:
                messages.success(
                    request, f"{_devices_text(len(set(ids)))} are no longer development devices."
                )
    except ApplicationError as refused:
        messages.error(request, refused.message)
    return _back(request, access.product)
