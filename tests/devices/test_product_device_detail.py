"""A device's page in a product (/products/<product>/devices/<device_id>/): every role on the team
sees it whoever owns the device, with the actions its role allows; Edit groups and the development
flag, refused to the roles the permission table leaves out; 404s that leak nothing; the live event
stream a teammate opens for another owner's device."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.utils import timezone

from console.accounts.models import User
from console.models import AuditEntry
from console.permissions import Role, role_can
from devices.groups import devices_groups_add
from devices.models import Device
from events.services import event_apublish
from events.types import Event
from products.groups import group_create
from products.models import DeviceGroup, Membership, Product
from products.services import product_create
from tests.conftest import PASSWORD
from tests.devices.test_product_pages import BORON, as_role, named, provision, signed_in
from tests.events.test_console_stream import connect, live, subscribe, summary

pytestmark = pytest.mark.django_db

ROLES = list(Role)


# --- helpers ----------------------------------------------------------------------------------------
def page_url(product: Product, device: Device | str, suffix: str = "") -> str:
    device_id = device if isinstance(device, str) else device.id
    return f"/products/{product.slug}/devices/{device_id}/{suffix}"


def state() -> tuple:
    """Everything the page's actions may change."""
    return (
        sorted(Device.objects.values_list("id", "product_id", "quarantined", "development", "owner_id")),
        sorted(DeviceGroup.objects.values_list("product_id", "name")),
        sorted(Device.groups.through.objects.values_list("device_id", "devicegroup__name")),
        AuditEntry.objects.count(),
    )


def group_names(device: Device) -> list[str]:
    return sorted(device.groups.values_list("name", flat=True))


@pytest.fixture
def product(user) -> Product:
    return product_create(user=user, name="Greenhouse", platform_id=BORON.id)


@pytest.fixture
def teammate(product) -> User:
    """A developer on the team who owns a device of the product."""
    someone = User.objects.create_user(email="lin@example.com", password=PASSWORD)
    Membership.objects.create(product=product, user=someone, role=Role.DEVELOPER)
    return someone


@pytest.fixture
def sensor(product, teammate) -> Device:
    """A device of the product claimed by the teammate, in two groups, with firmware and notes."""
    [device] = named(
        product,
        "north-sensor",
        owner=teammate,
        firmware_product_id=product.id,
        firmware_version=7,
        system_firmware_version="6.1.1",
        notes="Mounted on the north wall.",
    )
    group_create(actor=product.owner, product=product, name="north-field", color="#16a34a")
    devices_groups_add(
        actor=product.owner, product=product, device_ids=[device.id], names=["north-field", "beta"]
    )
    return device


# --- the page -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_the_device_with_the_actions_its_role_allows(product, sensor, role):
    Device.objects.filter(pk=sensor.pk).update(quarantined=True)
    response = as_role(product, role).get(page_url(product, sensor))

    assert response.status_code == 200
    html = response.content.decode()
    assert '<h1 class="page-title device-title">north-sensor</h1>' in html
    assert re.search(r"data-device-owner>\s*lin@example\.com", html)
    chips = re.findall(r'<span class="group-chip-name">([^<]+)</span>', html)
    assert chips == ["beta", "north-field"]
    assert 'fill="#16a34a"' in html  # the group's colour
    assert '<span class="mono">v7</span>' in html
    assert f'<span class="mono">{product.id}</span>' in html
    assert "6.1.1" in html
    assert sensor.serial_number in html
    assert "Mounted on the north wall." in html
    assert "Waiting for approval" in html
    assert ("Edit groups" in html) == role_can(role, "group.manage")
    assert ('id="groups-dialog"' in html) == role_can(role, "group.manage")
    assert ("Mark as development" in html) == role_can(role, "device.update")
    can_quarantine = role_can(role, "device.quarantine")
    assert (f'action="{page_url(product, sensor, "approve/")}"' in html) == can_quarantine
    assert ('id="deny-dialog"' in html) == can_quarantine
    # No calls here (they are the owner's, on the owner's page), and no export of the owner's events.
    assert "/call/" not in html
    assert "event-export-button" not in html


def test_the_page_shows_an_unclaimed_device_and_links_its_owner_to_their_own_page(user, product, sensor):
    [unclaimed] = named(product, "spare")
    html = signed_in(user).get(page_url(product, unclaimed)).content.decode()
    assert re.search(r'data-device-owner><span class="subtle">Unclaimed</span>', html)
    assert "In no group." in html

    [mine] = named(product, "mine", owner=user)
    html = signed_in(user).get(page_url(product, mine)).content.decode()
    assert re.search(r'data-device-owner>ada@example\.com <span class="subtle">\(you\)</span>', html)
    assert f'href="/devices/{mine.id}/"' in html  # calls and variables are on the owner's page
    html = signed_in(user).get(page_url(product, sensor)).content.decode()
    assert f'href="/devices/{sensor.id}/"' not in html


def test_the_event_log_follows_the_device_in_this_product(product, sensor, teammate):
    viewer = as_role(product, Role.VIEWER)
    html = viewer.get(page_url(product, sensor)).content.decode()
    log = re.search(r"<section class=\"card event-log[^>]*>", html).group(0)
    assert f'data-device-id="{sensor.id}"' in log
    assert f'data-product-id="{product.id}"' in log
    assert "data-sync-url" not in log
    # The detail pane links a device to its page in the product, which every teammate may open.
    assert f'data-device-url="/products/{product.slug}/devices/000000000000000000000000/"' in log


def test_the_sidebar_shows_the_product_and_the_breadcrumb_leads_back(product, sensor):
    html = as_role(product, Role.SUPPORT).get(page_url(product, sensor)).content.decode()
    context = html[html.index("data-nav-context") : html.index("sidebar-spacer")]
    assert "Greenhouse" in context
    assert re.search(rf'href="/products/{product.slug}/devices/" aria-current="page"', context)
    crumbs = re.search(r'<div class="topbar-breadcrumb">(.*?)</div>', html, re.S).group(1)
    names = [text for text in re.findall(r">([^<>]+)</(?:a|span)>", crumbs) if text != "/"]
    assert names == ["Products", "Greenhouse", "Devices", "north-sensor"]


def test_the_list_links_every_device_to_its_page(product, sensor):
    html = as_role(product, Role.VIEWER).get(f"/products/{product.slug}/devices/").content.decode()
    assert f'<a class="device-name" href="{page_url(product, sensor)}"' in html


def test_the_device_is_found_by_id_any_case_or_name_and_the_product_by_id(product, sensor):
    client = as_role(product, Role.VIEWER)
    assert client.get(page_url(product, sensor.id.upper())).status_code == 200
    assert client.get(page_url(product, "North-Sensor")).status_code == 200
    assert client.get(f"/products/{product.id}/devices/{sensor.id}/").status_code == 200


# --- what is not there ----------------------------------------------------------------------------------
def test_a_member_of_another_product_gets_404(product, sensor, other_user):
    product_create(user=other_user, name="Elsewhere", platform_id=BORON.id)
    response = signed_in(other_user).get(page_url(product, sensor))
    assert response.status_code == 404
    assert "north-sensor" not in response.content.decode()


def test_a_device_of_another_product_or_of_none_is_404_through_this_product(
    user, product, sensor, other_user
):
    theirs = product_create(user=other_user, name="Elsewhere", platform_id=BORON.id)
    [elsewhere] = provision(product=theirs)
    [mine_only] = provision(owner=user)
    own_second = product_create(user=user, name="Shed", platform_id=BORON.id)
    [in_shed] = provision(product=own_second)
    client = signed_in(user)
    for device in (elsewhere, mine_only, in_shed):
        assert client.get(page_url(product, device)).status_code == 404, device
    assert client.get(page_url(own_second, in_shed)).status_code == 200


def test_an_unknown_device_is_404(product, sensor):
    client = as_role(product, Role.OWNER)
    assert client.get(page_url(product, "0123456789abcdef01234567")).status_code == 404
    assert client.get(page_url(product, "no-such-device")).status_code == 404


def test_signed_out_visitors_go_to_sign_in(product, sensor):
    response = Client().get(page_url(product, sensor))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("groups", [2, 30])
def test_the_number_of_queries_does_not_grow_with_the_groups(
    product, sensor, groups, django_assert_max_num_queries
):
    names = [f"g{index}" for index in range(groups)]
    devices_groups_add(actor=product.owner, product=product, device_ids=[sensor.id], names=names)
    client = as_role(product, Role.ADMINISTRATOR)
    # The session's user, the product and role, the device with its owner, its groups, the
    # product's groups (the Edit groups dialog), and the panels other apps add (firmware: its
    # releases, its latest update, the versions to lock to).
    with django_assert_max_num_queries(9):
        response = client.get(page_url(product, sensor))
    assert len(re.findall(r'class="group-chip-name"', response.content.decode())) == groups + 2


# --- Edit groups ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", [role for role in ROLES if role_can(role, "group.manage")])
def test_edit_groups_sets_the_absolute_set(product, sensor, role):
    response = as_role(product, role).post(
        page_url(product, sensor, "groups/"),
        {"groups": ["north-field"], "new_groups": "south-field, shed"},
        follow=True,
    )

    assert response.redirect_chain[-1][0] == page_url(product, sensor)
    assert group_names(sensor) == ["north-field", "shed", "south-field"]
    assert DeviceGroup.objects.filter(product=product, name="beta").exists()  # the group stays
    assert f"north-sensor ({sensor.id}) is in north-field, shed, south-field." in response.content.decode()
    assert AuditEntry.objects.filter(action="product.device_groups").count() == 1


def test_edit_groups_with_nothing_checked_clears_them(product, sensor):
    response = as_role(product, Role.DEVELOPER).post(page_url(product, sensor, "groups/"), follow=True)
    assert group_names(sensor) == []
    assert f"north-sensor ({sensor.id}) is in no group now." in response.content.decode()


def test_a_bad_group_name_changes_nothing_and_says_why(product, sensor):
    before = state()
    response = as_role(product, Role.DEVELOPER).post(
        page_url(product, sensor, "groups/"),
        {"groups": ["north-field"], "new_groups": "North Field"},
        follow=True,
    )
    assert state() == before
    assert f"Could not change the groups of north-sensor ({sensor.id}):" in response.content.decode()


@pytest.mark.parametrize("role", [role for role in ROLES if not role_can(role, "group.manage")])
def test_roles_without_group_manage_cannot_edit_groups(product, sensor, role):
    client = as_role(product, role)
    before = state()
    response = client.post(page_url(product, sensor, "groups/"), {"groups": [], "new_groups": "taken"})
    assert response.status_code == 403
    assert "group manage" in response.content.decode()
    assert state() == before


# --- the development flag -------------------------------------------------------------------------------
@pytest.mark.parametrize("role", [role for role in ROLES if role_can(role, "device.update")])
def test_development_is_marked_and_unmarked(product, sensor, role):
    client = as_role(product, role)
    response = client.post(page_url(product, sensor, "development/"), {"development": "1"}, follow=True)
    sensor.refresh_from_db()
    assert sensor.development is True
    assert response.redirect_chain[-1][0] == page_url(product, sensor)
    html = response.content.decode()
    assert f"north-sensor ({sensor.id}) is a development device now." in html
    assert "Unmark development" in html

    client.post(page_url(product, sensor, "development/"), {"development": "0"})
    sensor.refresh_from_db()
    assert sensor.development is False
    assert AuditEntry.objects.filter(action="product.devices_development").count() == 2


def test_development_needs_a_value(product, sensor):
    before = state()
    response = as_role(product, Role.SUPPORT).post(page_url(product, sensor, "development/"), follow=True)
    assert state() == before
    assert "Choose whether it is a development device." in response.content.decode()


@pytest.mark.parametrize("role", [role for role in ROLES if not role_can(role, "device.update")])
def test_roles_without_device_update_cannot_mark_development(product, sensor, role):
    before = state()
    response = as_role(product, role).post(page_url(product, sensor, "development/"), {"development": "1"})
    assert response.status_code == 403
    assert "device update" in response.content.decode()
    assert state() == before


def test_changes_through_another_product_or_to_its_devices_are_404(user, product, sensor, other_user):
    theirs = product_create(user=other_user, name="Elsewhere", platform_id=BORON.id)
    [elsewhere] = provision(product=theirs)
    before = state()
    outsider = signed_in(other_user)
    assert outsider.post(page_url(product, sensor, "groups/"), {"new_groups": "x"}).status_code == 404
    assert outsider.post(page_url(product, sensor, "development/"), {"development": "1"}).status_code == 404
    owner = signed_in(user)
    assert owner.post(page_url(product, elsewhere, "groups/"), {"new_groups": "x"}).status_code == 404
    assert owner.post(page_url(product, elsewhere, "development/"), {"development": "1"}).status_code == 404
    assert owner.get(page_url(product, sensor, "groups/")).status_code == 405
    assert state() == before


# --- quarantine ---------------------------------------------------------------------------------------------
def test_approving_from_the_page_comes_back_to_it(product, sensor):
    Device.objects.filter(pk=sensor.pk).update(quarantined=True)
    response = as_role(product, Role.ADMINISTRATOR).post(
        page_url(product, sensor, "approve/"), {"next": page_url(product, sensor)}, follow=True
    )
    sensor.refresh_from_db()
    assert sensor.quarantined is False
    assert response.redirect_chain[-1][0] == page_url(product, sensor)
    assert "Waiting for approval" not in response.content.decode()


# --- the live events a teammate sees ------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
async def test_a_teammate_streams_another_owners_device_in_the_product(product, sensor, user):
    """What the page's event log subscribes to: the device's events in this product, for a viewer
    who owns neither the device nor the product."""
    [other] = await sync_to_async(named)(product, "south-sensor")
    viewer = await sync_to_async(User.objects.create_user)(email="viewer@example.com", password=PASSWORD)
    await sync_to_async(Membership.objects.create)(product=product, user=viewer, role=Role.VIEWER)

    def event(device: Device, data: str) -> Event:
        return Event(
            name="temp",
            data=data,
            published_at=timezone.now(),
            coreid=device.id,
            owner_id=device.owner_id,
            product_id=device.product_id,
            device_name=device.name,
        )

    await event_apublish(event(sensor, "before"))
    await event_apublish(event(other, "other before"))
    communicator = await connect(viewer)
    history = await subscribe(communicator, device_id=sensor.id, product_id=product.id)
    assert summary(history["history"]) == [("temp", "before", sensor.id)]

    await event_apublish(event(other, "other live"))
    await event_apublish(event(sensor, "live"))
    assert summary(await live(communicator, 1)) == [("temp", "live", sensor.id)]
    assert await communicator.receive_nothing(0.1)
    await communicator.disconnect()
