"""A product's device groups: reading them with their device counts, and creating, editing and
deleting them (the caller checked ``group.manage``). Which devices are in a group is written by
``devices.groups``.

Names follow Particle's rule: lowercase letters, digits, ``-`` and ``_``, at most 64. A refusal
names the rule and what the given name breaks, so the person can fix it in one go.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.db.models import Count, QuerySet

from console.errors import ApplicationError, Conflict, NotFound
from console.services import audit_record
from products.models import (
    DEFAULT_GROUP_COLOR,
    GROUP_DESCRIPTION_MAX_LENGTH,
    GROUP_NAME_MAX_LENGTH,
    DeviceGroup,
    Product,
)

NAME_RULE = f"Group names use lowercase letters, digits, - and _ (at most {GROUP_NAME_MAX_LENGTH})"
_NAME = re.compile(rf"^[a-z0-9_-]{{1,{GROUP_NAME_MAX_LENGTH}}}$")
_COLOR = re.compile(r"^#?([0-9a-fA-F]{6})$")
_SHORT_COLOR = re.compile(r"^#?([0-9a-fA-F]{3})$")
# The presets the console offers (the first is the default); any other hex color works too.
COLOR_PRESETS = (
    (DEFAULT_GROUP_COLOR, "Teal"),
    ("#2563eb", "Blue"),
    ("#7c3aed", "Violet"),
    ("#db2777", "Pink"),
    ("#dc2626", "Red"),
    ("#ea580c", "Orange"),
    ("#ca8a04", "Amber"),
    ("#16a34a", "Green"),
    ("#475569", "Slate"),
)


# --- validation ---------------------------------------------------------------------------------------
def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def group_name_clean(value: object) -> str:
    """The name as given (surrounding spaces dropped), or a refusal naming the rule and what breaks it."""
    if not isinstance(value, str):
        raise ApplicationError(f"{NAME_RULE}; send the name as text.", field="name")
    name = value.strip()
    if not name:
        raise ApplicationError(f"A group needs a name. {NAME_RULE}.", field="name")
    if _NAME.fullmatch(name):
        return name
    problems: list[str] = []
    if len(name) > GROUP_NAME_MAX_LENGTH:
        problems.append(f"{len(name)} characters")
    if any(char.isupper() for char in name):
        problems.append("capitals")
    spaces = sum(1 for char in name if char.isspace())
    if spaces:
        problems.append("a space" if spaces == 1 else "spaces")
    others = sorted(
        {
            char
            for char in name
            if not char.isspace() and not char.isupper() and not re.fullmatch(r"[a-z0-9_-]", char)
        }
    )
    if others:
        quoted = _and([f"'{char}'" for char in others])
        problems.append(f"{'the character' if len(others) == 1 else 'the characters'} {quoted}")
    shown = name if len(name) <= 80 else name[:77] + "…"
    detail = _and(problems) if problems else "characters outside the rule"
    raise ApplicationError(f"{NAME_RULE}; {shown!r} has {detail}.", field="name")


def group_color_clean(value: object) -> str:
    """A hex color as ``#rrggbb`` (``#RGB`` and a missing ``#`` are accepted), or a refusal."""
    text = value.strip() if isinstance(value, str) else ""
    if match := _COLOR.fullmatch(text):
        return "#" + match.group(1).lower()
    if match := _SHORT_COLOR.fullmatch(text):
        return "#" + "".join(char * 2 for char in match.group(1).lower())
    shown = text if isinstance(value, str) else repr(value)
    raise ApplicationError(f"Colors are hex, like {DEFAULT_GROUP_COLOR}; {shown!r} is not.", field="color")


def group_description_clean(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApplicationError("A group's description is text.", field="description")
    description = value.strip()
    if len(description) > GROUP_DESCRIPTION_MAX_LENGTH:
        raise ApplicationError(
            f"Descriptions are at most {GROUP_DESCRIPTION_MAX_LENGTH} characters; this one has "
            f"{len(description)}.",
            field="description",
        )
    return description


# --- reading ----------------------------------------------------------------------------------------
def group_list(*, product: Product, name: str = "") -> QuerySet[DeviceGroup]:
    """The product's groups by name, each with its ``device_count`` (one query). ``name`` matches
    part of a name."""
    groups = DeviceGroup.objects.filter(product=product)
    if name := name.strip().lower():
        groups = groups.filter(name__contains=name)
    return groups.annotate(device_count=Count("devices")).order_by("name")


def group_get(*, product: Product, name: str, counted: bool = True) -> DeviceGroup:
    groups = DeviceGroup.objects.filter(product=product, name=str(name).strip())
    if counted:
        groups = groups.annotate(device_count=Count("devices"))
    group = groups.first()
    if group is None:
        raise NotFound(f"Group {str(name).strip()!r} not found in this product.")
    return group


def group_info(group: DeviceGroup) -> dict:
    """A group as Particle's API shows it. Releasing firmware to groups is not built yet, so no
    group has a firmware version."""
    return {
        "name": group.name,
        "description": group.description,
        "color": group.color,
        "fw_version": None,
        "device_count": getattr(group, "device_count", None),
    }


# --- writing --------------------------------------------------------------------------------------
def _taken(product: Product, name: str) -> Conflict:
    return Conflict(f"This product already has a group named {name!r}.", field="name")


def group_create(
    *,
    actor,
    product: Product,
    name: object,
    description: object = "",
    color: object = None,
    via: str = "console",
) -> DeviceGroup:
    clean_name = group_name_clean(name)
    clean_description = group_description_clean(description)
    clean_color = DEFAULT_GROUP_COLOR if color in (None, "") else group_color_clean(color)
    if DeviceGroup.objects.filter(product=product, name=clean_name).exists():
        raise _taken(product, clean_name)
    try:
        with transaction.atomic():
            group = DeviceGroup.objects.create(
                product=product, name=clean_name, description=clean_description, color=clean_color
            )
    except IntegrityError:
        raise _taken(product, clean_name) from None  # created meanwhile
    group.device_count = 0
    audit_record(
        actor=actor, action="product.group_create", target=group, metadata={"product": product.id}, via=via
    )
    return group


def group_edit(
    *,
    actor,
    product: Product,
    group: DeviceGroup,
    name: object = None,
    description: object = None,
    color: object = None,
    via: str = "console",
) -> DeviceGroup:
    """Rename, recolor or describe a group; at least one of them. Renaming keeps its devices."""
    if name is None and description is None and color is None:
        raise ApplicationError("Send at least one of name, color and description to change.", field="name")
    changes: dict[str, str] = {}
    if name is not None:
        changes["name"] = group_name_clean(name)
    if description is not None:
        changes["description"] = group_description_clean(description)
    if color is not None:
        changes["color"] = group_color_clean(color) if color != "" else DEFAULT_GROUP_COLOR
    renamed = changes.get("name", group.name) != group.name
    if renamed and DeviceGroup.objects.filter(product=product, name=changes["name"]).exists():
        raise _taken(product, changes["name"])
    previous = group.name
    for field, value in changes.items():
        setattr(group, field, value)
    try:
        with transaction.atomic():
            group.save(update_fields=[*changes, "updated_at"])
    except IntegrityError:
        raise _taken(product, group.name) from None
    metadata: dict = {"product": product.id, "changed": sorted(changes)}
    if renamed:
        metadata["renamed_from"] = previous
    audit_record(actor=actor, action="product.group_edit", target=group, metadata=metadata, via=via)
    return group_get(product=product, name=group.name)


def group_delete(*, actor, product: Product, group: DeviceGroup, via: str = "console") -> int:
    """Delete a group, also while devices are in it: they leave it. Returns how many did."""
    with transaction.atomic():
        devices = group.devices.count()
        group.delete()  # the device links go with it
    audit_record(
        actor=actor,
        action="product.group_delete",
        target_type="devicegroup",
        target_id=str(group.name),
        target_label=group.name,
        metadata={"product": product.id, "devices": devices},
        via=via,
    )
    return devices


def groups_for_names(
    *, actor, product: Product, names: Iterable[object], via: str = "console"
) -> list[DeviceGroup]:
    """The product's groups of these names, creating the unknown ones (each name checked first, so
    a bad name creates nothing)."""
    clean = list(dict.fromkeys(group_name_clean(name) for name in names))
    if not clean:
        return []
    found = {group.name: group for group in DeviceGroup.objects.filter(product=product, name__in=clean)}
    for name in clean:
        if name not in found:
            try:
                found[name] = group_create(actor=actor, product=product, name=name, via=via)
            except Conflict:
                found[name] = DeviceGroup.objects.get(product=product, name=name)  # created meanwhile
    return [found[name] for name in clean]
