"""Device reads. Every read of a user's devices is scoped to that user."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, Prefetch, Q, QuerySet

from console.errors import NotFound
from devices.models import Device, DeviceOnlineSample, firmware_sort_key
from products.models import DeviceGroup

_DEVICE_ID = re.compile(r"^[0-9a-fA-F]{24}$")
NOT_RECOGNIZED = "I didn't recognize that device name or ID"


def is_device_id(value: str) -> bool:
    return bool(_DEVICE_ID.match(value))


def device_list_for_user(*, user, search: str = "") -> QuerySet[Device]:
    devices = Device.objects.filter(owner=user)
    if search := search.strip():
        devices = devices.filter(Q(name__icontains=search) | Q(id__startswith=search.lower()))
    return devices


def device_get_for_user(*, user, id_or_name: str) -> Device:
    """The user's device by 24-hex id or by name (the CLI sends either). 404 otherwise, also when
    it belongs to someone else."""
    devices = Device.objects.filter(owner=user)
    lookup = (
        Q(id=id_or_name.lower()) | Q(name__iexact=id_or_name)
        if is_device_id(id_or_name)
        else Q(name__iexact=id_or_name)
    )
    device = devices.filter(lookup).order_by("-id").first()
    if device is None:
        raise NotFound(f"Device {id_or_name!r} not found.", extra={"info": NOT_RECOGNIZED})
    return device


def device_get_for_hello(*, device_id: str) -> Device | None:
    """What the gateway needs to authenticate a device: one primary-key lookup."""
    if not is_device_id(device_id):
        return None
    return (
        Device.objects.filter(id=device_id.lower())
        .only(
            "id",
            "name",
            "owner_id",
            "product_id",
            "public_key",
            "platform_id",
            "gateway_channel",
            "session_id",
        )
        .first()
    )


def device_groups_prefetch() -> QuerySet[DeviceGroup]:
    """What a device's group chips and names need, by name."""
    return DeviceGroup.objects.only("id", "name", "color", "product_id").order_by("name")


# A product's devices, as its console page and /v1/products/:p/devices list them. Each sort ends on
# the primary key, so pages never overlap.
PRODUCT_DEVICE_SORTS = {
    "name": ("name", "id"),
    "id": ("id",),
    "firmware_version": ("firmware_version", "id"),
    "last_heard": ("last_heard", "id"),
}
_NULLABLE = {"firmware_version", "last_heard"}  # unset sorts first ascending, last descending


def product_device_ordering(sort: str, *, descending: bool = False) -> list:
    """The ORDER BY of a sort of ``PRODUCT_DEVICE_SORTS`` (KeyError for another). Built per call:
    an OrderBy expression is mutable, so none is shared between queries."""
    keys: list = []
    for column in PRODUCT_DEVICE_SORTS[sort]:
        if column == "firmware_version":  # the expression of its index (devices.models)
            keys.append(firmware_sort_key().desc() if descending else firmware_sort_key().asc())
        elif column in _NULLABLE:
            keys.append(F(column).desc(nulls_last=True) if descending else F(column).asc(nulls_first=True))
        else:
            keys.append(f"-{column}" if descending else column)
    return keys


def product_device_list(
    *,
    product,
    search: str = "",
    device_id: str = "",
    name: str = "",
    serial_number: str = "",
    quarantined: bool | None = None,
    online: bool | None = None,
    groups: list[str] | None = None,
    sort: str = "name",
    descending: bool = False,
) -> QuerySet[Device]:
    """The product's devices (with their owners and groups), filtered and sorted. ``search`` matches
    part of a name or the start of an id; ``device_id`` the start of an id; ``name`` part of a name;
    ``groups`` keeps the devices in any of the named groups (names of no group match nothing)."""
    devices = (
        Device.objects.filter(product=product)
        .select_related("owner")
        .prefetch_related(Prefetch("groups", queryset=device_groups_prefetch()))
    )
    if groups is not None:
        names = [name.strip() for name in groups if name.strip()]
        if names:
            # A subquery, not a join: a device in two of the groups is listed once.
            in_groups = DeviceGroup.devices.through.objects.filter(
                devicegroup__product=product, devicegroup__name__in=names
            ).values("device_id")
            devices = devices.filter(pk__in=in_groups)
    if search := search.strip():
        devices = devices.filter(Q(name__icontains=search) | Q(id__startswith=search.lower()))
    if device_id := device_id.strip().lower():
        devices = devices.filter(id__startswith=device_id)
    if name := name.strip():
        devices = devices.filter(name__icontains=name)
    if serial_number := serial_number.strip():
        devices = devices.filter(serial_number__iexact=serial_number)
    if quarantined is not None:
        devices = devices.filter(quarantined=quarantined)
    if online is not None:
        devices = devices.filter(online=online)
    return devices.order_by(*product_device_ordering(sort, descending=descending))


def product_group_member_count(*, product, names: list[str]) -> int:
    """How many of the product's devices are in any of the named groups, from the membership rows
    alone (a device's groups are always groups of its product): what a list filtered by groups and
    nothing else counts, without probing the devices table once per member."""
    clean = [name.strip() for name in names if name.strip()]
    if not clean:
        return Device.objects.filter(product=product).count()
    return (
        DeviceGroup.devices.through.objects.filter(devicegroup__product=product, devicegroup__name__in=clean)
        .values("device_id")
        .distinct()
        .count()
    )


def product_device_get(*, product, id_or_name: str) -> Device:
    """One device of the product, by 24-hex id or by name, with its owner and groups (a device
    page's read). 404 when it is not in this product, also when it exists elsewhere."""
    text = id_or_name.strip()
    lookup = Q(id=text.lower()) if is_device_id(text) else Q(name__iexact=text)
    device = (
        Device.objects.filter(lookup, product=product)
        .select_related("owner")
        .prefetch_related(Prefetch("groups", queryset=device_groups_prefetch()))
        .order_by("id")
        .first()
    )
    if device is None:
        raise NotFound(f"Device {text!r} is not in this product.", extra={"info": NOT_RECOGNIZED})
    return device


# --- A product's overview: aggregates only, so its cost does not grow with the fleet -----------------------
@dataclass(frozen=True)
class FirmwareVersionCount:
    version: int | None  # the product firmware version the devices report; None: never reported
    total: int
    online: int


def product_firmware_version_counts(*, product) -> list[FirmwareVersionCount]:
    """The product's devices by the firmware version they report, newest first, the ones that never
    reported last: one grouped query (their sums are the product's device counts)."""
    rows = (
        Device.objects.filter(product=product)
        .values("firmware_version")
        .annotate(total=Count("id"), online=Count("id", filter=Q(online=True)))
        .order_by(F("firmware_version").desc(nulls_last=True))
    )
    return [FirmwareVersionCount(row["firmware_version"], row["total"], row["online"]) for row in rows]


@dataclass(frozen=True)
class OnlineSample:
    taken_at: datetime
    online: int
    total: int


def product_online_samples(*, product, since: datetime) -> list[OnlineSample]:
    """The product's samples of devices online (devices.tasks.sample_online_devices) taken at or
    after ``since``, oldest first."""
    rows = (
        DeviceOnlineSample.objects.filter(product=product, taken_at__gte=since)
        .order_by("taken_at")
        .values_list("taken_at", "online", "total")
    )
    return [OnlineSample(*row) for row in rows]


def product_device_runs_version(*, product, version: int) -> bool:
    """Whether a device of the product reports running this product firmware version."""
    return Device.objects.filter(product=product, firmware_version=version).exists()
