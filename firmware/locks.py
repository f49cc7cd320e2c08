"""Locking a product's device to a firmware version, and unlocking it back to the release rules.

Reached through ``PUT /v1/products/:p/devices/:id`` with ``desired_firmware_version`` (a version,
or null to unlock), which devices routes here through its product-device field registry.
"""

from __future__ import annotations

from django.db import transaction

from console.errors import ApplicationError
from console.services import audit_record
from devices.services import device_firmware_lock_set
from firmware.models import ProductFirmware
from firmware.services import version_clean

_NULLS = {None, "", "null", "none"}


def firmware_lock(*, actor, product, device, version: int | None, via: str = "console"):
    """Lock ``device`` to ``version`` (a version of this product), or unlock it with None."""
    if version is not None and not ProductFirmware.objects.filter(product=product, version=version).exists():
        raise ApplicationError(
            f"No firmware version {version} in this product: upload it first, then lock the device to it.",
            field="desired_firmware_version",
        )
    previous = device.desired_firmware_version
    device_firmware_lock_set(device=device, version=version)
    audit_record(
        actor=actor,
        action="firmware.lock" if version is not None else "firmware.unlock",
        target=product,
        target_label=product.name,
        metadata={"device": device.id, "version": version, "previous": previous},
        via=via,
    )
    return device


def desired_firmware_version_apply(*, actor, product, device, data, via: str) -> dict:
    raw = data.get("desired_firmware_version")
    if isinstance(raw, str) and raw.strip().lower() in _NULLS:
        raw = None
    version = None if raw is None else version_clean(raw, field="desired_firmware_version")
    firmware_lock(actor=actor, product=product, device=device, version=version, via=via)
    flash = str(data.get("flash", "")).strip().lower() in {"1", "true", "yes", "on"}
    if flash and version is not None:
        flash_now(device=device)
    return {"desired_firmware_version": version}


def flash_now(*, device) -> None:
    """Offer the device its target at once if it is online (otherwise it gets it at its next
    handshake), after the lock is committed."""
    from firmware.tasks import start_updates

    if device.online:
        transaction.on_commit(lambda: start_updates.delay([device.id]))
