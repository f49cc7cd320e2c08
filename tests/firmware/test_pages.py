"""The console's Firmware pages: the list and a version's page for every role, and uploading,
editing, deleting, releasing and downloading through the console's views, with what each refusal
shows and leaves unchanged."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from console.accounts.models import User
from console.formatting import size_text
from console.permissions import Role, role_can
from console.platforms import PLATFORMS
from devices.groups import devices_groups_add
from devices.models import Device
from devices.services import devices_provision
from firmware.binary import ModuleFunction
from firmware.encoder import build_module
from firmware.models import FirmwareRelease, ProductFirmware
from firmware.releases import firmware_release
from firmware.services import firmware_upload
from firmware.views import device_os_version
from products.groups import group_create
from products.services import product_create
from tests.products.test_team import member

pytestmark = pytest.mark.django_db

BORON = 13
SYSTEM_PART = int(ModuleFunction.SYSTEM_PART)
HTMX = {"HTTP_HX_REQUEST": "true"}
JSON = {"HTTP_ACCEPT": "application/json"}
ROLES = list(Role)


@pytest.fixture
def product(user):
    return product_create(user=user, name="Greenhouse", platform_id=BORON)


@pytest.fixture
def owner(client, user) -> Client:
    client.force_login(user)
    return client


def binary(product, version: int, **overrides) -> bytes:
    fields = {
        "platform_id": BORON,
        "product_id": product.id,
        "product_version": version,
        "dependencies": [(SYSTEM_PART, 1, 1201)],
        "payload_size": 2048,
    }
    return build_module(**{**fields, **overrides})


def uploaded(product, user, version: int, title: str = "", **overrides) -> ProductFirmware:
    return firmware_upload(
        actor=user,
        product=product,
        data=binary(product, version, **overrides),
        version=version,
        title=title or f"Build {version}",
    )


def devices(product, user, count: int, *, version: int | None = None) -> list[Device]:
    made = [
        p.device
        for p in devices_provision(platform=PLATFORMS[BORON], count=count, owner=user, product=product)
    ]
    Device.objects.filter(pk__in=[device.pk for device in made]).update(firmware_version=version)
    return made


def client_as(someone: User) -> Client:
    client = Client()
    client.force_login(someone)
    return client


def role_client(product, role: Role, user: User) -> Client:
    if role == Role.OWNER:
        return client_as(user)
    return client_as(member(product, f"{role.value}@example.com", role))


def url(product, name: str = "", version: int | None = None) -> str:
    base = f"/products/{product.slug}/firmware/"
    if version is None:
        return base + (f"{name}/" if name else "")
    return base + f"{version}/" + (f"{name}/" if name else "")


def upload_post(client, product, data: bytes | None, *, json: bool = True, **form):
    body = {"version": "1", "title": "First build", "description": "Tinker"} | form
    if data is not None:
        body["file"] = SimpleUploadedFile("app.bin", data, content_type="application/octet-stream")
    return client.post(url(product, "upload"), body, **(JSON if json else {}))


def page_text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode()).strip()


def released(product, user, firmware, *, default: bool = True, groups: list[str] | None = None) -> None:
    ProductFirmware.objects.filter(pk=firmware.pk).update(first_run_at="2026-01-01T00:00:00Z")
    firmware.refresh_from_db()
    firmware_release(
        actor=user, product=product, firmware=firmware, product_default=default, group_names=groups or []
    )


# --- pure helpers ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("module_version", "expected"),
    [(5301, "5.3.1"), (1201, "1.2.1"), (6200, "6.2.0"), (4102, "4.1.2"), (300, None)],
)
def test_system_part_versions_read_as_device_os_releases(module_version, expected):
    assert device_os_version(module_version) == expected


@pytest.mark.parametrize(
    ("size", "text"), [(1, "1 byte"), (812, "812 bytes"), (1536, "1.5\u00a0KB"), (8 << 20, "8\u00a0MB")]
)
def test_sizes_read_for_people(size, text):
    assert size_text(size) == text


# --- the list ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_the_list_renders_for_every_role_with_the_actions_it_allows(product, user, role):
    group_create(actor=user, product=product, name="bench", color="#0d9488")
    kept = uploaded(product, user, 1, "Launch build")
    devices(product, user, 2, version=1)
    released(product, user, kept, groups=["bench"])
    uploaded(product, user, 2, "Faster reads")
    client = role_client(product, role, user)

    response = client.get(url(product))

    assert response.status_code == 200
    text = page_text(response)
    assert "Launch build" in text
    assert "Faster reads" in text
    assert text.index("v2") < text.index("Launch build")  # newest first
    assert "Product default" in text
    assert "bench" in text
    assert 'data-firmware-version="1"' in text
    assert "2 devices" in text
    assert f'href="{url(product, "download", 1)}"' in text
    can_upload, can_release = role_can(role, "firmware.upload"), role_can(role, "firmware.release")
    assert ("Upload firmware" in text) is can_upload
    assert (f'hx-get="{url(product, "release", 2)}"' in text) is can_release
    assert (f'hx-get="{url(product, "edit", 2)}"' in text) is can_upload
    # Delete only for a version never released.
    assert (f'hx-get="{url(product, "delete", 2)}"' in text) is can_upload
    assert f'hx-get="{url(product, "delete", 1)}"' not in text
    assert "Running firmware" in text  # the fleet's chart


@pytest.mark.parametrize("role", [Role.OWNER, Role.VIEWER])
def test_the_empty_state_explains_the_macros_and_offers_the_upload_to_builders(product, user, role):
    response = role_client(product, role, user).get(url(product))

    text = page_text(response)
    assert f"No firmware in {product.name} yet" in text
    assert f"PRODUCT_ID({product.id});" in text
    assert "PRODUCT_VERSION(1);" in text
    assert "Device OS 4 and later builds no longer carry <code>PRODUCT_ID</code>" in text
    assert ('data-open-dialog="firmware-upload-dialog"' in text) is (role == Role.OWNER)


def test_the_sidebar_leads_to_the_firmware_page(owner, product):
    response = owner.get(f"/products/{product.slug}/")

    assert f'href="{url(product)}"' in page_text(response)


def test_the_list_costs_a_fixed_number_of_queries(owner, product, user, django_assert_max_num_queries):
    for name in ("alpha", "beta", "gamma"):
        group_create(actor=user, product=product, name=name, color="#0d9488")
    for version in range(1, 11):
        firmware = uploaded(product, user, version)
        devices(product, user, 1, version=version)
        if version > 7:
            released(
                product,
                user,
                firmware,
                default=version == 10,
                groups=[["alpha", "beta", "gamma"][version - 8]],
            )

    with django_assert_max_num_queries(7):  # 5 today: user, membership, counts, versions, releases
        response = owner.get(url(product))

    assert response.content.decode().count("data-firmware-version=") == 10


# --- a version's page ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_a_versions_page_renders_for_every_role(product, user, role):
    firmware = uploaded(product, user, 3, "Sensor fix")
    ProductFirmware.objects.filter(pk=firmware.pk).update(description="Reads the probe twice.")
    devices(product, user, 1, version=3)
    client = role_client(product, role, user)

    response = client.get(url(product, version=3))

    assert response.status_code == 200
    text = page_text(response)
    assert "Sensor fix" in text
    assert "Reads the probe twice." in text
    assert firmware.sha256 in text
    assert 'data-copy="#firmware-sha256"' in text
    assert "1 device runs it" in text
    assert "Boron" in text
    assert "Device OS" in text
    assert "1.2.1" in text
    assert "the product it was built for" in text
    assert (f'hx-get="{url(product, "release", 3)}"' in text) is role_can(role, "firmware.release")
    assert (f'hx-get="{url(product, "edit", 3)}"' in text) is role_can(role, "firmware.upload")
    assert (f'hx-get="{url(product, "delete", 3)}"' in text) is role_can(role, "firmware.upload")


def test_a_device_os_5_build_shows_its_leftover_product_id_for_what_it_is(owner, product, user):
    uploaded(product, user, 1, product_id=BORON, dependencies=[(SYSTEM_PART, 1, 5301)])

    text = page_text(owner.get(url(product, version=1)))

    assert "5.3.1" in text
    assert "module version 5301" in text
    assert "Device OS 4 and later builds no longer carry PRODUCT_ID" in text


@pytest.mark.parametrize("path", ["", "download", "edit", "delete", "release", "release/impact"])
def test_another_teams_product_and_unknown_versions_are_404(client, product, user, other_user, path):
    uploaded(product, user, 1)
    client.force_login(other_user)
    assert client.get(url(product, path, 1)).status_code == 404
    client.force_login(user)
    assert client.get(url(product, path, 9)).status_code == 404
    assert client.get(url(product, path, 70000)).status_code == 404


def test_another_teams_firmware_list_is_404(client, product, other_user):
    client.force_login(other_user)

    assert client.get(url(product)).status_code == 404
    assert upload_post(client, product, binary(product, 1)).status_code == 404
    assert not ProductFirmware.objects.exists()


# --- uploading ----------------------------------------------------------------------------------------------
def test_an_upload_through_the_dialog_answers_where_to_go_and_the_toast_follows(owner, product, user):
    data = binary(product, 1)

    response = upload_post(owner, product, data)

    assert response.status_code == 200, response.content
    assert response.json() == {"ok": True, "redirect": url(product), "version": 1}
    firmware = ProductFirmware.objects.get(product=product)
    assert (firmware.version, firmware.title, firmware.description, firmware.size) == (
        1,
        "First build",
        "Tinker",
        len(data),
    )
    assert firmware.uploaded_by == user
    assert "Uploaded version 1, “First build”." in page_text(owner.get(url(product)))


def test_a_plain_upload_redirects_to_the_list(owner, product):
    response = upload_post(owner, product, binary(product, 1), json=False)

    assert response.status_code == 302
    assert response["Location"] == url(product)


@pytest.mark.parametrize(
    ("data", "form", "field", "message"),
    [
        (2, {"version": "1"}, "version", "The binary's PRODUCT_VERSION is 2, but the version entered is 1"),
        (1, {"version": ""}, "version", "Enter the firmware's version"),
        (1, {"title": "  "}, "title", "Give the firmware a title"),
        (None, {}, "file", "Choose the binary to upload"),
        ("text", {}, "file", "too short to be a firmware module"),
    ],
)
def test_a_refused_upload_puts_the_message_on_its_field_and_stores_nothing(
    owner, product, data, form, field, message
):
    payload = None if data is None else b"not a module" if data == "text" else binary(product, data)

    response = upload_post(owner, product, payload, **form)

    assert response.status_code == 200  # a refusal, like the console's htmx forms
    body = response.json()
    assert body["ok"] is False
    assert body["error"] == response["X-Quanta-Error"]
    assert message in " ".join(body["errors"][field])
    assert not ProductFirmware.objects.exists()


def test_a_plain_refused_upload_reopens_the_dialog_with_the_message_on_its_field(owner, product):
    response = upload_post(owner, product, binary(product, 2), json=False, version="1")

    assert response.status_code == 200
    text = page_text(response)
    assert 'id="firmware-upload-dialog"' in text
    assert "data-open-on-load" in text
    assert 'id="firmware-upload-version_error"' in text
    assert "The binary&#x27;s PRODUCT_VERSION is 2, but the version entered is 1" in text


def test_an_existing_version_is_refused_on_the_version_field(owner, product, user):
    uploaded(product, user, 1)

    response = upload_post(owner, product, binary(product, 1))

    assert response["X-Quanta-Error"] == "conflict"
    assert "Version 1 already exists" in response.json()["errors"]["version"][0]


def test_an_oversized_upload_is_refused_on_the_file_field(owner, product, settings):
    settings.QUANTA_FIRMWARE_MAX_BYTES = 1024

    response = upload_post(owner, product, binary(product, 1))

    assert response["X-Quanta-Error"] == "bad_request"
    assert "firmware binaries are at most 1,024 bytes" in response.json()["errors"]["file"][0]
    assert not ProductFirmware.objects.exists()


@pytest.mark.parametrize("role", ROLES)
def test_uploading_follows_the_permission_table(product, user, role):
    client = role_client(product, role, user)

    response = upload_post(client, product, binary(product, 1))

    if role_can(role, "firmware.upload"):
        assert response.status_code == 200
        assert ProductFirmware.objects.filter(product=product).count() == 1
    else:
        assert response.status_code == 403
        assert "403.html" in [template.name for template in response.templates]
        assert not ProductFirmware.objects.exists()


# --- editing and deleting ----------------------------------------------------------------------------------
def test_the_edit_dialog_loads_prefilled_and_saves(owner, product, user):
    uploaded(product, user, 1, "Old title")

    dialog = owner.get(url(product, "edit", 1), **HTMX)
    assert dialog.status_code == 200
    assert 'id="firmware-edit-dialog"' in dialog.content.decode()
    assert 'value="Old title"' in dialog.content.decode()
    assert "<html" not in dialog.content.decode()

    response = owner.post(
        url(product, "edit", 1),
        {"title": "New title", "description": "Now with notes"},
        **HTMX,
        HTTP_HX_CURRENT_URL=f"http://testserver{url(product)}",
    )

    assert response.status_code == 204
    assert response["HX-Redirect"] == url(product)
    assert ProductFirmware.objects.values_list("title", "description").get() == (
        "New title",
        "Now with notes",
    )
    assert "Saved version 1, “New title”." in page_text(owner.get(url(product)))


def test_an_edit_from_the_list_under_the_products_id_returns_to_the_list(owner, product, user):
    uploaded(product, user, 1)

    response = owner.post(
        url(product, "edit", 1),
        {"title": "Renamed"},
        **HTMX,
        HTTP_HX_CURRENT_URL=f"http://testserver/products/{product.id}/firmware/",
    )

    assert response["HX-Redirect"] == url(product)


def test_an_edit_from_the_versions_page_returns_there(owner, product, user):
    uploaded(product, user, 1)

    response = owner.post(url(product, "edit", 1), {"title": "Renamed"}, **HTMX)

    assert response["HX-Redirect"] == url(product, version=1)


def test_a_refused_edit_comes_back_in_place(owner, product, user):
    uploaded(product, user, 1, "Kept")

    response = owner.post(url(product, "edit", 1), {"title": " ", "description": ""}, **HTMX)

    assert response.status_code == 200
    assert response["X-Quanta-Error"]
    text = page_text(response)
    assert text.startswith("<form")
    assert "Give the firmware a title" in text
    assert ProductFirmware.objects.get().title == "Kept"


def test_a_plain_get_of_a_dialog_opens_it_on_the_versions_page(owner, product, user):
    uploaded(product, user, 1)

    text = page_text(owner.get(url(product, "edit", 1)))

    assert "<html" in text
    assert 'id="firmware-edit-dialog"' in text
    assert "data-open-on-load" in text


def test_a_never_released_version_is_deleted(owner, product, user):
    uploaded(product, user, 1)

    dialog = page_text(owner.get(url(product, "delete", 1), **HTMX))
    assert "Delete v1?" in dialog
    assert "This cannot be undone." in dialog

    response = owner.post(url(product, "delete", 1), **HTMX)

    assert response.status_code == 204
    assert response["HX-Redirect"] == url(product)
    assert not ProductFirmware.objects.exists()


def test_a_released_version_is_kept_and_the_dialog_says_why(owner, product, user):
    firmware = uploaded(product, user, 1)
    devices(product, user, 1, version=1)
    released(product, user, firmware)

    assert "It has been released, so it is kept" in page_text(owner.get(url(product, "delete", 1), **HTMX))
    response = owner.post(url(product, "delete", 1), **HTMX)

    assert response.status_code == 200
    assert response["X-Quanta-Error"] == "conflict"
    assert "Version 1 has been released, so it is kept." in page_text(response)
    assert ProductFirmware.objects.exists()


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.VIEWER])
def test_roles_that_may_not_upload_may_not_edit_or_delete(product, user, role):
    uploaded(product, user, 1, "Kept")
    client = role_client(product, role, user)

    for path in ("edit", "delete"):
        assert client.get(url(product, path, 1)).status_code == 403
        assert client.post(url(product, path, 1), {"title": "Changed"}).status_code == 403

    assert ProductFirmware.objects.values_list("title", flat=True).get() == "Kept"


# --- releasing ---------------------------------------------------------------------------------------------
def test_the_release_dialog_starts_from_where_the_version_is_released(owner, product, user):
    group_create(actor=user, product=product, name="bench", color="#0d9488")
    group_create(actor=user, product=product, name="field", color="#2563eb")
    firmware = uploaded(product, user, 1)
    devices(product, user, 1, version=1)
    released(product, user, firmware, groups=["bench"])

    text = page_text(owner.get(url(product, "release", 1), **HTMX))

    assert 'id="firmware-release-dialog"' in text
    assert "data-open-on-load" in text
    assert re.search(r'name="product_default" value="on" id="firmware-release-default" checked', text)
    assert re.search(r'value="bench" checked', text)
    assert not re.search(r'value="field" checked', text)
    assert "unticking <strong>Product default</strong> leaves the product with no default" in text


def test_releasing_through_the_dialog(owner, product, user):
    group = group_create(actor=user, product=product, name="bench", color="#0d9488")
    uploaded(product, user, 1)
    running = devices(product, user, 3, version=1)
    devices_groups_add(actor=user, product=product, device_ids=[running[0].id], names=[group.name])

    response = owner.post(
        url(product, "release", 1),
        {"product_default": "on", "groups": ["bench"], "intelligent": "on"},
        **HTMX,
    )

    assert response.status_code == 204
    assert response["HX-Redirect"] == url(product, version=1)
    releases = FirmwareRelease.objects.filter(product=product)
    assert sorted((r.group_id is None, r.intelligent) for r in releases) == [(False, True), (True, True)]
    assert "Released version 1 to the product default and bench." in page_text(
        owner.get(url(product, version=1))
    )


def test_unticking_the_product_default_takes_it_away(owner, product, user):
    firmware = uploaded(product, user, 1)
    devices(product, user, 1, version=1)
    released(product, user, firmware)

    response = owner.post(url(product, "release", 1), {}, **HTMX)

    assert response.status_code == 204
    assert not FirmwareRelease.objects.exists()


def test_a_version_no_device_has_run_is_refused_in_the_dialog(owner, product, user):
    uploaded(product, user, 4)

    response = owner.post(url(product, "release", 4), {"product_default": "on"}, **HTMX)

    assert response.status_code == 200
    assert response["X-Quanta-Error"] == "conflict"
    text = page_text(response)
    assert text.startswith("<form")
    assert 'role="alert"' in text
    assert "Version 4 has not run on any device of this product yet. Lock a device to it" in text
    assert not FirmwareRelease.objects.exists()


def test_an_unknown_group_is_refused_on_the_groups(owner, product, user):
    uploaded(product, user, 1)
    devices(product, user, 1, version=1)

    response = owner.post(url(product, "release", 1), {"groups": ["nowhere"]}, **HTMX)

    text = page_text(response)
    assert 'id="firmware-release-groups-error"' in text
    assert "Unknown group in this product: &#x27;nowhere&#x27;" in text
    assert 'value="nowhere" checked' in text
    assert not FirmwareRelease.objects.exists()


@pytest.mark.parametrize("role", [Role.DEVELOPER, Role.SUPPORT, Role.VIEWER])
def test_roles_that_may_not_release_get_403_and_nothing_changes(product, user, role):
    uploaded(product, user, 1)
    devices(product, user, 1, version=1)
    client = role_client(product, role, user)

    assert client.get(url(product, "release", 1)).status_code == 403
    assert client.get(url(product, "release/impact", 1)).status_code == 403
    response = client.post(url(product, "release", 1), {"product_default": "on"})

    assert response.status_code == 403
    assert "403.html" in [template.name for template in response.templates]
    assert not FirmwareRelease.objects.exists()


def test_the_impact_counts_the_devices_that_would_update_by_what_they_run(owner, product, user):
    group = group_create(actor=user, product=product, name="bench", color="#0d9488")
    on_v1 = devices(product, user, 2, version=1)
    devices(product, user, 1, version=2)
    devices(product, user, 2, version=None)
    uploaded(product, user, 2)
    devices_groups_add(actor=user, product=product, device_ids=[on_v1[0].id], names=[group.name])
    impact = url(product, "release/impact", 2)

    as_default = page_text(owner.get(impact, {"product_default": "on"}, **HTMX))
    nowhere = page_text(owner.get(impact, **HTMX))
    to_bench = page_text(owner.get(impact, {"groups": "bench"}, **HTMX))

    assert re.search(r'data-impact-total>4</strong> devices will update to <span class="mono">v2', as_default)
    assert "2 from v1, 2 never reported" in as_default
    assert re.search(r"data-impact-total>No</strong> devices will update", nowhere)
    assert re.search(r"data-impact-total>1</strong> device will update", to_bench)
    assert "1 from v1" in to_bench
    unknown = page_text(owner.get(impact, {"groups": "nowhere"}, **HTMX))
    assert "Unknown group in this product" in unknown


def test_the_impact_says_what_else_the_release_changes(owner, product, user):
    group_create(actor=user, product=product, name="bench", color="#0d9488")
    first, second = uploaded(product, user, 1), uploaded(product, user, 2)
    devices(product, user, 1, version=1)
    devices(product, user, 1, version=2)
    released(product, user, first, groups=["bench"])

    replaces = page_text(
        owner.get(url(product, "release/impact", 2), {"product_default": "on", "groups": "bench"})
    )
    assert "Replaces v1 as the product default." in replaces
    assert "bench moves from v1 to v2." in replaces

    released(product, user, second)
    taken = page_text(owner.get(url(product, "release/impact", 2)))
    assert "v2 stops being the product default" in taken


def test_the_dialog_shows_the_impact_when_it_opens(owner, product, user):
    devices(product, user, 3, version=1)
    firmware = uploaded(product, user, 1)
    uploaded(product, user, 2)
    devices(product, user, 1, version=2)
    released(product, user, firmware)

    text = page_text(owner.get(url(product, "release", 2), **HTMX))

    assert "Replaces v1 as the product default." not in text  # v2 starts unticked
    assert re.search(r"data-impact-total>No</strong> devices", text)


# --- downloading -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", [Role.OWNER, Role.VIEWER])
def test_the_binary_downloads_as_an_attachment(product, user, role):
    data = binary(product, 1)
    firmware_upload(actor=user, product=product, data=data, version=1, title="First")

    response = role_client(product, role, user).get(url(product, "download", 1))

    assert response.status_code == 200
    assert response.content == data
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == f'attachment; filename="{product.slug}-v1.bin"'
