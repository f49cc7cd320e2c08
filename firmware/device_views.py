"""The firmware card on a product device's page: which version the precedence rules give it and why,
what would change that, its lock (set, Flash now, unlock), and its update, live while one is open.

devices renders the card through its panel registry (devices/product_fields.py); the card polls
``device_panel`` every few seconds while an update is under way.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from console.errors import ApplicationError, NotFound
from devices.selectors import product_device_get
from firmware import selectors
from firmware.locks import firmware_lock, flash_now
from firmware.models import OPEN_UPDATE_STATES
from firmware.precedence import what_would_change
from firmware.services import version_clean
from products.selectors import ProductAccess
from products.views import _access

PANEL_TEMPLATE = "firmware/_device_panel.html"


def device_panel_context(*, request: HttpRequest, access: ProductAccess, device) -> dict:
    target = selectors.device_target(device=device)
    update = selectors.device_update_latest(device=device)
    can_lock = access.can("firmware.lock")
    return {
        "target": target,
        "target_changes": what_would_change(target),
        "up_to_date": target.version is None or target.version == device.firmware_version,
        "update": update,
        "update_open": update is not None and update.state in OPEN_UPDATE_STATES,
        "can_lock": can_lock,
        "versions": selectors.versions_of(product=access.product) if can_lock else [],
        "panel_device": device,
    }


def _device(access: ProductAccess, device_id: str):
    try:
        return product_device_get(product=access.product, id_or_name=device_id)
    except NotFound:
        raise Http404("No such device in this product.") from None


@require_GET
def device_panel(request: HttpRequest, product: str, device_id: str) -> HttpResponse:
    """The card alone, for its own polling while an update is under way."""
    access = _access(request, product, "device.read")
    device = _device(access, device_id)
    panel = device_panel_context(request=request, access=access, device=device)
    return render(request, PANEL_TEMPLATE, {"product": access.product, "panel": panel})


@require_POST
def device_lock(request: HttpRequest, product: str, device_id: str) -> HttpResponse:
    """Lock to a version (``version``; with ``flash``, offer it now if the device is online), or
    unlock (``unlock``)."""
    access = _access(request, product, "firmware.lock")
    device = _device(access, device_id)
    page = reverse("product_devices:detail", args=[access.product.slug, device.id])
    try:
        version = None if "unlock" in request.POST else version_clean(request.POST.get("version"))
        firmware_lock(
            actor=request.user, product=access.product, device=device, version=version, via="console"
        )
    except ApplicationError as refused:
        messages.error(request, refused.message)
        return redirect(page)
    if version is None:
        messages.success(request, "Unlocked: the device follows the releases again.")
    elif request.POST.get("flash") and device.online:
        flash_now(device=device)
        messages.success(request, f"Locked to v{version}; the device is updating now.")
    else:
        messages.success(request, f"Locked to v{version}; the device updates at its next connection.")
    return redirect(page)
