"""Which of a product's groups its devices are in, and its development devices (the caller checked
``group.manage`` or ``device.update``). The groups themselves are ``products.groups``'s.

Every bulk write is set-based: a few queries whatever the number of devices, and all or nothing.
Device IDs outside the product refuse the whole request and are listed in the refusal.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from console.errors import ApplicationError
from console.services import audit_record
from devices.models import Device
from products.groups import group_name_clean, groups_for_names
from products.models import DeviceGroup, Product

MAX_BATCH_DEVICES = 1000
MAX_GROUPS_PER_REQUEST = 100
_SHOWN_IDS = 10

DeviceGroupLink = Device.groups.through


def _names(values: object, *, field: str = "groups") -> list[str]:
    if isinstance(values, str):
        values = [part for part in values.split(",") if part.strip()]
    if not isinstance(values, list | tuple):
        raise ApplicationError(f"{field} is a list of group names.", field=field)
    if len(values) > MAX_GROUPS_PER_REQUEST:
        raise ApplicationError(
            f"At most {MAX_GROUPS_PER_REQUEST} groups per request; this one has {len(values)}.", field=field
        )
    return list(dict.fromkeys(group_name_clean(value) for value in values))


def product_device_ids(*, product: Product, device_ids: object) -> list[str]:
    """The IDs (lowercased, without repeats), if every one is a device of the product; otherwise a
    refusal listing the others (``extra["devices"]`` has them all)."""
    if not isinstance(device_ids, list | tuple) or not all(isinstance(value, str) for value in device_ids):
        raise ApplicationError("devices is a list of device IDs.", field="devices")
    ids = list(dict.fromkeys(value.strip().lower() for value in device_ids if value.strip()))
    if not ids:
        raise ApplicationError("Send the IDs of the devices to change in devices.", field="devices")
    if len(ids) > MAX_BATCH_DEVICES:
        raise ApplicationError(
            f"At most {MAX_BATCH_DEVICES:,} devices per request; this one has {len(ids):,}.", field="devices"
        )
    found = set(Device.objects.filter(product=product, pk__in=ids).values_list("pk", flat=True))
    missing = [value for value in ids if value not in found]
    if missing:
        shown = ", ".join(missing[:_SHOWN_IDS]) + (
            f" and {len(missing) - _SHOWN_IDS} more" if len(missing) > _SHOWN_IDS else ""
        )
        which = "This device is" if len(missing) == 1 else f"These {len(missing)} devices are"
        raise ApplicationError(
            f"{which} not in this product: {shown}. Nothing was changed.",
            field="devices",
            extra={"devices": missing},
        )
    return ids


def _touch(ids: Iterable[str]) -> None:
    Device.objects.filter(pk__in=list(ids)).update(updated_at=timezone.now())


def device_groups_set(
    *, actor, product: Product, device: Device, names: object, via: str = "api"
) -> list[str]:
    """The device's groups become exactly these (an absolute set); unknown names are created.
    Returns the names, sorted."""
    wanted = _names(names)
    with transaction.atomic():
        groups = groups_for_names(actor=actor, product=product, names=wanted, via=via)
        wanted_ids = {group.pk for group in groups}
        links = DeviceGroupLink.objects.filter(device_id=device.pk)
        current = set(links.values_list("devicegroup_id", flat=True))
        links.exclude(devicegroup_id__in=wanted_ids).delete()
        DeviceGroupLink.objects.bulk_create(
            [DeviceGroupLink(device_id=device.pk, devicegroup_id=pk) for pk in wanted_ids - current],
            ignore_conflicts=True,
        )
        _touch([device.pk])
    audit_record(
        actor=actor,
        action="product.device_groups",
        target=device,
        metadata={"product": product.id, "groups": sorted(group.name for group in groups)},
        via=via,
    )
    return sorted(group.name for group in groups)


def devices_groups_add(
    *, actor, product: Product, device_ids: object, names: object, via: str = "api"
) -> int:
    """Put the devices in these groups (created when unknown). Returns the links added."""
    wanted = _names(names, field="add")
    if not wanted:
        raise ApplicationError("Name the groups to add the devices to.", field="add")
    ids = product_device_ids(product=product, device_ids=device_ids)
    with transaction.atomic():
        groups = groups_for_names(actor=actor, product=product, names=wanted, via=via)
        group_ids = [group.pk for group in groups]
        existing = set(
            DeviceGroupLink.objects.filter(device_id__in=ids, devicegroup_id__in=group_ids).values_list(
                "device_id", "devicegroup_id"
            )
        )
        new = [
            DeviceGroupLink(device_id=device_id, devicegroup_id=group_id)
            for device_id in ids
            for group_id in group_ids
            if (device_id, group_id) not in existing
        ]
        DeviceGroupLink.objects.bulk_create(new, ignore_conflicts=True, batch_size=500)
        _touch(ids)
    audit_record(
        actor=actor,
        action="product.devices_groups_add",
        target=product,
        metadata={"groups": wanted, "devices": len(ids)},
        via=via,
    )
    return len(new)


def devices_groups_remove(
    *, actor, product: Product, device_ids: object, names: object, via: str = "api"
) -> int:
    """Take the devices out of these groups (names of no group are ignored). Returns the links removed."""
    wanted = _names(names, field="remove")
    if not wanted:
        raise ApplicationError("Name the groups to remove the devices from.", field="remove")
    ids = product_device_ids(product=product, device_ids=device_ids)
    with transaction.atomic():
        removed, _ = DeviceGroupLink.objects.filter(
            device_id__in=ids,
            devicegroup_id__in=DeviceGroup.objects.filter(product=product, name__in=wanted).values("pk"),
        ).delete()
        _touch(ids)
    audit_record(
        actor=actor,
        action="product.devices_groups_remove",
        target=product,
        metadata={"groups": wanted, "devices": len(ids)},
        via=via,
    )
    return removed


def devices_development_set(
    *, actor, product: Product, device_ids: object, development: object, via: str = "api"
) -> int:
    """Mark the devices as development devices (or not). Returns how many changed."""
    if not isinstance(development, bool):
        raise ApplicationError("development is true or false.", field="development")
    ids = product_device_ids(product=product, device_ids=device_ids)
    changed = (
        Device.objects.filter(product=product, pk__in=ids)
        .exclude(development=development)
        .update(development=development, updated_at=timezone.now())
    )
    audit_record(
        actor=actor,
        action="product.devices_development",
        target=product,
        metadata={"development": development, "devices": len(ids), "changed": changed},
        via=via,
    )
    return changed


def device_group_names(device: Device) -> list[str]:
    """The device's group names, sorted, from a prefetch of ``groups`` when there is one. Only groups
    of its current product count."""
    return sorted(group.name for group in device.groups.all() if group.product_id == device.product_id)
