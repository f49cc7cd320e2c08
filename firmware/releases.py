"""Releasing a version to the product default and to groups, and previewing who it would update.

A release says, for one version, exactly where it is released: ``product_default`` makes it the
product's default (or, false, takes the default away from it), ``groups`` are exactly the groups it
is released to (groups it had and that are not named lose it; a group holds one version, so naming
a group moves it to this version). ``None`` leaves that side as it is. Devices take their new
target at their next handshake, or at once for ``intelligent`` releases.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from console.errors import ApplicationError, Conflict
from console.services import audit_record
from devices.selectors import product_device_runs_version
from firmware.models import FirmwareRelease, ProductFirmware
from firmware.targeting import PlannedRelease, impact_by_running_version
from products.groups import group_name_clean
from products.models import DeviceGroup


@dataclass(frozen=True)
class ReleasePlan:
    firmware: ProductFirmware
    planned: PlannedRelease
    groups: tuple[DeviceGroup, ...]  # the groups it ends up released to


@dataclass(frozen=True)
class Impact:
    version: int
    total: int
    by_running_version: dict[int | None, int]

    def as_api(self) -> dict:
        rows = sorted(self.by_running_version.items(), key=lambda item: (item[0] is None, -(item[0] or 0)))
        return {
            "version": self.version,
            "devices": self.total,
            "by_running_version": [{"version": version, "devices": count} for version, count in rows],
        }


def _groups_clean(*, product, names: Iterable[object]) -> list[DeviceGroup]:
    clean = list(dict.fromkeys(group_name_clean(name) for name in names))
    found = {group.name: group for group in DeviceGroup.objects.filter(product=product, name__in=clean)}
    unknown = [name for name in clean if name not in found]
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        raise ApplicationError(
            f"Unknown group{'s' if len(unknown) > 1 else ''} in this product: {listed}. Create "
            f"{'them' if len(unknown) > 1 else 'it'} on the Groups page first.",
            field="groups",
        )
    return [found[name] for name in clean]


def release_plan(
    *, product, firmware: ProductFirmware, product_default: bool | None, group_names: Iterable[object] | None
) -> ReleasePlan:
    """Where the version would be released, with ``None`` sides kept as they are."""
    current = list(FirmwareRelease.objects.filter(firmware=firmware).select_related("group"))
    if product_default is None:
        product_default = any(release.group_id is None for release in current)
    if group_names is None:
        groups = [release.group for release in current if release.group_id is not None]
    else:
        groups = _groups_clean(product=product, names=group_names)
    planned = PlannedRelease(
        version=firmware.version,
        product_default=bool(product_default),
        group_ids=frozenset(group.pk for group in groups),
    )
    return ReleasePlan(firmware=firmware, planned=planned, groups=tuple(groups))


def release_impact(*, product, plan: ReleasePlan) -> Impact:
    counts = impact_by_running_version(product=product, planned=plan.planned)
    return Impact(version=plan.firmware.version, total=sum(counts.values()), by_running_version=counts)


def _has_run(product, firmware: ProductFirmware) -> bool:
    if firmware.first_run_at is not None:
        return True
    if product_device_runs_version(product=product, version=firmware.version):
        ProductFirmware.objects.filter(pk=firmware.pk, first_run_at__isnull=True).update(
            first_run_at=timezone.now()
        )
        return True
    return False


def firmware_release(
    *,
    actor,
    product,
    firmware: ProductFirmware,
    product_default: bool | None,
    group_names: Iterable[object] | None,
    intelligent: bool = False,
    via: str = "console",
) -> ReleasePlan:
    """Release (or unrelease) ``firmware`` as planned (the caller checked ``firmware.release``)."""
    plan = release_plan(
        product=product, firmware=firmware, product_default=product_default, group_names=group_names
    )
    current = list(FirmwareRelease.objects.filter(firmware=firmware).select_related("group"))
    was_default = any(release.group_id is None for release in current)
    had_groups = {release.group.name for release in current if release.group_id is not None}
    wants_groups = {group.name for group in plan.groups}
    if not current and not plan.planned.product_default and not plan.groups:
        raise ApplicationError(
            "Choose where to release it: as the product default, to groups, or both.", field="product_default"
        )
    adds_somewhere = (plan.planned.product_default and not was_default) or bool(wants_groups - had_groups)
    if adds_somewhere and not _has_run(product, firmware):
        raise Conflict(
            f"Version {firmware.version} has not run on any device of this product yet. Lock a device to it "
            "with Flash now to try it; once that device reconnects running it, it can be released.",
            field="version",
        )
    with transaction.atomic():
        defaults = FirmwareRelease.objects.select_for_update().filter(product=product, group__isnull=True)
        if plan.planned.product_default:
            defaults.exclude(firmware=firmware).delete()
            FirmwareRelease.objects.get_or_create(
                product=product,
                group=None,
                defaults={"firmware": firmware, "intelligent": intelligent, "released_by": actor},
            )
        else:
            defaults.filter(firmware=firmware).delete()
        FirmwareRelease.objects.filter(firmware=firmware, group__isnull=False).exclude(
            group__in=plan.groups
        ).delete()
        for group in plan.groups:
            FirmwareRelease.objects.update_or_create(
                group=group,
                defaults={
                    "product": product,
                    "firmware": firmware,
                    "intelligent": intelligent,
                    "released_by": actor,
                },
            )
        FirmwareRelease.objects.filter(firmware=firmware).update(intelligent=intelligent)
        if (plan.planned.product_default or plan.groups) and firmware.first_released_at is None:
            firmware.first_released_at = timezone.now()
            firmware.save(update_fields=["first_released_at", "updated_at"])
    if intelligent and (plan.planned.product_default or plan.groups):
        from firmware.tasks import start_product_updates

        # Online devices whose target changed start now instead of at their next handshake.
        transaction.on_commit(lambda: start_product_updates.delay(product.pk))
    unreleased = sorted(had_groups - wants_groups)
    audit_record(
        actor=actor,
        action="firmware.release" if (plan.planned.product_default or plan.groups) else "firmware.unrelease",
        target=product,
        target_label=product.name,
        metadata={
            "version": firmware.version,
            "product_default": plan.planned.product_default,
            "was_product_default": was_default,
            "groups": sorted(wants_groups),
            "unreleased_groups": unreleased,
            "intelligent": intelligent,
        },
        via=via,
    )
    return plan
