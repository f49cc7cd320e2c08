"""Releases, impact previews, locks and development devices: the SQL targeting held to the pure
precedence function on generated fleets, and the API with its refusals and permissions."""

from __future__ import annotations

import random

import pytest

from console.models import AuditEntry
from console.permissions import Role
from console.platforms import PLATFORMS
from devices.models import Device
from devices.services import devices_provision
from firmware.models import FirmwareRelease, ProductFirmware
from firmware.precedence import firmware_target
from firmware.releases import firmware_release, release_impact, release_plan
from firmware.services import firmware_upload
from firmware.targeting import PlannedRelease, devices_due_an_update, devices_with_targets
from products.groups import group_create
from products.services import product_create
from tests.firmware.test_api import app_binary
from tests.products.test_team import client_for, member

pytestmark = pytest.mark.django_db

BORON = 13


@pytest.fixture
def product(user):
    return product_create(user=user, name="Greenhouse", platform_id=BORON)


def uploaded(user, product, *versions: int) -> dict[int, ProductFirmware]:
    return {
        version: firmware_upload(
            actor=user,
            product=product,
            data=app_binary(product, version),
            version=version,
            title=f"v{version}",
        )
        for version in versions
    }


def fleet(user, product, count: int) -> list[Device]:
    provisioned = devices_provision(platform=PLATFORMS[BORON], count=count, owner=user, product=product)
    return list(Device.objects.filter(pk__in=[p.device.pk for p in provisioned]).order_by("pk"))


def runs(devices, version: int | None) -> None:
    Device.objects.filter(pk__in=[d.pk for d in devices]).update(firmware_version=version)


def targets_by_sql(product, planned=None) -> dict[str, int | None]:
    return dict(
        devices_with_targets(Device.objects.filter(product=product), planned).values_list(
            "pk", "target_version"
        )
    )


def targets_by_rules(product) -> dict[str, int | None]:
    releases = list(FirmwareRelease.objects.filter(product=product).select_related("firmware", "group"))
    default = next((r.firmware.version for r in releases if r.group_id is None), None)
    by_group = {r.group_id: (r.group.name, r.firmware.version) for r in releases if r.group_id is not None}
    answer = {}
    for device in Device.objects.filter(product=product).prefetch_related("groups"):
        group_releases = dict(by_group[g.pk] for g in device.groups.all() if g.pk in by_group)
        answer[device.pk] = firmware_target(
            development=device.development,
            locked_version=device.desired_firmware_version,
            group_releases=group_releases,
            product_default=default,
        ).version
    return answer


# --- the SQL is the rule book -----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_sql_targets_match_the_precedence_function_on_generated_fleets(user, product, seed):
    rng = random.Random(seed)
    firmware = uploaded(user, product, 1, 2, 3, 4, 5)
    groups = [group_create(actor=user, product=product, name=f"g{n}") for n in range(4)]
    devices = fleet(user, product, 40)
    for device in devices:
        device.groups.set(rng.sample(groups, rng.randint(0, 3)))
        device.development = rng.random() < 0.15
        device.desired_firmware_version = rng.choice([None, None, None, rng.randint(1, 5)])
        device.firmware_version = rng.choice([None, 1, 2, 3])
        device.save()
    if rng.random() < 0.7:
        FirmwareRelease.objects.create(product=product, firmware=firmware[rng.randint(1, 5)])
    for group in rng.sample(groups, rng.randint(0, 4)):
        FirmwareRelease.objects.create(product=product, firmware=firmware[rng.randint(1, 5)], group=group)

    assert targets_by_sql(product) == targets_by_rules(product)


@pytest.mark.parametrize("seed", range(4))
def test_a_previewed_release_targets_what_the_release_then_does(user, product, seed):
    rng = random.Random(100 + seed)
    firmware = uploaded(user, product, 1, 2, 3)
    groups = [group_create(actor=user, product=product, name=f"g{n}") for n in range(3)]
    devices = fleet(user, product, 30)
    for device in devices:
        device.groups.set(rng.sample(groups, rng.randint(0, 2)))
        device.firmware_version = rng.choice([1, 2, 3])
        device.save()
    FirmwareRelease.objects.create(product=product, firmware=firmware[1])
    FirmwareRelease.objects.create(product=product, firmware=firmware[2], group=groups[0])
    chosen = rng.sample(groups, rng.randint(0, 3))
    planned = PlannedRelease(version=3, product_default=rng.random() < 0.5, group_ids={g.pk for g in chosen})
    if not planned.product_default and not chosen:
        planned = PlannedRelease(version=3, product_default=True, group_ids=set())
    previewed = targets_by_sql(product, planned)

    firmware_release(
        actor=user,
        product=product,
        firmware=firmware[3],
        product_default=planned.product_default,
        group_names=[g.name for g in chosen],
    )

    assert targets_by_sql(product) == previewed == targets_by_rules(product)


def test_devices_due_an_update_are_those_whose_target_differs(user, product):
    firmware = uploaded(user, product, 1, 2)
    devices = fleet(user, product, 4)
    runs(devices[:2], 1)
    runs(devices[2:3], 2)  # devices[3] never reported
    FirmwareRelease.objects.create(product=product, firmware=firmware[2])

    due = set(devices_due_an_update(Device.objects.filter(product=product)).values_list("pk", flat=True))

    assert due == {devices[0].pk, devices[1].pk, devices[3].pk}


# --- impact ------------------------------------------------------------------------------------------------
def test_impact_counts_devices_that_would_change_by_their_running_version(user, product):
    firmware = uploaded(user, product, 1, 2, 3)
    beta = group_create(actor=user, product=product, name="beta")
    devices = fleet(user, product, 8)
    runs(devices[:3], 1)
    runs(devices[3:5], 2)
    runs(devices[5:6], 3)  # already runs it
    Device.objects.filter(pk=devices[6].pk).update(development=True, firmware_version=1)
    Device.objects.filter(pk=devices[7].pk).update(desired_firmware_version=1, firmware_version=1)
    devices[0].groups.add(beta)
    FirmwareRelease.objects.create(product=product, firmware=firmware[2], group=beta)

    plan = release_plan(product=product, firmware=firmware[3], product_default=True, group_names=[])
    impact = release_impact(product=product, plan=plan)

    # devices[0] stays on its group's v2; development and locked devices are untouched.
    assert impact.by_running_version == {1: 2, 2: 2}
    assert impact.total == 4


def test_impact_api(auth_client, user, product):
    uploaded(user, product, 1, 2)
    group_create(actor=user, product=product, name="beta")
    devices = fleet(user, product, 3)
    runs(devices, 1)
    devices[0].groups.add(product.groups.get(name="beta"))

    default = auth_client.get(f"/v1/products/{product.id}/impact", {"version": 2, "product_default": "true"})
    beta = auth_client.get(f"/v1/products/{product.id}/impact", {"version": 2, "groups": "beta"})

    assert default.json() == {
        "version": 2,
        "devices": 3,
        "by_running_version": [{"version": 1, "devices": 3}],
    }
    assert beta.json()["devices"] == 1


def test_impact_of_an_unknown_group_is_a_clear_error(auth_client, user, product):
    uploaded(user, product, 1)

    response = auth_client.get(f"/v1/products/{product.id}/impact", {"version": 1, "groups": "nope"})

    assert response.status_code == 400
    assert "Unknown group in this product: 'nope'" in response.json()["error_description"]


def test_the_impact_preview_is_one_query(auth_client, user, product, django_assert_max_num_queries):
    uploaded(user, product, 1, 2)
    runs(fleet(user, product, 20), 1)
    plan = release_plan(
        product=product, firmware=ProductFirmware.objects.get(version=2), product_default=True, group_names=[]
    )

    with django_assert_max_num_queries(1):
        release_impact(product=product, plan=plan)


# --- releasing --------------------------------------------------------------------------------------------
def release(client, product, **body):
    return client.put(f"/v1/products/{product.id}/firmware/release", body, format="json")


def test_a_version_no_device_ran_cannot_be_released(auth_client, user, product):
    uploaded(user, product, 1)
    fleet(user, product, 2)

    response = release(auth_client, product, version=1, product_default=True)

    assert response.status_code == 409
    assert "has not run on any device of this product yet" in response.json()["error_description"]
    assert "Lock a device" in response.json()["error_description"]
    assert not FirmwareRelease.objects.exists()


def test_releasing_as_the_product_default_replaces_the_previous_default(auth_client, user, product):
    uploaded(user, product, 1, 2)
    devices = fleet(user, product, 2)
    runs(devices[:1], 1)
    runs(devices[1:], 2)

    first = release(auth_client, product, version=1, product_default=True)
    second = release(auth_client, product, version=2, product_default=True, intelligent=True)

    assert first.status_code == second.status_code == 200, second.content
    assert second.json()["product_default"] is second.json()["current"] is True
    assert second.json()["intelligent"] is True
    [default] = FirmwareRelease.objects.filter(group__isnull=True)
    assert default.firmware.version == 2
    assert auth_client.get(f"/v1/products/{product.id}/firmware/1").json()["product_default"] is False
    assert ProductFirmware.objects.get(version=1).first_released_at is not None
    assert AuditEntry.objects.filter(action="firmware.release").count() == 2


def test_releasing_to_groups_is_exact_for_that_version(auth_client, user, product):
    uploaded(user, product, 1, 2)
    for name in ("alpha", "beta", "gamma"):
        group_create(actor=user, product=product, name=name)
    runs(fleet(user, product, 1), 2)

    release(auth_client, product, version=2, groups=["alpha", "beta"])
    response = release(auth_client, product, version=2, groups=["beta", "gamma"])

    assert response.json()["groups"] == ["beta", "gamma"]
    assert set(FirmwareRelease.objects.values_list("group__name", flat=True)) == {"beta", "gamma"}
    entry = AuditEntry.objects.filter(action="firmware.release").latest("created_at")
    assert entry.metadata["unreleased_groups"] == ["alpha"]


def test_a_group_holds_one_version(auth_client, user, product):
    uploaded(user, product, 1, 2)
    group_create(actor=user, product=product, name="beta")
    devices = fleet(user, product, 2)
    runs(devices[:1], 1)
    runs(devices[1:], 2)

    release(auth_client, product, version=1, groups=["beta"])
    release(auth_client, product, version=2, groups=["beta"])

    assert list(FirmwareRelease.objects.values_list("group__name", "firmware__version")) == [("beta", 2)]


def test_unreleasing_everything_is_audited(auth_client, user, product):
    uploaded(user, product, 1)
    runs(fleet(user, product, 1), 1)
    release(auth_client, product, version=1, product_default=True)

    response = release(auth_client, product, version=1, product_default=False)

    assert response.status_code == 200
    assert not FirmwareRelease.objects.exists()
    assert AuditEntry.objects.filter(action="firmware.unrelease").exists()


def test_the_legacy_current_flag_releases_as_the_default(auth_client, user, product):
    uploaded(user, product, 1)
    runs(fleet(user, product, 1), 1)

    response = auth_client.put(f"/v1/products/{product.id}/firmware/1", {"current": True}, format="json")

    assert response.status_code == 200
    assert response.json()["current"] is True


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"version": 9, "product_default": True}, 404, "No firmware version 9"),
        ({"version": 1, "groups": ["nope", "Bad Name"]}, 400, "Group names use lowercase"),
        ({"version": 1, "groups": ["nope"]}, 400, "Unknown group in this product: 'nope'"),
        ({"version": 1}, 400, "Choose where to release it"),
        ({"version": 1, "product_default": "maybe"}, 400, "Expected true or false"),
        ({"version": 1, "groups": "a,b", "product_default": True}, 400, "Unknown groups"),
    ],
)
def test_bad_releases_are_refused_and_change_nothing(auth_client, user, product, body, status, message):
    uploaded(user, product, 1)
    runs(fleet(user, product, 1), 1)

    response = release(auth_client, product, **body)

    assert response.status_code == status, response.content
    assert message in response.json()["error_description"]
    assert not FirmwareRelease.objects.exists()


@pytest.mark.parametrize(
    ("role", "allowed"),
    [(Role.ADMINISTRATOR, True), (Role.DEVELOPER, False), (Role.SUPPORT, False), (Role.VIEWER, False)],
)
def test_releasing_follows_the_permission_table(user, product, role, allowed):
    uploaded(user, product, 1)
    runs(fleet(user, product, 1), 1)
    client = client_for(member(product, f"{role}@example.com", role))

    response = release(client, product, version=1, product_default=True)

    assert response.status_code == (200 if allowed else 403)
    assert FirmwareRelease.objects.exists() is allowed


# --- locks and development devices ------------------------------------------------------------------------
def lock(client, product, device, **body):
    return client.put(f"/v1/products/{product.id}/devices/{device.pk}", body, format="json")


def test_lock_and_unlock_through_the_product_device_api(auth_client, user, product):
    uploaded(user, product, 1, 2)
    [device] = fleet(user, product, 1)

    locked = lock(auth_client, product, device, desired_firmware_version=2, flash=True)
    assert locked.status_code == 200, locked.content
    assert locked.json()["desired_firmware_version"] == 2
    assert (
        auth_client.get(f"/v1/products/{product.id}/devices/{device.pk}").json()["desired_firmware_version"]
        == 2
    )

    unlocked = lock(auth_client, product, device, desired_firmware_version=None)
    assert unlocked.json()["desired_firmware_version"] is None
    device.refresh_from_db()
    assert device.desired_firmware_version is None
    actions = list(
        AuditEntry.objects.filter(action__in=["firmware.lock", "firmware.unlock"]).values_list(
            "action", flat=True
        )
    )
    assert sorted(actions) == ["firmware.lock", "firmware.unlock"]


@pytest.mark.parametrize(
    ("value", "message"),
    [(7, "No firmware version 7 in this product"), ("x", "whole number"), (0, "out of range")],
)
def test_locking_to_a_version_that_does_not_exist_is_refused(auth_client, user, product, value, message):
    uploaded(user, product, 1)
    [device] = fleet(user, product, 1)

    response = lock(auth_client, product, device, desired_firmware_version=value)

    assert response.status_code == 400
    assert message in response.json()["error_description"]
    device.refresh_from_db()
    assert device.desired_firmware_version is None


@pytest.mark.parametrize(("role", "allowed"), [(Role.SUPPORT, True), (Role.VIEWER, False)])
def test_locking_follows_the_permission_table(user, product, role, allowed):
    uploaded(user, product, 1)
    [device] = fleet(user, product, 1)
    client = client_for(member(product, f"{role}@example.com", role))

    response = lock(client, product, device, desired_firmware_version=1)

    assert response.status_code == (200 if allowed else 403)
    device.refresh_from_db()
    assert device.desired_firmware_version == (1 if allowed else None)


def test_a_development_device_is_never_targeted(auth_client, user, product):
    uploaded(user, product, 1, 2)
    [device] = fleet(user, product, 1)
    runs([device], 1)
    FirmwareRelease.objects.create(product=product, firmware=ProductFirmware.objects.get(version=2))

    response = lock(auth_client, product, device, development=True)

    assert response.status_code == 200
    assert targets_by_sql(product) == {device.pk: None}


# --- rollout progress -------------------------------------------------------------------------------------
def test_rollout_progress_counts_targeted_updated_updating_and_failed(user, product):
    from firmware.models import FirmwareUpdate
    from firmware.selectors import RolloutProgress, rollout_progress

    firmware = uploaded(user, product, 1, 2)
    devices = fleet(user, product, 6)
    runs(devices[:2], 2)  # updated
    runs(devices[2:5], 1)
    Device.objects.filter(pk=devices[5].pk).update(development=True, firmware_version=1)
    FirmwareRelease.objects.create(product=product, firmware=firmware[2])

    def update(device, state):
        FirmwareUpdate.objects.create(
            device=device,
            product=product,
            firmware=firmware[2],
            version=2,
            size=1,
            sha256="0" * 64,
            ota_id=f"{device.pk}{state}"[:32],
            state=state,
        )

    update(devices[2], "transferring")
    update(devices[3], "failed")
    update(devices[0], "success")

    assert rollout_progress(product=product) == {
        2: RolloutProgress(targeted=5, updated=2, updating=1, failed=1)
    }
