"""/v1/devices and /v1/device_claims: shapes, errors, and who may do what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from console.accounts.services import access_token_create
from console.api.errors import TOKEN_NOT_FOUND
from console.models import AuditEntry
from console.platforms import PLATFORMS
from devices.models import ClaimCode, Device
from devices.services import devices_provision
from products.services import product_create

pytestmark = pytest.mark.django_db

BORON = PLATFORMS[13]
ARGON = PLATFORMS[12]
SUMMARY_FIELDS = {
    "id",
    "name",
    "last_app",
    "last_ip_address",
    "last_heard",
    "last_handshake_at",
    "product_id",
    "online",
    "connected",
    "platform_id",
    "platform",
    "cellular",
    "notes",
    "status",
    "serial_number",
    "iccid",
    "imei",
    "system_firmware_version",
    "firmware_product_id",
    "firmware_version",
    "development",
    "owner",
}
DETAIL_FIELDS = SUMMARY_FIELDS | {
    "functions",
    "variables",
    "current_build_target",
    "default_build_target",
    "firmware_updates_enabled",
    "firmware_updates_forced",
    "denied",
    "quarantined",
    "groups",
    "desired_firmware_version",
    "targeted_firmware_release_version",
}


@pytest.fixture
def other_client(other_user) -> APIClient:
    client = APIClient()
    token = access_token_create(user=other_user, expires_in_seconds=3600, client_id="particle").token
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def device(user) -> Device:
    [provisioned] = devices_provision(platform=BORON, count=1, owner=user)
    device = provisioned.device
    device.name = "kitchen"
    device.functions = ["led"]
    device.variables = {"temp": "double"}
    device.save()
    return device


def unowned(platform=BORON) -> Device:
    return devices_provision(platform=platform, count=1)[0].device


def snapshot(device: Device) -> dict:
    return Device.objects.filter(pk=device.pk).values().get()


def assert_token_not_found(response) -> None:
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "error_description": TOKEN_NOT_FOUND}


# --- The authorization matrix: anonymous -> 400, someone else -> 404 and nothing changes ----------------
PER_DEVICE_REQUESTS = [
    ("get", "/v1/devices/{id}", None),
    ("get", "/v1/devices/{name}", None),
    ("put", "/v1/devices/{id}", {"name": "stolen"}),
    ("put", "/v1/devices/{id}", {"notes": "mine now"}),
    ("put", "/v1/devices/{id}", {"signal": "1"}),
    ("delete", "/v1/devices/{id}", None),
    ("put", "/v1/devices/{id}/ping", None),
    ("post", "/v1/devices/{id}/led", {"arg": "on"}),
    ("get", "/v1/devices/{id}/temp", None),
]
REQUEST_IDS = ["get", "get-by-name", "rename", "notes", "signal", "unclaim", "ping", "call", "read"]


@pytest.mark.parametrize(("method", "path", "data"), PER_DEVICE_REQUESTS, ids=REQUEST_IDS)
def test_anonymous_requests_are_refused(api_client, device, method, path, data):
    before = snapshot(device)
    response = getattr(api_client, method)(path.format(id=device.id, name=device.name), data, format="json")
    assert_token_not_found(response)
    assert snapshot(device) == before


@pytest.mark.parametrize(("method", "path", "data"), PER_DEVICE_REQUESTS, ids=REQUEST_IDS)
def test_another_users_requests_are_404_and_change_nothing(other_client, device, method, path, data):
    before = snapshot(device)
    audit_before = AuditEntry.objects.count()
    response = getattr(other_client, method)(path.format(id=device.id, name=device.name), data, format="json")
    assert response.status_code == 404
    body = response.json()
    assert body["ok"] is False
    assert "not found" in body["error"]
    assert snapshot(device) == before
    assert AuditEntry.objects.count() == audit_before


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("get", "/v1/devices", None),
        ("post", "/v1/devices", {"id": "0" * 24}),
        ("post", "/v1/device_claims", {}),
    ],
    ids=["list", "claim", "claim-code"],
)
def test_anonymous_collection_requests_are_refused(api_client, db, method, path, data):
    assert_token_not_found(getattr(api_client, method)(path, data, format="json"))
    assert not ClaimCode.objects.exists()


# --- GET /v1/devices ----------------------------------------------------------------------------------------
def test_list_is_a_bare_array_of_your_devices_only(auth_client, other_client, user, other_user, device):
    [wifi] = devices_provision(platform=ARGON, count=1, owner=user)
    product = product_create(user=user, name="Attic sensors", platform_id=ARGON.id)
    Device.objects.filter(pk=wifi.device.pk).update(name="attic", product=product, notes="upstairs")
    Device.objects.filter(pk=device.pk).update(
        online=True, gateway_channel="x", system_firmware_version="6.1.1"
    )
    theirs = devices_provision(platform=BORON, count=1, owner=other_user)[0].device
    unowned()

    response = auth_client.get("/v1/devices")
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list)
    assert [d["name"] for d in body] == ["attic", "kitchen"]
    for entry in body:
        assert set(entry) == SUMMARY_FIELDS
        assert entry["connected"] == entry["online"]
        assert entry["owner"] == user.email
        assert entry["status"] == "normal"
    attic, kitchen = body
    assert (kitchen["id"], kitchen["online"], kitchen["connected"]) == (device.id, True, True)
    assert kitchen["product_id"] == BORON.id == kitchen["platform_id"]  # no product: the platform id
    assert (kitchen["platform"], kitchen["cellular"]) == ("Boron", True)
    assert kitchen["iccid"] == device.iccid
    assert len(kitchen["imei"]) == 15
    assert kitchen["serial_number"] == device.serial_number
    assert kitchen["system_firmware_version"] == "6.1.1"
    assert kitchen["notes"] is None
    assert (attic["product_id"], attic["platform_id"]) == (product.id, ARGON.id)
    assert product.id >= 1000
    assert (attic["online"], attic["connected"], attic["cellular"]) == (False, False, False)
    assert (attic["iccid"], attic["imei"], attic["notes"]) == (None, None, "upstairs")

    assert [d["id"] for d in other_client.get("/v1/devices").json()] == [theirs.id]


def test_listing_devices_takes_a_constant_number_of_queries(auth_client, user, django_assert_max_num_queries):
    auth_client.get("/v1/devices")  # the token's first use writes last_used_at once
    counts = []
    for total in (5, 50):
        devices_provision(platform=BORON, count=total - Device.objects.count(), owner=user)
        with django_assert_max_num_queries(2) as queries:  # the token, then the devices with owners
            assert len(auth_client.get("/v1/devices").json()) == total
        counts.append(len(queries))
    assert counts[0] == counts[1]


# --- GET /v1/devices/:id -------------------------------------------------------------------------------------
@pytest.mark.parametrize("lookup", ["id", "ID", "name", "NAME"])
def test_get_by_id_or_case_insensitive_name(auth_client, device, lookup):
    key = {"id": device.id, "ID": device.id.upper(), "name": "kitchen", "NAME": "KiTcHeN"}[lookup]
    response = auth_client.get(f"/v1/devices/{key}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == DETAIL_FIELDS
    assert (body["id"], body["name"]) == (device.id, "kitchen")
    assert body["functions"] == ["led"]
    assert body["variables"] == {"temp": "double"}
    assert body["connected"] is body["online"] is False


def test_get_unknown_device_is_404(auth_client, device):
    response = auth_client.get("/v1/devices/pantry")
    assert response.status_code == 404
    assert response.json()["info"] == "I didn't recognize that device name or ID"


# --- PUT /v1/devices/:id ------------------------------------------------------------------------------------
def test_rename(auth_client, user, device):
    response = auth_client.put(f"/v1/devices/{device.id}", {"name": "pantry"}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "pantry"
    assert set(response.json()) == {"id", "name", "updated_at"}
    device.refresh_from_db()
    assert device.name == "pantry"
    entry = AuditEntry.objects.get(action="device.rename")
    assert entry.metadata == {"from": "kitchen", "to": "pantry"}


def test_rename_to_a_name_you_already_use_is_409(auth_client, user, device):
    [other] = devices_provision(platform=BORON, count=1, owner=user)
    response = auth_client.put(f"/v1/devices/{other.device.id}", {"name": "KITCHEN"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"] == "You already have a device named 'KITCHEN'."
    other.device.refresh_from_db()
    assert other.device.name != "KITCHEN"


def test_another_users_device_name_is_free_for_you(auth_client, other_user, device):
    [theirs] = devices_provision(platform=BORON, count=1, owner=other_user)
    Device.objects.filter(pk=theirs.device.pk).update(name="pantry")
    assert auth_client.put(f"/v1/devices/{device.id}", {"name": "pantry"}, format="json").status_code == 200


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("my device!", "only letters, digits, underscores and hyphens"),
        ("", "cannot be empty"),
        ("x" * 64, "at most 63 characters"),
        ("0123456789abcdef01234567", "cannot look like a device ID"),
    ],
    ids=["characters", "empty", "too-long", "looks-like-an-id"],
)
def test_rename_to_an_invalid_name_is_400_naming_the_rule(auth_client, device, name, rule):
    response = auth_client.put(f"/v1/devices/{device.id}", {"name": name}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert rule in body["error"]
    assert body["field"] == "name"
    device.refresh_from_db()
    assert device.name == "kitchen"


def test_notes(auth_client, device):
    response = auth_client.put(f"/v1/devices/{device.id}", {"notes": "on the shelf"}, format="json")
    assert response.status_code == 200
    assert response.json()["notes"] == "on the shelf"
    device.refresh_from_db()
    assert device.notes == "on the shelf"
    too_long = auth_client.put(f"/v1/devices/{device.id}", {"notes": "n" * 1001}, format="json")
    assert too_long.status_code == 400
    assert "at most 1000 characters" in too_long.json()["error"]


def test_signal_to_an_offline_device_is_an_error(auth_client, device):
    response = auth_client.put(f"/v1/devices/{device.id}", {"signal": "1"}, format="json")
    assert response.status_code == 404
    assert response.json()["error"] == "Device kitchen is not connected to the cloud."
    bad = auth_client.put(f"/v1/devices/{device.id}", {"signal": "maybe"}, format="json")
    assert bad.status_code == 400
    assert "signal must be 1 or 0" in bad.json()["error"]


def test_put_with_nothing_to_change_is_400(auth_client, device):
    response = auth_client.put(f"/v1/devices/{device.id}", {}, format="json")
    assert response.status_code == 400
    assert "Nothing to change" in response.json()["error"]


# --- POST /v1/devices (claim) and DELETE (unclaim) ----------------------------------------------------------
def test_claim_an_unowned_device(auth_client, user):
    device = unowned()
    response = auth_client.post("/v1/devices", {"id": device.id.upper()}, format="json")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "id": device.id, "user_id": user.pk, "connected": False}
    device.refresh_from_db()
    assert device.owner == user
    assert AuditEntry.objects.filter(action="device.claim", target_id=device.id).count() == 1


def test_claiming_your_own_device_again_is_ok_and_changes_nothing(auth_client, user, device):
    before = snapshot(device)
    response = auth_client.post(  # as particle-cli sends it
        "/v1/devices", f"id={device.id}", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert response.json()["ok"] is True
    assert snapshot(device) == before
    assert not AuditEntry.objects.filter(action="device.claim").exists()


def test_claiming_someone_elses_device_is_403(other_client, device):
    before = snapshot(device)
    response = other_client.post("/v1/devices", {"id": device.id}, format="json")
    assert response.status_code == 403
    assert "belongs to someone else" in response.json()["error"]
    assert snapshot(device) == before


def test_claiming_an_unknown_device_is_404(auth_client, db):
    response = auth_client.post("/v1/devices", {"id": "0123456789abcdef01234567"}, format="json")
    assert response.status_code == 404
    assert "0123456789abcdef01234567" in response.json()["error"]


@pytest.mark.parametrize("value", ["abc", "0123456789abcdef0123456g", "0" * 25, ""])
def test_claiming_a_malformed_id_is_400(auth_client, db, value):
    response = auth_client.post("/v1/devices", {"id": value}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "id"


def test_unclaim(auth_client, user, device):
    Device.objects.filter(pk=device.pk).update(notes="secret")
    response = auth_client.delete(f"/v1/devices/{device.id}")
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    device.refresh_from_db()
    assert (device.owner, device.notes) == (None, "")
    assert auth_client.get(f"/v1/devices/{device.id}").status_code == 404


# --- POST /v1/device_claims -----------------------------------------------------------------------------------
def test_claim_code(auth_client, user, other_user, device):
    devices_provision(platform=BORON, count=1, owner=other_user)
    response = auth_client.post("/v1/device_claims", {"iccid": "89014103211118510720"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"claim_code", "device_ids"}
    assert body["device_ids"] == [device.id]
    claim = ClaimCode.objects.get(code=body["claim_code"])
    assert (claim.user, claim.iccid, claim.used_at) == (user, "89014103211118510720", None)
    assert timezone.now() + timedelta(hours=23) < claim.expires_at <= timezone.now() + timedelta(hours=24)
    second = auth_client.post("/v1/device_claims", {}, format="json").json()
    assert second["claim_code"] != body["claim_code"]


# --- Functions, variables and pings on an offline device ----------------------------------------------------
def test_call_a_function_of_an_offline_device(auth_client, device):
    response = auth_client.post(f"/v1/devices/{device.id}/led", {"arg": "on"}, format="json")
    assert response.status_code == 404
    assert response.json()["error"] == "Device kitchen is not connected to the cloud."


def test_read_a_variable_of_an_offline_device(auth_client, device):
    response = auth_client.get(f"/v1/devices/{device.id}/temp")
    assert response.status_code == 404
    assert response.json()["error"] == "Device kitchen is not connected to the cloud."


def test_unknown_function_and_variable_are_404(auth_client, device):
    response = auth_client.post(f"/v1/devices/{device.id}/dance", {"arg": ""}, format="json")
    assert response.status_code == 404
    body = response.json()
    assert (body["ok"], body["error"]) == (False, "Function dance not found")
    response = auth_client.get(f"/v1/devices/{device.id}/humidity")
    assert response.status_code == 404
    assert response.json()["error"] == "Variable humidity not found"


def test_function_argument_over_1024_bytes_is_400(auth_client, device):
    response = auth_client.post(f"/v1/devices/{device.id}/led", {"arg": "x" * 1025}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "arg"


def test_ping_an_offline_device(auth_client, device):
    response = auth_client.put(f"/v1/devices/{device.id}/ping")
    assert response.status_code == 200
    assert response.json() == {"online": False, "ok": True}
