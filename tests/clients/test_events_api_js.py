"""particle-api-js 12.0.3 `publishEvent` and `getEventStream` against a live server.

A stream is one node process (scripts/api_js_stream.js) that runs in the background: it says when
it is connected, prints each event api-js emits and leaves after the number of events it was
told to wait for, so the test publishes in between, from a simulated device, `particle publish`
and api-js, and then compares what arrived exactly. api-js 12.0.3 reconnects a stream that has
sent nothing for 15 s (the CLI's 11.1.7: 13 s); the server's keep-alive comes every 9 s.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from console.accounts.models import User
from console.accounts.services import access_token_create
from tests.clients.conftest import CLIENTS_DIR, ApiJs, BackgroundProcess, OnlineDevice, provision, wait_until
from tests.conftest import PASSWORD, LiveServer

pytestmark = pytest.mark.clients

API_JS_VERSION = "12.0.3"
STREAM_SCRIPT = CLIENTS_DIR / "scripts" / "api_js_stream.js"
# api-js parses the data line, then sets `name`.
EVENT_KEYS = ["data", "ttl", "published_at", "coreid", "name"]
PUBLISHED_AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
INVALID_TOKEN = {"error": "invalid_token", "error_description": "The access token provided is invalid."}
UNKNOWN_DEVICE = "0123456789abcdef01234567"


def assert_event(event: dict, *, name: str, data: str | None, coreid: str) -> None:
    assert list(event) == EVENT_KEYS, event
    assert event == {
        "data": data,
        "ttl": 60,
        "published_at": event["published_at"],
        "coreid": coreid,
        "name": name,
    }
    assert PUBLISHED_AT.match(event["published_at"]), event
    published = datetime.fromisoformat(event["published_at"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - published) < timedelta(seconds=30), event


def published_by(device: OnlineDevice, name: str, data: str, *, acked: int) -> None:
    """The device publishes; the cloud has taken it once the ``acked``-th ack is back."""
    device.publish(name, data)
    stats = device.simulated.stats
    wait_until(lambda: stats.acked >= acked or stats.errors, what=f"the ack of {name}")
    assert stats.acked == acked, stats.last_error


def publish_event(api_js: ApiJs, token: str, name: str, data: str) -> None:
    outcome = api_js.call("publishEvent", {"name": name, "data": data, "isPrivate": True, "auth": token})
    assert outcome["ok"], outcome
    assert outcome["statusCode"] == 200
    assert outcome["body"] == {"ok": True}


class Stream:
    """scripts/api_js_stream.js in the background, connected."""

    def __init__(self, process: BackgroundProcess) -> None:
        self.process = process

    def outcome(self, timeout: float = 10) -> tuple[list[dict], dict]:
        """Once the script has left: the events it printed, and its last line."""
        assert self.process.wait(timeout) == 0, self.process.transcript
        lines = [json.loads(line) for line in self.process.lines]
        assert lines[0] == {"connected": True, "version": API_JS_VERSION}, lines
        return [line["event"] for line in lines[1:-1]], lines[-1]


def open_stream(
    background, api_js: ApiJs, server: LiveServer, args: dict, *, count: int, seconds: float = 8
) -> BackgroundProcess:
    return background(
        ["node", str(STREAM_SCRIPT), server.url, str(count), str(seconds)],
        cwd=CLIENTS_DIR,
        env={**api_js.env, "API_JS_ARGS": json.dumps(args)},
    )


def connected_stream(background, api_js: ApiJs, server: LiveServer, args: dict, *, count: int) -> Stream:
    process = open_stream(background, api_js, server, args, count=count)
    process.wait_for(lambda line: True)
    assert json.loads(process.lines[0]) == {"connected": True, "version": API_JS_VERSION}, process.transcript
    return Stream(process)


def refusal(background, api_js: ApiJs, server: LiveServer, args: dict) -> dict:
    process = open_stream(background, api_js, server, args, count=1)
    assert process.wait() == 0, process.transcript
    (line,) = process.lines
    outcome = json.loads(line)
    assert outcome["ok"] is False, outcome
    assert outcome["version"] == API_JS_VERSION
    return outcome


@pytest.fixture
def stranger() -> User:
    return User.objects.create_user(email="stranger@example.com", password=PASSWORD)


# --- publishing -----------------------------------------------------------------------------------------


def test_publish_event_reaches_my_stream(api_js, account, account_token, live_asgi_server, background):
    stream = connected_stream(
        background, api_js, live_asgi_server, {"deviceId": "mine", "auth": account_token}, count=1
    )

    publish_event(api_js, account_token, "greeting", "hello")

    events, last = stream.outcome()
    assert last == {"done": True, "received": 1}
    (event,) = events
    assert_event(event, name="greeting", data="hello", coreid="api")


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("spark/x", "hi", "Event names starting with 'spark' or 'particle' are reserved: 'spark/x'."),
        ("big", "x" * 1025, "Event data is at most 1024 bytes; this is 1025."),
    ],
    ids=["reserved-name", "data-too-large"],
)
def test_publish_event_refused(api_js, account, account_token, name, data, message):
    outcome = api_js.call(
        "publishEvent", {"name": name, "data": data, "isPrivate": True, "auth": account_token}
    )

    assert outcome["ok"] is False
    assert outcome["statusCode"] == 400
    assert outcome["shortErrorDescription"] == message
    assert outcome["body"]["error_description"] == message


# --- streams ----------------------------------------------------------------------------------------------


def test_my_stream_gets_device_cli_and_api_js_events(
    logged_in, api_js, account, account_token, live_asgi_server, background, connect_device, stranger
):
    mine = provision("boron", owner=account)
    device = connect_device(mine)
    other_device = connect_device(provision("argon", owner=stranger))
    stream = connected_stream(
        background, api_js, live_asgi_server, {"deviceId": "mine", "auth": account_token}, count=3
    )

    published_by(other_device, "env", "theirs", acked=1)
    published_by(device, "env", '{"t":21.4,"h":48}', acked=1)
    cli = logged_in.run("publish", "cli-event", "from the CLI")
    assert cli.exit_code == 0, cli.output
    publish_event(api_js, account_token, "api-event", "from api-js")

    events, last = stream.outcome()
    assert last == {"done": True, "received": 3}
    device_event, cli_event, api_event = events  # and not the stranger's
    assert_event(device_event, name="env", data='{"t":21.4,"h":48}', coreid=mine.device.id)
    assert_event(cli_event, name="cli-event", data="from the CLI", coreid="api")
    assert_event(api_event, name="api-event", data="from api-js", coreid="api")


@pytest.mark.parametrize(
    "args",
    [
        {"deviceId": "mine", "name": "temp"},  # /v1/devices/events/temp
        {"name": "temp"},  # /v1/events/temp: only what the caller may see, never a firehose
    ],
    ids=["mine", "events"],
)
def test_a_prefix_stream(
    logged_in, api_js, account, account_token, live_asgi_server, background, connect_device, stranger, args
):
    provisioned = provision("boron", owner=account)
    device = connect_device(provisioned)
    stranger_token = access_token_create(user=stranger, expires_in_seconds=600, client_id="particle").token
    stream = connected_stream(background, api_js, live_asgi_server, {**args, "auth": account_token}, count=2)

    publish_event(api_js, stranger_token, "temp", "someone else's")
    published_by(device, "humidity", "48", acked=1)
    published_by(device, "temp", "21.5", acked=2)
    cli = logged_in.run("publish", "temperature", "22")
    assert cli.exit_code == 0, cli.output

    events, last = stream.outcome()
    assert last == {"done": True, "received": 2}
    device_event, cli_event = events
    assert_event(device_event, name="temp", data="21.5", coreid=provisioned.device.id)
    assert_event(cli_event, name="temperature", data="22", coreid="api")


def test_one_devices_stream(api_js, account, account_token, live_asgi_server, background, connect_device):
    watched = provision("boron", owner=account)
    device = connect_device(watched)
    other_device = connect_device(provision("argon", owner=account))
    stream = connected_stream(
        background, api_js, live_asgi_server, {"deviceId": watched.device.id, "auth": account_token}, count=2
    )

    published_by(other_device, "env", '{"t":19.0}', acked=1)
    publish_event(api_js, account_token, "env", "from api-js")
    published_by(device, "status", "ok", acked=1)
    published_by(device, "env", '{"t":22.5}', acked=2)

    events, last = stream.outcome()
    assert last == {"done": True, "received": 2}
    status, env = events
    assert_event(status, name="status", data="ok", coreid=watched.device.id)
    assert_event(env, name="env", data='{"t":22.5}', coreid=watched.device.id)


def test_a_bad_token_is_rejected(api_js, account, live_asgi_server, background):
    outcome = refusal(background, api_js, live_asgi_server, {"deviceId": "mine", "auth": "0" * 40})

    assert outcome["statusCode"] == 401
    assert outcome["errorDescription"] == (
        f"HTTP error 401 from {live_asgi_server.url}/v1/devices/events - {INVALID_TOKEN['error_description']}"
    )
    assert outcome["body"] == INVALID_TOKEN


def test_an_unknown_or_foreign_device_is_not_found(
    api_js, account, account_token, live_asgi_server, background, stranger
):
    foreign = provision("boron", owner=stranger).device.id

    for device_id in (UNKNOWN_DEVICE, foreign):
        outcome = refusal(
            background, api_js, live_asgi_server, {"deviceId": device_id, "auth": account_token}
        )

        assert outcome["statusCode"] == 404
        message = outcome["body"]["error_description"]
        assert message == f"Device '{device_id}' not found."
        assert outcome["errorDescription"] == (
            f"HTTP error 404 from {live_asgi_server.url}/v1/devices/{device_id}/events - {message}"
        )


# --- keep-alive -------------------------------------------------------------------------------------------


def test_an_idle_stream_gets_a_keep_alive_in_time(account, account_token, live_asgi_server):
    """Slow (about 10 s): an idle stream must send a byte well before the clients' 13 s and 15 s."""
    with (
        httpx.Client(timeout=httpx.Timeout(10, read=12)) as client,
        client.stream(
            "GET",
            f"{live_asgi_server.url}/v1/devices/events",
            headers={"Authorization": f"Bearer {account_token}"},
        ) as response,
    ):
        assert response.status_code == 200
        chunks = response.iter_raw()
        assert next(chunks) == b":ok\n\n"
        opened = time.monotonic()
        keep_alive = next(chunks)
        idle = time.monotonic() - opened

    assert keep_alive == b"\n"
    assert 8 < idle < 9.5, idle
