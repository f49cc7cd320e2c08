"""/v1/products/:p/firmware: uploading with every validation rule, listing, getting, editing,
downloading and deleting, with who may do each and what a refusal leaves unchanged."""

from __future__ import annotations

import hashlib
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from console.models import AuditEntry
from console.permissions import Role
from firmware.binary import ModuleFunction
from firmware.encoder import build_module
from firmware.models import FirmwareBinary, FirmwareRelease, ProductFirmware
from products.services import product_create
from tests.products.test_team import client_for, member

pytestmark = pytest.mark.django_db

BORON = 13
SYSTEM_PART = int(ModuleFunction.SYSTEM_PART)
PRE_4 = [(SYSTEM_PART, 1, 1201)]  # built against Device OS 1.2.1: the PRODUCT_ID still counts
DEVICE_OS_5 = [(SYSTEM_PART, 1, 5301)]  # Device OS 5.3.1: PRODUCT_ID no longer exists


@pytest.fixture
def product(user):
    return product_create(user=user, name="Greenhouse", platform_id=BORON)


def app_binary(product, version: int, **overrides) -> bytes:
    fields = {
        "platform_id": BORON,
        "product_id": product.id,
        "product_version": version,
        "dependencies": PRE_4,
        "payload_size": 2048,
    }
    return build_module(**{**fields, **overrides})


def upload(client, product, data: bytes, *, field: str = "file", **form):
    body = {field: SimpleUploadedFile("firmware.bin", data, content_type="application/octet-stream")}
    body.update({"version": "1", "title": "First release", "description": "Tinker"} | form)
    return client.post(f"/v1/products/{product.id}/firmware", body, format="multipart")


def state(product) -> tuple:
    return (
        sorted(
            ProductFirmware.objects.filter(product=product).values_list("version", "title", "description")
        ),
        FirmwareBinary.objects.count(),
        AuditEntry.objects.filter(action__startswith="firmware.").count(),
    )


# --- upload ---------------------------------------------------------------------------------------------
def test_upload_stores_the_version_and_answers_particles_firmware_object(auth_client, product, user):
    data = app_binary(product, 1)

    response = upload(auth_client, product, data)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["version"] == 1
    assert body["title"] == "First release"
    assert body["description"] == "Tinker"
    assert body["size"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["product_id"] == product.id
    assert body["product_default"] is body["current"] is False
    assert body["groups"] == []
    assert body["device_count"] == 0
    assert body["uploaded_on"] == body["uploaded_at"]
    assert body["uploaded_by"] == {"username": user.email}
    firmware = ProductFirmware.objects.get(product=product)
    assert bytes(firmware.binary.data) == data
    assert firmware.module["platform_id"] == BORON
    assert firmware.module["product_version"] == 1
    assert AuditEntry.objects.get(action="firmware.upload").metadata["version"] == 1


def test_the_older_binary_field_name_is_accepted(auth_client, product):
    response = upload(auth_client, product, app_binary(product, 1), field="binary")

    assert response.status_code == 201


def test_device_os_4_and_later_builds_are_not_held_to_their_leftover_product_id(auth_client, product):
    # Device OS 5.3.1 tinker builds carry the platform id where the product id used to be.
    data = app_binary(product, 1, product_id=BORON, dependencies=DEVICE_OS_5)

    response = upload(auth_client, product, data)

    assert response.status_code == 201, response.content


def test_a_build_without_a_product_id_is_accepted(auth_client, product):
    response = upload(auth_client, product, app_binary(product, 1, product_id=0xFFFF))

    assert response.status_code == 201, response.content


def _with_bad_sha(data: bytes) -> bytes:
    """The stored SHA-256 changed, the CRC recomputed so only the hash is wrong."""
    body = bytearray(data[:-4])
    sha_at = len(data) - 4 - 2 - 32
    body[sha_at] ^= 0xFF
    return bytes(body) + zlib.crc32(body).to_bytes(4, "big")


def _with_bad_crc(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


@pytest.mark.parametrize(
    ("make", "form", "status", "message"),
    [
        (lambda p: b"", {}, 400, "The file is empty"),
        (lambda p: b"\x00" * 10, {}, 400, "too short"),
        (lambda p: bytes(range(256)) * 8, {}, 400, "not a Particle firmware module"),
        (lambda p: _with_bad_crc(app_binary(p, 1)), {}, 400, "CRC-32 does not match"),
        (lambda p: _with_bad_sha(app_binary(p, 1)), {}, 400, "SHA-256"),
        (lambda p: app_binary(p, 1, platform_id=6), {}, 400, "built for Photon (platform 6)"),
        (
            lambda p: app_binary(p, 2),
            {"version": "1"},
            400,
            "PRODUCT_VERSION is 2, but the version entered is 1",
        ),
        (lambda p: app_binary(p, 0xFFFF), {}, 400, "carries no PRODUCT_VERSION"),
        (lambda p: app_binary(p, 1, product_id=8178), {}, 400, "built for product 8178"),
        (
            lambda p: app_binary(p, 1, module_function=SYSTEM_PART, module_index=1),
            {},
            400,
            "system part module",
        ),
        (lambda p: app_binary(p, 1), {"version": ""}, 400, "Enter the firmware's version"),
        (lambda p: app_binary(p, 1), {"version": "1.2"}, 400, "whole number"),
        (lambda p: app_binary(p, 1), {"version": "70000"}, 400, "out of range"),
        (lambda p: app_binary(p, 1), {"title": "  "}, 400, "Give the firmware a title"),
        (lambda p: app_binary(p, 1), {"title": "x" * 129}, 400, "at most 128"),
    ],
)
def test_refused_uploads_name_the_reason_and_store_nothing(auth_client, product, make, form, status, message):
    before = state(product)

    response = upload(auth_client, product, make(product), **form)

    assert response.status_code == status, response.content
    assert message in response.json()["error_description"]
    assert state(product) == before


def test_a_version_that_exists_is_a_conflict(auth_client, product):
    upload(auth_client, product, app_binary(product, 1))
    before = state(product)

    response = upload(auth_client, product, app_binary(product, 1, payload_size=4096), title="Again")

    assert response.status_code == 409
    assert "Version 1 already exists" in response.json()["error_description"]
    assert state(product) == before


def test_an_oversized_file_is_refused_before_it_is_read(auth_client, product, settings):
    settings.QUANTA_FIRMWARE_MAX_BYTES = 1000
    before = state(product)

    response = upload(auth_client, product, app_binary(product, 1))

    assert response.status_code == 413
    assert "at most 1,000 bytes" in response.json()["error_description"]
    assert state(product) == before


def test_an_upload_without_a_file_says_which_field_to_send(auth_client, product):
    response = auth_client.post(
        f"/v1/products/{product.id}/firmware", {"version": "1", "title": "x"}, format="multipart"
    )

    assert response.status_code == 400
    assert "multipart file named file" in response.json()["error_description"]


# --- who may -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("role", "may_upload"),
    [(Role.ADMINISTRATOR, True), (Role.DEVELOPER, True), (Role.SUPPORT, False), (Role.VIEWER, False)],
)
def test_uploading_follows_the_permission_table(product, role, may_upload):
    someone = member(product, f"{role}@example.com", role)
    client = client_for(someone)

    response = upload(client, product, app_binary(product, 1))

    assert response.status_code == (201 if may_upload else 403)
    assert client.get(f"/v1/products/{product.id}/firmware").status_code == 200  # everyone reads


def test_another_products_owner_sees_nothing(product, other_user, auth_client):
    upload(auth_client, product, app_binary(product, 1))
    outsider = client_for(other_user)
    before = state(product)

    for method, path in [
        ("get", "firmware"),
        ("get", "firmware/1"),
        ("get", "firmware/1/binary"),
        ("put", "firmware/1"),
        ("delete", "firmware/1"),
    ]:
        response = getattr(outsider, method)(
            f"/v1/products/{product.id}/{path}", {"title": "Mine"}, format="json"
        )
        assert response.status_code == 404, (method, path)
    assert upload(outsider, product, app_binary(product, 2), version="2").status_code == 404
    assert state(product) == before


# --- list, get, edit, download, delete -------------------------------------------------------------------
def test_list_is_newest_first_and_counts_devices_running_each(auth_client, product, user):
    from console.platforms import PLATFORMS
    from devices.models import Device
    from devices.services import devices_provision

    for version in (1, 2, 3):
        upload(auth_client, product, app_binary(product, version), version=str(version), title=f"v{version}")
    provisioned = devices_provision(platform=PLATFORMS[BORON], count=3, owner=user, product=product)
    Device.objects.filter(pk__in=[p.device.pk for p in provisioned[:2]]).update(firmware_version=2)

    body = auth_client.get(f"/v1/products/{product.slug}/firmware").json()

    assert [entry["version"] for entry in body] == [3, 2, 1]
    assert [entry["device_count"] for entry in body] == [0, 2, 0]


def test_the_list_costs_a_fixed_number_of_queries(auth_client, product, django_assert_max_num_queries):
    for version in range(1, 6):
        upload(auth_client, product, app_binary(product, version), version=str(version))

    with django_assert_max_num_queries(8):
        response = auth_client.get(f"/v1/products/{product.id}/firmware")

    assert len(response.json()) == 5


def test_get_edit_and_download(auth_client, product):
    data = app_binary(product, 1)
    upload(auth_client, product, data)

    assert auth_client.get(f"/v1/products/{product.id}/firmware/1").json()["title"] == "First release"
    edited = auth_client.put(
        f"/v1/products/{product.id}/firmware/1", {"title": "Renamed", "description": "Better"}, format="json"
    )
    assert edited.status_code == 200
    assert (edited.json()["title"], edited.json()["description"]) == ("Renamed", "Better")
    download = auth_client.get(f"/v1/products/{product.id}/firmware/1/binary")
    assert download.status_code == 200
    assert download["Content-Type"] == "application/octet-stream"
    assert download.content == data
    assert f"{product.slug}-v1.bin" in download["Content-Disposition"]


@pytest.mark.parametrize(
    ("path", "message"), [("firmware/9", "No firmware version 9"), ("firmware/abc", "whole number")]
)
def test_unknown_versions_are_clear(auth_client, product, path, message):
    response = auth_client.get(f"/v1/products/{product.id}/{path}")

    assert response.status_code in {400, 404}
    assert message in response.json()["error_description"]


def test_an_empty_title_is_refused_on_edit(auth_client, product):
    upload(auth_client, product, app_binary(product, 1))

    response = auth_client.put(f"/v1/products/{product.id}/firmware/1", {"title": ""}, format="json")

    assert response.status_code == 400
    assert ProductFirmware.objects.get().title == "First release"


def test_never_released_firmware_is_deleted(auth_client, product):
    upload(auth_client, product, app_binary(product, 1))

    response = auth_client.delete(f"/v1/products/{product.id}/firmware/1")

    assert response.status_code == 204
    assert not ProductFirmware.objects.exists()
    assert not FirmwareBinary.objects.exists()


def test_released_firmware_is_kept(auth_client, product, user):
    from django.utils import timezone

    upload(auth_client, product, app_binary(product, 1))
    firmware = ProductFirmware.objects.get()
    FirmwareRelease.objects.create(product=product, firmware=firmware, released_by=user)
    ProductFirmware.objects.filter(pk=firmware.pk).update(first_released_at=timezone.now())

    response = auth_client.delete(f"/v1/products/{product.id}/firmware/1")

    assert response.status_code == 409
    assert "has been released, so it is kept" in response.json()["error_description"]
    assert ProductFirmware.objects.filter(pk=firmware.pk).exists()


def test_the_module_summary_is_json_with_the_parsed_fields(auth_client, product):
    upload(auth_client, product, app_binary(product, 1))

    module = ProductFirmware.objects.get().module

    assert module["module_function_name"] == "user part"
    assert module["platform_name"] == "Boron"
    assert module["dependencies"] == [list(PRE_4[0])]
    assert module["system_version"] == 1201
    assert module["product_id_meaningful"] is True
    assert module["suffix_size"] == 40  # product fields, no extensions
