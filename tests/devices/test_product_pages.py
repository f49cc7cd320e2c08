"""A product's Devices page (/products/<product>/devices/): the list for each role, its search,
filters, sorts and pages, the Quarantined tab, approving, denying and removing devices, and the
Import dialog's endpoint."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from console.accounts.models import User
from console.models import AuditEntry
from console.permissions import Role
from console.platforms import PLATFORMS
from devices.models import Device, ProductDenial
from devices.services import devices_provision
from products.models import Membership, Product
from products.services import product_create
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

BORON = PLATFORMS[13]
ARGON = PLATFORMS[12]
TABLE = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "device-table"}
MANAGERS = [Role.OWNER, Role.ADMINISTRATOR]
OTHERS = [Role.DEVELOPER, Role.SUPPORT, Role.VIEWER]


# --- helpers ----------------------------------------------------------------------------------------
def provision(count: int = 1, *, platform=BORON, owner=None, product=None) -> list[Device]:
    return [p.device for p in devices_provision(platform=platform, count=count, owner=owner, product=product)]


def named(product: Product, *names: str, **fields) -> list[Device]:
    devices = provision(len(names), product=product)
    for device, name in zip(devices, names, strict=True):
        Device.objects.filter(pk=device.pk).update(name=name, **fields)
        device.refresh_from_db()
    return devices


def url(product: Product, suffix: str = "") -> str:
    return f"/products/{product.slug}/devices/{suffix}"


def row_ids(response) -> list[str]:
    return re.findall(r'<tr data-device-id="([0-9a-f]{24})"', response.content.decode())


def row_names(response) -> list[str]:
    return re.findall(r'class="device-name"[^>]*title="([^"]+)"', response.content.decode())


def state() -> tuple:
    """Everything the page's actions may change."""
    return (
        sorted(Device.objects.values_list("id", "product_id", "quarantined", "owner_id")),
        sorted(ProductDenial.objects.values_list("device_id", "product_id")),
        AuditEntry.objects.count(),
    )


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def as_role(product: Product, role: Role) -> Client:
    if role == Role.OWNER:
        return signed_in(product.owner)
    someone = User.objects.create_user(
        email=f"{role.value}-{secrets.token_hex(3)}@example.com", password=PASSWORD
    )
    Membership.objects.create(product=product, user=someone, role=role)
    return signed_in(someone)


def id_file(*lines: str, name: str = "ids.txt"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, "".join(f"{line}\n" for line in lines).encode(), "text/plain")


@pytest.fixture
def product(user) -> Product:
    return product_create(user=user, name="Greenhouse", platform_id=BORON.id)


@pytest.fixture
def owner(product) -> Client:
    return signed_in(product.owner)


@pytest.fixture
def fleet(product) -> dict[str, Device]:
    """Five devices: two online, one quarantined, different firmware and last-heard times."""
    now = timezone.now()
    alder, birch, cedar, elm, fern = named(product, "alder", "birch", "cedar", "elm", "fern")
    updates = {
        alder: {"online": True, "firmware_version": 5, "last_heard": now - timedelta(minutes=1)},
        birch: {"firmware_version": None, "last_heard": None},
        cedar: {"online": True, "firmware_version": 3, "last_heard": now - timedelta(hours=2)},
        elm: {"quarantined": True, "firmware_version": 1, "last_heard": now - timedelta(days=3)},
        fern: {"firmware_version": 4, "last_heard": now - timedelta(days=1)},
    }
    for device, fields in updates.items():
        Device.objects.filter(pk=device.pk).update(**fields)
    return {device.name: device for device in (alder, birch, cedar, elm, fern)}


# --- The list -----------------------------------------------------------------------------------------
def test_the_list_requires_sign_in(client, product):
    response = client.get(url(product))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("role", list(Role))
def test_every_role_sees_the_devices_and_only_managers_the_actions(product, fleet, role):
    response = as_role(product, role).get(url(product))

    assert response.status_code == 200
    html = response.content.decode()
    assert row_names(response) == ["alder", "birch", "cedar", "elm", "fern"]
    manager = role in MANAGERS
    assert ('data-open-dialog="import-dialog"' in html) is manager
    assert ('id="import-dialog"' in html) is manager
    assert (f'action="{url(product, fleet["elm"].id + "/approve/")}"' in html) is manager
    assert (f'data-device-action="{url(product, fleet["elm"].id + "/deny/")}"' in html) is manager
    assert (f'data-device-action="{url(product, fleet["alder"].id + "/remove/")}"' in html) is manager
    # A quarantined device is approved or denied, not removed.
    assert f'data-device-action="{url(product, fleet["elm"].id + "/remove/")}"' not in html


def test_a_row_shows_the_id_status_firmware_owner_last_heard_and_quarantine(
    owner, user, other_user, product, fleet
):
    Device.objects.filter(pk=fleet["alder"].pk).update(owner=other_user)
    Device.objects.filter(pk=fleet["cedar"].pk).update(owner=user)

    html = owner.get(url(product)).content.decode()
    rows = dict(re.findall(r'<tr data-device-id="([0-9a-f]{24})"[^>]*>(.*?)</tr>', html, re.S))

    alder, birch, cedar, elm = (rows[fleet[name].id] for name in ("alder", "birch", "cedar", "elm"))
    assert f'data-copy-text="{fleet["alder"].id}"' in alder
    assert 'data-device-status="online"' in alder
    assert "v5" in alder
    assert "grace@example.com" in alder
    # Every row links to the device's page in the product, whoever owns the device.
    assert f'href="{url(product, fleet["alder"].id)}/"' in alder
    assert 'data-device-status="offline"' in birch
    assert "Never" in birch
    assert "—" in birch  # no firmware, no owner
    assert f'href="{url(product, fleet["cedar"].id)}/"' in cedar
    assert "(you)" in cedar
    assert "Quarantined" in elm
    assert "Quarantined" not in alder


def test_the_tabs_count_all_and_quarantined_devices(owner, product, fleet):
    html = owner.get(url(product)).content.decode()
    assert re.search(r'aria-current="page">All devices <span class="badge">5</span>', html)
    assert re.search(r'Quarantined <span class="badge badge-warning">1</span>', html)


def test_only_the_products_devices_are_listed(owner, user, product, fleet):
    other = product_create(user=user, name="Orchard", platform_id=BORON.id)
    named(other, "orchard-device")
    provision(1, owner=user)  # the user's own device, in no product
    assert row_names(owner.get(url(product))) == ["alder", "birch", "cedar", "elm", "fern"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=ER", ["alder", "fern"]),  # part of a name, whatever the case
        ("status=online", ["alder", "cedar"]),
        ("status=offline", ["birch", "elm", "fern"]),
        ("q=e&status=online", ["alder", "cedar"]),
        ("tab=quarantined", ["elm"]),
        ("tab=quarantined&status=online", []),
        ("sort=-name", ["fern", "elm", "cedar", "birch", "alder"]),
        ("sort=-last_heard", ["alder", "cedar", "fern", "elm", "birch"]),  # never heard: last
        ("sort=last_heard", ["birch", "elm", "fern", "cedar", "alder"]),
        ("sort=-firmware_version", ["alder", "fern", "cedar", "elm", "birch"]),  # none: last
        ("sort=firmware_version", ["birch", "elm", "cedar", "fern", "alder"]),
        ("sort=color&status=sometimes", ["alder", "birch", "cedar", "elm", "fern"]),  # ignored
    ],
)
def test_search_filters_and_sorts(owner, product, fleet, query, expected):
    assert row_names(owner.get(f"{url(product)}?{query}")) == expected


def test_search_by_the_start_of_an_id(owner, product, fleet):
    device = fleet["birch"]
    assert row_ids(owner.get(f"{url(product)}?q={device.id[:10].upper()}")) == [device.id]
    assert row_ids(owner.get(f"{url(product)}?q={device.id[3:12]}")) == []  # a prefix, not any part


def test_a_search_without_results_says_so_and_offers_the_whole_list(owner, product, fleet):
    html = owner.get(f"{url(product)}?q=nothing-like-it").content.decode()
    assert "No devices match “nothing-like-it”" in html
    assert "Show all devices" in html


def test_the_quarantined_tab_explains_itself_when_empty(owner, product):
    named(product, "alder")
    html = owner.get(f"{url(product)}?tab=quarantined").content.decode()
    assert "No devices waiting for approval" in html


def test_the_table_alone_answers_htmx(owner, product, fleet):
    response = owner.get(f"{url(product)}?q=ce", **TABLE)
    html = response.content.decode()
    assert "<html" not in html
    assert row_names(response) == ["cedar"]
    assert "HX-Target" in response["Vary"]


def test_pages_of_fifty(owner, product):
    devices = provision(120, product=product)
    first = owner.get(url(product))
    third = owner.get(f"{url(product)}?page=3")
    beyond = owner.get(f"{url(product)}?page=99")  # the last page

    assert len(row_ids(first)) == 50
    assert len(row_ids(third)) == 20
    assert row_ids(beyond) == row_ids(third)
    names = sorted((device.name, device.id) for device in devices)
    assert row_ids(third) == [device_id for _, device_id in names[100:]]
    html = third.content.decode()
    assert "101–120 of 120 devices" in html
    assert "Page 3 of 3" in html
    assert 'rel="prev"' in html
    assert 'rel="next"' not in html


def test_an_empty_product_explains_how_devices_join(product, owner):
    html = owner.get(url(product)).content.decode()
    assert "No devices in Greenhouse yet" in html
    assert "Import their device IDs" in html
    assert f"Product ID <code>{product.id}</code> asks to join" in html
    assert 'data-open-dialog="import-dialog"' in html
    assert f"particle product device add {product.id} --file device_ids.txt" in html


def test_an_empty_product_for_a_viewer_names_who_imports(product):
    html = as_role(product, Role.VIEWER).get(url(product)).content.decode()
    assert "Owners and administrators of the team import devices." in html
    assert "import-dialog" not in html


def test_the_product_is_found_by_id_or_slug_and_another_teams_is_404(owner, other_user, product, fleet):
    assert owner.get(f"/products/{product.id}/devices/").status_code == 200
    theirs = product_create(user=other_user, name="Theirs", platform_id=BORON.id)
    assert owner.get(url(theirs)).status_code == 404
    assert owner.get("/products/no-such-product/devices/").status_code == 404


def test_the_sidebar_lists_devices_in_the_product_context(owner, product):
    html = owner.get(url(product)).content.decode()
    context = html[html.index("data-nav-context") : html.index("sidebar-spacer")]
    links = re.findall(
        r'<a class="nav-link" href="([^"]+)"[^>]*>\s*<svg[^>]*><use[^>]*></use></svg><span>(\w+)', context
    )
    assert (url(product), "Devices") in links
    assert re.search(rf'href="{url(product)}" aria-current="page"', context)


@pytest.mark.parametrize("size", [5, 60])
def test_the_number_of_queries_does_not_grow_with_the_devices(
    owner, user, product, size, django_assert_max_num_queries
):
    devices = provision(size, product=product)
    Device.objects.filter(pk__in=[device.pk for device in devices[::2]]).update(owner=user, quarantined=True)
    # The session and its user, the product and role, the product's groups (the group filter), the
    # tabs' counts, the page of devices and their groups.
    with django_assert_max_num_queries(7):
        response = owner.get(url(product))
    assert len(row_ids(response)) == min(size, 50)
    # A search adds its count.
    with django_assert_max_num_queries(8):
        owner.get(f"{url(product)}?q=a&status=offline&sort=-last_heard&tab=quarantined")


# --- Approve, deny, remove ------------------------------------------------------------------------------
@pytest.mark.parametrize("role", MANAGERS)
def test_managers_approve_a_quarantined_device(product, fleet, role):
    elm = fleet["elm"]
    response = as_role(product, role).post(url(product, f"{elm.id}/approve/"), follow=True)

    elm.refresh_from_db()
    assert (elm.product_id, elm.quarantined) == (product.id, False)
    assert response.redirect_chain[-1][0] == url(product)
    assert f"Approved elm ({elm.id}). It is in Greenhouse now." in response.content.decode()
    assert AuditEntry.objects.filter(action="product.devices_import").count() == 1


@pytest.mark.parametrize("role", MANAGERS)
def test_managers_deny_a_quarantined_device(product, fleet, role):
    elm = fleet["elm"]
    response = as_role(product, role).post(url(product, f"{elm.id}/deny/"), follow=True)

    elm.refresh_from_db()
    assert (elm.product_id, elm.quarantined) == (None, False)
    assert ProductDenial.objects.filter(device=elm, product=product).exists()
    assert "It is refused when it asks to join again" in response.content.decode()


@pytest.mark.parametrize("role", MANAGERS)
@pytest.mark.parametrize("deny", [False, True])
def test_managers_remove_a_device_and_may_deny_it(product, fleet, role, deny):
    alder = fleet["alder"]
    data = {"deny": "on"} if deny else {}
    response = as_role(product, role).post(url(product, f"{alder.id}/remove/"), data, follow=True)

    alder.refresh_from_db()
    assert alder.product_id is None
    assert ProductDenial.objects.filter(device=alder, product=product).exists() is deny
    html = response.content.decode()
    assert f"Removed alder ({alder.id}) from Greenhouse." in html
    assert ("It is denied" in html) is deny
    assert row_names(response) == ["birch", "cedar", "elm", "fern"]


@pytest.mark.parametrize("role", OTHERS)
@pytest.mark.parametrize("action", ["approve", "deny", "remove"])
def test_other_roles_may_not_approve_deny_or_remove(product, fleet, role, action):
    client = as_role(product, role)
    before = state()
    device = fleet["elm"] if action != "remove" else fleet["alder"]
    response = client.post(url(product, f"{device.id}/{action}/"), {"deny": "on"})
    assert response.status_code == 403
    assert state() == before


@pytest.mark.parametrize("action", ["approve", "deny", "remove"])
def test_actions_on_a_device_outside_the_product_are_404(owner, user, product, action):
    outside = provision(1, owner=user)[0]
    before = state()
    assert owner.post(url(product, f"{outside.id}/{action}/")).status_code == 404
    assert owner.post(url(product, f"{'0' * 24}/{action}/")).status_code == 404
    assert state() == before


@pytest.mark.parametrize("action", ["approve", "deny", "remove", "import"])
def test_actions_take_only_posts(owner, product, fleet, action):
    path = url(product, "import/") if action == "import" else url(product, f"{fleet['elm'].id}/{action}/")
    assert owner.get(path).status_code == 405


def test_approving_a_device_claimed_outside_the_team_is_refused(owner, other_user, product, fleet):
    elm = fleet["elm"]
    Device.objects.filter(pk=elm.pk).update(owner=other_user)
    response = owner.post(url(product, f"{elm.id}/approve/"), follow=True)
    elm.refresh_from_db()
    assert (elm.product_id, elm.quarantined) == (product.id, True)
    assert "it is claimed by someone outside your team" in response.content.decode()


def test_approving_a_device_not_in_quarantine_changes_nothing(owner, product, fleet):
    before = state()
    response = owner.post(url(product, f"{fleet['alder'].id}/approve/"), follow=True)
    assert "is not waiting for approval" in response.content.decode()
    assert state() == before


def test_an_action_goes_back_to_the_list_it_came_from_and_nowhere_else(owner, product, fleet):
    back = f"{url(product)}?tab=quarantined&q=e"
    response = owner.post(url(product, f"{fleet['elm'].id}/approve/"), {"next": back})
    assert response["Location"] == back
    for elsewhere in ("https://evil.example/", "/devices/", f"{url(product)}//evil.example"):
        response = owner.post(url(product, f"{fleet['alder'].id}/remove/"), {"next": elsewhere})
        assert response["Location"] == url(product)
        Device.objects.filter(pk=fleet["alder"].pk).update(product=product)


def test_actions_need_the_csrf_token(product, fleet):
    client = Client(enforce_csrf_checks=True)
    client.force_login(product.owner)
    before = state()
    assert client.post(url(product, f"{fleet['elm'].id}/deny/")).status_code == 403
    assert state() == before


# --- Import ---------------------------------------------------------------------------------------------
def test_import_answers_a_report_in_every_category(owner, user, other_user, product, fleet):
    joining = provision(2)
    claimed_by_teammate = provision(1, owner=user)[0]
    claimed_outside = provision(1, owner=other_user)[0]
    argon = provision(1, platform=ARGON)[0]
    unknown = secrets.token_hex(12)
    upload = id_file(
        joining[0].id,
        joining[1].id.upper(),
        claimed_by_teammate.id,
        fleet["alder"].id,
        fleet["elm"].id,  # quarantined: approved
        claimed_outside.id,
        argon.id,
        unknown,
        "not-an-id",
        "",
    )

    response = owner.post(url(product, "import/"), {"file": upload})

    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    result = body["result"]
    added = [joining[0].id, joining[1].id, claimed_by_teammate.id, fleet["elm"].id]
    assert result["updated"] == 4
    assert result["updatedDeviceIds"] == added
    assert result["existingDeviceIds"] == [fleet["alder"].id]
    assert result["nonmemberDeviceIds"] == [claimed_outside.id]
    assert result["invalidDeviceIds"] == ["not-an-id", argon.id, unknown]
    assert result["otherPlatformDeviceIds"] == [argon.id]
    in_product = Device.objects.filter(product=product, quarantined=False).values_list("id", flat=True)
    assert set(added) <= set(in_product)
    entry = AuditEntry.objects.get(action="product.devices_import")
    assert entry.metadata == {"added": 4, "existing": 1, "nonmember": 1, "invalid": 3}


NO_IDS = "The file holds no device IDs: put one device ID on each line."
NOT_TEXT = "That is not a text file. Upload a .txt file with one device ID per line."
NOT_UTF8 = "That is not a UTF-8 text file. Upload a .txt file with one device ID per line."


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", NO_IDS),
        (b"\n  \n", NO_IDS),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", NOT_TEXT),
        (b"\xff\xfe\xfd", NOT_UTF8),
    ],
    ids=["empty", "blank-lines", "binary", "not-utf8"],
)
def test_files_that_cannot_be_read_are_refused_with_a_message(owner, product, fleet, raw, message):
    from django.core.files.uploadedfile import SimpleUploadedFile

    before = state()
    response = owner.post(url(product, "import/"), {"file": SimpleUploadedFile("ids.txt", raw)})
    assert response.status_code == 400
    assert response.json() == {"ok": False, "error": message, "field": "file"}
    assert state() == before


def test_an_oversized_file_is_refused(owner, product, settings):
    settings.QUANTA_IMPORT_MAX_BYTES = 100
    before = state()
    response = owner.post(
        url(product, "import/"), {"file": id_file(*[secrets.token_hex(12) for _ in range(5)])}
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith(
        "The file is 125 bytes; imports take files of at most 100 bytes"
    )
    assert state() == before


def test_too_many_ids_are_refused(owner, product, settings):
    settings.QUANTA_IMPORT_MAX_IDS = 2
    before = state()
    response = owner.post(
        url(product, "import/"), {"file": id_file(*[secrets.token_hex(12) for _ in range(3)])}
    )
    assert response.status_code == 400
    assert "An import takes at most 2 device IDs; this one has 3." in response.json()["error"]
    assert state() == before


def test_an_import_without_a_file_asks_for_one(owner, product):
    response = owner.post(url(product, "import/"), {})
    assert response.status_code == 400
    assert response.json()["error"] == "Choose a .txt file with one device ID per line."


@pytest.mark.parametrize("role", OTHERS)
def test_other_roles_may_not_import(product, role):
    candidate = provision(1)[0]
    before = state()
    response = as_role(product, role).post(url(product, "import/"), {"file": id_file(candidate.id)})
    assert response.status_code == 403
    assert response.json()["ok"] is False
    assert state() == before


def test_import_into_another_teams_product_is_404(owner, other_user):
    theirs = product_create(user=other_user, name="Theirs", platform_id=BORON.id)
    candidate = provision(1)[0]
    before = state()
    response = owner.post(url(theirs, "import/"), {"file": id_file(candidate.id)})
    assert response.status_code == 404
    assert response.json() == {"ok": False, "error": "No such product on your teams.", "field": None}
    assert state() == before


def test_import_needs_the_csrf_token(product):
    client = Client(enforce_csrf_checks=True)
    client.force_login(product.owner)
    candidate = provision(1)[0]
    before = state()
    response = client.post(url(product, "import/"), {"file": id_file(candidate.id)})
    assert response.status_code == 403
    assert state() == before


def test_the_import_dialog_carries_the_servers_limit(owner, product, settings):
    settings.QUANTA_IMPORT_MAX_BYTES = 123456
    html = owner.get(url(product)).content.decode()
    assert 'data-max-bytes="123456"' in html
    assert 'action="' + url(product, "import/") + '"' in html
