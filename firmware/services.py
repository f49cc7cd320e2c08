"""Uploading, editing and deleting a product's firmware versions.

Quanta enforces what Particle only warns about: the binary must be an application module for the
product's platform, carry the version typed in as its PRODUCT_VERSION, and, when it still says which
product it was built for, this product. Every refusal names both values.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict

from django.conf import settings
from django.db import IntegrityError, transaction

from console.errors import ApplicationError, Conflict
from console.platforms import platform_name
from console.services import audit_record
from firmware.binary import NO_PRODUCT, BinaryError, ModuleInfo, parse_module, product_id_is_meaningful
from firmware.models import (
    DESCRIPTION_MAX_LENGTH,
    MAX_FIRMWARE_VERSION,
    TITLE_MAX_LENGTH,
    FirmwareBinary,
    ProductFirmware,
)


class FirmwareTooLarge(ApplicationError):
    status_code = 413


def version_clean(value: object, *, field: str = "version") -> int:
    """A firmware version from a form or JSON: a whole number from 1 to 65534."""
    text = str(value if value is not None else "").strip()
    if not text:
        raise ApplicationError(
            "Enter the firmware's version: the PRODUCT_VERSION it was built with.", field=field
        )
    if not (text.isascii() and text.isdigit()):
        raise ApplicationError(f"The version is a whole number, like 3; {text[:20]!r} is not.", field=field)
    version = int(text)
    if not 1 <= version <= MAX_FIRMWARE_VERSION:
        raise ApplicationError(
            f"Versions go from 1 to {MAX_FIRMWARE_VERSION}; {version} is out of range.", field=field
        )
    return version


def _title_clean(value: object) -> str:
    title = str(value or "").strip()
    if not title:
        raise ApplicationError("Give the firmware a title, e.g. what changed in this version.", field="title")
    if len(title) > TITLE_MAX_LENGTH:
        raise ApplicationError(
            f"Titles are at most {TITLE_MAX_LENGTH} characters; this one has {len(title)}.", field="title"
        )
    return title


def _description_clean(value: object) -> str:
    description = str(value or "").strip()
    if len(description) > DESCRIPTION_MAX_LENGTH:
        raise ApplicationError(
            f"Descriptions are at most {DESCRIPTION_MAX_LENGTH} characters; this one has {len(description)}.",
            field="description",
        )
    return description


def firmware_size_check(size: int) -> None:
    """Refuse an oversized upload before reading it."""
    limit = settings.QUANTA_FIRMWARE_MAX_BYTES
    if size > limit:
        raise FirmwareTooLarge(
            f"The file is {size:,} bytes; firmware binaries are at most {limit:,} bytes.", field="file"
        )


def module_check(*, info: ModuleInfo, product, version: int) -> None:
    """Whether this parsed module may be uploaded to ``product`` as ``version``; raises with both
    values named when not. (Checksums were verified by the parser.)"""
    if not info.is_user_part:
        raise ApplicationError(
            f"This is a {info.module_function_name} module; product firmware is an application "
            "(user part) module.",
            field="file",
        )
    if info.platform_id != product.platform_id:
        raise ApplicationError(
            f"The binary is built for {platform_name(info.platform_id)} (platform {info.platform_id}); "
            f"this product's devices are {platform_name(product.platform_id)} (platform {product.platform_id}).",
            field="file",
        )
    if info.product_version is None or info.product_version == NO_PRODUCT:
        raise ApplicationError(
            f"The binary carries no PRODUCT_VERSION; build it with PRODUCT_VERSION({version}) to upload "
            f"it as version {version}.",
            field="version",
        )
    if info.product_version != version:
        raise ApplicationError(
            f"The binary's PRODUCT_VERSION is {info.product_version}, but the version entered is {version}. "
            "They must match: devices report the version compiled into them.",
            field="version",
        )
    if product_id_is_meaningful(info) and info.product_id != product.id:
        raise ApplicationError(
            f"The binary was built for product {info.product_id} (its PRODUCT_ID); this product is {product.id}.",
            field="file",
        )


def module_summary(info: ModuleInfo) -> dict:
    """What the firmware's page shows about the module, as JSON."""
    summary = asdict(info)
    summary["module_function"] = int(info.module_function)
    summary["module_function_name"] = info.module_function_name
    summary["platform_name"] = platform_name(info.platform_id)
    summary["dependencies"] = [list(dependency) for dependency in info.dependencies]
    summary["prefix_extensions"] = [
        {"type": e.type, "name": e.name, "length": len(e.data)} for e in info.prefix_extensions
    ]
    summary["extensions"] = [{"type": e.type, "name": e.name, "length": len(e.data)} for e in info.extensions]
    summary["system_version"] = info.system_version
    summary["product_id_meaningful"] = product_id_is_meaningful(info)
    summary.pop("computed_sha256", None)
    return summary


def firmware_upload(
    *,
    actor,
    product,
    data: bytes,
    version: object,
    title: object,
    description: object = "",
    via: str = "console",
) -> ProductFirmware:
    """Validate and store one version (the caller checked ``firmware.upload``): all or nothing."""
    firmware_size_check(len(data))
    clean_version = version_clean(version)
    clean_title = _title_clean(title)
    clean_description = _description_clean(description)
    try:
        info = parse_module(data)
    except BinaryError as error:
        raise ApplicationError(str(error), field="file") from None
    module_check(info=info, product=product, version=clean_version)
    if ProductFirmware.objects.filter(product=product, version=clean_version).exists():
        raise Conflict(_version_taken(clean_version), field="version")
    try:
        with transaction.atomic():
            firmware = ProductFirmware.objects.create(
                product=product,
                version=clean_version,
                title=clean_title,
                description=clean_description,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                platform_id=info.platform_id,
                module=module_summary(info),
                uploaded_by=actor,
            )
            FirmwareBinary.objects.create(firmware=firmware, data=bytes(data))
    except IntegrityError:
        # Two uploads of one version at once: the loser is told as if it came second.
        if ProductFirmware.objects.filter(product=product, version=clean_version).exists():
            raise Conflict(_version_taken(clean_version), field="version") from None
        raise
    audit_record(
        actor=actor,
        action="firmware.upload",
        target=product,
        target_label=product.name,
        metadata={
            "version": clean_version,
            "title": clean_title,
            "size": len(data),
            "sha256": firmware.sha256,
        },
        via=via,
    )
    return firmware


def _version_taken(version: int) -> str:
    return (
        f"Version {version} already exists in this product. Build the new firmware with a higher "
        "PRODUCT_VERSION and upload it as that version."
    )


def firmware_update(
    *,
    actor,
    firmware: ProductFirmware,
    title: object = None,
    description: object = None,
    via: str = "console",
) -> ProductFirmware:
    """Edit a version's title and description (its binary never changes)."""
    changes: dict[str, str] = {}
    if title is not None:
        changes["title"] = _title_clean(title)
    if description is not None:
        changes["description"] = _description_clean(description)
    if not changes:
        return firmware
    for field, value in changes.items():
        setattr(firmware, field, value)
    firmware.save(update_fields=[*changes, "updated_at"])
    audit_record(
        actor=actor,
        action="firmware.edit",
        target=firmware.product,
        target_label=firmware.product.name,
        metadata={"version": firmware.version, **changes},
        via=via,
    )
    return firmware


def firmware_delete(*, actor, firmware: ProductFirmware, via: str = "console") -> None:
    """Delete a version that was never released (released firmware stays, for the record and for
    the devices that may still run it)."""
    with transaction.atomic():
        locked = ProductFirmware.objects.select_for_update().filter(pk=firmware.pk).first()
        if locked is None:
            return
        if locked.first_released_at is not None:
            raise Conflict(
                f"Version {locked.version} has been released, so it is kept. Only firmware that was never "
                "released can be deleted.",
                field="version",
            )
        locked.delete()
    audit_record(
        actor=actor,
        action="firmware.delete",
        target=firmware.product,
        target_label=firmware.product.name,
        metadata={"version": firmware.version, "title": firmware.title},
        via=via,
    )
