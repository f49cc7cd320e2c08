"""particle-cli 3.43.1 `product device` commands against a live server.

`add`, `list` and `remove` go through the CLI's nested particle-api-js 11.1.7. `add` always uploads
a multipart `file` (one id per line), even for a single id, and prints its own report from the
import's `invalidDeviceIds`, `nonmemberDeviceIds` and `protectedDeviceIds`: every id it sent that
is in none of them is shown as included. Every test checks what the CLI shows (and its exit code)
and what the server stored.
"""

from __future__ import annotations

import json

import pytest

from console.accounts.models import User
from console.models import AuditEntry
from console.permissions import Role
from console.platforms import platform_from_string
from devices.models import Device
from devices.services import ProvisionedDevice, devices_provision
from products.models import Membership, Product
from products.services import product_create
from tests.clients.conftest import provision
from tests.conftest import PASSWORD

pytestmark = pytest.mark.clients

UNPROVISIONED_ID = "0123456789abcdef01234567"


@pytest.fixture
def product(account) -> Product:
    return product_create(user=account, name="Greenhouse sensors", platform_id=13)  # Boron


@pytest.fixture
def outsider() -> User:
    return User.objects.create_user(email="outsider@example.com", password=PASSWORD)


def in_product(product: Product, platform: str = "boron") -> ProvisionedDevice:
    return devices_provision(platform=platform_from_string(platform), count=1, product=product)[0]


def product_ids(product: Product) -> set[str]:
    return set(Device.objects.filter(product=product).values_list("id", flat=True))


def expected_line(provisioned: ProvisionedDevice, product: Product, *, online: bool) -> str:
    """A device as `particle product device list` shows it."""
    device = provisioned.device
    return f"{device.name} [{device.id}] (Product {product.id}) is {'online' if online else 'offline'}"


def test_add_one_device(logged_in, product):
    unowned = provision("boron")

    result = logged_in.run("product", "device", "add", str(product.id), unowned.device.id)

    assert result.exit_code == 0, result.output
    assert result.stdout == f"Success!\n\nProduct {product.id} Includes:\n  {unowned.device.id}\n\n"
    assert product_ids(product) == {unowned.device.id}
    assert Device.objects.get(pk=unowned.device.id).owner is None  # importing does not claim
    assert AuditEntry.objects.get(action="product.devices_import", via="api").metadata == {
        "added": 1,
        "existing": 0,
        "nonmember": 0,
        "invalid": 0,
    }


def test_add_by_slug_a_device_someone_else_owns_fails(logged_in, product, outsider):
    theirs = provision("boron", owner=outsider)

    result = logged_in.run("product", "device", "add", product.slug, theirs.device.id)

    # Nothing was added: the CLI turns its report into an error.
    assert result.exit_code == 1
    assert f"Skipped Non-Member IDs:\n  {theirs.device.id}\n" in result.output
    assert "Success!" not in result.output
    assert product_ids(product) == set()
    assert Device.objects.get(pk=theirs.device.id).owner == outsider


def test_add_devices_from_a_file(logged_in, account, product, outsider, tmp_path):
    unowned = provision("boron")
    mine = provision("boron", owner=account)  # claimed by a team member: may join
    already = in_product(product)
    theirs = provision("boron", owner=outsider)
    argon = provision("argon")
    lines = [
        unowned.device.id.upper(),
        "",
        "  not-a-device-id  ",
        already.device.id,
        UNPROVISIONED_ID,
        "",
        theirs.device.id,
        mine.device.id,
        argon.device.id,
        unowned.device.id,  # a repeat
        "",
    ]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_bytes("\r\n".join(lines).encode())

    result = logged_in.run("product", "device", "add", str(product.id), "--file", str(ids_file))

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Success!\n"
        "\n"
        f"Product {product.id} Includes:\n"
        f"  {unowned.device.id.upper()}\n"
        f"  {already.device.id}\n"
        f"  {mine.device.id}\n"
        f"  {unowned.device.id}\n"
        "\n"
        "Skipped Non-Member IDs:\n"
        f"  {theirs.device.id}\n"
        "\n"
        "Skipped Invalid IDs:\n"
        "  not-a-device-id\n"
        f"  {UNPROVISIONED_ID}\n"
        f"  {argon.device.id}\n"
        "\n"
    )
    assert product_ids(product) == {unowned.device.id, already.device.id, mine.device.id}
    assert Device.objects.get(pk=mine.device.id).owner == account
    assert Device.objects.get(pk=theirs.device.id).product is None
    assert Device.objects.get(pk=argon.device.id).product is None
    assert not Device.objects.filter(pk=UNPROVISIONED_ID).exists()
    assert AuditEntry.objects.get(action="product.devices_import").metadata == {
        "added": 2,
        "existing": 1,
        "nonmember": 1,
        "invalid": 3,
    }


def test_add_from_a_missing_file_fails_before_any_request(logged_in, product, tmp_path):
    result = logged_in.run("product", "device", "add", str(product.id), "--file", str(tmp_path / "none.txt"))

    assert result.exit_code == 1
    assert f"{tmp_path / 'none.txt'} does not exist" in result.output
    assert not AuditEntry.objects.filter(action="product.devices_import").exists()


def test_list_devices(logged_in, product, connect_device):
    online = in_product(product)
    offline = in_product(product)
    provision("boron")  # outside the product
    connect_device(online)

    result = logged_in.run("product", "device", "list", str(product.id))

    assert result.exit_code == 0, result.output
    # Sorted by name; a product device's type is its product (Particle's CLI labels it so).
    by_name = sorted([(online, True), (offline, False)], key=lambda pair: pair[0].device.name)
    assert result.stdout.splitlines() == [
        expected_line(provisioned, product, online=is_online) for provisioned, is_online in by_name
    ]

    named = logged_in.run("product", "device", "list", product.slug, "--name", offline.device.name.upper())

    assert named.exit_code == 0, named.output
    assert named.stdout.splitlines() == [expected_line(offline, product, online=False)]

    # Devices in these groups only: none is in a group.
    grouped = logged_in.run("product", "device", "list", str(product.id), "--groups", "asia", "europe")

    assert grouped.exit_code == 0, grouped.output
    assert grouped.stdout.strip() == ""


def test_list_devices_as_json_with_paging(logged_in, product):
    devices = sorted((in_product(product).device for _ in range(3)), key=lambda device: device.name)

    first = logged_in.run("product", "device", "list", str(product.id), "--json", "--limit", "2")
    second = logged_in.run(
        "product", "device", "list", str(product.id), "--json", "--limit", "2", "--page", "2"
    )

    assert first.exit_code == 0, first.output
    page_one = json.loads(first.stdout)
    assert page_one["meta"] == {"version": "1.0.0", "previous": 0, "current": 1, "next": 2}
    assert [device["id"] for device in page_one["data"]] == [devices[0].id, devices[1].id]
    entry = page_one["data"][0]
    assert entry["name"] == devices[0].name
    assert entry["product_id"] == product.id
    assert entry["platform_id"] == 13
    assert entry["online"] is False
    assert entry["quarantined"] is False
    assert entry["denied"] is False
    assert entry["groups"] == []
    assert entry["serial_number"] == devices[0].serial_number
    assert entry["owner"] is None
    assert second.exit_code == 0, second.output
    page_two = json.loads(second.stdout)
    assert page_two["meta"] == {"version": "1.0.0", "previous": 1, "current": 2, "next": 3}
    assert [device["id"] for device in page_two["data"]] == [devices[2].id]


def test_list_one_device_shows_its_functions_and_variables(logged_in, product, connect_device):
    provisioned = in_product(product)
    connect_device(provisioned)

    result = logged_in.run("product", "device", "list", str(product.id), provisioned.device.id)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        expected_line(provisioned, product, online=True),
        "  Variables:",
        "    firmware (string)",
        "    humidity (double)",
        "    temp (double)",
        "    uptime (int32)",
        "  Functions:",
        "    int led (String args) ",
        "    int reboot (String args) ",
        "    int setInterval (String args) ",
    ]

    as_json = logged_in.run("product", "device", "list", product.slug, provisioned.device.name, "--json")

    assert as_json.exit_code == 0, as_json.output
    detail = json.loads(as_json.stdout)
    assert detail["meta"] == {"version": "1.0.0"}
    assert detail["data"]["id"] == provisioned.device.id
    assert detail["data"]["product_id"] == product.id
    assert detail["data"]["functions"] == ["led", "reboot", "setInterval"]


def test_remove_a_device(logged_in, product):
    staying = in_product(product)
    leaving = in_product(product)

    # No confirmation prompt: the CLI removes at once.
    result = logged_in.run("product", "device", "remove", str(product.id), leaving.device.id)

    assert result.exit_code == 0, result.output
    assert result.stdout == f"Success! Removed device {leaving.device.id} from product {product.id}\n\n"
    assert product_ids(product) == {staying.device.id}
    assert Device.objects.filter(pk=leaving.device.id).exists()  # out of the product, not deleted
    assert AuditEntry.objects.filter(action="product.device_remove", target_id=leaving.device.id).exists()
    assert not leaving.device.denials.exists()

    again = logged_in.run("product", "device", "remove", str(product.id), leaving.device.id)

    assert again.exit_code == 1
    assert (
        f"Error removing device from product: HTTP error 404 from {logged_in.api_url}/v1/products/"
        f"{product.id}/devices/{leaving.device.id} - Device '{leaving.device.id}' is not in this product."
    ) in again.output


def test_unknown_and_someone_elses_product_are_not_found(logged_in, outsider):
    theirs = product_create(user=outsider, name="Their fleet", platform_id=13)
    device = in_product(theirs)

    unknown = logged_in.run("product", "device", "list", "999999")
    foreign = logged_in.run("product", "device", "list", theirs.slug)
    foreign_add = logged_in.run("product", "device", "add", str(theirs.id), provision("boron").device.id)
    foreign_remove = logged_in.run("product", "device", "remove", str(theirs.id), device.device.id)

    url = f"{logged_in.api_url}/v1/products"
    assert unknown.exit_code == 1
    assert (
        f"Error listing product devices: HTTP error 404 from {url}/999999/devices?page=1"
        " - Product '999999' not found."
    ) in unknown.output
    assert foreign.exit_code == 1
    assert f"- Product '{theirs.slug}' not found." in foreign.output
    assert foreign_add.exit_code == 1
    assert (
        f"Error adding device(s) to product: HTTP error 404 from {url}/{theirs.id}/devices"
        f" - Product '{theirs.id}' not found."
    ) in foreign_add.output
    assert foreign_remove.exit_code == 1
    assert f"Error removing device from product: HTTP error 404 from {url}/{theirs.id}/devices/" in (
        foreign_remove.output
    )
    assert product_ids(theirs) == {device.device.id}
    assert not AuditEntry.objects.filter(action__startswith="product.device").exists()


def test_a_viewer_may_list_but_not_import_or_remove(logged_in, account, outsider):
    theirs = product_create(user=outsider, name="Shared fleet", platform_id=13)
    Membership.objects.create(product=theirs, user=account, role=Role.VIEWER)
    member = in_product(theirs)
    unowned = provision("boron")

    listed = logged_in.run("product", "device", "list", str(theirs.id))
    added = logged_in.run("product", "device", "add", str(theirs.id), unowned.device.id)
    removed = logged_in.run("product", "device", "remove", str(theirs.id), member.device.id)

    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines() == [expected_line(member, theirs, online=False)]
    url = f"{logged_in.api_url}/v1/products/{theirs.id}/devices"
    assert added.exit_code == 1
    assert (
        f"Error adding device(s) to product: HTTP error 403 from {url}"
        " - Your role does not allow device import."
    ) in added.output
    assert removed.exit_code == 1
    assert (
        f"Error removing device from product: HTTP error 403 from {url}/{member.device.id}"
        " - Your role does not allow device remove."
    ) in removed.output
    assert product_ids(theirs) == {member.device.id}
    assert Device.objects.get(pk=unowned.device.id).product is None
