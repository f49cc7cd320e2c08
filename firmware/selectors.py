"""Reading a product's firmware (the caller has checked the product access)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, F, Prefetch, Q, QuerySet

from console.errors import NotFound
from devices.models import Device
from devices.selectors import product_firmware_version_counts
from firmware.models import OPEN_UPDATE_STATES, FirmwareRelease, FirmwareUpdate, ProductFirmware, UpdateState
from firmware.precedence import Target, firmware_target
from firmware.services import version_clean
from firmware.targeting import devices_with_targets


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


@dataclass(frozen=True)
class RolloutProgress:
    """Where a version's rollout stands: the devices whose target it is, how many of them run it,
    and how many updates to it are under way or failed for good."""

    targeted: int = 0
    updated: int = 0
    updating: int = 0
    failed: int = 0


def rollout_progress(*, product) -> dict[int, RolloutProgress]:
    """Per version, in two aggregate queries whatever the fleet's size."""
    targets = (
        devices_with_targets(Device.objects.filter(product=product, quarantined=False))
        .filter(target_version__isnull=False)
        .order_by()
        .values("target_version")
        .annotate(targeted=Count("id"), updated=Count("id", filter=Q(firmware_version=F("target_version"))))
    )
    updates = (
        FirmwareUpdate.objects.filter(product=product, version__isnull=False, firmware__isnull=False)
        .filter(Q(state__in=OPEN_UPDATE_STATES) | Q(state=UpdateState.FAILED))
        .exclude(device__firmware_version=F("version"))
        .order_by()
        .values("version")
        .annotate(
            updating=Count("id", filter=Q(state__in=OPEN_UPDATE_STATES)),
            failed=Count("id", filter=Q(state=UpdateState.FAILED)),
        )
    )
    progress: dict[int, dict[str, int]] = {}
    for row in targets:
        progress.setdefault(row["target_version"], {}).update(
            targeted=row["targeted"], updated=row["updated"]
        )
    for row in updates:
        progress.setdefault(row["version"], {}).update(updating=row["updating"], failed=row["failed"])
    return {version: RolloutProgress(**counts) for version, counts in progress.items()}


def device_target(*, device) -> Target:
    """The precedence rules for one device, with the groups that decided (two queries)."""
    releases = FirmwareRelease.objects.filter(product_id=device.product_id).filter(
        Q(group__isnull=True) | Q(group__devices=device)
    )
    default = None
    group_releases: dict[str, int] = {}
    for group_name, version in releases.values_list("group__name", "firmware__version"):
        if group_name is None:
            default = version
        else:
            group_releases[group_name] = version
    return firmware_target(
        development=device.development,
        locked_version=device.desired_firmware_version,
        group_releases=group_releases,
        product_default=default,
    )


def device_update_latest(*, device) -> FirmwareUpdate | None:
    return FirmwareUpdate.objects.filter(device=device).defer("binary").order_by("-created_at").first()


def versions_of(*, product) -> list[int]:
    return list(
        ProductFirmware.objects.filter(product=product).order_by("-version").values_list("version", flat=True)
    )
