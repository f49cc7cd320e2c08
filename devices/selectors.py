"""Device reads. Every read of a user's devices is scoped to that user."""

from __future__ import annotations

import re

from django.db.models import Q, QuerySet

from console.errors import NotFound
from devices.models import Device

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
