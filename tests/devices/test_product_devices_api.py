"""/v1/products/:product/devices: list, import (id, ids or a file), get and remove (and deny) a
product's devices, with who may do each."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from console.accounts.models import User
from console.accounts.services import access_token_create
from console.api.errors import TOKEN_NOT_FOUND
from console.models import AuditEntry
from console.permissions import Role
from console.platforms import PLATFORMS
from devices.models import Device, ProductDenial
from devices.services import devices_provision
from products.models import Membership
from products.services import product_create
from tests.conftest import PASSWORD
from tests.devices.test_api import DETAIL_FIELDS, SUMMARY_FIELDS

pytestmark = pytest.mark.django_db

BORON = PLATFORMS[13]
ARGON = PLATFORMS[12]
LIST_DEVICE_FIELDS = SUMMARY_FIELDS | {"quarantined", "denied", "groups"}
IMPORT_FIELDS = {
    "updated",
    "updatedDeviceIds",
    "existingDeviceIds",
    "nonmemberDeviceIds",
    "invalidDeviceIds",
    "protectedDeviceIds",
    "otherPlatformDeviceIds",
}
META_FIELDS = {"page", "per_page", "total_pages", "total"}


def client_for(someone: User) -> APIClient:
    client = APIClient()
    token = access_token_create(user=someone, expires_in_seconds=3600, client_id="particle").token
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def member(product, role: Role) -> User:
    someone = User.objects.create_user(email=f"{role}@example.com", password=PASSWORD)
    Membership.objects.create(product=product, user=someone, role=role)
    return someone


def provision(count: int = 1, *, platform=BORON, owner=None, product=None) -> list[Device]:
    return [p.device for p in devices_provision(platform=platform, count=count, owner=owner, product=product)]


def one(**kwargs) -> Device:
    return provision(1, **kwargs)[0]


def state() -> tuple:
    return (
        sorted(Device.objects.values_list("id", "product_id", "quarantined", "owner_id", "name")),
        sorted(ProductDenial.objects.values_list("device_id", "product_id")),
        AuditEntry.objects.count(),
    )


def text_file(content: str | bytes) -> SimpleUploadedFile:
    """What particle-cli uploads: the field ``file``, with the file name ``file``."""
    raw = content.encode() if isinstance(content, str) else content
    return SimpleUploadedFile("file", raw, content_type="application/octet-stream")


def error(message: str, **extra) -> dict:
    return {"ok": False, "error": message, "error_description": message, **extra}


@pytest.fixture
def product(user):
    return product_create(user=user, name="Greenhouse", platform_id=BORON.id)


@pytest.fixture
def inside(product) -> Device:
    device = one(product=product)
    Device.objects.filter(pk=device.pk).update(name="fern")
    device.refresh_from_db()
    return device


@pytest.fixture
def candidate() -> Device:
    return one()


def url(product, device=None) -> str:
    base = f"/v1/products/{product if isinstance(product, str | int) else product.id}/devices"
    return base if device is None else f"{base}/{device if isinstance(device, str) else device.id}"


# --- Who may do what --------------------------------------------------------------------------------------
ROUTES = {
    "list": ("get", None, "device.read"),
    "import": ("post", "import", "device.import"),
    "get": ("get", "device", "device.read"),
    "remove": ("delete", "device", "device.remove"),
}


def call(client, route: str, product, inside: Device, candidate: Device):
    method, target, _ = ROUTES[route]
    if target == "import":
        return client.post(url(product), {"id": candidate.id}, format="json")
    if target == "device":
        data = {"deny": True} if method == "delete" else None
        return getattr(client, method)(url(product, inside), data, format="json")
    return client.get(url(product))


@pytest.mark.parametrize("route", list(ROUTES))
def test_anonymous_requests_are_refused(api_client, product, inside, candidate, route):
    before = state()
    response = call(api_client, route, product, inside, candidate)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "error_description": TOKEN_NOT_FOUND}
    assert state() == before


@pytest.mark.parametrize("route", list(ROUTES))
def test_someone_off_the_team_gets_the_404_of_a_product_that_does_not_exist(
    other_user, product, inside, candidate, route
):
    stranger = client_for(other_user)
    before = state()
    for key in (product.id, product.slug):
        response = call(stranger, route, key, inside, candidate)
        assert response.status_code == 404
        assert response.json() == error(f"Product {str(key)!r} not found.")
    missing = call(stranger, route, 99999, inside, candidate)
    assert (missing.status_code, missing.json()) == (404, error("Product '99999' not found."))
    assert state() == before


ALLOWED = {
    "device.read": set(Role),
    "device.import": {Role.OWNER, Role.ADMINISTRATOR},
    "device.remove": {Role.OWNER, Role.ADMINISTRATOR},
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("route", list(ROUTES))
def test_each_role_may_do_what_the_permission_table_says(user, product, inside, candidate, route, role):
    client = client_for(user if role == Role.OWNER else member(product, role))
    action = ROUTES[route][2]
    before = state()
    response = call(client, route, product, inside, candidate)
    if role in ALLOWED[action]:
        assert response.status_code == {"list": 200, "import": 200, "get": 200, "remove": 204}[route]
        if route == "import":
            assert Device.objects.get(pk=candidate.pk).product_id == product.id
        if route == "remove":
            assert Device.objects.get(pk=inside.pk).product_id is None
            assert ProductDenial.objects.filter(device=inside, product=product).exists()
    else:
        assert response.status_code == 403
        assert response.json() == error(f"Your role does not allow {action.replace('.', ' ')}.")
        assert state() == before


def test_a_viewer_sees_the_devices_but_cannot_import_or_remove(product, inside, candidate):
    viewer = client_for(member(product, Role.VIEWER))
    assert [d["id"] for d in viewer.get(url(product)).json()["devices"]] == [inside.id]
    assert viewer.get(url(product, inside)).json()["id"] == inside.id
    before = state()
    refused = viewer.post(url(product), {"file": text_file(candidate.id)}, format="multipart")
    assert (refused.status_code, refused.json()["error"]) == (403, "Your role does not allow device import.")
    refused = viewer.delete(url(product, inside))
    assert (refused.status_code, refused.json()["error"]) == (403, "Your role does not allow device remove.")
    assert state() == before


# --- POST: importing ---------------------------------------------------------------------------------------
def test_import_one_id_as_json_answers_in_particles_shape(auth_client, product, candidate):
    response = auth_client.post(url(product), {"id": f" {candidate.id.upper()} "}, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "updated": 1,
        "updatedDeviceIds": [candidate.id],
        "existingDeviceIds": [],
        "nonmemberDeviceIds": [],
        "invalidDeviceIds": [],
        "protectedDeviceIds": [],
        "otherPlatformDeviceIds": [],
    }
    assert Device.objects.get(pk=candidate.pk).product_id == product.id
    entry = AuditEntry.objects.get(action="product.devices_import")
    assert (entry.via, entry.target_id, entry.metadata["added"]) == ("api", str(product.id), 1)


def test_import_one_id_as_a_form_field_and_by_slug(auth_client, product, candidate):
    response = auth_client.post(url(product.slug), {"id": candidate.id})  # multipart
    assert response.status_code == 200
    assert response.json()["updatedDeviceIds"] == [candidate.id]
    response = auth_client.post(
        url(product), f"id={candidate.id}", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert response.json()["existingDeviceIds"] == [candidate.id]


def test_import_a_json_list_of_ids_into_every_category(auth_client, user, other_user, product, inside):
    unowned, mine = one(), one(owner=user)
    theirs, wifi, unknown = one(owner=other_user), one(platform=ARGON), secrets.token_hex(12)
    ids = [unowned.id, mine.id, inside.id, theirs.id, wifi.id, unknown, "typo", unowned.id.upper()]
    response = auth_client.post(url(product), {"ids": ids}, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "updated": 2,
        "updatedDeviceIds": [unowned.id, mine.id],
        "existingDeviceIds": [inside.id],
        "nonmemberDeviceIds": [theirs.id],
        "invalidDeviceIds": ["typo", wifi.id, unknown],
        "protectedDeviceIds": [],
        "otherPlatformDeviceIds": [wifi.id],
    }


def test_import_a_file_as_particle_cli_sends_it(auth_client, product, inside):
    devices = provision(3)
    content = "\ufeff" + "\r\n".join([devices[0].id.upper(), "", *(d.id for d in devices), inside.id, "oops"])
    response = auth_client.post(url(product), {"file": text_file(content)}, format="multipart")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == IMPORT_FIELDS
    assert body["updated"] == 3
    assert body["updatedDeviceIds"] == [d.id for d in devices]
    assert (body["existingDeviceIds"], body["invalidDeviceIds"]) == ([inside.id], ["oops"])
    assert set(Device.objects.filter(product=product).values_list("id", flat=True)) == {
        inside.id,
        *(d.id for d in devices),
    }


def test_import_by_file_takes_precedence_over_fields(auth_client, product):
    by_file, by_field = one(), one()
    response = auth_client.post(
        url(product), {"file": text_file(by_file.id), "id": by_field.id}, format="multipart"
    )
    assert response.json()["updatedDeviceIds"] == [by_file.id]
    assert Device.objects.get(pk=by_field.pk).product_id is None


@pytest.mark.parametrize(
    ("body", "fmt", "status", "expected"),
    [
        (
            {},
            "json",
            400,
            error("Send a device id, a list of ids, or a file with one device ID per line.", field="id"),
        ),
        (
            {"id": "   "},
            "json",
            400,
            error("Send a device id, a list of ids, or a file with one device ID per line.", field="id"),
        ),
        (
            {"id": 12},
            "json",
            400,
            error("Send a device id, a list of ids, or a file with one device ID per line.", field="id"),
        ),
        (
            {"ids": "0123456789abcdef01234567"},
            "json",
            400,
            error("ids is a list of device IDs.", field="ids"),
        ),
        (
            {"ids": ["0123456789abcdef01234567", 7]},
            "json",
            400,
            error("ids is a list of device IDs.", field="ids"),
        ),
        (
            {"file": b""},
            "multipart",
            400,
            error("The file holds no device IDs: put one device ID on each line.", field="file"),
        ),
        (
            {"file": b"\x00\x01\x02"},
            "multipart",
            400,
            error("That is not a text file. Upload a .txt file with one device ID per line.", field="file"),
        ),
        (
            {"file": b"caf\xe9\n"},
            "multipart",
            400,
            error(
                "That is not a UTF-8 text file. Upload a .txt file with one device ID per line.", field="file"
            ),
        ),
    ],
    ids=[
        "nothing",
        "blank-id",
        "numeric-id",
        "ids-not-a-list",
        "ids-not-strings",
        "empty-file",
        "binary",
        "latin-1",
    ],
)
def test_imports_that_cannot_be_read_are_refused_and_change_nothing(
    auth_client, product, candidate, body, fmt, status, expected
):
    if "file" in body:
        body = {"file": text_file(body["file"])}
    before = state()
    response = auth_client.post(url(product), body, format=fmt)
    assert response.status_code == status
    if expected is not None:
        assert response.json() == expected
    assert state() == before


def test_a_file_over_the_byte_limit_is_refused_before_it_is_read(auth_client, settings, product, candidate):
    settings.QUANTA_IMPORT_MAX_BYTES = 24
    before = state()
    response = auth_client.post(url(product), {"file": text_file(candidate.id + "\n")}, format="multipart")
    assert response.status_code == 400
    assert response.json()["field"] == "file"
    assert response.json()["error"].startswith("The file is 25 bytes; imports take files of at most 24 bytes")
    assert state() == before
    assert (
        auth_client.post(url(product), {"file": text_file(candidate.id)}, format="multipart").json()[
            "updated"
        ]
        == 1
    )


@pytest.mark.parametrize("form", ["ids", "file"])
def test_too_many_ids_are_refused_and_change_nothing(auth_client, settings, product, form):
    settings.QUANTA_IMPORT_MAX_IDS = 2
    ids = [d.id for d in provision(3)]
    before = state()
    if form == "ids":
        response = auth_client.post(url(product), {"ids": ids}, format="json")
    else:
        response = auth_client.post(url(product), {"file": text_file("\n".join(ids))}, format="multipart")
    assert response.status_code == 400
    assert response.json() == error(
        "An import takes at most 2 device IDs; this one has 3. Split it into several imports.", field="file"
    )
    assert state() == before


def test_a_json_body_over_djangos_limit_is_refused_with_413_and_a_way_forward(auth_client, settings, product):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    ids = [d.id for d in provision(40)]  # about 1,100 bytes of JSON
    before = state()
    response = auth_client.post(url(product), {"ids": ids}, format="json")
    assert response.status_code == 413
    assert response.json() == error(
        "The request is over 1,000 bytes. Send that many device IDs as a file, one per line.", field="ids"
    )
    assert state() == before
    # The same ids as a file: uploaded files are not held to that limit.
    response = auth_client.post(url(product), {"file": text_file("\n".join(ids))}, format="multipart")
    assert response.json()["updated"] == 40


def test_a_file_of_as_many_ids_as_allowed_is_imported(auth_client, settings, product):
    devices = provision(5)
    unknown = [secrets.token_hex(12) for _ in range(settings.QUANTA_IMPORT_MAX_IDS - 5)]
    content = "\r\n".join([*unknown, *(d.id for d in devices)]) + "\r\n"
    assert len(content) <= settings.QUANTA_IMPORT_MAX_BYTES
    response = auth_client.post(url(product), {"file": text_file(content)}, format="multipart")
    assert response.status_code == 200
    body = response.json()
    assert body["updatedDeviceIds"] == [d.id for d in devices]
    assert len(body["invalidDeviceIds"]) == len(unknown)


# --- GET: the list -----------------------------------------------------------------------------------------
def test_the_list_has_particles_shape_and_only_this_products_devices(
    auth_client, user, other_user, product, inside
):
    elsewhere = product_create(user=other_user, name="Orchard", platform_id=BORON.id)
    one(product=elsewhere)
    one(owner=user)
    claimed = one(owner=user, product=product)
    Device.objects.filter(pk=claimed.pk).update(name="basil", quarantined=True, online=True)

    response = auth_client.get(url(product))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"devices", "customers", "meta"}
    assert body["customers"] == []
    assert body["meta"] == {"page": 1, "per_page": 25, "total_pages": 1, "total": 2}
    assert [d["name"] for d in body["devices"]] == ["basil", "fern"]
    for entry in body["devices"]:
        assert set(entry) == LIST_DEVICE_FIELDS
        assert (entry["product_id"], entry["platform_id"], entry["denied"], entry["groups"]) == (
            product.id,
            BORON.id,
            False,
            [],
        )
    basil, fern = body["devices"]
    assert (basil["quarantined"], basil["online"], basil["owner"]) == (True, True, user.email)
    assert (fern["quarantined"], fern["online"], fern["owner"]) == (False, False, None)


@pytest.fixture
def fleet(product) -> dict[str, Device]:
    """Five devices with names, firmware versions and last connections to filter and sort by."""
    devices = provision(5, product=product)
    now = timezone.now()
    details = {
        "alder": ("00000000000000000000000a", 3, now),
        "birch": ("00000000000000000000000b", None, None),
        "cedar": ("0000000000000000000000c0", 1, now - timedelta(days=1)),
        "alpine": ("00000000000000000000000d", 2, now - timedelta(days=2)),
        "elm": ("0000000000000000000000e0", None, now - timedelta(days=3)),
    }
    fleet = {}
    for device, (name, (new_id, version, heard)) in zip(devices, details.items(), strict=True):
        Device.objects.filter(pk=device.pk).update(
            id=new_id, name=name, firmware_version=version, last_heard=heard
        )
        fleet[name] = Device.objects.get(pk=new_id)
    Device.objects.filter(name="elm").update(quarantined=True)
    return fleet


def names(client, product, query: str = "") -> list[str]:
    response = client.get(f"{url(product)}?{query}")
    assert response.status_code == 200, response.content
    return [d["name"] for d in response.json()["devices"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["alder", "alpine", "birch", "cedar", "elm"]),
        ("deviceName=AL", ["alder", "alpine"]),  # contains, whatever the case
        ("deviceName=ed", ["cedar"]),
        ("deviceId=00000000000000000000000", ["alder", "alpine", "birch"]),  # starts with
        ("deviceId=0000000000000000000000C", ["cedar"]),
        ("quarantined=true", ["elm"]),
        ("quarantined=false", ["alder", "alpine", "birch", "cedar"]),
        ("deviceName=nothing", []),
        ("sortAttr=deviceName&sortDir=desc", ["elm", "cedar", "birch", "alpine", "alder"]),
        ("sortAttr=deviceId", ["alder", "birch", "alpine", "cedar", "elm"]),
        ("sortAttr=deviceId&sortDir=desc", ["elm", "cedar", "alpine", "birch", "alder"]),
        ("sortAttr=firmwareVersion", ["birch", "elm", "cedar", "alpine", "alder"]),
        ("sortAttr=firmwareVersion&sortDir=desc", ["alder", "alpine", "cedar", "elm", "birch"]),
        ("sortAttr=lastConnection", ["birch", "elm", "alpine", "cedar", "alder"]),
        ("sortAttr=lastConnection&sortDir=desc", ["alder", "cedar", "alpine", "elm", "birch"]),
    ],
)
def test_list_filters_and_sorts(auth_client, product, fleet, query, expected):
    assert names(auth_client, product, query) == expected


def test_each_sort_answers_the_same_when_asked_twice(auth_client, product, fleet):
    """Sorting one way must not change the next request's order the other way."""
    for _ in range(2):
        assert names(auth_client, product, "sortAttr=firmwareVersion&sortDir=desc")[0] == "alder"
        assert names(auth_client, product, "sortAttr=firmwareVersion")[0] == "birch"
        assert names(auth_client, product, "sortAttr=lastConnection&sortDir=desc")[0] == "alder"
        assert names(auth_client, product, "sortAttr=lastConnection")[0] == "birch"


def test_serial_number_filter_is_exact_and_case_insensitive(auth_client, product, fleet):
    serial = fleet["cedar"].serial_number
    assert names(auth_client, product, f"serialNumber={serial.lower()}") == ["cedar"]
    assert names(auth_client, product, f"serialNumber={serial[:-1]}") == []


def test_an_unknown_sort_is_refused(auth_client, product, fleet):
    response = auth_client.get(f"{url(product)}?sortAttr=color")
    assert response.status_code == 400
    assert response.json() == error(
        "sortAttr is one of deviceName, deviceId, firmwareVersion, lastConnection.", field="sortAttr"
    )


@pytest.mark.parametrize("size_param", ["perPage", "per_page"])
def test_pages_and_their_totals(auth_client, product, fleet, size_param):
    first = auth_client.get(f"{url(product)}?{size_param}=2").json()
    assert [d["name"] for d in first["devices"]] == ["alder", "alpine"]
    assert first["meta"] == {"page": 1, "per_page": 2, "total_pages": 3, "total": 5}
    last = auth_client.get(f"{url(product)}?{size_param}=2&page=3").json()
    assert [d["name"] for d in last["devices"]] == ["elm"]
    assert last["meta"] == {"page": 3, "per_page": 2, "total_pages": 3, "total": 5}
    filtered = auth_client.get(f"{url(product)}?{size_param}=1&quarantined=false&page=2").json()
    assert [d["name"] for d in filtered["devices"]] == ["alpine"]
    assert filtered["meta"] == {"page": 2, "per_page": 1, "total_pages": 4, "total": 4}
    assert auth_client.get(f"{url(product)}?{size_param}=2&page=4").status_code == 404


def test_per_page_is_at_most_a_hundred_and_perpage_wins(auth_client, product, fleet):
    assert auth_client.get(f"{url(product)}?perPage=1000").json()["meta"]["per_page"] == 100
    assert auth_client.get(f"{url(product)}?perPage=3&per_page=1").json()["meta"]["per_page"] == 3


def test_an_empty_product_lists_nothing(auth_client, product):
    body = auth_client.get(url(product)).json()
    assert body == {
        "devices": [],
        "customers": [],
        "meta": {"page": 1, "per_page": 25, "total_pages": 1, "total": 0},
    }


# --- GET: one device ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("lookup", ["id", "ID", "name", "NAME"])
def test_get_a_device_by_id_or_name(auth_client, product, inside, lookup):
    Device.objects.filter(pk=inside.pk).update(quarantined=True)
    key = {"id": inside.id, "ID": inside.id.upper(), "name": "fern", "NAME": "FERN"}[lookup]
    response = auth_client.get(url(product, key))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == DETAIL_FIELDS
    assert (body["id"], body["name"], body["product_id"], body["quarantined"]) == (
        inside.id,
        "fern",
        product.id,
        True,
    )


def test_a_device_not_in_the_product_is_404(auth_client, user, other_user, product):
    elsewhere = product_create(user=other_user, name="Orchard", platform_id=BORON.id)
    for device in (one(owner=user), one(product=elsewhere)):
        for method in ("get", "delete"):
            before = state()
            response = getattr(auth_client, method)(url(product, device))
            assert response.status_code == 404
            assert response.json() == error(f"Device {device.id!r} is not in this product.")
            assert state() == before
    response = auth_client.get(url(product, "no-such-device"))
    assert (response.status_code, response.json()) == (
        404,
        error("Device 'no-such-device' is not in this product."),
    )


# --- DELETE ------------------------------------------------------------------------------------------------
def test_remove_answers_204_and_the_device_is_gone_from_the_product(auth_client, user, product):
    device = one(owner=user, product=product)
    response = auth_client.delete(url(product, device))
    assert response.status_code == 204
    assert response.content == b""
    assert auth_client.get(url(product, device)).status_code == 404
    assert auth_client.get(url(product)).json()["devices"] == []
    device.refresh_from_db()
    assert (device.product_id, device.owner_id) == (None, user.id)  # still its owner's
    assert not ProductDenial.objects.exists()
    entry = AuditEntry.objects.get(action="product.device_remove")
    assert (entry.via, entry.target_id) == ("api", device.id)
    assert auth_client.delete(url(product, device)).status_code == 404


@pytest.mark.parametrize(
    ("how", "denied"),
    [
        ("json-true", True),
        ("json-false", False),
        ("query", True),
        ("query-false", False),
        ("form", True),
    ],
)
def test_remove_with_deny_records_the_denial(auth_client, user, product, inside, how, denied):
    path = url(product, inside)
    if how == "json-true":
        response = auth_client.delete(path, {"deny": True}, format="json")
    elif how == "json-false":
        response = auth_client.delete(path, {"deny": False}, format="json")
    elif how == "query":
        response = auth_client.delete(f"{path}?deny=true")
    elif how == "query-false":
        response = auth_client.delete(f"{path}?deny=false")
    else:
        response = auth_client.delete(path, "deny=1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 204
    assert Device.objects.get(pk=inside.pk).product_id is None
    assert ProductDenial.objects.filter(device=inside, product=product).exists() is denied
    assert AuditEntry.objects.filter(
        action="product.device_deny" if denied else "product.device_remove", target_id=inside.id
    ).exists()


def test_a_denied_device_comes_back_by_import(auth_client, product, inside):
    auth_client.delete(url(product, inside), {"deny": True}, format="json")
    assert ProductDenial.objects.exists()
    response = auth_client.post(url(product), {"id": inside.id}, format="json")
    assert response.json()["updatedDeviceIds"] == [inside.id]
    assert not ProductDenial.objects.exists()
    assert auth_client.get(url(product, inside)).status_code == 200
