"""particle-api-js 12.0.3 product calls, from node, against a live server.

Each call is one node process (scripts/api_js_call.js), so the database can be checked between
calls. Products, teams and devices are made here with the services (committed: the server is
another process).
"""

from __future__ import annotations

from datetime import datetime

import pytest
from rest_framework.utils.encoders import JSONEncoder

from console.accounts.models import User
from console.models import AuditEntry
from console.permissions import Role
from console.platforms import platform_from_string
from devices.models import Device, ProductDenial
from devices.services import ProvisionedDevice, devices_provision
from products.models import Invitation, Membership, Product
from products.services import invitation_accept, product_create
from tests.clients.conftest import provision
from tests.conftest import PASSWORD

pytestmark = pytest.mark.clients

API_JS_VERSION = "12.0.3"
UNPROVISIONED_ID = "0123456789abcdef01234567"
IMPORT_KEYS = (
    "updatedDeviceIds",
    "existingDeviceIds",
    "nonmemberDeviceIds",
    "invalidDeviceIds",
    "protectedDeviceIds",
    "otherPlatformDeviceIds",
)
SUMMARY_KEYS = {
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
    "quarantined",
    "denied",
    "groups",
}
DETAIL_KEYS = (SUMMARY_KEYS | {"functions", "variables", "current_build_target", "default_build_target"}) | {
    "firmware_updates_enabled",
    "firmware_updates_forced",
    "desired_firmware_version",
    "targeted_firmware_release_version",
}


def succeeded(outcome: dict, status: int = 200) -> dict | list:
    assert outcome["ok"], outcome
    assert outcome["version"] == API_JS_VERSION
    assert outcome["statusCode"] == status, outcome
    return outcome["body"]


def failed(outcome: dict, status: int) -> dict:
    assert outcome["ok"] is False, outcome
    assert outcome["statusCode"] == status, outcome
    return outcome


def api_time(moment: datetime) -> str:
    """A datetime as the API's JSON renderer writes it."""
    return JSONEncoder().default(moment)


def imported(**ids: list[str]) -> dict:
    """An import response: ``updatedDeviceIds=[...]`` and so on, the other lists empty."""
    body = {key: ids.get(key, []) for key in IMPORT_KEYS}
    return {"updated": len(body["updatedDeviceIds"]), **body}


@pytest.fixture
def product(account) -> Product:
    return product_create(user=account, name="Greenhouse sensors", platform_id=13, description="Boron fleet")


@pytest.fixture
def outsider() -> User:
    return User.objects.create_user(email="outsider@example.com", password=PASSWORD)


def in_product(product: Product, platform: str = "boron") -> ProvisionedDevice:
    return devices_provision(platform=platform_from_string(platform), count=1, product=product)[0]


def product_ids(product: Product) -> set[str]:
    return set(Device.objects.filter(product=product).values_list("id", flat=True))


def product_info(product: Product) -> dict:
    return {
        "id": product.id,
        "platform_id": 13,
        "platform": "Boron",
        "name": product.name,
        "slug": product.slug,
        "description": product.description,
        "user": product.owner.email,
        "org": None,
        "groups": [],
        "settings": {"quarantine": True, "event_data_limit": product.event_data_limit},
        "created_at": api_time(product.created_at),
    }


def test_list_and_get_products(api_js, account, account_token, product, outsider):
    second = product_create(user=outsider, name="Aquarium monitors", platform_id=12)
    Membership.objects.create(product=second, user=account, role=Role.VIEWER)
    product_create(user=outsider, name="Not on this team", platform_id=13)

    listed = succeeded(api_js.call("listProducts", {"auth": account_token}))

    # The products of the user's teams, by name.
    expected_second = {
        **product_info(second),
        "platform_id": 12,
        "platform": "Argon",
    }
    assert listed == {"products": [expected_second, product_info(product)]}
    assert product.slug == "greenhouse-sensors"

    by_id = succeeded(api_js.call("getProduct", {"product": product.id, "auth": account_token}))
    by_slug = succeeded(api_js.call("getProduct", {"product": "Greenhouse-Sensors", "auth": account_token}))

    assert by_id == {"product": product_info(product)}
    assert by_slug == by_id


def test_get_unknown_or_someone_elses_product_is_not_found(api_js, account_token, outsider):
    theirs = product_create(user=outsider, name="Their fleet", platform_id=13)

    foreign = failed(api_js.call("getProduct", {"product": theirs.id, "auth": account_token}), 404)
    unknown = failed(api_js.call("getProduct", {"product": "no-such-product", "auth": account_token}), 404)

    assert foreign["shortErrorDescription"] == f"Product '{theirs.id}' not found."
    assert foreign["body"] == {
        "ok": False,
        "error": f"Product '{theirs.id}' not found.",
        "error_description": f"Product '{theirs.id}' not found.",
    }
    assert unknown["shortErrorDescription"] == "Product 'no-such-product' not found."


def test_add_one_device(api_js, account_token, product, outsider):
    unowned = provision("boron")
    theirs = provision("boron", owner=outsider)

    added = succeeded(
        api_js.call(
            "addDeviceToProduct",
            {"product": product.id, "deviceId": unowned.device.id.upper(), "auth": account_token},
        )
    )
    again = succeeded(
        api_js.call(
            "addDeviceToProduct",
            {"product": product.slug, "deviceId": unowned.device.id, "auth": account_token},
        )
    )
    refused = succeeded(
        api_js.call(
            "addDeviceToProduct", {"product": product.id, "deviceId": theirs.device.id, "auth": account_token}
        )
    )

    assert added == imported(updatedDeviceIds=[unowned.device.id])
    assert again == imported(existingDeviceIds=[unowned.device.id])
    assert refused == imported(nonmemberDeviceIds=[theirs.device.id])
    assert product_ids(product) == {unowned.device.id}
    assert Device.objects.get(pk=theirs.device.id).owner == outsider


def test_add_a_quarantined_device_approves_it(api_js, account_token, product):
    waiting = in_product(product)
    Device.objects.filter(pk=waiting.device.id).update(quarantined=True)

    approved = succeeded(
        api_js.call(
            "addDeviceToProduct",
            {"product": product.id, "deviceId": waiting.device.id, "auth": account_token},
        )
    )

    assert approved == imported(updatedDeviceIds=[waiting.device.id])
    assert Device.objects.get(pk=waiting.device.id).quarantined is False


def test_add_devices_from_a_file(api_js, account, account_token, product, outsider, tmp_path):
    unowned = provision("boron")
    mine = provision("boron", owner=account)
    already = in_product(product)
    theirs = provision("boron", owner=outsider)
    argon = provision("argon")
    lines = [
        f"  {unowned.device.id.upper()}  ",
        "",
        "not-a-device-id",
        already.device.id,
        UNPROVISIONED_ID,
        "",
        theirs.device.id,
        mine.device.id,
        argon.device.id,
        unowned.device.id,  # a repeat
        "",
        "",
    ]
    ids_file = tmp_path / "ids.txt"
    # As a spreadsheet exports it: a byte order mark and CRLF line endings.
    ids_file.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode())

    # api-js reads a path in Node and sends it as the multipart field `file`.
    body = succeeded(
        api_js.call(
            "addDeviceToProduct", {"product": product.slug, "file": str(ids_file), "auth": account_token}
        )
    )

    assert body == imported(
        updatedDeviceIds=[unowned.device.id, mine.device.id],
        existingDeviceIds=[already.device.id],
        nonmemberDeviceIds=[theirs.device.id],
        invalidDeviceIds=["not-a-device-id", UNPROVISIONED_ID, argon.device.id],
        otherPlatformDeviceIds=[argon.device.id],
    )
    assert product_ids(product) == {unowned.device.id, mine.device.id, already.device.id}
    assert Device.objects.get(pk=argon.device.id).product is None
    assert Device.objects.get(pk=theirs.device.id).product is None


def test_add_from_a_file_that_is_not_text_fails(api_js, account_token, product, tmp_path):
    binary = tmp_path / "ids.bin"
    binary.write_bytes(b"\x00\x01\x02firmware")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"\r\n\r\n")

    not_text = failed(
        api_js.call(
            "addDeviceToProduct", {"product": product.id, "file": str(binary), "auth": account_token}
        ),
        400,
    )
    blank = failed(
        api_js.call("addDeviceToProduct", {"product": product.id, "file": str(empty), "auth": account_token}),
        400,
    )

    assert not_text["shortErrorDescription"] == (
        "That is not a text file. Upload a .txt file with one device ID per line."
    )
    assert not_text["body"]["field"] == "file"
    assert blank["shortErrorDescription"] == "The file holds no device IDs: put one device ID on each line."
    assert not AuditEntry.objects.filter(action="product.devices_import").exists()


def test_a_viewer_cannot_import(api_js, account, account_token, outsider):
    theirs = product_create(user=outsider, name="Shared fleet", platform_id=13)
    Membership.objects.create(product=theirs, user=account, role=Role.VIEWER)
    unowned = provision("boron")

    refused = failed(
        api_js.call(
            "addDeviceToProduct", {"product": theirs.id, "deviceId": unowned.device.id, "auth": account_token}
        ),
        403,
    )

    assert refused["shortErrorDescription"] == "Your role does not allow device import."
    assert Device.objects.get(pk=unowned.device.id).product is None


def test_team_invite_accept_and_remove(api_js, account, account_token, product, outsider):
    owner_entry = {
        "username": account.email,
        "role": {"id": "owner", "name": "Owner"},
        "joined_at": api_time(Membership.objects.get(product=product, user=account).created_at),
    }

    alone = succeeded(api_js.call("listTeamMembers", {"product": product.id, "auth": account_token}))

    assert alone == {"ok": True, "team": [owner_entry], "invitations": []}

    invited = succeeded(
        api_js.call(
            "inviteTeamMember",
            {"product": product.slug, "username": "Outsider@Example.com", "auth": account_token},
        )
    )

    invitation = Invitation.objects.get(product=product)
    pending = {
        "username": outsider.email,
        "role": {"id": "developer", "name": "Developer"},  # api-js sends no role
        "invited_at": api_time(invitation.created_at),
        "invited_by": account.email,
    }
    assert invited == {"ok": True, "invited": pending}
    assert invitation.user == outsider
    assert not Membership.objects.filter(product=product, user=outsider).exists()  # until they accept
    assert succeeded(api_js.call("listTeamMembers", {"product": product.id, "auth": account_token})) == {
        "ok": True,
        "team": [owner_entry],
        "invitations": [pending],
    }

    membership = invitation_accept(user=outsider, invitation=invitation)
    team = succeeded(api_js.call("listTeamMembers", {"product": product.slug, "auth": account_token}))

    assert team == {
        "ok": True,
        "team": [
            owner_entry,
            {
                "username": outsider.email,
                "role": {"id": "developer", "name": "Developer"},
                "joined_at": api_time(membership.created_at),
            },
        ],
        "invitations": [],
    }

    removed = succeeded(
        api_js.call(
            "removeTeamMember", {"product": product.id, "username": outsider.email, "auth": account_token}
        )
    )

    assert removed == {"ok": True}
    assert list(Membership.objects.filter(product=product).values_list("user__email", flat=True)) == [
        account.email
    ]
    assert AuditEntry.objects.filter(action="team.remove", subject_user=outsider, via="api").exists()


def test_team_invite_errors_and_cancel(api_js, account, account_token, product, outsider):
    unknown = failed(
        api_js.call(
            "inviteTeamMember",
            {"product": product.id, "username": "nobody@example.com", "auth": account_token},
        ),
        400,
    )
    owner = failed(
        api_js.call(
            "inviteTeamMember", {"product": product.id, "username": account.email, "auth": account_token}
        ),
        409,
    )
    succeeded(
        api_js.call(
            "inviteTeamMember", {"product": product.id, "username": outsider.email, "auth": account_token}
        )
    )
    twice = failed(
        api_js.call(
            "inviteTeamMember", {"product": product.id, "username": outsider.email, "auth": account_token}
        ),
        409,
    )

    assert unknown["shortErrorDescription"] == (
        "No account uses nobody@example.com. Ask them to sign up first, then invite them."
    )
    assert owner["shortErrorDescription"] == f"{account.email} is already on this product's team."
    assert twice["shortErrorDescription"] == f"{outsider.email} has already been invited."

    # Removing someone who was invited but has not answered withdraws the invitation.
    cancelled = succeeded(
        api_js.call(
            "removeTeamMember", {"product": product.id, "username": outsider.email, "auth": account_token}
        )
    )
    owner_removed = failed(
        api_js.call(
            "removeTeamMember", {"product": product.id, "username": account.email, "auth": account_token}
        ),
        403,
    )

    assert cancelled == {"ok": True}
    assert not Invitation.objects.filter(product=product).exists()
    assert owner_removed["shortErrorDescription"] == "The product's owner cannot be removed from its team."
    assert Membership.objects.get(product=product, user=account).role == Role.OWNER


def test_list_product_devices(api_js, account_token, product, connect_device):
    devices = sorted((in_product(product) for _ in range(3)), key=lambda p: p.device.name)
    provision("boron")  # outside the product
    connect_device(devices[0])

    first = succeeded(api_js.call("listDevices", {"product": product.id, "auth": account_token}))

    assert set(first) == {"devices", "customers", "meta"}
    assert first["customers"] == []
    assert first["meta"] == {"page": 1, "per_page": 25, "total_pages": 1, "total": 3}
    assert [entry["id"] for entry in first["devices"]] == [p.device.id for p in devices]
    entry = first["devices"][0]
    assert set(entry) == SUMMARY_KEYS
    assert entry["name"] == devices[0].device.name
    assert entry["product_id"] == product.id
    assert entry["platform_id"] == 13
    assert entry["online"] is entry["connected"] is True
    assert entry["quarantined"] is False
    assert entry["denied"] is False
    assert entry["groups"] == []
    assert entry["owner"] is None
    assert entry["serial_number"] == devices[0].device.serial_number
    assert first["devices"][1]["online"] is False

    # api-js sends perPage as per_page.
    second = succeeded(
        api_js.call("listDevices", {"product": product.slug, "page": 2, "perPage": 2, "auth": account_token})
    )
    by_id = succeeded(
        api_js.call(
            "listDevices",
            {"product": product.id, "deviceId": devices[1].device.id[:10].upper(), "auth": account_token},
        )
    )

    assert second["meta"] == {"page": 2, "per_page": 2, "total_pages": 2, "total": 3}
    assert [entry["id"] for entry in second["devices"]] == [devices[2].device.id]
    assert [entry["id"] for entry in by_id["devices"]] == [devices[1].device.id]

    grouped = succeeded(
        api_js.call(
            "listDevices", {"product": product.id, "groups": ["asia", "europe"], "auth": account_token}
        )
    )

    assert grouped == {
        "devices": [],
        "customers": [],
        "meta": {"page": 1, "per_page": 25, "total_pages": 1, "total": 0},
    }


def test_get_product_device(api_js, account_token, product, connect_device):
    provisioned = in_product(product)
    outside = provision("boron")
    connect_device(provisioned)

    by_id = succeeded(
        api_js.call(
            "getDevice", {"deviceId": provisioned.device.id, "product": product.id, "auth": account_token}
        )
    )
    by_name = succeeded(
        api_js.call(
            "getDevice", {"deviceId": provisioned.device.name, "product": product.slug, "auth": account_token}
        )
    )
    missing = failed(
        api_js.call(
            "getDevice", {"deviceId": outside.device.id, "product": product.id, "auth": account_token}
        ),
        404,
    )

    assert set(by_id) == DETAIL_KEYS
    assert by_id["id"] == provisioned.device.id
    assert by_id["product_id"] == product.id
    assert by_id["connected"] is True
    assert by_id["quarantined"] is False
    assert by_id["functions"] == ["led", "reboot", "setInterval"]
    assert by_id["variables"] == {
        "firmware": "string",
        "humidity": "double",
        "temp": "double",
        "uptime": "int32",
    }
    assert by_name == by_id
    assert missing["shortErrorDescription"] == f"Device '{outside.device.id}' is not in this product."


def test_remove_and_deny_a_device(api_js, account, account_token, product):
    denied = in_product(product)
    removed = in_product(product)

    deny = succeeded(
        api_js.call(
            "removeDevice",
            {"deviceId": denied.device.id, "product": product.id, "deny": True, "auth": account_token},
        ),
        204,
    )
    plain = succeeded(
        api_js.call(
            "removeDevice", {"deviceId": removed.device.name, "product": product.slug, "auth": account_token}
        ),
        204,
    )

    assert deny == plain == {}  # api-js's body for a 204
    assert product_ids(product) == set()
    assert ProductDenial.objects.get(product=product).device_id == denied.device.id
    assert ProductDenial.objects.get(product=product).denied_by == account
    assert AuditEntry.objects.filter(action="product.device_deny", target_id=denied.device.id).exists()
    assert AuditEntry.objects.filter(action="product.device_remove", target_id=removed.device.id).exists()

    # Importing a denied device again lifts the denial.
    back = succeeded(
        api_js.call(
            "addDeviceToProduct", {"product": product.id, "deviceId": denied.device.id, "auth": account_token}
        )
    )

    assert back == imported(updatedDeviceIds=[denied.device.id])
    assert not ProductDenial.objects.exists()
