"""Device reads. Every read of a user's devices is scoped to that user."""

from __future__ import annotations

import re

from django.db.models import F, Prefetch, Q, QuerySet

from console.errors import NotFound
from devices.models import Device
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
        if column in _NULLABLE:
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
