"""A product's Groups page (list, create, edit, delete) and the groups on its Devices page (the
filter, each row's chips, the bulk bar's actions), with who may do each."""

from __future__ import annotations

import re

import pytest

from console.models import AuditEntry
from console.permissions import PERMISSIONS, Role
from devices import groups as device_groups
from devices.models import Device
from products import groups
from products.models import DeviceGroup
from products.services import product_create
from tests.devices.test_product_devices_api import provision
from tests.devices.test_product_pages import as_role, row_ids

pytestmark = pytest.mark.django_db

BUILDERS = PERMISSIONS["group.manage"]
OPERATORS = PERMISSIONS["device.update"]


@pytest.fixture
def product(user):
    return product_create(user=user, name="Greenhouse", platform_id=13)


@pytest.fixture
def fleet(product):
    return provision(3, product=product)


def groups_url(product, suffix: str = "") -> str:
    return f"/products/{product.slug}/groups/{suffix}"


def devices_url(product, suffix: str = "") -> str:
    return f"/products/{product.slug}/devices/{suffix}"


def state(product) -> tuple:
    return (
        sorted(DeviceGroup.objects.filter(product=product).values_list("name", "description", "color")),
        sorted(Device.groups.through.objects.values_list("device_id", "devicegroup__name")),
        sorted(Device.objects.filter(product=product).values_list("id", "development")),
    )


def add(product, devices, *names):
    device_groups.devices_groups_add(
        actor=product.owner, product=product, device_ids=[d.id for d in devices], names=list(names)
    )


# --- the Groups page ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", list(Role))
def test_every_role_sees_the_groups_with_their_counts(product, fleet, role):
    groups.group_create(actor=product.owner, product=product, name="north", description="Soil probes")
    groups.group_create(actor=product.owner, product=product, name="empty", color="#dc2626")
    add(product, fleet[:2], "north")

    response = as_role(product, role).get(groups_url(product))
    html = response.content.decode()

    assert response.status_code == 200
    assert re.findall(r'<tr data-group="([^"]+)"', html) == ["empty", "north"]
    assert "Soil probes" in html
    assert f'href="/products/{product.slug}/devices/?group=north" data-group-devices>2 devices' in html
    assert "data-group-devices>0 devices" in html
    assert 'fill="#dc2626"' in html  # the swatch
    can_manage = role in BUILDERS
    assert ("New group" in html) is can_manage
    assert ('data-open-dialog="group-edit-' in html) is can_manage
    assert ("2 devices lose this group; they stay in the product." in html) is can_manage


def test_the_empty_page_invites_builders_to_create_a_group(product):
    html = as_role(product, Role.OWNER).get(groups_url(product)).content.decode()
    assert "No groups in Greenhouse yet" in html
    assert 'data-open-dialog="group-create-dialog"' in html
    viewer = as_role(product, Role.VIEWER).get(groups_url(product)).content.decode()
    assert "Owners, administrators and developers create groups." in viewer
    assert "group-create-dialog" not in viewer


def test_the_sidebar_lists_groups_after_devices(product):
    html = as_role(product, Role.VIEWER).get(groups_url(product)).content.decode()
    links = re.findall(r'<a class="nav-link" href="(/products/[^"]+)"', html)
    assert links[:4] == [
        groups_url(product).replace("groups/", ""),
        devices_url(product),
        groups_url(product).replace("groups/", "firmware/"),
        groups_url(product),
    ]


@pytest.mark.parametrize("role", list(Role))
def test_who_creates_edits_and_deletes_groups(product, fleet, role):
    client = as_role(product, role)
    groups.group_create(actor=product.owner, product=product, name="old")
    add(product, fleet[:1], "old")
    before = state(product)

    created = client.post(
        groups_url(product, "new/"), {"name": "north", "description": "N", "color": "#2563eb"}
    )
    edited = client.post(
        groups_url(product, "old/edit/"), {"name": "renamed", "description": "", "color": "#16a34a"}
    )
    deleted = client.post(groups_url(product, "north/delete/"))

    if role in BUILDERS:
        assert created.status_code == edited.status_code == deleted.status_code == 302
        assert sorted(DeviceGroup.objects.values_list("name", "color")) == [("renamed", "#16a34a")]
        assert list(fleet[0].groups.values_list("name", flat=True)) == ["renamed"]  # renaming keeps devices
    else:
        assert created.status_code == edited.status_code == deleted.status_code == 403
        assert state(product) == before


def test_a_custom_color_comes_from_the_picker(product):
    client = as_role(product, Role.OWNER)
    client.post(groups_url(product, "new/"), {"name": "a", "color": "custom", "custom_color": "#ABCDEF"})
    assert DeviceGroup.objects.get().color == "#abcdef"


def test_a_refused_name_reopens_the_dialog_with_the_rule(product):
    response = as_role(product, Role.OWNER).post(groups_url(product, "new/"), {"name": "North Field"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "data-open-on-load" in html
    assert (
        "Group names use lowercase letters, digits, - and _ (at most 64); &#x27;North Field&#x27; has capitals"
        in html
    )
    assert 'value="North Field"' in html
    assert not DeviceGroup.objects.exists()


def test_renaming_onto_another_group_is_refused_in_its_dialog(product):
    groups.group_create(actor=product.owner, product=product, name="a")
    b = groups.group_create(actor=product.owner, product=product, name="b")
    html = as_role(product, Role.OWNER).post(groups_url(product, "b/edit/"), {"name": "a"}).content.decode()
    assert f'id="group-edit-{b.pk}" aria-labelledby' in html
    assert re.search(rf'<dialog[^>]*id="group-edit-{b.pk}"[^>]*data-open-on-load', html)
    assert "This product already has a group named &#x27;a&#x27;." in html


def test_deleting_a_group_in_use_says_how_many_devices_left_it(product, fleet):
    groups.group_create(actor=product.owner, product=product, name="busy")
    add(product, fleet, "busy")
    response = as_role(product, Role.OWNER).post(groups_url(product, "busy/delete/"), follow=True)
    assert "Deleted the group busy. 3 devices left it." in response.content.decode()
    assert not Device.groups.through.objects.exists()
    assert AuditEntry.objects.filter(action="product.group_delete", via="console").count() == 1


def test_unknown_groups_are_404(product):
    client = as_role(product, Role.OWNER)
    assert client.post(groups_url(product, "nope/edit/"), {"name": "x"}).status_code == 404
    assert client.post(groups_url(product, "nope/delete/")).status_code == 404


def test_the_groups_page_takes_a_constant_number_of_queries(product, django_assert_max_num_queries):
    devices = provision(10, product=product)
    for name in ("a", "b", "c", "d"):
        groups.group_create(actor=product.owner, product=product, name=name)
        add(product, devices, name)
    client = as_role(product, Role.OWNER)
    # The session's user, the product and role, the groups with their counts.
    with django_assert_max_num_queries(4):
        client.get(groups_url(product))


# --- groups on the Devices page ---------------------------------------------------------------------------------
def test_rows_show_their_group_chips_and_the_filter_lists_the_groups(product, fleet):
    groups.group_create(actor=product.owner, product=product, name="north", color="#16a34a")
    add(product, fleet[:1], "north")
    html = as_role(product, Role.VIEWER).get(devices_url(product)).content.decode()
    assert '<option value="north">north</option>' in html
    assert html.count('class="group-chip"') == 1
    assert '<span class="group-chip-name">north</span>' in html
    assert "data-bulk-device" not in html  # viewers change nothing


def test_the_devices_page_filters_by_group(product, fleet):
    groups.group_create(actor=product.owner, product=product, name="north")
    add(product, fleet[:2], "north")
    client = as_role(product, Role.OWNER)
    response = client.get(devices_url(product), {"group": "north"})
    assert sorted(row_ids(response)) == sorted(d.id for d in fleet[:2])
    assert "2 devices in north" in response.content.decode()
    unknown = client.get(devices_url(product), {"group": "nope"}).content.decode()
    assert "No devices in nope" in unknown
    assert "This product has no group named “nope”." in unknown


@pytest.mark.parametrize("role", list(Role))
def test_the_bulk_bar_offers_what_the_role_allows(product, fleet, role):
    groups.group_create(actor=product.owner, product=product, name="north")
    html = as_role(product, role).get(devices_url(product)).content.decode()
    assert ("data-bulk-device" in html) is (role in BUILDERS or role in OPERATORS)
    assert ('data-open-dialog="bulk-add-dialog"' in html) is (role in BUILDERS)
    assert ('value="development"' in html) is (role in OPERATORS)


@pytest.mark.parametrize("role", list(Role))
def test_who_adds_devices_to_groups_in_bulk(product, fleet, role):
    groups.group_create(actor=product.owner, product=product, name="north")
    before = state(product)
    response = as_role(product, role).post(
        devices_url(product, "bulk/"),
        {"action": "add_group", "add_group": "north", "devices": [fleet[0].id, fleet[1].id]},
        follow=True,
    )
    if role in BUILDERS:
        assert "Added 2 devices to north." in response.content.decode()
        assert sorted(DeviceGroup.objects.get().devices.values_list("id", flat=True)) == sorted(
            d.id for d in fleet[:2]
        )
    else:
        assert response.status_code == 403
        assert state(product) == before


def test_bulk_add_creates_a_new_group_and_remove_takes_devices_out(product, fleet):
    client = as_role(product, Role.OWNER)
    ids = [d.id for d in fleet]
    client.post(devices_url(product, "bulk/"), {"action": "add_group", "add_group": "fresh", "devices": ids})
    assert DeviceGroup.objects.get().devices.count() == 3
    response = client.post(
        devices_url(product, "bulk/"),
        {
            "action": "remove_group",
            "remove_group": "fresh",
            "devices": ids[:2],
            "next": devices_url(product) + "?group=fresh",
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == devices_url(product) + "?group=fresh"
    assert "Removed 2 devices from fresh." in response.content.decode()
    assert list(DeviceGroup.objects.get().devices.values_list("id", flat=True)) == [ids[2]]


@pytest.mark.parametrize("role", list(Role))
def test_who_marks_development_devices_in_bulk(product, fleet, role):
    response = as_role(product, role).post(
        devices_url(product, "bulk/"), {"action": "development", "devices": [fleet[0].id]}, follow=True
    )
    fleet[0].refresh_from_db()
    if role in OPERATORS:
        assert "Marked 1 device as development devices." in response.content.decode()
        assert fleet[0].development is True
        html = as_role(product, Role.OWNER).get(devices_url(product)).content.decode()
        assert html.count(">Development</span>") == 1
    else:
        assert response.status_code == 403
        assert fleet[0].development is False


def test_a_bulk_change_with_a_device_outside_the_product_changes_nothing(product, fleet):
    outside = provision(1)[0]
    before = state(product)
    response = as_role(product, Role.OWNER).post(
        devices_url(product, "bulk/"),
        {"action": "add_group", "add_group": "north", "devices": [fleet[0].id, outside.id]},
        follow=True,
    )
    assert (
        f"This device is not in this product: {outside.id}. Nothing was changed." in response.content.decode()
    )
    assert state(product) == before


def test_a_bulk_change_refuses_a_bad_group_name(product, fleet):
    response = as_role(product, Role.OWNER).post(
        devices_url(product, "bulk/"),
        {"action": "add_group", "add_group": "Bad Name", "devices": [fleet[0].id]},
        follow=True,
    )
    assert "&#x27;Bad Name&#x27; has capitals and a space." in response.content.decode()
    assert not DeviceGroup.objects.exists()
