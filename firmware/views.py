"""A product's Firmware page (``/products/<product>/firmware/``) and each version's page: the
versions with where each is released and how many devices run it, the fleet's running versions,
and the Upload, Release, Edit and Delete dialogs.

The product is looked up through ``products.views._access`` with the action each view needs:
another team's product or an unknown version is a 404, an action the user's role does not allow is
a 403 and changes nothing. The services (``firmware.services``, ``firmware.releases``) decide and
word the refusals; the views put them on the field they name.

Release, Edit and Delete open from rows and buttons with htmx: a GET answers the dialog alone, which
the page opens (without htmx, the version's page with the dialog open). Their forms post with htmx
and come back with the errors in place (200, ``X-Quanta-Error``), or redirect with a toast. The
Upload dialog posts with XMLHttpRequest for its progress bar (static/js/firmware.js) and reads JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console.errors import ApplicationError
from console.formatting import size_text
from console.permissions import role_can
from firmware import releases, selectors, services
from firmware.binary import NO_PRODUCT, ModuleFunction
from firmware.forms import EDIT_FIELDS, UPLOAD_FIELDS, FirmwareEditForm, FirmwareUploadForm
from firmware.models import ProductFirmware
from products.charts import firmware_version_bars
from products.groups import group_list
from products.models import DeviceGroup, Product
from products.selectors import ProductAccess
from products.views import INVALID, _access, _is_htmx, _product_context

UPLOAD_DIALOG = "firmware-upload-dialog"
_TRUE = {"1", "on", "true", "yes"}


# --- presentation -------------------------------------------------------------------------------------
def device_os_version(module_version: int) -> str | None:
    """A system part's module version as the Device OS release it belongs to: 5301 is 5.3.1,
    1201 is 1.2.1. None before 1.0, whose module versions follow no such pattern."""
    if module_version < 1000:
        return None
    major, rest = divmod(module_version, 1000)
    minor, patch = divmod(rest, 100)
    return f"{major}.{minor}.{patch}"


def _plural(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


@dataclass(frozen=True)
class ReleaseState:
    """Where a version is released, from its prefetched releases."""

    product_default: bool
    groups: list[DeviceGroup]
    intelligent: bool

    @property
    def released(self) -> bool:
        return self.product_default or bool(self.groups)

    @property
    def group_names(self) -> list[str]:
        return [group.name for group in self.groups]


def _release_state(firmware: ProductFirmware) -> ReleaseState:
    current = list(firmware.releases.all())
    return ReleaseState(
        product_default=any(release.group_id is None for release in current),
        groups=[release.group for release in current if release.group_id is not None],
        intelligent=any(release.intelligent for release in current),
    )


def _decorate(
    firmware: ProductFirmware,
    counts: dict[int | None, int],
    progress: dict[int, selectors.RolloutProgress] | None = None,
) -> ProductFirmware:
    firmware.state = _release_state(firmware)
    firmware.device_count = counts.get(firmware.version, 0)
    firmware.progress = (progress or {}).get(firmware.version)
    firmware.size_label = size_text(firmware.size)
    firmware.deletable = firmware.first_released_at is None
    return firmware


@dataclass(frozen=True)
class ModuleRow:
    label: str
    value: str
    note: str = ""
    mono: bool = True


def _module_rows(firmware: ProductFirmware) -> list[ModuleRow]:
    """What the parser read at upload, for the version's page (older rows may lack a key)."""
    module = firmware.module or {}
    rows: list[ModuleRow] = []
    platform_id = module.get("platform_id", firmware.platform_id)
    rows.append(
        ModuleRow(
            "Platform", f"{module.get('platform_name', platform_id)}", f"platform {platform_id}", mono=False
        )
    )
    if "module_function_name" in module:
        function = module.get("module_function_name", "")
        rows.append(
            ModuleRow(
                "Module",
                f"{function[:1].upper()}{function[1:]}",
                f"index {module.get('module_index', '—')}",
                mono=False,
            )
        )
    if "module_version" in module:
        rows.append(ModuleRow("Module version", str(module["module_version"])))
    system_version = module.get("system_version")
    if system_version is not None:
        label = device_os_version(system_version)
        rows.append(
            ModuleRow(
                "Built for Device OS",
                label or f"module version {system_version}",
                f"system part version {system_version}" if label else "",
            )
        )
    rows.append(_product_id_row(module))
    product_version = module.get("product_version")
    rows.append(
        ModuleRow(
            "PRODUCT_VERSION",
            str(product_version) if product_version not in (None, NO_PRODUCT) else "None",
        )
    )
    for key, label in (("prefix_offset", "Prefix offset"), ("suffix_size", "Suffix size")):
        if key in module:
            rows.append(ModuleRow(label, _plural(module[key], "byte", "bytes")))
    extensions = module.get("extensions") or []
    if extensions or "extensions" in module:
        listed = ", ".join(
            f"{e.get('name', e.get('type'))} ({_plural(e.get('length', 0), 'byte', 'bytes')})"
            for e in extensions
        )
        rows.append(ModuleRow("Suffix extensions", listed or "None"))
    if "stored_crc" in module:
        rows.append(ModuleRow("CRC-32", f"0x{module['stored_crc']:08X}", "verified at upload"))
    return rows


def _product_id_row(module: dict) -> ModuleRow:
    product_id = module.get("product_id")
    if product_id in (None, 0, NO_PRODUCT):
        return ModuleRow("PRODUCT_ID", "None", "the build names no product")
    if module.get("product_id_meaningful", True):
        return ModuleRow("PRODUCT_ID", str(product_id), "the product it was built for")
    return ModuleRow(
        "PRODUCT_ID",
        str(product_id),
        "names no product: Device OS 4 and later builds no longer carry PRODUCT_ID, and builds often "
        "leave the platform's ID in this field",
    )


@dataclass(frozen=True)
class DependencyRow:
    module: str
    version: str
    detail: str


def _dependency_rows(firmware: ProductFirmware) -> list[DependencyRow]:
    rows = []
    for dependency in (firmware.module or {}).get("dependencies") or []:
        function, index, version = (list(dependency) + [0, 0, 0])[:3]
        try:
            name = ModuleFunction(function).label
        except ValueError:
            name = f"function {function}"
        module = f"{name[:1].upper()}{name[1:]} {index}" if index else f"{name[:1].upper()}{name[1:]}"
        os_version = device_os_version(version) if function == ModuleFunction.SYSTEM_PART else None
        if os_version:
            rows.append(DependencyRow(module, f"Device OS {os_version}", f"module version {version}"))
        else:
            rows.append(DependencyRow(module, f"version {version}", ""))
    return rows


# --- helpers ----------------------------------------------------------------------------------------
def _list_url(product: Product) -> str:
    return reverse("firmware:list", args=[product.slug])


def _detail_url(product: Product, version: int) -> str:
    return reverse("firmware:detail", args=[product.slug, version])


def _firmware_or_404(access: ProductAccess, version: int) -> ProductFirmware:
    try:
        return selectors.firmware_get(product=access.product, version=version)
    except ApplicationError:  # unknown, or out of range
        raise Http404("No such firmware version in this product.") from None


def _permissions(access: ProductAccess) -> dict:
    return {
        "can_upload": role_can(access.role, "firmware.upload"),
        "can_release": role_can(access.role, "firmware.release"),
    }


def _return_url(request: HttpRequest, access: ProductAccess, firmware: ProductFirmware) -> str:
    """Where a dialog's action returns: the list when it was opened there (htmx names the page),
    else the version's page."""
    try:
        opened_on = resolve(urlsplit(request.headers.get("HX-Current-URL", "")).path)
    except Resolver404:
        opened_on = None
    if opened_on is not None and opened_on.view_name == "firmware:list":
        return _list_url(access.product)
    return _detail_url(access.product, firmware.version)


def _done(request: HttpRequest, url: str) -> HttpResponse:
    if _is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def _refused(response: HttpResponse, error: str) -> HttpResponse:
    response["X-Quanta-Error"] = error
    return response


def _field(fields: dict[str, str], refused: ApplicationError) -> str | None:
    """The form field a refusal names (None: the form as a whole)."""
    return fields.get(refused.field or "")


# --- the list -------------------------------------------------------------------------------------------
def _list_context(
    request: HttpRequest, access: ProductAccess, *, upload_form: FirmwareUploadForm | None = None
) -> dict:
    product = access.product
    counts = selectors.running_counts(product=product)
    progress = selectors.rollout_progress(product=product)
    versions = [
        _decorate(firmware, counts, progress) for firmware in selectors.firmware_list(product=product)
    ]
    return {
        **_product_context(request, access),
        **_permissions(access),
        "page_title": f"Firmware · {product.name}",
        "versions": versions,
        "released_count": sum(1 for firmware in versions if firmware.state.released),
        # The overview's chart (products/_firmware_chart.html), from the same counts.
        "firmware_bars": firmware_version_bars(counts.items()),
        "firmware_reported": any(version is not None for version in counts),
        "device_total": sum(counts.values()),
        **_upload_context(upload_form),
    }


def _upload_context(form: FirmwareUploadForm | None) -> dict:
    return {
        "upload_form": form or FirmwareUploadForm(auto_id="firmware-upload-%s"),
        "upload_open": form is not None,
        "upload_dialog": UPLOAD_DIALOG,
        "max_bytes": settings.QUANTA_FIRMWARE_MAX_BYTES,
        "max_size": size_text(settings.QUANTA_FIRMWARE_MAX_BYTES),
    }


@require_GET
def firmware_list(request: HttpRequest, product: str) -> HttpResponse:
    access = _access(request, product, "firmware.read")
    return render(request, "firmware/list.html", _list_context(request, access))


@require_POST
def firmware_upload(request: HttpRequest, product: str) -> HttpResponse:
    """The Upload dialog posts the binary here. Its script asks for JSON: ``{ok, redirect}``, or
    ``{ok: false, error, errors}`` with the messages keyed by field (``__all__``: the form's); like
    the console's htmx forms, a refusal is a 200 naming its error in ``X-Quanta-Error``. A plain post
    redirects to the list, or re-renders it with the dialog open and the errors."""
    access = _access(request, product, "firmware.upload")
    form = FirmwareUploadForm(request.POST, request.FILES, auto_id="firmware-upload-%s")
    firmware: ProductFirmware | None = None
    error = INVALID
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            if upload is None:
                raise ApplicationError(
                    "Choose the binary to upload: the .bin file your build made.", field="file"
                )
            services.firmware_size_check(upload.size)  # before reading it
            firmware = services.firmware_upload(
                actor=request.user,
                product=access.product,
                data=upload.read(),
                version=form.cleaned_data["version"],
                title=form.cleaned_data["title"],
                description=form.cleaned_data["description"],
                via="console",
            )
        except ApplicationError as refused:
            error = refused.error
            form.add_error(_field(UPLOAD_FIELDS, refused), refused.message)
    wants_json = "application/json" in request.headers.get("Accept", "")
    if firmware is not None:
        messages.success(request, f"Uploaded version {firmware.version}, “{firmware.title}”.")
        url = _list_url(access.product)
        return (
            JsonResponse({"ok": True, "redirect": url, "version": firmware.version})
            if wants_json
            else redirect(url)
        )
    if wants_json:
        errors = {name: [str(text) for text in texts] for name, texts in form.errors.items()}
        return _refused(JsonResponse({"ok": False, "error": error, "errors": errors}), error)
    return render(request, "firmware/list.html", _list_context(request, access, upload_form=form))


# --- one version -----------------------------------------------------------------------------------------
def _detail_context(request: HttpRequest, access: ProductAccess, firmware: ProductFirmware) -> dict:
    product = access.product
    _decorate(
        firmware, selectors.running_counts(product=product), selectors.rollout_progress(product=product)
    )
    return {
        **_product_context(request, access),
        **_permissions(access),
        "page_title": f"v{firmware.version} · Firmware · {product.name}",
        "firmware": firmware,
        "module_rows": _module_rows(firmware),
        "dependencies": _dependency_rows(firmware),
    }


@require_GET
def firmware_detail(request: HttpRequest, product: str, version: int) -> HttpResponse:
    access = _access(request, product, "firmware.read")
    firmware = _firmware_or_404(access, version)
    return render(request, "firmware/detail.html", _detail_context(request, access, firmware))


@require_GET
def firmware_download(request: HttpRequest, product: str, version: int) -> HttpResponse:
    access = _access(request, product, "firmware.read")
    firmware = _firmware_or_404(access, version)
    response = HttpResponse(
        selectors.firmware_binary(firmware=firmware), content_type="application/octet-stream"
    )
    filename = f"{access.product.slug}-v{firmware.version}.bin"
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
    response["Content-Length"] = str(firmware.size)
    return response


def _dialog(
    request: HttpRequest, access: ProductAccess, firmware: ProductFirmware, name: str, context: dict
) -> HttpResponse:
    """A dialog for htmx to put in the page (which opens it), or the version's page with it open."""
    context = {**context, "product": access.product, "firmware": firmware, "dialog_open": True}
    if _is_htmx(request):
        return render(request, f"firmware/_{name}_dialog.html", context)
    page = {**_detail_context(request, access, firmware), **context, "open_dialog": name}
    return render(request, "firmware/detail.html", page)


def _form_refused(
    request: HttpRequest,
    access: ProductAccess,
    firmware: ProductFirmware,
    name: str,
    context: dict,
    error: str,
) -> HttpResponse:
    """A refused dialog form: htmx gets the form back with its errors; a plain post, the page."""
    if _is_htmx(request):
        context = {**context, "product": access.product, "firmware": firmware}
        return _refused(render(request, f"firmware/_{name}_dialog.html#{name}_form", context), error)
    return _dialog(request, access, firmware, name, context)


# --- editing and deleting ---------------------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
def firmware_edit(request: HttpRequest, product: str, version: int) -> HttpResponse:
    access = _access(request, product, "firmware.upload")
    firmware = _firmware_or_404(access, version)
    auto_id = "firmware-edit-%s"
    if request.method == "GET":
        form = FirmwareEditForm(
            initial={"title": firmware.title, "description": firmware.description}, auto_id=auto_id
        )
        return _dialog(request, access, firmware, "edit", {"edit_form": form})
    form = FirmwareEditForm(request.POST, auto_id=auto_id)
    error = INVALID
    if form.is_valid():
        try:
            services.firmware_update(
                actor=request.user,
                firmware=firmware,
                title=form.cleaned_data["title"],
                description=form.cleaned_data["description"],
                via="console",
            )
        except ApplicationError as refused:
            error = refused.error
            form.add_error(_field(EDIT_FIELDS, refused), refused.message)
        else:
            messages.success(request, f"Saved version {firmware.version}, “{firmware.title}”.")
            return _done(request, _return_url(request, access, firmware))
    return _form_refused(request, access, firmware, "edit", {"edit_form": form}, error)


@require_http_methods(["GET", "POST"])
def firmware_delete(request: HttpRequest, product: str, version: int) -> HttpResponse:
    access = _access(request, product, "firmware.upload")
    firmware = _firmware_or_404(access, version)
    if request.method == "GET":
        return _dialog(request, access, firmware, "delete", {})
    try:
        services.firmware_delete(actor=request.user, firmware=firmware, via="console")
    except ApplicationError as refused:
        return _form_refused(
            request, access, firmware, "delete", {"delete_error": refused.message}, refused.error
        )
    messages.success(request, f"Deleted version {firmware.version}, “{firmware.title}”.")
    return _done(request, _list_url(access.product))


# --- releasing --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReleaseChoice:
    """What the Release dialog's boxes say: exactly where the version should be released."""

    product_default: bool
    groups: list[str]
    intelligent: bool

    @classmethod
    def of(cls, state: ReleaseState) -> ReleaseChoice:
        return cls(
            product_default=state.product_default, groups=state.group_names, intelligent=state.intelligent
        )

    @classmethod
    def posted(cls, data) -> ReleaseChoice:
        return cls(
            product_default=data.get("product_default", "").lower() in _TRUE,
            groups=list(dict.fromkeys(name.strip() for name in data.getlist("groups") if name.strip())),
            intelligent=data.get("intelligent", "").lower() in _TRUE,
        )


@dataclass(frozen=True)
class GroupOption:
    group: DeviceGroup
    checked: bool
    holds: int | None  # the version released to the group now, when another


@dataclass
class ImpactSummary:
    """The impact fragment: how many devices the choice would update, from which versions, and
    what else it changes."""

    version: int
    total: int = 0
    parts: list[str] = field(default_factory=list)  # "12 from v3", "1 never reported"
    notes: list[str] = field(default_factory=list)
    error: str = ""


@dataclass(frozen=True)
class Landscape:
    """Where the product's versions are released now, besides the one being released."""

    default_version: int | None  # the product default now (maybe this version)
    held: dict[int, int]  # group id -> the other version released to it


def _landscape(product: Product, firmware: ProductFirmware) -> Landscape:
    default_version, held = None, {}
    for other in selectors.firmware_list(product=product):
        for release in other.releases.all():
            if release.group_id is None:
                default_version = other.version
            elif other.pk != firmware.pk:
                held[release.group_id] = other.version
    return Landscape(default_version=default_version, held=held)


def _impact(
    product: Product,
    firmware: ProductFirmware,
    choice: ReleaseChoice,
    landscape: Landscape,
    groups: list[DeviceGroup],
) -> ImpactSummary:
    summary = ImpactSummary(version=firmware.version)
    try:
        plan = releases.release_plan(
            product=product,
            firmware=firmware,
            product_default=choice.product_default,
            group_names=choice.groups,
        )
    except ApplicationError as refused:
        summary.error = refused.message
        return summary
    impact = releases.release_impact(product=product, plan=plan)
    summary.total = impact.total
    for row in impact.as_api()["by_running_version"]:
        count = f"{row['devices']:,}"
        summary.parts.append(
            f"{count} never reported" if row["version"] is None else f"{count} from v{row['version']}"
        )
    summary.notes = _release_notes(firmware, choice, landscape, groups)
    return summary


def _release_notes(
    firmware: ProductFirmware, choice: ReleaseChoice, landscape: Landscape, groups: list[DeviceGroup]
) -> list[str]:
    """What the choice changes besides the devices it updates, in the dialog's words."""
    state = _release_state(firmware)
    notes = []
    if choice.product_default and landscape.default_version not in (None, firmware.version):
        notes.append(f"Replaces v{landscape.default_version} as the product default.")
    if state.product_default and not choice.product_default:
        notes.append(
            f"v{firmware.version} stops being the product default: no version is the default then, and "
            "devices that follow only the default keep what they run."
        )
    by_name = {group.name: group for group in groups}
    for name in choice.groups:
        group = by_name.get(name)
        if group is not None and group.pk in landscape.held:
            notes.append(f"{name} moves from v{landscape.held[group.pk]} to v{firmware.version}.")
    taken = [name for name in state.group_names if name not in choice.groups]
    if taken:
        notes.append(
            f"Taken away from {', '.join(taken)}: {'its' if len(taken) == 1 else 'their'} devices keep what they run."
        )
    return notes


def _release_context(
    access: ProductAccess, firmware: ProductFirmware, choice: ReleaseChoice, *, errors: dict | None = None
) -> dict:
    product = access.product
    groups = list(group_list(product=product))
    landscape = _landscape(product, firmware)
    known = {group.name for group in groups}
    return {
        "choice": choice,
        "state": _release_state(firmware),
        "group_options": [
            GroupOption(group=group, checked=group.name in choice.groups, holds=landscape.held.get(group.pk))
            for group in groups
        ],
        # Names posted that are no group (any more): kept ticked, so that the refusal names them.
        "unknown_groups": [name for name in choice.groups if name not in known],
        "landscape": landscape,
        "impact": _impact(product, firmware, choice, landscape, groups),
        "errors": errors or {},
        "groups_url": reverse("products:groups", args=[product.slug]),
    }


@require_http_methods(["GET", "POST"])
def firmware_release(request: HttpRequest, product: str, version: int) -> HttpResponse:
    access = _access(request, product, "firmware.release")
    firmware = _firmware_or_404(access, version)
    if request.method == "GET":
        context = _release_context(access, firmware, ReleaseChoice.of(_release_state(firmware)))
        return _dialog(request, access, firmware, "release", context)
    choice = ReleaseChoice.posted(request.POST)
    try:
        plan = releases.firmware_release(
            actor=request.user,
            product=access.product,
            firmware=firmware,
            product_default=choice.product_default,
            group_names=choice.groups,
            intelligent=choice.intelligent,
            via="console",
        )
    except ApplicationError as refused:
        where = refused.field if refused.field in ("product_default", "groups") else "form"
        context = _release_context(access, firmware, choice, errors={where: refused.message})
        return _form_refused(request, access, firmware, "release", context, refused.error)
    messages.success(request, _released_message(firmware, plan))
    return _done(request, _return_url(request, access, firmware))


def _released_message(firmware: ProductFirmware, plan: releases.ReleasePlan) -> str:
    places = (["the product default"] if plan.planned.product_default else []) + [
        group.name for group in plan.groups
    ]
    if not places:
        return f"Version {firmware.version} is no longer released."
    where = places[0] if len(places) == 1 else f"{', '.join(places[:-1])} and {places[-1]}"
    return f"Released version {firmware.version} to {where}."


@require_GET
def firmware_release_impact(request: HttpRequest, product: str, version: int) -> HttpResponse:
    """The Release dialog's impact, for the boxes as they are ticked (htmx GET with the form's values)."""
    access = _access(request, product, "firmware.release")
    firmware = _firmware_or_404(access, version)
    groups = list(group_list(product=access.product))
    choice = ReleaseChoice.posted(request.GET)
    impact = _impact(access.product, firmware, choice, _landscape(access.product, firmware), groups)
    return render(request, "firmware/_release_dialog.html#impact", {"impact": impact, "firmware": firmware})
