"""`manage.py seed_demo`: the demo account, its fleet and key file, and the demo product with its
team, groups and a firmware rollout; running it again changes nothing."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from devices.models import Device
from firmware.models import FirmwareRelease, ProductFirmware
from products.models import DeviceGroup, Membership, Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return tmp_path


def state() -> tuple:
    return (
        Device.objects.count(),
        sorted(DeviceGroup.objects.values_list("name", flat=True)),
        sorted(ProductFirmware.objects.values_list("version", "sha256")),
        sorted(FirmwareRelease.objects.values_list("firmware__version", "group__name")),
        Membership.objects.count(),
    )


def test_the_demo_product_has_a_team_groups_and_a_rollout(var_dir):
    call_command("seed_demo", stdout=io.StringIO())

    product = Product.objects.get(name="Farm sensors")
    assert Device.objects.filter(product=product).count() == 10
    assert sorted(Membership.objects.filter(product=product).values_list("role", flat=True)) == [
        "developer",
        "owner",
    ]
    groups = {group.name: group.devices.count() for group in DeviceGroup.objects.filter(product=product)}
    assert groups == {"fields": 4, "storage": 4}
    assert sorted(ProductFirmware.objects.filter(product=product).values_list("version", flat=True)) == [1, 2]
    assert sorted(
        FirmwareRelease.objects.filter(product=product).values_list("firmware__version", "group__name")
    ) == [(1, None), (2, "fields")]
    entries = [json.loads(line) for line in (var_dir / "demo-fleet.jsonl").read_text().splitlines()]
    members = set(Device.objects.filter(product=product).values_list("id", flat=True))
    in_product = [entry for entry in entries if entry["device_id"] in members]
    assert len(in_product) == 10
    assert all((e["product_id"], e["product_version"]) == (product.id, 1) for e in in_product)
    assert all("product_id" not in e for e in entries if e["device_id"] not in members)


def test_running_it_again_changes_nothing(var_dir):
    call_command("seed_demo", stdout=io.StringIO())
    before = state()

    call_command("seed_demo", stdout=io.StringIO())

    assert state() == before
