"""The firmware card on a product device's page: the target the rules give it and why, its lock
(set, Flash now, unlock) for roles allowed firmware.lock, and its latest update, polled while open."""

from __future__ import annotations

import pytest
from django.test import Client

from console.permissions import Role
from console.platforms import PLATFORMS
from devices.models import Device
from devices.services import devices_provision
from firmware.models import FirmwareRelease, FirmwareUpdate
from firmware.services import firmware_upload
from products.groups import group_create
from products.services import product_create
from tests.firmware.test_api import app_binary
from tests.products.test_team_pages import join, person

pytestmark = pytest.mark.django_db


@pytest.fixture
def product(user):
    product = product_create(user=user, name="Greenhouse", platform_id=13)
    for version in (1, 2, 3):
        firmware_upload(
            actor=user, product=product, data=app_binary(product, version), version=version, title="x"
        )
    return product


@pytest.fixture
def device(user, product):
    [provisioned] = devices_provision(platform=PLATFORMS[13], count=1, owner=user, product=product)
    Device.objects.filter(pk=provisioned.device.pk).update(firmware_version=1)
    return Device.objects.get(pk=provisioned.device.pk)


def page(client: Client, product, device) -> str:
    response = client.get(f"/products/{product.slug}/devices/{device.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def release(product, version: int, group=None) -> None:
    FirmwareRelease.objects.create(
        product=product, firmware=product.firmware.get(version=version), group=group
    )


@pytest.mark.parametrize(
    ("setup", "label", "why"),
    [
        (lambda p, d: None, "Nothing released", "No firmware is released to it"),
        (lambda p, d: release(p, 2), "Product default", "Version 2 is the product default"),
        (
            lambda p, d: (
                release(p, 2),
                release(p, 3, group_create(actor=p.owner, product=p, name="beta")),
                d.groups.add(p.groups.get(name="beta")),
            ),
            "Group release",
            "Version 3 is the highest version released to its group (beta)",
        ),
        (
            lambda p, d: Device.objects.filter(pk=d.pk).update(desired_firmware_version=2),
            "Locked",
            "locked to version 2",
        ),
        (
            lambda p, d: Device.objects.filter(pk=d.pk).update(development=True),
            "Development device",
            "development device",
        ),
    ],
)
def test_the_card_says_which_rule_chose_the_target(client, user, product, device, setup, label, why):
    setup(product, device)
    client.force_login(user)

    html = page(client, product, device)

    assert "Why this firmware" in html
    assert label in html
    assert why in html


def test_a_viewer_sees_the_reason_but_no_lock(product, device):
    viewer = join(product, person("viewer@example.com"), Role.VIEWER)
    client = Client()
    client.force_login(viewer)

    html = page(client, product, device)

    assert "Why this firmware" in html
    assert "Lock to" not in html
    response = client.post(f"/products/{product.slug}/firmware/devices/{device.pk}/lock/", {"version": "2"})
    assert response.status_code == 403
    device.refresh_from_db()
    assert device.desired_firmware_version is None


def test_support_locks_and_unlocks(product, device):
    support = join(product, person("support@example.com"), Role.SUPPORT)
    client = Client()
    client.force_login(support)
    url = f"/products/{product.slug}/firmware/devices/{device.pk}/lock/"

    assert "Lock to" in page(client, product, device)
    assert client.post(url, {"version": "3"}).status_code == 302
    device.refresh_from_db()
    assert device.desired_firmware_version == 3
    assert 'Locked to <span class="mono">v3</span>' in page(client, product, device)

    assert client.post(url, {"unlock": "1"}).status_code == 302
    device.refresh_from_db()
    assert device.desired_firmware_version is None


def test_locking_to_an_unknown_version_says_so_and_changes_nothing(client, user, product, device):
    client.force_login(user)

    response = client.post(
        f"/products/{product.slug}/firmware/devices/{device.pk}/lock/", {"version": "9"}, follow=True
    )

    assert "No firmware version 9 in this product" in response.content.decode()
    device.refresh_from_db()
    assert device.desired_firmware_version is None


def test_an_open_update_polls_and_shows_its_progress(client, user, product, device):
    FirmwareUpdate.objects.create(
        device=device,
        product=product,
        firmware=product.firmware.get(version=2),
        version=2,
        size=1000,
        sha256="0" * 64,
        ota_id="a" * 32,
        state="transferring",
        bytes_acked=420,
        from_version=1,
    )
    client.force_login(user)

    html = page(client, product, device)
    polled = client.get(f"/products/{product.slug}/firmware/devices/{device.pk}/")

    assert 'hx-trigger="every 2s"' in html
    assert "42%" in html
    assert polled.status_code == 200
    assert "to v2 from v1" in polled.content.decode()


def test_a_failed_update_shows_why_and_stops_polling(client, user, product, device):
    FirmwareUpdate.objects.create(
        device=device,
        product=product,
        firmware=product.firmware.get(version=2),
        version=2,
        size=1000,
        sha256="0" * 64,
        ota_id="b" * 32,
        state="failed",
        attempts=3,
        error="the device reported: sha256 mismatch",
    )
    client.force_login(user)

    html = page(client, product, device)

    assert "Gave up after 3 attempts: the device reported: sha256 mismatch" in html
    assert "every 2s" not in html


def test_another_products_device_is_a_404_through_this_product(client, user, product):
    elsewhere = product_create(user=user, name="Elsewhere", platform_id=13)
    [theirs] = devices_provision(platform=PLATFORMS[13], count=1, product=elsewhere)
    client.force_login(user)

    assert client.get(f"/products/{product.slug}/firmware/devices/{theirs.device.pk}/").status_code == 404
    assert (
        client.post(
            f"/products/{product.slug}/firmware/devices/{theirs.device.pk}/lock/", {"version": "1"}
        ).status_code
        == 404
    )


def test_the_card_costs_a_few_queries(client, user, product, device, django_assert_max_num_queries):
    client.force_login(user)

    with django_assert_max_num_queries(8):  # session, user, access, device and groups, then 3 of its own
        client.get(f"/products/{product.slug}/firmware/devices/{device.pk}/")
