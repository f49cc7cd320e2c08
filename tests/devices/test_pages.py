"""The console's device pages: the list, a device's page, and the actions on them."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from console.models import AuditEntry
from console.platforms import PLATFORMS, PLATFORMS_BY_SLUG
from devices import calls
from devices.models import ClaimCode, Device
from devices.services import devices_provision

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
TABLE = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "device-table"}


def provision(owner=None, count: int = 1, platform=None) -> list[Device]:
    return [p.device for p in devices_provision(platform=platform or PLATFORMS[13], count=count, owner=owner)]


def named(owner, *names: str, platform=None) -> list[Device]:
    devices = provision(owner, len(names), platform)
    for device, name in zip(devices, names, strict=True):
        device.name = name
        device.save(update_fields=["name"])
    return devices


def online(device: Device) -> Device:
    device.online = True
    device.gateway_channel = "specific.test!channel"
    device.save(update_fields=["online", "gateway_channel"])
    return device


def toast(response) -> dict:
    return json.loads(response["HX-Trigger"])["quanta:toast"]


def row_names(response) -> list[str]:
    return re.findall(
        r'<a class="device-name" href="[^"]+" data-device-name>([^<]+)</a>', response.content.decode()
    )


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


# --- The list --------------------------------------------------------------------------------------------
def test_list_requires_sign_in(client):
    response = client.get("/devices/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_list_shows_the_users_devices(signed_in, user, other_user):
    boron, argon = named(user, "greenhouse", "front-door")
    argon.platform_id = PLATFORMS_BY_SLUG["argon"].id
    argon.online = True
    argon.last_heard = timezone.now() - timedelta(hours=3)
    argon.save()
    named(other_user, "someone-elses")

    response = signed_in.get("/devices/")

    assert response.status_code == 200
    html = response.content.decode()
    assert sorted(row_names(response)) == ["front-door", "greenhouse"]
    assert f'data-device-id="{boron.id}"' in html
    assert f'data-copy-text="{boron.id}"' in html  # the copy button carries the full ID
    assert f'title="{boron.id}"' in html  # and the truncated ID shows it on hover
    assert "Boron" in html
    assert "#i-cellular" in html
    assert "Argon" in html
    assert "#i-wifi" in html
    assert 'data-device-status="online"' in html
    assert 'data-device-status="offline"' in html
    assert "3\xa0hours ago" in html
    assert argon.last_heard.isoformat() in html  # the exact time is in the title
    assert "someone-elses" not in html
    assert "2 devices" in html


def test_sidebar_links_to_devices(signed_in, user):
    device = provision(user)[0]
    list_page = signed_in.get("/devices/").content.decode()
    assert re.search(r'<a class="nav-link" href="/devices/" aria-current="page">', list_page)
    detail_page = signed_in.get(f"/devices/{device.id}/").content.decode()
    assert re.search(r'<a class="nav-link" href="/devices/" aria-current="page">', detail_page)


def test_empty_list_explains_how_to_claim_or_simulate(signed_in, user):
    html = signed_in.get("/devices/").content.decode()
    assert "No devices yet" in html
    assert "particle device add" in html
    assert (
        "python manage.py provision_devices --platform boron --count 5 --owner ada@example.com --out keys.jsonl"
        in html
    )
    assert "python manage.py simulate_fleet --keys keys.jsonl --url ws://testserver/device/v1" in html
    assert 'id="device-search-input"' not in html  # nothing to search yet


def test_simulator_command_omits_the_default_gateway(signed_in):
    html = signed_in.get("/devices/", HTTP_HOST="127.0.0.1:8000").content.decode()
    assert "python manage.py simulate_fleet --keys keys.jsonl</code>" in html


def test_search_by_name_or_id_prefix_returns_the_table_only(signed_in, user):
    greenhouse, _door = named(user, "greenhouse-north", "front-door")

    by_name = signed_in.get("/devices/", {"q": "HOUSE"}, **TABLE)
    assert by_name.status_code == 200
    assert "<html" not in by_name.content.decode()  # the fragment, not the page
    assert row_names(by_name) == ["greenhouse-north"]
    assert "1 device matches “HOUSE”" in by_name.content.decode()
    assert "HX-Request" in by_name["Vary"]

    by_id = signed_in.get("/devices/", {"q": greenhouse.id[:6].upper()}, **TABLE)
    assert row_names(by_id) == ["greenhouse-north"]


def test_search_without_matches_says_so(signed_in, user):
    named(user, "greenhouse")
    response = signed_in.get("/devices/", {"q": "zzz"}, **TABLE)
    assert "No devices match “zzz”" in response.content.decode()


def test_full_page_when_htmx_restores_history(signed_in, user):
    named(user, "greenhouse")
    response = signed_in.get("/devices/", {"q": "green"}, HTTP_HX_HISTORY_RESTORE_REQUEST="true", **TABLE)
    assert "<html" in response.content.decode()


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["alpha", "bravo", "charlie"]),
        ("-name", ["charlie", "bravo", "alpha"]),
        ("-last_heard", ["bravo", "alpha", "charlie"]),  # never heard goes last
        ("last_heard", ["charlie", "alpha", "bravo"]),
        ("-online", ["charlie", "alpha", "bravo"]),
        ("nonsense", ["alpha", "bravo", "charlie"]),
    ],
)
def test_sortable_columns(signed_in, user, sort, expected):
    alpha, bravo, charlie = named(user, "alpha", "bravo", "charlie")
    now = timezone.now()
    Device.objects.filter(pk=alpha.pk).update(last_heard=now - timedelta(hours=2))
    Device.objects.filter(pk=bravo.pk).update(last_heard=now - timedelta(minutes=5))
    Device.objects.filter(pk=charlie.pk).update(online=True)

    response = signed_in.get("/devices/", {"sort": sort}, **TABLE)

    assert row_names(response) == expected


def test_sort_header_links_toggle_and_keep_the_search(signed_in, user):
    named(user, "alpha")
    html = signed_in.get("/devices/", {"q": "al", "sort": "name"}).content.decode()
    assert 'aria-sort="ascending"' in html
    assert 'href="?q=al&amp;sort=-name"' in html  # the active column flips
    assert 'href="?q=al&amp;sort=-last_heard"' in html  # others start with their natural order


def test_pagination_50_per_page(signed_in, user):
    provision(user, 120)

    first = signed_in.get("/devices/")
    last = signed_in.get("/devices/", {"page": 3})

    assert len(row_names(first)) == 50
    assert "1–50 of 120 devices" in first.content.decode()
    assert 'rel="next"' in first.content.decode()
    assert len(row_names(last)) == 20
    assert "101–120 of 120 devices" in last.content.decode()


def test_list_queries_do_not_grow_with_devices(signed_in, user, django_assert_max_num_queries):
    provision(user, 60)
    signed_in.get("/devices/")  # warm the session and caches
    # Session, user, the count and one page of rows.
    with django_assert_max_num_queries(5):
        response = signed_in.get("/devices/")
    assert len(row_names(response)) == 50
    with django_assert_max_num_queries(5):
        signed_in.get("/devices/", {"q": "a", "sort": "-last_heard", "page": 2}, **TABLE)


# --- Rename ------------------------------------------------------------------------------------------------
def test_rename_in_place(signed_in, user):
    device = named(user, "old-name")[0]

    response = signed_in.post(
        f"/devices/{device.id}/rename/", {"name": "new_name", "variant": "list"}, **HTMX
    )

    assert response.status_code == 200
    device.refresh_from_db()
    assert device.name == "new_name"
    html = response.content.decode()
    assert "data-device-name>new_name</a>" in html
    assert "<html" not in html
    assert toast(response) == {"message": "Renamed old-name to new_name.", "level": "success"}
    assert "X-Quanta-Error" not in response
    assert AuditEntry.objects.filter(action="device.rename", via="console").exists()


def test_rename_to_a_duplicate_name_is_refused_inline(signed_in, user):
    device, _other = named(user, "one", "two")

    response = signed_in.post(f"/devices/{device.id}/rename/", {"name": "TWO", "variant": "list"}, **HTMX)

    assert response.status_code == 200  # htmx swaps the partial, which explains the error
    assert response["X-Quanta-Error"] == "conflict"
    html = response.content.decode()
    assert "You already have a device named" in html
    assert 'aria-invalid="true"' in html
    assert 'value="TWO"' in html  # what the user typed stays in the field
    assert "data-device-name>one</a>" in html  # and the saved name is still the old one
    device.refresh_from_db()
    assert device.name == "one"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("has spaces", "only letters, digits, underscores and hyphens"),
        ("", "cannot be empty"),
        ("x" * 64, "at most 63 characters"),
    ],
)
def test_rename_to_an_invalid_name_is_refused_inline(signed_in, user, name, message):
    device = named(user, "keeper")[0]
    response = signed_in.post(f"/devices/{device.id}/rename/", {"name": name, "variant": "detail"}, **HTMX)
    assert response["X-Quanta-Error"] == "bad_request"
    assert message in response.content.decode()
    device.refresh_from_db()
    assert device.name == "keeper"


def test_rename_without_htmx_redirects_with_a_message(signed_in, user):
    device = named(user, "before")[0]
    response = signed_in.post(f"/devices/{device.id}/rename/", {"name": "after"}, follow=True)
    assert response.redirect_chain[-1][0] == f"/devices/{device.id}/"
    assert "Renamed before to after." in response.content.decode()

    response = signed_in.post(f"/devices/{device.id}/rename/", {"name": "bad name"}, follow=True)
    assert "Could not rename after" in response.content.decode()


# --- Unclaim -----------------------------------------------------------------------------------------------
def test_unclaim(signed_in, user):
    device = named(user, "leaving")[0]
    Device.objects.filter(pk=device.pk).update(notes="private")

    response = signed_in.post(f"/devices/{device.id}/unclaim/", follow=True)

    assert response.redirect_chain[-1][0] == "/devices/"
    assert "Unclaimed leaving" in response.content.decode()
    device.refresh_from_db()
    assert device.owner is None
    assert device.notes == ""


def test_unclaim_with_htmx_redirects_the_page(signed_in, user):
    device = provision(user)[0]
    response = signed_in.post(f"/devices/{device.id}/unclaim/", **HTMX)
    assert response["HX-Redirect"] == "/devices/"
    assert Device.objects.get(pk=device.pk).owner is None


def test_unclaim_dialog_says_what_happens(signed_in, user):
    device = provision(user)[0]
    for url in ("/devices/", f"/devices/{device.id}/"):
        html = signed_in.get(url).content.decode()
        assert "Unclaim this device?" in html
        assert "It keeps running" in html
        assert "can be claimed again by anyone with its ID" in html


# --- Claim and claim codes ---------------------------------------------------------------------------------
def test_claim_a_device(signed_in, user):
    device = provision(None)[0]

    response = signed_in.post("/devices/claim/", {"device_id": f"  {device.id.upper()} "}, **HTMX)

    assert response.status_code == 204
    assert response["HX-Redirect"] == f"/devices/{device.id}/"
    device.refresh_from_db()
    assert device.owner == user
    follow = signed_in.get(response["HX-Redirect"])
    assert f"Claimed {device.id}" in follow.content.decode()


def test_claim_without_htmx(signed_in, user):
    device = provision(None)[0]
    response = signed_in.post("/devices/claim/", {"device_id": device.id})
    assert response.status_code == 302
    assert response["Location"] == f"/devices/{device.id}/"
    assert Device.objects.get(pk=device.pk).owner == user


def test_claim_unknown_device(signed_in):
    response = signed_in.post("/devices/claim/", {"device_id": "0123456789abcdef01234567"}, **HTMX)
    assert response.status_code == 200
    assert response["X-Quanta-Error"] == "not_found"
    assert "No device with ID 0123456789abcdef01234567 is provisioned" in response.content.decode()


def test_claim_someone_elses_device(signed_in, other_user):
    device = provision(other_user)[0]
    response = signed_in.post("/devices/claim/", {"device_id": device.id}, **HTMX)
    assert response["X-Quanta-Error"] == "forbidden"
    assert "That device belongs to someone else. Its owner has to unclaim it" in response.content.decode()
    assert Device.objects.get(pk=device.pk).owner == other_user


@pytest.mark.parametrize("value", ["", "not-hex-at-all", "0123456789abcdef0123456"])
def test_claim_invalid_id(signed_in, value):
    response = signed_in.post("/devices/claim/", {"device_id": value}, **HTMX)
    assert response["X-Quanta-Error"] == "invalid"
    html = response.content.decode()
    assert "24 hexadecimal characters" in html or "Enter the ID" in html
    assert 'aria-invalid="true"' in html


def test_claim_error_without_htmx_redirects_with_the_message(signed_in):
    response = signed_in.post("/devices/claim/", {"device_id": "0123456789abcdef01234567"}, follow=True)
    assert response.redirect_chain[-1][0] == "/devices/"
    assert "Could not claim the device: No device with ID" in response.content.decode()


def test_claim_own_device_again_is_fine(signed_in, user):
    device = named(user, "mine")[0]
    response = signed_in.post("/devices/claim/", {"device_id": device.id}, follow=True)
    assert "mine is already in your account." in response.content.decode()


def test_get_a_claim_code(signed_in, user):
    response = signed_in.post("/devices/claim-code/", **HTMX)
    assert response.status_code == 200
    claim = ClaimCode.objects.get(user=user)
    html = response.content.decode()
    assert f'value="{claim.code}"' in html
    assert 'data-copy="#claim-code-value"' in html
    assert "Works once" in html

    response = signed_in.post("/devices/claim-code/", follow=True)
    assert "Your claim code:" in response.content.decode()
    assert ClaimCode.objects.filter(user=user).count() == 2


# --- A device's page ------------------------------------------------------------------------------------------
def test_detail_shows_every_field(signed_in, user):
    device = named(user, "tracker-1")[0]
    Device.objects.filter(pk=device.pk).update(
        firmware_version=7,
        system_firmware_version="6.1.1",
        last_ip_address="203.0.113.9",
        last_handshake_at=timezone.now(),
        last_heard=timezone.now(),
        functions=["led"],
        variables={"temperature": "double"},
    )

    html = signed_in.get(f"/devices/{device.id}/").content.decode()

    for value in (
        device.id,
        device.serial_number,
        device.iccid,
        device.imei,
        "6.1.1",
        "203.0.113.9",
        "Boron",
    ):
        assert value in html
    assert ">led</label>" in html
    assert "temperature" in html
    assert "double" in html
    assert f'data-event-log data-device-id="{device.id}"' in html
    assert f'data-device-detail="{device.id}"' in html


def test_detail_of_a_wifi_device_has_no_cellular_fields(signed_in, user):
    device = provision(user, platform=PLATFORMS_BY_SLUG["argon"])[0]
    html = signed_in.get(f"/devices/{device.id}/").content.decode()
    assert "ICCID" not in html
    assert "IMEI" not in html
    assert "Argon" in html


def test_detail_by_name(signed_in, user):
    device = named(user, "by-name")[0]
    assert signed_in.get("/devices/by-name/").context["device"] == device


def test_notes(signed_in, user):
    device = provision(user)[0]
    response = signed_in.post(f"/devices/{device.id}/notes/", {"notes": "In the shed"}, **HTMX)
    assert response.status_code == 200
    assert "Saved" in response.content.decode()
    assert Device.objects.get(pk=device.pk).notes == "In the shed"

    response = signed_in.post(f"/devices/{device.id}/notes/", {"notes": "x" * 1001}, **HTMX)
    assert response["X-Quanta-Error"] == "bad_request"
    assert "Notes are at most 1000 characters; these have 1001." in response.content.decode()
    assert Device.objects.get(pk=device.pk).notes == "In the shed"


# --- Talking to the device -------------------------------------------------------------------------------------
def test_call_a_function(signed_in, user, monkeypatch):
    device = online(provision(user)[0])
    seen = {}

    def fake_call(*, device, function, argument):
        seen.update(device=device.id, function=function, argument=argument)
        return 42

    monkeypatch.setattr(calls, "device_function_call", fake_call)
    response = signed_in.post(f"/devices/{device.id}/call/", {"function": "led", "arg": "on"}, **HTMX)

    assert response.status_code == 200
    assert seen == {"device": device.id, "function": "led", "argument": "on"}
    assert re.search(r"returned <strong[^>]*>42</strong>", response.content.decode())


def test_call_an_offline_device(signed_in, user):
    device = provision(user)[0]
    Device.objects.filter(pk=device.pk).update(functions=["led"])
    response = signed_in.post(f"/devices/{device.id}/call/", {"function": "led", "arg": ""}, **HTMX)
    assert response.status_code == 200
    assert response["X-Quanta-Error"] == "offline"
    assert "is not connected to the cloud" in response.content.decode()


def test_call_times_out(signed_in, user, monkeypatch):
    device = online(provision(user)[0])

    def slow(**kwargs):
        raise calls.DeviceTimeout("Timed out waiting for the device to answer.")

    monkeypatch.setattr(calls, "device_function_call", slow)
    response = signed_in.post(f"/devices/{device.id}/call/", {"function": "led"}, **HTMX)
    assert response["X-Quanta-Error"] == "timeout"
    assert "Timed out waiting for the device to answer." in response.content.decode()


def test_call_unknown_function_and_long_argument(signed_in, user):
    device = online(provision(user)[0])
    Device.objects.filter(pk=device.pk).update(functions=["led"])

    unknown = signed_in.post(f"/devices/{device.id}/call/", {"function": "nope"}, **HTMX)
    assert unknown["X-Quanta-Error"] == "not_found"
    assert "Function nope not found" in unknown.content.decode()

    too_long = signed_in.post(f"/devices/{device.id}/call/", {"function": "led", "arg": "é" * 600}, **HTMX)
    assert too_long["X-Quanta-Error"] == "bad_request"
    assert "at most 1024 bytes; this one has 1200" in too_long.content.decode()


def test_call_without_htmx_redirects_with_the_result(signed_in, user, monkeypatch):
    device = online(provision(user)[0])
    monkeypatch.setattr(calls, "device_function_call", lambda **kwargs: 1)
    response = signed_in.post(f"/devices/{device.id}/call/", {"function": "led"}, follow=True)
    assert "led returned 1." in response.content.decode()


def test_read_a_variable(signed_in, user, monkeypatch):
    device = online(provision(user)[0])
    monkeypatch.setattr(calls, "device_variable_get", lambda *, device, variable: 21.5)

    response = signed_in.get(f"/devices/{device.id}/variable/", {"name": "temperature"}, **HTMX)

    assert response.status_code == 200
    assert '<code class="member-value">21.5</code>' in response.content.decode()
    assert "no-store" in response["Cache-Control"]


def test_read_a_variable_of_an_offline_device(signed_in, user):
    device = provision(user)[0]
    Device.objects.filter(pk=device.pk).update(variables={"temperature": "double"})
    response = signed_in.get(f"/devices/{device.id}/variable/", {"name": "temperature"}, **HTMX)
    assert response["X-Quanta-Error"] == "offline"
    assert "is not connected to the cloud" in response.content.decode()


def test_ping(signed_in, user, monkeypatch):
    device = online(named(user, "pinged")[0])
    monkeypatch.setattr(calls, "device_ping", lambda *, device: True)
    response = signed_in.post(f"/devices/{device.id}/ping/", **HTMX)
    assert response.status_code == 204
    assert toast(response)["level"] == "success"
    assert toast(response)["message"].startswith("pinged answered the ping in ")


def test_ping_an_offline_device(signed_in, user):
    device = named(user, "asleep")[0]
    response = signed_in.post(f"/devices/{device.id}/ping/", **HTMX)
    assert toast(response) == {
        "message": "asleep is offline: it is not connected to the cloud.",
        "level": "warning",
    }


def test_signal_toggles(signed_in, user, monkeypatch):
    device = online(provision(user)[0])
    sent = []
    monkeypatch.setattr(calls, "device_signal", lambda *, device, on: sent.append(on))

    on = signed_in.post(f"/devices/{device.id}/signal/", {"on": "1"}, **HTMX)
    assert on.status_code == 200
    assert 'aria-pressed="true"' in on.content.decode()
    assert 'name="on" value="0"' in on.content.decode()  # the next press turns it off

    off = signed_in.post(f"/devices/{device.id}/signal/", {"on": "0"}, **HTMX)
    assert 'aria-pressed="false"' in off.content.decode()
    assert sent == [True, False]


def test_signal_an_offline_device(signed_in, user):
    device = provision(user)[0]
    response = signed_in.post(f"/devices/{device.id}/signal/", {"on": "1"}, **HTMX)
    assert response["X-Quanta-Error"] == "offline"
    assert 'aria-pressed="false"' in response.content.decode()
    assert toast(response)["level"] == "error"
    assert "is not connected to the cloud" in toast(response)["message"]


# --- Other users' devices -----------------------------------------------------------------------------------------
ACTIONS = [
    ("post", "rename/", {"name": "stolen"}),
    ("post", "notes/", {"notes": "stolen"}),
    ("post", "unclaim/", {}),
    ("post", "call/", {"function": "led", "arg": "x"}),
    ("get", "variable/", {"name": "temperature"}),
    ("post", "ping/", {}),
    ("post", "signal/", {"on": "1"}),
    ("get", "", {}),
]


@pytest.mark.parametrize(("method", "path", "data"), ACTIONS, ids=[a[1] or "detail" for a in ACTIONS])
@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_other_users_devices_are_404(signed_in, other_user, monkeypatch, method, path, data, headers):
    device = online(named(other_user, "theirs")[0])
    Device.objects.filter(pk=device.pk).update(functions=["led"], variables={"temperature": "double"})
    for name in ("device_function_call", "device_variable_get", "device_ping", "device_signal"):
        monkeypatch.setattr(calls, name, lambda **kwargs: pytest.fail("reached the device"))

    for reference in (device.id, device.name):
        response = getattr(signed_in, method)(f"/devices/{reference}/{path}", data, **headers)
        assert response.status_code == 404

    device.refresh_from_db()
    assert (device.owner, device.name, device.notes) == (other_user, "theirs", "")


def test_post_actions_need_csrf(user):
    from django.test import Client

    device = provision(user)[0]
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(f"/devices/{device.id}/rename/", {"name": "changed"})
    assert response.status_code == 403
    assert Device.objects.get(pk=device.pk).name == device.name
