"""A product's device groups: the services that create, edit and delete them and put devices in
them, and the API (/v1/products/:p/groups, PUT /v1/products/:p/devices/:id with groups, the batch
PUT /v1/products/:p/devices, and the list's ``groups`` filter), with who may do each."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from console.errors import ApplicationError, Conflict, NotFound
from console.models import AuditEntry
from console.permissions import PERMISSIONS, Role
from devices import groups as device_groups
from devices.models import Device
from products import groups
from products.models import DEFAULT_GROUP_COLOR, DeviceGroup
from products.services import product_create
from tests.devices.test_product_devices_api import client_for, member, provision

pytestmark = pytest.mark.django_db

NAME_RULE = "Group names use lowercase letters, digits, - and _ (at most 64)"
MANAGERS = PERMISSIONS["group.manage"]
OPERATORS = PERMISSIONS["device.update"]


@pytest.fixture
def product(user):
    return product_create(user=user, name="Greenhouse", platform_id=13)


@pytest.fixture
def fleet(product):
    return provision(4, product=product)


def api(product, role: Role = Role.OWNER):
    if role == Role.OWNER:
        return client_for(product.owner)
    return client_for(member(product, role))


def names_of(device: Device) -> list[str]:
    return sorted(device.groups.values_list("name", flat=True))


def group_state(product) -> tuple:
    return (
        sorted(DeviceGroup.objects.filter(product=product).values_list("name", "description", "color")),
        sorted(Device.groups.through.objects.values_list("device_id", "devicegroup__name")),
        sorted(Device.objects.filter(product=product).values_list("id", "development")),
    )


# --- validation -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("North Field", "'North Field' has capitals and a space."),
        ("north field two", "'north field two' has spaces."),
        ("north.field", "'north.field' has the character '.'."),
        ("a/b@c", "'a/b@c' has the characters '/' and '@'."),
        ("x" * 65, f"'{'x' * 65}' has 65 characters."),
        ("Ünïcode", "'Ünïcode' has capitals and the character 'ï'."),
    ],
)
def test_names_that_break_the_rule_are_refused_with_the_rule_and_what_breaks_it(product, name, problem):
    with pytest.raises(ApplicationError) as refused:
        groups.group_create(actor=product.owner, product=product, name=name)
    assert refused.value.message == f"{NAME_RULE}; {problem}"
    assert refused.value.field == "name"
    assert not DeviceGroup.objects.exists()


def test_the_name_rule_allows_lowercase_digits_dashes_and_underscores(product):
    for name in ("north-field", "site_2", "x" * 64, "0", "-_-"):
        groups.group_create(actor=product.owner, product=product, name=f"  {name} ")
    assert sorted(DeviceGroup.objects.values_list("name", flat=True)) == sorted(
        ["north-field", "site_2", "x" * 64, "0", "-_-"]
    )


def test_an_empty_name_is_refused(product):
    with pytest.raises(ApplicationError, match=re.escape(f"A group needs a name. {NAME_RULE}.")):
        groups.group_create(actor=product.owner, product=product, name="  ")


@pytest.mark.parametrize(
    ("given", "stored"), [("#ABCDEF", "#abcdef"), ("12ab34", "#12ab34"), ("#f0a", "#ff00aa")]
)
def test_colors_are_stored_as_lowercase_hex(product, given, stored):
    assert groups.group_create(actor=product.owner, product=product, name="g", color=given).color == stored


@pytest.mark.parametrize("color", ["red", "#12345", "#gggggg", 12])
def test_other_colors_are_refused(product, color):
    with pytest.raises(ApplicationError, match="Colors are hex, like #0d9488") as refused:
        groups.group_create(actor=product.owner, product=product, name="g", color=color)
    assert refused.value.field == "color"


def test_a_group_gets_the_default_color_and_no_description(product):
    group = groups.group_create(actor=product.owner, product=product, name="g")
    assert (group.color, group.description) == (DEFAULT_GROUP_COLOR, "")
    assert AuditEntry.objects.filter(action="product.group_create", target_label="g").count() == 1


def test_long_descriptions_are_refused(product):
    with pytest.raises(ApplicationError, match="Descriptions are at most 500 characters; this one has 501."):
        groups.group_create(actor=product.owner, product=product, name="g", description="d" * 501)


def test_names_are_unique_per_product(product, user, other_user):
    groups.group_create(actor=user, product=product, name="north")
    with pytest.raises(Conflict, match="This product already has a group named 'north'."):
        groups.group_create(actor=user, product=product, name="north")
    other = product_create(user=other_user, name="Other", platform_id=13)
    groups.group_create(actor=other_user, product=other, name="north")  # another product's is fine
    assert DeviceGroup.objects.filter(name="north").count() == 2


# --- services ------------------------------------------------------------------------------------------
def test_renaming_keeps_the_devices(product, fleet):
    group = groups.group_create(actor=product.owner, product=product, name="old")
    device_groups.devices_groups_add(
        actor=product.owner, product=product, device_ids=[d.id for d in fleet[:2]], names=["old"]
    )
    edited = groups.group_edit(actor=product.owner, product=product, group=group, name="new", color="#123456")
    assert (edited.name, edited.color, edited.device_count) == ("new", "#123456", 2)
    assert names_of(fleet[0]) == ["new"]
    entry = AuditEntry.objects.get(action="product.group_edit")
    assert entry.metadata["renamed_from"] == "old"


def test_renaming_onto_another_group_is_refused(product):
    groups.group_create(actor=product.owner, product=product, name="a")
    b = groups.group_create(actor=product.owner, product=product, name="b")
    with pytest.raises(Conflict):
        groups.group_edit(actor=product.owner, product=product, group=b, name="a")
    assert sorted(DeviceGroup.objects.values_list("name", flat=True)) == ["a", "b"]


def test_an_edit_changes_something(product):
    group = groups.group_create(actor=product.owner, product=product, name="a")
    with pytest.raises(ApplicationError, match="Send at least one of name, color and description"):
        groups.group_edit(actor=product.owner, product=product, group=group)


def test_deleting_a_group_in_use_takes_it_off_its_devices(product, fleet):
    group = groups.group_create(actor=product.owner, product=product, name="doomed")
    groups.group_create(actor=product.owner, product=product, name="kept")
    ids = [d.id for d in fleet]
    device_groups.devices_groups_add(
        actor=product.owner, product=product, device_ids=ids, names=["doomed", "kept"]
    )
    assert groups.group_delete(actor=product.owner, product=product, group=group) == 4
    assert [names_of(d) for d in fleet] == [["kept"]] * 4
    assert Device.objects.filter(product=product).count() == 4
    assert AuditEntry.objects.get(action="product.group_delete").metadata["devices"] == 4


def test_the_list_counts_devices_in_one_query(product, fleet):
    for name in ("a", "b", "c"):
        groups.group_create(actor=product.owner, product=product, name=name)
    device_groups.devices_groups_add(
        actor=product.owner, product=product, device_ids=[d.id for d in fleet[:3]], names=["a"]
    )
    device_groups.devices_groups_add(
        actor=product.owner, product=product, device_ids=[fleet[0].id], names=["b"]
    )
    with CaptureQueriesContext(connection) as queries:
        found = [(g.name, g.device_count) for g in groups.group_list(product=product)]
    assert found == [("a", 3), ("b", 1), ("c", 0)]
    assert len(queries) == 1
    assert [g.name for g in groups.group_list(product=product, name="B")] == ["b"]


def test_setting_a_devices_groups_is_absolute_and_creates_unknown_names(product, fleet):
    device = fleet[0]
    groups.group_create(actor=product.owner, product=product, name="old")
    device_groups.device_groups_set(actor=product.owner, product=product, device=device, names=["old"])
    assert device_groups.device_groups_set(
        actor=product.owner, product=product, device=device, names=["new", "other", "new"]
    ) == ["new", "other"]
    assert names_of(device) == ["new", "other"]
    assert DeviceGroup.objects.filter(product=product).count() == 3  # "old" stays, empty
    assert (
        device_groups.device_groups_set(actor=product.owner, product=product, device=device, names=[]) == []
    )
    assert names_of(device) == []


def test_a_bad_name_in_a_set_creates_nothing(product, fleet):
    with pytest.raises(ApplicationError, match=re.escape(NAME_RULE)):
        device_groups.device_groups_set(
            actor=product.owner, product=product, device=fleet[0], names=["ok", "Not OK"]
        )
    assert not DeviceGroup.objects.exists()


def test_batch_add_and_remove(product, fleet):
    ids = [d.id for d in fleet]
    added = device_groups.devices_groups_add(
        actor=product.owner, product=product, device_ids=ids[:3], names=["a"]
    )
    assert added == 3
    # Adding again adds nothing new; upper-case IDs are the same devices.
    assert (
        device_groups.devices_groups_add(
            actor=product.owner, product=product, device_ids=[i.upper() for i in ids], names=["a"]
        )
        == 1
    )
    assert (
        device_groups.devices_groups_remove(
            actor=product.owner, product=product, device_ids=ids[:2], names=["a", "unknown"]
        )
        == 2
    )
    assert [names_of(d) for d in fleet] == [[], [], ["a"], ["a"]]


def test_batches_with_devices_outside_the_product_change_nothing(product, fleet, other_user):
    outside = provision(1)[0]
    other = product_create(user=other_user, name="Other", platform_id=13)
    elsewhere = provision(1, product=other)[0]
    before = group_state(product)
    with pytest.raises(ApplicationError) as refused:
        device_groups.devices_groups_add(
            actor=product.owner,
            product=product,
            device_ids=[fleet[0].id, outside.id, elsewhere.id, "nope"],
            names=["a"],
        )
    assert refused.value.message == (
        f"These 3 devices are not in this product: {outside.id}, {elsewhere.id}, nope. Nothing was changed."
    )
    assert refused.value.extra == {"devices": [outside.id, elsewhere.id, "nope"]}
    assert group_state(product) == before


def test_development_devices(product, fleet):
    ids = [d.id for d in fleet[:2]]
    assert (
        device_groups.devices_development_set(
            actor=product.owner, product=product, device_ids=ids, development=True
        )
        == 2
    )
    assert sorted(Device.objects.filter(development=True).values_list("id", flat=True)) == sorted(ids)
    assert (
        device_groups.devices_development_set(
            actor=product.owner, product=product, device_ids=ids[:1], development=False
        )
        == 1
    )


# --- the groups API ----------------------------------------------------------------------------------
def group_json(name, description="", color=DEFAULT_GROUP_COLOR, count=0) -> dict:
    return {
        "name": name,
        "description": description,
        "color": color,
        "fw_version": None,
        "device_count": count,
    }


@pytest.mark.parametrize("role", list(Role))
def test_every_role_reads_groups(product, fleet, role):
    groups.group_create(actor=product.owner, product=product, name="north", description="N", color="#16a34a")
    groups.group_create(actor=product.owner, product=product, name="south")
    device_groups.devices_groups_add(
        actor=product.owner, product=product, device_ids=[fleet[0].id], names=["north"]
    )
    client = api(product, role)

    response = client.get(f"/v1/products/{product.id}/groups")
    assert response.status_code == 200
    assert response.json() == {"groups": [group_json("north", "N", "#16a34a", 1), group_json("south")]}
    assert client.get(f"/v1/products/{product.slug}/groups?name=sou").json()["groups"] == [
        group_json("south")
    ]
    assert client.get(f"/v1/products/{product.id}/groups/north").json() == {
        "group": group_json("north", "N", "#16a34a", 1)
    }
    missing = client.get(f"/v1/products/{product.id}/groups/nope")
    assert missing.status_code == 404
    assert missing.json()["error"] == "Group 'nope' not found in this product."


@pytest.mark.parametrize("role", list(Role))
def test_who_creates_edits_and_deletes_groups(product, fleet, role):
    client = api(product, role)
    allowed = role in MANAGERS
    groups.group_create(actor=product.owner, product=product, name="existing")
    before = group_state(product)

    created = client.post(
        f"/v1/products/{product.id}/groups",
        {"name": "north", "description": "N", "color": "#16A34A"},
        format="json",
    )
    edited = client.put(f"/v1/products/{product.id}/groups/existing", {"name": "renamed"}, format="json")
    deleted = client.delete(f"/v1/products/{product.id}/groups/north")

    if allowed:
        assert created.status_code == 201
        assert created.json() == {"group": group_json("north", "N", "#16a34a")}
        assert edited.status_code == 200
        assert edited.json() == {"group": group_json("renamed")}
        assert deleted.status_code == 204
        assert sorted(DeviceGroup.objects.values_list("name", flat=True)) == ["renamed"]
    else:
        assert {created.status_code, edited.status_code, deleted.status_code} == {403}
        assert group_state(product) == before


def test_the_api_refuses_bad_groups(product):
    client = api(product)
    response = client.post(f"/v1/products/{product.id}/groups", {"name": "North Field"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == f"{NAME_RULE}; 'North Field' has capitals and a space."
    groups.group_create(actor=product.owner, product=product, name="north")
    assert client.post(f"/v1/products/{product.id}/groups", {"name": "north"}).status_code == 409
    assert client.put(f"/v1/products/{product.id}/groups/north", {}, format="json").status_code == 400
    assert client.put(f"/v1/products/{product.id}/groups/nope", {"color": "#000000"}).status_code == 404
    bad_color = client.put(f"/v1/products/{product.id}/groups/north", {"color": "blue"}, format="json")
    assert bad_color.status_code == 400
    assert DeviceGroup.objects.get().color == DEFAULT_GROUP_COLOR


def test_a_form_post_creates_a_group(product):
    response = api(product).post(
        f"/v1/products/{product.id}/groups", {"name": "site-1", "description": "Mill"}
    )
    assert response.status_code == 201
    assert response.json()["group"]["name"] == "site-1"


def test_deleting_a_group_in_use_through_the_api(product, fleet):
    groups.group_create(actor=product.owner, product=product, name="busy")
    device_groups.devices_groups_add(
        actor=product.owner, product=product, device_ids=[d.id for d in fleet], names=["busy"]
    )
    assert api(product).delete(f"/v1/products/{product.id}/groups/busy").status_code == 204
    assert not Device.groups.through.objects.exists()


def test_another_teams_groups_are_not_found(product, other_user):
    groups.group_create(actor=product.owner, product=product, name="north")
    client = client_for(other_user)
    for method, path in (
        ("get", "groups"),
        ("get", "groups/north"),
        ("post", "groups"),
        ("put", "groups/north"),
        ("delete", "groups/north"),
    ):
        response = getattr(client, method)(f"/v1/products/{product.id}/{path}", {"name": "x"}, format="json")
        assert response.status_code == 404, (method, path)
    assert list(DeviceGroup.objects.values_list("name", flat=True)) == ["north"]


# --- a device's groups, and batches -----------------------------------------------------------------------
@pytest.mark.parametrize("role", list(Role))
def test_who_sets_a_devices_groups(product, fleet, role):
    device = fleet[0]
    response = api(product, role).put(
        f"/v1/products/{product.id}/devices/{device.id}", {"groups": ["b", "a"]}, format="json"
    )
    if role in MANAGERS:
        assert response.status_code == 200
        body = response.json()
        assert (body["id"], body["groups"]) == (device.id, ["a", "b"])
        assert "updated_at" in body
        assert names_of(device) == ["a", "b"]
    else:
        assert response.status_code == 403
        assert not DeviceGroup.objects.exists()


def test_form_groups_set_a_devices_groups(product, fleet):
    client = api(product)
    url = f"/v1/products/{product.id}/devices/{fleet[0].id}"
    assert client.put(url, "groups[]=a&groups[]=b", content_type="application/x-www-form-urlencoded").json()[
        "groups"
    ] == ["a", "b"]
    assert (
        client.put(url, "groups[]=", content_type="application/x-www-form-urlencoded").json()["groups"] == []
    )


def test_a_device_put_refuses_bad_names_and_changes_nothing(product, fleet):
    before = group_state(product)
    response = api(product).put(
        f"/v1/products/{product.id}/devices/{fleet[0].id}",
        {"groups": ["ok", "Not OK"], "development": True},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"] == f"{NAME_RULE}; 'Not OK' has capitals and a space."
    assert group_state(product) == before


@pytest.mark.parametrize("role", list(Role))
def test_who_marks_a_development_device_and_writes_notes(product, fleet, role):
    device = fleet[0]
    response = api(product, role).put(
        f"/v1/products/{product.id}/devices/{device.id}",
        {"development": True, "notes": "bench"},
        format="json",
    )
    device.refresh_from_db()
    if role in OPERATORS:
        assert response.status_code == 200
        assert response.json()["development"] is True
        assert (device.development, device.notes) == (True, "bench")
    else:
        assert response.status_code == 403
        assert (device.development, device.notes) == (False, "")


def test_a_device_put_with_nothing_to_change(product, fleet):
    response = api(product).put(f"/v1/products/{product.id}/devices/{fleet[0].id}", {}, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == (
        "Nothing to change: send one of groups, development, notes, desired_firmware_version, flash."
    )


@pytest.mark.parametrize("role", list(Role))
def test_who_runs_group_batches(product, fleet, role):
    client = api(product, role)
    ids = [d.id for d in fleet]
    url = f"/v1/products/{product.id}/devices"
    added = client.put(
        url, {"action": "groups", "devices": ids[:3], "metadata": {"add": ["a", "b"]}}, format="json"
    )
    if role not in MANAGERS:
        assert added.status_code == 403
        assert not DeviceGroup.objects.exists()
        return
    assert added.status_code == 200
    assert added.json() == {"ok": True}
    removed = client.put(
        url, {"action": "groups", "devices": ids[:1], "metadata": {"remove": ["a"]}}, format="json"
    )
    assert removed.json() == {"ok": True}
    assert [names_of(d) for d in fleet] == [["b"], ["a", "b"], ["a", "b"], []]


@pytest.mark.parametrize("role", list(Role))
def test_who_runs_development_batches(product, fleet, role):
    ids = [d.id for d in fleet[:2]]
    response = api(product, role).put(
        f"/v1/products/{product.id}/devices",
        {"action": "development", "devices": ids, "metadata": {"development": True}},
        format="json",
    )
    marked = set(Device.objects.filter(development=True).values_list("id", flat=True))
    if role in OPERATORS:
        assert response.json() == {"ok": True}
        assert marked == set(ids)
    else:
        assert response.status_code == 403
        assert marked == set()


def test_a_batch_with_devices_outside_the_product_lists_them(product, fleet):
    outside = provision(1)[0]
    before = group_state(product)
    response = api(product).put(
        f"/v1/products/{product.id}/devices",
        {"action": "groups", "devices": [fleet[0].id, outside.id], "metadata": {"add": ["a"]}},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == f"This device is not in this product: {outside.id}. Nothing was changed."
    assert body["devices"] == [outside.id]
    assert group_state(product) == before


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"action": "rename", "devices": []}, "action is one of groups, development."),
        (
            {"action": "groups", "devices": ["x"], "metadata": {}},
            "metadata names the groups to add or remove.",
        ),
        ({"action": "groups", "devices": ["x"]}, "metadata is an object with the change to make."),
        (
            {"action": "groups", "devices": "x", "metadata": {"add": ["a"]}},
            "devices is a list of device IDs.",
        ),
        (
            {"action": "groups", "devices": [], "metadata": {"add": ["a"]}},
            "Send the IDs of the devices to change in devices.",
        ),
        (
            {"action": "development", "devices": ["x"], "metadata": {"development": "yes"}},
            "development is true or false.",
        ),
    ],
)
def test_bad_batches(product, fleet, payload, message):
    response = api(product).put(f"/v1/products/{product.id}/devices", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == message


# --- the list's groups, and its groups filter ----------------------------------------------------------------
def test_device_lists_and_details_show_their_groups(product, fleet):
    device_groups.devices_groups_add(
        actor=product.owner, product=product, device_ids=[fleet[0].id], names=["b", "a"]
    )
    client = api(product)
    listed = {
        d["id"]: d["groups"] for d in client.get(f"/v1/products/{product.id}/devices").json()["devices"]
    }
    assert listed[fleet[0].id] == ["a", "b"]
    assert listed[fleet[1].id] == []
    detail = client.get(f"/v1/products/{product.id}/devices/{fleet[0].id}").json()
    assert detail["groups"] == ["a", "b"]


def test_the_groups_filter_lists_devices_in_any_of_the_groups(product, fleet, other_user):
    device_groups.devices_groups_add(
        actor=product.owner, product=product, device_ids=[fleet[0].id, fleet[1].id], names=["a"]
    )
    device_groups.devices_groups_add(
        actor=product.owner, product=product, device_ids=[fleet[1].id, fleet[2].id], names=["b"]
    )
    # Another product's group of the same name matches none of these devices.
    other = product_create(user=other_user, name="Other", platform_id=13)
    theirs = provision(1, product=other)[0]
    device_groups.devices_groups_add(actor=other_user, product=other, device_ids=[theirs.id], names=["a"])
    client = api(product)

    def listed(query: str) -> list[str]:
        body = client.get(f"/v1/products/{product.id}/devices?{query}").json()
        return sorted(d["id"] for d in body["devices"])

    assert listed("groups=a") == sorted([fleet[0].id, fleet[1].id])
    assert listed("groups=a,b") == sorted([fleet[0].id, fleet[1].id, fleet[2].id])  # fleet[1] once
    assert client.get(f"/v1/products/{product.id}/devices?groups=a,b").json()["meta"]["total"] == 3
    assert listed("groups=unknown") == []
    assert listed("groups=") == sorted(d.id for d in fleet)


def test_the_list_reads_groups_without_a_query_per_device(product):
    def queries_for_list() -> int:
        client = api(product)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/v1/products/{product.id}/devices?groups=a,b").status_code == 200
        return len(queries)

    devices = provision(2, product=product)
    device_groups.devices_groups_add(
        actor=product.owner, product=product, device_ids=[d.id for d in devices], names=["a", "b"]
    )
    few = queries_for_list()
    more = provision(20, product=product)
    device_groups.devices_groups_add(
        actor=product.owner, product=product, device_ids=[d.id for d in more], names=["a", "b", "c"]
    )
    assert queries_for_list() == few


def test_a_large_batch_takes_a_constant_number_of_queries(product):
    devices = provision(60, product=product)
    ids = [d.id for d in devices]
    with CaptureQueriesContext(connection) as small:
        device_groups.devices_groups_add(
            actor=product.owner, product=product, device_ids=ids[:3], names=["a"]
        )
    with CaptureQueriesContext(connection) as large:
        device_groups.devices_groups_add(actor=product.owner, product=product, device_ids=ids, names=["a"])
    assert len(large) <= len(small)
    assert Device.groups.through.objects.count() == 60


def test_unknown_groups_name_a_device_not_found(product):
    with pytest.raises(NotFound):
        groups.group_get(product=product, name="nope")


def test_a_device_leaving_the_product_leaves_its_groups(user):
    from console.platforms import PLATFORMS
    from devices.imports import device_remove_from_product
    from devices.models import Device
    from devices.services import devices_provision
    from products.groups import group_create
    from products.services import product_create

    product = product_create(user=user, name="Leavers", platform_id=13)
    [provisioned] = devices_provision(platform=PLATFORMS[13], count=1, product=product)
    group = group_create(actor=user, product=product, name="north")
    device = Device.objects.get(pk=provisioned.device.pk)
    device.groups.add(group)
    device_remove_from_product(actor=user, product=product, device=device)
    assert not device.groups.exists()
