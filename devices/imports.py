"""Importing devices into a product, removing them, and approving or denying quarantined ones.

Imports work on sets: the ids are read once, sorted into Particle's categories with a handful of
queries whatever their number, and the accepted ones join the product in chunked bulk UPDATEs in
one transaction, so a 100,000-line file is all in or, on error, not at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from console.errors import ApplicationError, NotFound
from console.platforms import platform_name
from console.services import audit_record
from devices.models import Device, ProductDenial
from products.models import Membership, Product

DEVICE_ID = re.compile(r"[0-9a-f]{24}")
CHUNK = 5000  # ids per IN (...) clause: well inside every database's parameter limit


@dataclass
class ParsedIds:
    ids: list[str] = field(default_factory=list)  # valid, lower-case, first occurrence order
    malformed: list[str] = field(default_factory=list)  # as written (trimmed), not 24 hex characters


def device_ids_parse(lines: Iterable[str]) -> ParsedIds:
    """One id per line: blank lines, surrounding spaces, CRLF, upper case and repeats are fine."""
    parsed, seen = ParsedIds(), set()
    for line in lines:
        text = line.strip()
        if not text:
            continue
        lowered = text.lower()
        if not DEVICE_ID.fullmatch(lowered):
            if text not in seen:
                seen.add(text)
                parsed.malformed.append(text[:64])
            continue
        if lowered not in seen:
            seen.add(lowered)
            parsed.ids.append(lowered)
    return parsed


def import_file_size_check(size: int) -> None:
    limit = settings.QUANTA_IMPORT_MAX_BYTES
    if size > limit:
        raise ApplicationError(
            f"The file is {size:,} bytes; imports take files of at most {limit:,} bytes "
            f"({settings.QUANTA_IMPORT_MAX_IDS:,} device IDs). Split it into several files.",
            field="file",
        )


def device_ids_from_file(raw: bytes) -> ParsedIds:
    """A ``.txt`` upload: text with one device id per line; anything else is refused clearly."""
    import_file_size_check(len(raw))
    if b"\x00" in raw:
        raise ApplicationError(
            "That is not a text file. Upload a .txt file with one device ID per line.", field="file"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApplicationError(
            "That is not a UTF-8 text file. Upload a .txt file with one device ID per line.", field="file"
        ) from None
    parsed = device_ids_parse(text.splitlines())
    if not parsed.ids and not parsed.malformed:
        raise ApplicationError("The file holds no device IDs: put one device ID on each line.", field="file")
    return parsed


@dataclass
class ImportResult:
    updated: list[str] = field(default_factory=list)  # joined the product (or left quarantine)
    existing: list[str] = field(default_factory=list)  # already in it
    nonmember: list[str] = field(
        default_factory=list
    )  # claimed by someone outside the team, or another product's
    invalid: list[str] = field(default_factory=list)  # malformed, not provisioned, or another platform
    other_platform: list[str] = field(default_factory=list)  # the part of ``invalid`` of another platform

    def as_api(self) -> dict:
        """Particle's response, plus the reason behind some invalid ids."""
        return {
            "updated": len(self.updated),
            "updatedDeviceIds": self.updated,
            "existingDeviceIds": self.existing,
            "nonmemberDeviceIds": self.nonmember,
            "invalidDeviceIds": self.invalid,
            "protectedDeviceIds": [],
            "otherPlatformDeviceIds": self.other_platform,
        }


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def devices_import(*, actor, product: Product, parsed: ParsedIds, via: str = "console") -> ImportResult:
    """Add provisioned devices to ``product`` (the caller checked ``device.import``)."""
    if len(parsed.ids) + len(parsed.malformed) > settings.QUANTA_IMPORT_MAX_IDS:
        raise ApplicationError(
            f"An import takes at most {settings.QUANTA_IMPORT_MAX_IDS:,} device IDs; this one has "
            f"{len(parsed.ids) + len(parsed.malformed):,}. Split it into several imports.",
            field="file",
        )
    result = ImportResult(invalid=list(parsed.malformed))
    team = set(Membership.objects.filter(product=product).values_list("user_id", flat=True))
    rows: dict[str, tuple] = {}
    for chunk in _chunks(parsed.ids):
        for row in Device.objects.filter(id__in=chunk).values_list(
            "id", "platform_id", "product_id", "owner_id", "quarantined"
        ):
            rows[row[0]] = row
    joining: list[str] = []
    for device_id in parsed.ids:
        row = rows.get(device_id)
        if row is None:
            result.invalid.append(device_id)
            continue
        _, platform_id, product_id, owner_id, quarantined = row
        if platform_id != product.platform_id:
            result.invalid.append(device_id)
            result.other_platform.append(device_id)
        elif product_id == product.id and not quarantined:
            result.existing.append(device_id)
        elif (product_id is not None and product_id != product.id) or (
            owner_id is not None and owner_id not in team
        ):
            result.nonmember.append(device_id)
        else:
            joining.append(device_id)
    with transaction.atomic():
        for chunk in _chunks(joining):
            # Guarded: a device another import or a handshake moved meanwhile is left alone.
            Device.objects.filter(id__in=chunk).filter(product__isnull=True).update(
                product=product, quarantined=False
            )
            Device.objects.filter(id__in=chunk, product=product, quarantined=True).update(quarantined=False)
            ProductDenial.objects.filter(product=product, device_id__in=chunk).delete()
        moved = set()
        for chunk in _chunks(joining):
            moved.update(
                Device.objects.filter(id__in=chunk, product=product, quarantined=False).values_list(
                    "id", flat=True
                )
            )
    result.updated = [device_id for device_id in joining if device_id in moved]
    result.nonmember += [device_id for device_id in joining if device_id not in moved]
    audit_record(
        actor=actor,
        action="product.devices_import",
        target=product,
        target_label=product.name,
        metadata={
            "added": len(result.updated),
            "existing": len(result.existing),
            "nonmember": len(result.nonmember),
            "invalid": len(result.invalid),
        },
        via=via,
    )
    return result


def product_device_get(*, product: Product, id_or_name: str) -> Device:
    text = id_or_name.strip()
    lowered = text.lower()
    found = (
        Device.objects.filter(product=product, id=lowered).first()
        if DEVICE_ID.fullmatch(lowered)
        else Device.objects.filter(product=product, name__iexact=text).order_by("id").first()
    )
    if found is None:
        raise NotFound(f"Device {text!r} is not in this product.")
    return found


def device_remove_from_product(
    *, actor, product: Product, device: Device, deny: bool = False, via: str = "console"
) -> None:
    """Take a device out of the product (the caller checked ``device.remove``); with ``deny`` it
    may not rejoin by asking at handshake, until the team imports it again."""
    with transaction.atomic():
        Device.objects.filter(pk=device.pk, product=product).update(product=None, quarantined=False)
        # Its groups were the product's: they do not follow it out (nor back, if it rejoins).
        device.groups.remove(*device.groups.filter(product=product))
        if deny:
            ProductDenial.objects.get_or_create(device=device, product=product, defaults={"denied_by": actor})
    audit_record(
        actor=actor,
        action="product.device_deny" if deny else "product.device_remove",
        target=device,
        metadata={"product": product.id},
        via=via,
    )


def product_join_at_handshake(device: Device) -> str | None:
    """A device outside any product whose firmware names a product asks to join it. Called inside
    the handshake's transaction with the device row locked; returns a refusal, or None.

    Imported devices are already in. Others join per the product's policy: quarantined (listed
    for the team to approve or deny) or approved at once. A denied device is refused."""
    product_id = device.firmware_product_id
    if device.product_id is not None or product_id is None or product_id < 1000:
        return None
    product = Product.objects.filter(pk=product_id).only("id", "platform_id", "quarantine_policy").first()
    if product is None:
        return None  # firmware for a product that does not exist here: the device stays outside
    if product.platform_id != device.platform_id:
        return (
            f"Product {product.id} is for {platform_name(product.platform_id)} devices, "
            f"not {platform_name(device.platform_id)} devices."
        )
    if ProductDenial.objects.filter(device=device, product=product).exists():
        return f"Product {product.id} denied this device."
    device.product = product
    device.quarantined = product.quarantine_policy == "quarantine"
    return None
