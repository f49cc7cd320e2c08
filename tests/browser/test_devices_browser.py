"""The device pages in a real browser against a live server, with devices connected over the
real gateway (/device/v1)."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import threading

import pytest
from playwright.sync_api import expect
from websockets.sync.client import connect

from console.accounts.models import User
from console.platforms import PLATFORMS
from devices.keys import sign
from devices.models import Device
from devices.services import ProvisionedDevice, devices_provision
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class FakeDevice:
    """A minimal device: the handshake, then answers calls and pings from a thread."""

    def __init__(self, server_url: str, provisioned: ProvisionedDevice, functions=(), variables=None) -> None:
        self.url = server_url.replace("http", "ws", 1) + "/device/v1"
        self.provisioned = provisioned
        self.functions = list(functions)
        self.variables = dict(variables or {})
        self.socket = None
        self.thread: threading.Thread | None = None
        self.stack = contextlib.ExitStack()

    def connect(self) -> FakeDevice:
        self.socket = self.stack.enter_context(connect(self.url, open_timeout=10))
        challenge = json.loads(self.socket.recv(timeout=10))
        nonce = base64.b64decode(challenge["nonce"])
        signature = sign(self.provisioned.keys.private_key, nonce)
        self.socket.send(
            json.dumps(
                {
                    "type": "hello",
                    "device_id": self.provisioned.device.id,
                    "signature": base64.b64encode(signature).decode(),
                    "platform_id": self.provisioned.device.platform_id,
                    "system_version": "6.1.1",
                    "functions": self.functions,
                    "variables": self.variables,
                }
            )
        )
        welcome = json.loads(self.socket.recv(timeout=10))
        assert welcome["type"] == "welcome", welcome
        self.thread = threading.Thread(target=self._answer, daemon=True)
        self.thread.start()
        return self

    def _answer(self) -> None:
        try:
            for raw in self.socket:
                frame = json.loads(raw)
                if frame["type"] == "call":
                    reply = {"type": "result", "id": frame["id"], "return_value": len(frame["arg"])}
                elif frame["type"] == "get":
                    reply = {"type": "result", "id": frame["id"], "result": 21.5}
                elif frame["type"] == "ping":
                    reply = {"type": "pong", "id": frame["id"]}
                else:
                    continue
                self.socket.send(json.dumps(reply))
        except Exception:  # noqa: S110 (the socket closed: the test is over)
            pass

    def publish(self, name: str, data: str) -> None:
        self.socket.send(json.dumps({"type": "publish", "name": name, "data": data, "ttl": 60}))

    def close(self) -> None:
        self.stack.close()
        if self.thread is not None:
            self.thread.join(timeout=5)


@pytest.fixture
def ada(transactional_db) -> User:
    return User.objects.create_user(email="ada@example.com", password=PASSWORD)


def sign_in(page, email: str = "ada@example.com") -> None:
    page.goto("/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))


def provision(owner, count: int = 1) -> list[ProvisionedDevice]:
    return devices_provision(platform=PLATFORMS[13], count=count, owner=owner)


def row(page, device: Device):
    return page.locator(f'tr[data-device-id="{device.id}"]')


def test_list_shows_devices_and_searches(page, ada):
    devices = [p.device for p in provision(ada, 3)]
    Device.objects.filter(pk=devices[0].pk).update(name="greenhouse-north")
    sign_in(page)
    page.get_by_role("link", name="Devices").first.click()
    page.wait_for_url(re.compile("/devices/$"))

    for device in devices:
        expect(row(page, device)).to_be_visible()
    first = row(page, devices[0])
    expect(first.get_by_role("link", name="greenhouse-north")).to_be_visible()
    expect(first.get_by_text("Boron")).to_be_visible()
    expect(first.get_by_text("Offline")).to_be_visible()
    expect(first.locator("code.device-id")).to_have_attribute("title", devices[0].id)

    page.get_by_role("link", name="Last heard").click()
    page.wait_for_url(re.compile(r"\?sort=-last_heard$"))
    expect(page.get_by_role("columnheader", name="Last heard")).to_have_attribute("aria-sort", "descending")

    page.get_by_label("Search devices by name or device ID").fill("greenhouse")
    expect(page.locator("tr[data-device-id]")).to_have_count(1)
    page.wait_for_url(re.compile(r"\?q=greenhouse&sort=-last_heard$"))  # the search keeps the sort
    expect(page.get_by_text("1 device matches “greenhouse”")).to_be_visible()


def test_rename_in_place(page, ada):
    device, other = (p.device for p in provision(ada, 2))
    sign_in(page)
    page.goto("/devices/")
    target = row(page, device)

    target.get_by_role("button", name=f"Rename {device.name}").click()
    field = target.get_by_label(f"New name for {device.name}")
    expect(field).to_be_focused()
    field.fill(other.name.upper())
    field.press("Enter")
    expect(target.get_by_text("You already have a device named")).to_be_visible()
    expect(target.get_by_role("textbox")).to_have_attribute("aria-invalid", "true")

    target.get_by_role("textbox").fill("shed_sensor")
    target.get_by_role("button", name="Save").click()
    expect(target.get_by_role("link", name="shed_sensor")).to_be_visible()
    expect(page.get_by_text(f"Renamed {device.name} to shed_sensor.")).to_be_visible()
    device.refresh_from_db()
    assert device.name == "shed_sensor"

    target.get_by_role("button", name="Rename shed_sensor").click()
    target.get_by_role("textbox").fill("something else")
    target.get_by_role("textbox").press("Escape")
    expect(target.get_by_role("link", name="shed_sensor")).to_be_visible()
    expect(target.get_by_role("textbox")).to_be_hidden()


def test_claim_dialog_explains_errors_then_claims(page, ada):
    free = provision(None)[0].device
    sign_in(page)
    page.goto("/devices/")
    page.get_by_role("button", name="Claim device").first.click()
    dialog = page.get_by_role("dialog", name="Claim a device")
    dialog.get_by_label("Device ID").fill("0123456789abcdef01234567")
    dialog.get_by_role("button", name="Claim device").click()
    expect(dialog.get_by_text("No device with ID 0123456789abcdef01234567")).to_be_visible()
    expect(dialog.get_by_label("Device ID")).to_be_focused()

    dialog.get_by_role("button", name="Get a claim code").click()
    expect(dialog.get_by_label("Your claim code")).to_have_value(re.compile(r"^[\w-]{20,}$"))

    dialog.get_by_label("Device ID").fill(free.id)
    dialog.get_by_role("button", name="Claim device").click()
    page.wait_for_url(re.compile(f"/devices/{free.id}/$"))
    expect(page.get_by_text(f"Claimed {free.id}")).to_be_visible()
    assert Device.objects.get(pk=free.pk).owner == ada


def test_status_changes_live(page, live_asgi_server, ada):
    provisioned = provision(ada, 2)[0]
    sign_in(page)
    page.goto("/devices/")
    page.locator("[data-device-list][data-live=on]").wait_for()
    status = row(page, provisioned.device).locator("[data-device-status]")
    expect(status).to_have_attribute("data-device-status", "offline")
    expect(row(page, provisioned.device).locator("[data-last-heard]")).to_contain_text("Never")

    device = FakeDevice(live_asgi_server.url, provisioned).connect()
    try:
        expect(status).to_have_attribute("data-device-status", "online")
        expect(status).to_have_text("Online")
        expect(row(page, provisioned.device).locator("[data-last-heard] time")).to_have_text("just now")
    finally:
        device.close()
    expect(status).to_have_attribute("data-device-status", "offline")
    expect(status).to_have_text("Offline")


def test_device_page_calls_reads_and_shows_live_events(page, live_asgi_server, ada):
    provisioned = provision(ada)[0]
    device = FakeDevice(
        live_asgi_server.url, provisioned, functions=["led"], variables={"temperature": "double"}
    ).connect()
    try:
        sign_in(page)
        page.goto(f"/devices/{provisioned.device.id}/")
        page.locator("[data-device-detail][data-live=on]").wait_for()
        expect(page.locator(".device-header [data-device-status]")).to_have_text("Online")

        page.get_by_label("led").fill("hello")
        page.get_by_role("button", name="Call led").click()
        expect(page.get_by_text("led returned 5")).to_be_visible()

        page.get_by_role("button", name="Refresh temperature").click()
        expect(page.locator("code.member-value")).to_have_text("21.5")

        device.publish("greenhouse/temp", "22.4")
        events = page.locator("[data-event-log] [role=option]")
        expect(events).to_have_count(2)  # and the device's spark/status online, from the history
        expect(events.first).to_contain_text("greenhouse/temp")
        expect(events.first).to_contain_text("22.4")
    finally:
        device.close()
    expect(page.locator(".device-header [data-device-status]")).to_have_text("Offline")
    expect(page.locator("[data-offline-note]")).to_be_visible()
    # The cloud's spark/status event is this device's too.
    expect(page.locator("[data-event-log] [role=option]").first).to_contain_text("spark/status")
