"""particle-cli 3.43.1 device commands against a live server with devices connected to it.

`list` and `get` go through the CLI's legacy request-based client; `call`, `nyan` and the `device`
commands (`add`, `remove`, `rename`) through its nested particle-api-js 11.1.7. Every test checks
what the CLI shows (and its exit code) and what the server stored or the device received.
"""

from __future__ import annotations

import pytest

from console.accounts.models import User
from console.models import AuditEntry
from devices.models import Device
from tests.clients.conftest import provision, wait_until
from tests.conftest import PASSWORD

pytestmark = pytest.mark.clients

REMOVE_PROMPT = "Are you sure you want to release ownership of this device?"
TRANSFER_PROMPT = "That device belongs to someone else. Would you like to request a transfer?"


def test_list_shows_devices_with_type_state_functions_and_variables(logged_in, account, connect_device):
    online = provision("boron", owner=account)
    offline = provision("argon", owner=account)
    provision("photon", owner=User.objects.create_user(email="other@example.com", password=PASSWORD))
    connect_device(online)

    result = logged_in.run("list")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    online_line = f"{online.device.name} [{online.device.id}] (Boron) is online"
    offline_line = f"{offline.device.name} [{offline.device.id}] (Argon) is offline"
    assert online_line in lines, result.stdout
    assert offline_line in lines, result.stdout
    # The online device's details, as the CLI prints them after GET /v1/devices/<id>. PostgreSQL's
    # jsonb keeps its own key order, so the variables are compared as a set.
    start = lines.index(online_line) + 1
    assert lines[start] == "  Variables:"
    assert sorted(lines[start + 1 : start + 5]) == [
        "    firmware (string)",
        "    humidity (double)",
        "    temp (double)",
        "    uptime (int32)",
    ]
    assert lines[start + 5 : start + 9] == [
        "  Functions:",
        "    int led (String args) ",
        "    int reboot (String args) ",
        "    int setInterval (String args) ",
    ]
    # Only the user's own devices.
    assert sum(" is online" in line or " is offline" in line for line in lines) == 2
    assert Device.objects.get(pk=online.device.id).online
    assert not Device.objects.get(pk=offline.device.id).online

    filtered = logged_in.run("list", "offline")

    assert filtered.exit_code == 0, filtered.output
    assert offline_line in filtered.stdout.splitlines()
    assert online_line not in filtered.stdout


def test_list_without_devices(logged_in, account):
    result = logged_in.run("list")

    assert result.exit_code == 0, result.output
    assert "No devices found." in result.stdout


@pytest.mark.parametrize("by", ["id", "name"])
def test_call_a_function(logged_in, account, connect_device, by):
    provisioned = provision("boron", owner=account)
    device = connect_device(provisioned).simulated
    target = provisioned.device.id if by == "id" else provisioned.device.name

    on = logged_in.run("call", target, "led", "on")

    assert on.exit_code == 0, on.output
    assert on.stdout.splitlines()[-1] == "1"
    assert device.led is True

    off = logged_in.run("call", target, "led", "off")

    assert off.exit_code == 0, off.output
    assert off.stdout.splitlines()[-1] == "0"
    assert device.led is False
    assert device.stats.calls == 2


def test_call_an_unknown_function_fails(logged_in, account, connect_device):
    provisioned = provision("boron", owner=account)
    device = connect_device(provisioned).simulated

    result = logged_in.run("call", provisioned.device.name, "selfDestruct", "now")

    assert result.exit_code == 1
    # The CLI turns the 404 into its own message, followed by api-js's description of the response.
    assert result.stdout.startswith("Function call failed: Function `selfDestruct` not found: HTTP error 404")
    assert result.stdout.rstrip().endswith(" - Function selfDestruct not found")
    assert device.stats.calls == 0  # refused by the cloud, never sent to the device


def test_get_a_variable(logged_in, account, connect_device):
    provisioned = provision("boron", owner=account)
    device = connect_device(provisioned).simulated

    temp = logged_in.run("get", provisioned.device.name, "temp")
    firmware = logged_in.run("get", provisioned.device.id, "firmware")
    uptime = logged_in.run("get", provisioned.device.id, "uptime")

    assert temp.exit_code == 0, temp.output
    assert float(temp.stdout.splitlines()[-1]) == device.read("temp")  # it publishes nothing: steady
    assert firmware.exit_code == 0, firmware.output
    assert firmware.stdout.splitlines()[-1] == device.read("firmware") == "env-monitor v3 (Device OS 6.2.1)"
    assert uptime.exit_code == 0, uptime.output
    assert 0 <= int(uptime.stdout.splitlines()[-1]) <= device.read("uptime")
    assert device.stats.calls == 3


def test_get_an_unknown_variable_fails(logged_in, account, connect_device):
    provisioned = provision("boron", owner=account)
    device = connect_device(provisioned).simulated

    result = logged_in.run("get", provisioned.device.name, "pressure")

    assert result.exit_code == 1
    assert "Error: Variable pressure not found" in result.stdout
    assert "Some variables could not be read" in result.stdout
    assert device.stats.calls == 0


def test_rename_a_device(logged_in, account):
    provisioned = provision("boron", owner=account)

    result = logged_in.run("device", "rename", provisioned.device.name, "greenhouse")

    assert result.exit_code == 0, result.output
    assert f"Successfully renamed device {provisioned.device.name} to: greenhouse" in result.stdout
    assert Device.objects.get(pk=provisioned.device.id).name == "greenhouse"
    assert AuditEntry.objects.filter(actor=account, action="device.rename", via="api").exists()

    by_id = logged_in.run("device", "rename", provisioned.device.id, "potting-shed")

    assert by_id.exit_code == 0, by_id.output
    assert Device.objects.get(pk=provisioned.device.id).name == "potting-shed"


def test_rename_an_unknown_device_fails(logged_in, account):
    someone_elses = provision(
        "boron", owner=User.objects.create_user(email="o@example.com", password=PASSWORD)
    )

    missing = logged_in.run("device", "rename", "no_such_device", "greenhouse")
    foreign = logged_in.run("device", "rename", someone_elses.device.id, "greenhouse")

    assert missing.exit_code == 1
    assert "Failed to rename no_such_device: Device 'no_such_device' not found." in missing.stdout
    assert foreign.exit_code == 1
    assert f"Device '{someone_elses.device.id}' not found." in foreign.stdout
    assert Device.objects.get(pk=someone_elses.device.id).name == someone_elses.device.name


def test_add_an_unowned_device(logged_in, account):
    provisioned = provision("argon")

    result = logged_in.run("device", "add", provisioned.device.id.upper())

    assert result.exit_code == 0, result.output
    assert f"Successfully claimed device {provisioned.device.id.upper()}" in result.stdout
    assert Device.objects.get(pk=provisioned.device.id).owner == account
    assert AuditEntry.objects.filter(
        actor=account, action="device.claim", target_id=provisioned.device.id
    ).exists()


def test_add_someone_elses_device_offers_a_transfer(logged_in, account):
    owner = User.objects.create_user(email="owner@example.com", password=PASSWORD)
    provisioned = provision("argon", owner=owner)

    # The CLI asks only when the error contains Particle's exact "That belongs to someone else.".
    result = logged_in.interact("device", "add", provisioned.device.id, answers=[(TRANSFER_PROMPT, "n")])

    assert result.exit_code == 1
    assert "Failed to claim device: You cannot claim a device owned by someone else" in result.output
    assert Device.objects.get(pk=provisioned.device.id).owner == owner
    assert not AuditEntry.objects.filter(action="device.claim").exists()


def test_add_an_unknown_device_fails(logged_in, account):
    result = logged_in.run("device", "add", "0123456789abcdef01234567")

    assert result.exit_code == 1
    assert (
        "Failed to claim device: No device with ID 0123456789abcdef01234567 is provisioned" in result.stdout
    )
    assert not Device.objects.exists()


def test_remove_a_device_after_confirming(logged_in, account):
    # No device connected here: its thread would make the PTY fork unsafe.
    provisioned = provision("boron", owner=account)

    result = logged_in.interact("device", "remove", provisioned.device.name, answers=[(REMOVE_PROMPT, "y")])

    assert result.exit_code == 0, result.output
    assert f"releasing device {provisioned.device.name}" in result.output
    assert "Okay!" in result.output
    assert Device.objects.get(pk=provisioned.device.id).owner is None
    assert AuditEntry.objects.filter(actor=account, action="device.unclaim").exists()


def test_remove_declined_keeps_the_device(logged_in, account):
    provisioned = provision("boron", owner=account)

    result = logged_in.interact("device", "remove", provisioned.device.id, answers=[(REMOVE_PROMPT, "n")])

    assert result.exit_code == 1
    assert "Didn't remove the device: Not confirmed" in result.output
    assert Device.objects.get(pk=provisioned.device.id).owner == account


def test_nyan_makes_the_device_signal(logged_in, account, connect_device):
    provisioned = provision("boron", owner=account)
    device = connect_device(provisioned).simulated

    on = logged_in.run("nyan", provisioned.device.name)

    assert on.exit_code == 0, on.output
    assert on.stdout == ""  # the CLI prints nothing on success
    wait_until(lambda: device.signaling is True, what="signal on")

    off = logged_in.run("nyan", provisioned.device.id, "off")

    assert off.exit_code == 0, off.output
    wait_until(lambda: device.signaling is False, what="signal off")


def test_nyan_an_offline_device_fails(logged_in, account):
    provisioned = provision("boron", owner=account)

    result = logged_in.run("nyan", provisioned.device.name)

    assert result.exit_code == 1
    assert "Signaling failed" in result.stdout
    assert "is not connected to the cloud" in result.stdout
