"""particle-api-js 12.0.3 device calls, from node, against a live server with devices connected.

Each call is one node process (scripts/api_js_call.js), so the database and the simulated device
can be checked between calls.
"""

from __future__ import annotations

import pytest

from console.accounts.models import User
from console.models import AuditEntry
from devices.models import Device
from tests.clients.conftest import provision, wait_until
from tests.conftest import PASSWORD

pytestmark = pytest.mark.clients

API_JS_VERSION = "12.0.3"
BELONGS_TO_SOMEONE_ELSE = "That belongs to someone else."


def succeeded(outcome: dict) -> dict | list:
    assert outcome["ok"], outcome
    assert outcome["version"] == API_JS_VERSION
    assert outcome["statusCode"] == 200
    return outcome["body"]


def failed(outcome: dict, status: int) -> dict:
    assert outcome["ok"] is False, outcome
    assert outcome["statusCode"] == status, outcome
    return outcome


@pytest.fixture
def stranger() -> User:
    return User.objects.create_user(email="stranger@example.com", password=PASSWORD)


def test_list_devices(api_js, account, account_token, connect_device, stranger):
    online = provision("boron", owner=account)
    offline = provision("argon", owner=account)
    provision("photon", owner=stranger)
    connect_device(online)

    devices = succeeded(api_js.call("listDevices", {"auth": account_token}))

    assert isinstance(devices, list)  # Particle's list is a bare array
    by_id = {device["id"]: device for device in devices}
    assert set(by_id) == {online.device.id, offline.device.id}
    boron = by_id[online.device.id]
    assert boron["name"] == online.device.name
    assert boron["connected"] is True
    assert boron["online"] is True
    assert boron["platform_id"] == 13
    assert boron["product_id"] == 13  # a device outside any product reports its platform
    assert boron["cellular"] is True
    assert boron["system_firmware_version"] == "6.2.1"
    assert boron["last_handshake_at"]
    argon = by_id[offline.device.id]
    assert argon["connected"] is False
    assert argon["online"] is False
    assert argon["cellular"] is False


def test_get_device_has_functions_and_variables(api_js, account, account_token, connect_device):
    provisioned = provision("boron", owner=account)
    connect_device(provisioned)

    by_name = succeeded(
        api_js.call("getDevice", {"deviceId": provisioned.device.name, "auth": account_token})
    )

    assert by_name["id"] == provisioned.device.id
    assert by_name["connected"] is True
    assert by_name["functions"] == ["led", "reboot", "setInterval"]
    assert by_name["variables"] == {
        "temp": "double",
        "humidity": "double",
        "uptime": "int32",
        "firmware": "string",
    }
    assert by_name["firmware_version"] == 3  # the product_version the device reported
    by_id = succeeded(api_js.call("getDevice", {"deviceId": provisioned.device.id, "auth": account_token}))
    assert by_id == by_name


def test_get_someone_elses_device_is_not_found(api_js, account, account_token, stranger):
    provisioned = provision("boron", owner=stranger)

    outcome = failed(
        api_js.call("getDevice", {"deviceId": provisioned.device.id, "auth": account_token}), 404
    )

    assert outcome["shortErrorDescription"] == f"Device '{provisioned.device.id}' not found."


def test_rename_device(api_js, account, account_token):
    provisioned = provision("boron", owner=account)

    body = succeeded(
        api_js.call(
            "renameDevice", {"deviceId": provisioned.device.id, "name": "greenhouse", "auth": account_token}
        )
    )

    assert body["id"] == provisioned.device.id
    assert body["name"] == "greenhouse"
    assert body["updated_at"]
    assert Device.objects.get(pk=provisioned.device.id).name == "greenhouse"
    assert AuditEntry.objects.get(actor=account, action="device.rename").metadata == {
        "from": provisioned.device.name,
        "to": "greenhouse",
    }

    taken = provision("argon", owner=account)
    clash = failed(
        api_js.call(
            "renameDevice", {"deviceId": taken.device.id, "name": "GreenHouse", "auth": account_token}
        ),
        409,
    )

    assert clash["shortErrorDescription"] == "You already have a device named 'GreenHouse'."
    assert Device.objects.get(pk=taken.device.id).name == taken.device.name


def test_call_function(api_js, account, account_token, connect_device):
    provisioned = provision("boron", owner=account)
    device = connect_device(provisioned).simulated

    led = api_js.call(
        "callFunction",
        {"deviceId": provisioned.device.name, "name": "led", "argument": "on", "auth": account_token},
    )
    interval = api_js.call(
        "callFunction",
        {"deviceId": provisioned.device.id, "name": "setInterval", "argument": "30", "auth": account_token},
    )

    assert succeeded(led) == {
        "id": provisioned.device.id,
        "name": provisioned.device.name,
        "connected": True,
        "return_value": 1,
    }
    assert device.led is True
    assert succeeded(interval)["return_value"] == 30
    assert device.publish_interval == 30
    assert device.stats.calls == 2

    unknown = failed(
        api_js.call(
            "callFunction",
            {"deviceId": provisioned.device.id, "name": "fly", "argument": "", "auth": account_token},
        ),
        404,
    )

    assert unknown["shortErrorDescription"] == "Function fly not found"
    assert device.stats.calls == 2


def test_get_variable(api_js, account, account_token, connect_device):
    provisioned = provision("boron", owner=account)
    device = connect_device(provisioned).simulated

    temp = succeeded(
        api_js.call("getVariable", {"deviceId": provisioned.device.id, "name": "temp", "auth": account_token})
    )
    uptime = succeeded(
        api_js.call(
            "getVariable", {"deviceId": provisioned.device.name, "name": "uptime", "auth": account_token}
        )
    )
    firmware = succeeded(
        api_js.call(
            "getVariable", {"deviceId": provisioned.device.id, "name": "firmware", "auth": account_token}
        )
    )

    assert temp["result"] == device.read("temp")  # it publishes nothing, so the reading holds still
    assert temp["name"] == "temp"
    assert temp["coreInfo"]["deviceID"] == provisioned.device.id
    assert temp["coreInfo"]["name"] == provisioned.device.name
    assert temp["coreInfo"]["connected"] is True
    assert isinstance(uptime["result"], int)
    assert 0 <= uptime["result"] <= device.read("uptime")
    assert firmware["result"] == "env-monitor v3 (Device OS 6.2.1)"
    assert device.stats.calls == 3


def test_variable_of_a_device_that_went_offline(api_js, account, account_token, connect_device):
    provisioned = provision("boron", owner=account)
    device = connect_device(provisioned)
    device.stop()
    wait_until(
        lambda: not Device.objects.get(pk=provisioned.device.id).online, what="the device to go offline"
    )

    outcome = failed(
        api_js.call(
            "getVariable", {"deviceId": provisioned.device.id, "name": "temp", "auth": account_token}
        ),
        404,
    )

    assert (
        outcome["shortErrorDescription"] == f"Device {provisioned.device.name} is not connected to the cloud."
    )
    assert device.simulated.stats.calls == 0


def test_signal_device(api_js, account, account_token, connect_device):
    provisioned = provision("boron", owner=account)
    device = connect_device(provisioned).simulated

    on = succeeded(
        api_js.call(
            "signalDevice", {"deviceId": provisioned.device.id, "signal": True, "auth": account_token}
        )
    )

    assert on == {"id": provisioned.device.id, "connected": True, "signaling": True}
    wait_until(lambda: device.signaling is True, what="signal on")

    off = succeeded(
        api_js.call(
            "signalDevice", {"deviceId": provisioned.device.name, "signal": False, "auth": account_token}
        )
    )

    assert off["signaling"] is False
    wait_until(lambda: device.signaling is False, what="signal off")


def test_claim_device(api_js, account, account_token):
    provisioned = provision("argon")

    body = succeeded(api_js.call("claimDevice", {"deviceId": provisioned.device.id, "auth": account_token}))

    assert body["ok"] is True
    assert body["id"] == provisioned.device.id
    assert Device.objects.get(pk=provisioned.device.id).owner == account
    assert AuditEntry.objects.filter(
        actor=account, action="device.claim", target_id=provisioned.device.id
    ).exists()
    listed = succeeded(api_js.call("listDevices", {"auth": account_token}))
    assert [device["id"] for device in listed] == [provisioned.device.id]

    again = succeeded(api_js.call("claimDevice", {"deviceId": provisioned.device.id, "auth": account_token}))

    assert again["ok"] is True  # claiming your own device again is harmless
    assert AuditEntry.objects.filter(action="device.claim").count() == 1


def test_claim_someone_elses_device_is_forbidden(api_js, account, account_token, stranger):
    provisioned = provision("argon", owner=stranger)

    outcome = failed(
        api_js.call("claimDevice", {"deviceId": provisioned.device.id, "auth": account_token}), 403
    )

    assert outcome["shortErrorDescription"] == BELONGS_TO_SOMEONE_ELSE
    assert outcome["body"]["error"] == BELONGS_TO_SOMEONE_ELSE
    assert outcome["errorDescription"].endswith(f"/v1/devices - {BELONGS_TO_SOMEONE_ELSE}")
    assert Device.objects.get(pk=provisioned.device.id).owner == stranger
    assert not AuditEntry.objects.filter(action="device.claim").exists()


def test_remove_device(api_js, account, account_token, connect_device):
    provisioned = provision("boron", owner=account)
    device = connect_device(provisioned).simulated

    body = succeeded(
        api_js.call("removeDevice", {"deviceId": provisioned.device.name, "auth": account_token})
    )

    assert body == {"ok": True}
    removed = Device.objects.get(pk=provisioned.device.id)
    assert removed.owner is None
    assert removed.online  # releasing ownership leaves the connection alone
    assert AuditEntry.objects.filter(actor=account, action="device.unclaim", target_id=removed.id).exists()
    assert succeeded(api_js.call("listDevices", {"auth": account_token})) == []
    gone = failed(api_js.call("getDevice", {"deviceId": provisioned.device.id, "auth": account_token}), 404)
    assert gone["body"]["info"] == "I didn't recognize that device name or ID"
    assert device.stats.connected == 1
