"""Reading a product's firmware (the caller has checked the product access)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from console.errors import NotFound
from devices.selectors import product_firmware_version_counts
from firmware.models import FirmwareRelease, ProductFirmware
from firmware.services import version_clean


def firmware_list(*, product) -> QuerySet[ProductFirmware]:
    """Newest first, with where each is released."""
    return (
        ProductFirmware.objects.filter(product=product)
        .select_related("uploaded_by")
        .prefetch_related(
            Prefetch(
                "releases", queryset=FirmwareRelease.objects.select_related("group").order_by("group__name")
            )
        )
        .order_by("-version")
    )


def firmware_get(*, product, version: object) -> ProductFirmware:
    number = version_clean(version)
    firmware = firmware_list(product=product).filter(version=number).first()
    if firmware is None:
        raise NotFound(f"No firmware version {number} in this product.")
    return firmware


def firmware_binary(*, firmware: ProductFirmware) -> bytes:
    return bytes(firmware.binary.data)


def running_counts(*, product) -> dict[int | None, int]:
    """How many of the product's devices report running each version (None: not reported)."""
    return {row.version: row.total for row in product_firmware_version_counts(product=product)}
