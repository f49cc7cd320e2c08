"""The precedence rules (firmware/precedence.py) as SQL, for counting and selecting devices across a
fleet in one query: impact previews, release targeting and the handshake decision.

``target_version_expression`` annotates devices with the version the rules give them, under the
releases as they are or as a release being previewed would leave them. The tests hold it to
``firmware_target`` on generated fleets.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    Lookup,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from devices.models import Device
from firmware.models import FirmwareRelease

_DeviceGroup = Device.groups.through  # (device_id, devicegroup_id)


@dataclass(frozen=True)
class PlannedRelease:
    """A release being previewed: ``version`` becomes exactly the product default (or stops being
    it) and exactly the release of ``group_ids`` (groups it was released to and are not named lose
    it)."""

    version: int
    product_default: bool
    group_ids: Collection[int]


def _group_release_version(planned: PlannedRelease | None):
    """Per membership row (through table): the version released to that group."""
    released = FirmwareRelease.objects.filter(group_id=OuterRef("devicegroup_id"))
    if planned is None:
        return Subquery(released.values("firmware__version")[:1], output_field=IntegerField())
    kept = Subquery(
        released.exclude(firmware__version=planned.version).values("firmware__version")[:1],
        output_field=IntegerField(),
    )
    return Case(
        When(devicegroup_id__in=list(planned.group_ids), then=Value(planned.version)),
        default=kept,
        output_field=IntegerField(),
    )


def _highest_group_release(planned: PlannedRelease | None):
    memberships = (
        _DeviceGroup.objects.filter(device_id=OuterRef("pk"))
        .annotate(released=_group_release_version(planned))
        .filter(released__isnull=False)
        .order_by("-released")
        .values("released")[:1]
    )
    return Subquery(memberships, output_field=IntegerField())


def _product_default(planned: PlannedRelease | None):
    if planned is not None and planned.product_default:
        return Value(planned.version, output_field=IntegerField())
    current = FirmwareRelease.objects.filter(product_id=OuterRef("product_id"), group__isnull=True)
    if planned is not None:
        current = current.exclude(firmware__version=planned.version)  # unreleased as the default
    return Subquery(current.values("firmware__version")[:1], output_field=IntegerField())


def target_version_expression(planned: PlannedRelease | None = None):
    """The version each device should run (NULL: none), by the precedence rules."""
    return Case(
        When(development=True, then=Value(None, output_field=IntegerField())),
        When(desired_firmware_version__isnull=False, then=F("desired_firmware_version")),
        default=Coalesce(_highest_group_release(planned), _product_default(planned)),
        output_field=IntegerField(),
    )


def devices_with_targets(
    devices: QuerySet[Device], planned: PlannedRelease | None = None
) -> QuerySet[Device]:
    return devices.annotate(target_version=target_version_expression(planned))


@IntegerField.register_lookup
class DistinctFrom(Lookup):
    """SQL's ``IS DISTINCT FROM`` (NULL differs from every version): one comparison, where
    ``IS NULL OR NOT =`` would repeat the whole target expression in the query."""

    lookup_name = "distinct_from"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} IS DISTINCT FROM {rhs}", [*lhs_params, *rhs_params]

    def as_sqlite(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} IS NOT {rhs}", [*lhs_params, *rhs_params]


def _distinct_from(field: str, version: int) -> Q:
    return Q(**{f"{field}__distinct_from": version})


def impacted_devices(*, product, planned: PlannedRelease) -> QuerySet[Device]:
    """The devices whose target becomes ``planned.version`` by this release and that do not run
    it yet: the ones that would update."""
    return (
        Device.objects.filter(product=product, quarantined=False)
        .annotate(
            current_target=target_version_expression(None),
            planned_target=target_version_expression(planned),
        )
        .filter(planned_target=planned.version)
        .filter(_distinct_from("current_target", planned.version))
        .filter(_distinct_from("firmware_version", planned.version))
    )


def impact_by_running_version(*, product, planned: PlannedRelease) -> dict[int | None, int]:
    """``impacted_devices`` counted by the version they run now (None: never reported): one
    aggregate query."""
    rows = (
        impacted_devices(product=product, planned=planned)
        .order_by()
        .values("firmware_version")
        .annotate(count=Count("id"))
    )
    return {row["firmware_version"]: row["count"] for row in rows}


def devices_due_an_update(devices: QuerySet[Device]) -> QuerySet[Device]:
    """Those of ``devices`` whose target is a version they do not run (the OTA candidates)."""
    return (
        devices_with_targets(devices)
        .filter(target_version__isnull=False)
        .exclude(firmware_version=F("target_version"))
    )
