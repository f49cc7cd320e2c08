"""particle-cli 3.43.1 `publish` and `subscribe` against a live server with devices connected.

`publish` goes through the CLI's nested particle-api-js 11.1.7 (``private: true``), `subscribe`
through its EventStream, which gives up on a stream after 13 s without a byte. `subscribe` runs
on in the background while the test publishes from a simulated device, from a second CLI
process and from the API, and the events it prints are checked exactly: the CLI prints the JSON
of each event as api-js parsed it, the ``data:`` line's keys followed by ``name``.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from console.accounts.models import User
from console.accounts.services import access_token_create
from tests.clients.conftest import (
    PARTICLE_BIN,
    BackgroundProcess,
    OnlineDevice,
    ParticleCLI,
    provision,
    wait_until,
)
from tests.conftest import PASSWORD, LiveServer

pytestmark = pytest.mark.clients

# api-js parses the data line, then sets `name`: the CLI prints the keys in this order.
PRINTED_KEYS = ["data", "ttl", "published_at", "coreid", "name"]
DATA_KEYS = ["data", "ttl", "published_at", "coreid"]
PUBLISHED_AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
INTERRUPTED = -signal.SIGINT  # the CLI handles no signal: Ctrl-C ends it at once
RESERVED = "Event names starting with 'spark' or 'particle' are reserved: 'spark/x'."
TOO_LARGE = "Event data is at most 1024 bytes; this is 1025."


def assert_event(event: dict, *, name: str, data: str | None, coreid: str, keys=PRINTED_KEYS) -> None:
    assert list(event) == keys, event
    expected = {"data": data, "ttl": 60, "published_at": event["published_at"], "coreid": coreid}
    if "name" in keys:
        expected["name"] = name
    assert event == expected
    assert PUBLISHED_AT.match(event["published_at"]), event
    published = datetime.fromisoformat(event["published_at"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - published) < timedelta(seconds=30), event


def api_publish(server: LiveServer, token: str, name: str, data: str) -> None:
    """POST /v1/devices/events as Particle's docs show it with curl (a form)."""
    response = httpx.post(
        f"{server.url}/v1/devices/events",
        data={"name": name, "data": data, "private": "true"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True}


def published_by(device: OnlineDevice, name: str, data: str, *, acked: int) -> None:
    """The device publishes; the cloud has taken it once the ``acked``-th ack is back."""
    device.publish(name, data)
    stats = device.simulated.stats
    wait_until(lambda: stats.acked >= acked or stats.errors, what=f"the ack of {name}")
    assert stats.acked == acked, stats.last_error


def subscribe(particle: ParticleCLI, background, *args: str) -> BackgroundProcess:
    """`particle subscribe ...` in the background, once its stream is open: the CLI prints what it
    subscribes to, and an empty line when the server has answered."""
    process = background([str(PARTICLE_BIN), "subscribe", *args], cwd=particle.home, env=particle.env)
    announced = process.wait_for(lambda line: line.startswith("Subscribing to"))
    process.wait_for(lambda line: line == "", start=announced + 1)
    return process


def is_event(line: str) -> bool:
    return line.startswith("{")


def printed_events(process: BackgroundProcess, count: int) -> list[dict]:
    """The events the CLI printed, which must be ``count``."""
    events = [json.loads(line) for line in list(process.lines) if is_event(line)]
    assert len(events) == count, process.transcript
    return events


def wait_for_event(process: BackgroundProcess, name: str) -> dict:
    index = process.wait_for(lambda line: is_event(line) and json.loads(line)["name"] == name)
    return json.loads(process.lines[index])


class RawStream:
    """An SSE stream read with httpx, frame by frame."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.iter_lines()

    def frame(self) -> list[str]:
        """The next frame's lines (comments included); keep-alive newlines are skipped."""
        lines: list[str] = []
        for line in self._lines:
            if line:
                lines.append(line)
            elif lines:
                return lines
        raise AssertionError(f"the stream ended; it had sent {lines}")


@contextmanager
def raw_stream(server: LiveServer, path: str, token: str) -> Iterator[RawStream]:
    with (
        httpx.Client(timeout=httpx.Timeout(10, read=12)) as client,
        client.stream("GET", f"{server.url}{path}", headers={"Authorization": f"Bearer {token}"}) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = RawStream(response)
        assert stream.frame() == [":ok"]
        yield stream


def assert_frame(frame: list[str], *, name: str, data: str | None, coreid: str) -> None:
    assert len(frame) == 2, frame
    assert frame[0] == f"event: {name}"
    assert frame[1].startswith("data: "), frame
    assert_event(
        json.loads(frame[1].removeprefix("data: ")), name=name, data=data, coreid=coreid, keys=DATA_KEYS
    )


@pytest.fixture
def stranger() -> User:
    return User.objects.create_user(email="stranger@example.com", password=PASSWORD)


# --- publish -------------------------------------------------------------------------------------------


def test_publish_reaches_a_subscriber(logged_in, account, account_token, live_asgi_server):
    with raw_stream(live_asgi_server, "/v1/devices/events", account_token) as stream:
        result = logged_in.run("publish", "temp", "25.0")

        assert result.exit_code == 0, result.output
        assert result.stdout == "Published private event: temp\n\n"
        assert_frame(stream.frame(), name="temp", data="25.0", coreid="api")


def test_publish_refusals_show_the_servers_message(logged_in, account, account_token, live_asgi_server):
    with raw_stream(live_asgi_server, "/v1/devices/events", account_token) as stream:
        reserved = logged_in.run("publish", "spark/x", "hello")
        too_large = logged_in.run("publish", "big", "x" * 1025)
        fine = logged_in.run("publish", "big", "x" * 1024)

        assert reserved.exit_code == 1
        assert reserved.stdout == f"Error publishing event: {RESERVED}\n"
        assert too_large.exit_code == 1
        assert too_large.stdout == f"Error publishing event: {TOO_LARGE}\n"
        assert fine.exit_code == 0, fine.output
        # The refused ones never reached the stream: the first event on it is the last publish.
        assert_frame(stream.frame(), name="big", data="x" * 1024, coreid="api")


# --- subscribe -----------------------------------------------------------------------------------------


def test_subscribe_to_my_devices(
    logged_in, account, account_token, live_asgi_server, background, connect_device, stranger
):
    mine = provision("boron", owner=account)
    theirs = provision("argon", owner=stranger)
    device = connect_device(mine)
    other_device = connect_device(theirs)
    process = subscribe(logged_in, background)
    assert process.lines[0] == "Subscribing to all events from my devices"

    published_by(other_device, "env", "theirs", acked=1)
    published_by(device, "env", '{"t":21.4,"h":48}', acked=1)
    cli = logged_in.run("publish", "cli-event", "from the CLI")
    assert cli.exit_code == 0, cli.output
    api_publish(live_asgi_server, account_token, "api-event", "from the API")
    wait_for_event(process, "api-event")

    device_event, cli_event, api_event = printed_events(process, 3)  # and not the stranger's
    assert_event(device_event, name="env", data='{"t":21.4,"h":48}', coreid=mine.device.id)
    assert_event(cli_event, name="cli-event", data="from the CLI", coreid="api")
    assert_event(api_event, name="api-event", data="from the API", coreid="api")
    assert process.interrupt() == INTERRUPTED


@pytest.mark.parametrize(
    ("args", "announced"),
    [
        (["temp"], 'Subscribing to "temp" from my devices'),
        # --all reads /v1/events/temp: Quanta has no firehose, only what the caller may see.
        (
            ["--all", "temp"],
            'Subscribing to "temp" from the firehose (all devices) and my personal stream (my devices)',
        ),
    ],
)
def test_subscribe_to_a_prefix(
    logged_in, account, live_asgi_server, background, connect_device, stranger, args, announced
):
    provisioned = provision("boron", owner=account)
    device = connect_device(provisioned)
    stranger_token = access_token_create(user=stranger, expires_in_seconds=600, client_id="particle").token
    process = subscribe(logged_in, background, *args, "--max", "2")
    assert process.lines[:2] == [announced, "This command will exit after receiving 2 event(s)..."]

    api_publish(live_asgi_server, stranger_token, "temp", "someone else's")
    published_by(device, "humidity", "48", acked=1)
    published_by(device, "temp", "21.5", acked=2)
    cli = logged_in.run("publish", "temperature", "22")
    assert cli.exit_code == 0, cli.output

    assert process.wait() == 0  # --max 2: it leaves by itself after the second event
    device_event, cli_event = printed_events(process, 2)
    assert_event(device_event, name="temp", data="21.5", coreid=provisioned.device.id)
    assert_event(cli_event, name="temperature", data="22", coreid="api")
    assert process.lines[-1] == "2 event(s) received. Exiting..."


@pytest.mark.parametrize("by", ["name", "id with a prefix"])
def test_subscribe_to_one_device(
    logged_in, account, account_token, live_asgi_server, background, connect_device, by
):
    watched = provision("boron", owner=account)
    other = provision("argon", owner=account)
    device = connect_device(watched)
    other_device = connect_device(other)
    if by == "name":
        args = ["--device", watched.device.name]
        announced = f"Subscribing to all events from device {watched.device.name}'s stream"
    else:
        args = ["env", "--device", watched.device.id]
        announced = f'Subscribing to "env" from device {watched.device.id}\'s stream'
    process = subscribe(logged_in, background, *args)
    assert process.lines[0] == announced

    published_by(other_device, "env", '{"t":19.0}', acked=1)
    api_publish(live_asgi_server, account_token, "env", "from the API")
    published_by(device, "status", "ok", acked=1)
    published_by(device, "env", '{"t":22.5}', acked=2)
    wait_for_event(process, "env")

    events = printed_events(process, 2 if by == "name" else 1)
    if by == "name":
        assert_event(events.pop(0), name="status", data="ok", coreid=watched.device.id)
    assert_event(events[0], name="env", data='{"t":22.5}', coreid=watched.device.id)
    assert process.interrupt() == INTERRUPTED


def test_subscribe_to_an_unknown_device_fails(logged_in, account):
    result = logged_in.run("subscribe", "--device", "no_such_device")

    assert result.exit_code == 1
    # api-js rejects with {statusCode: 404, errorDescription, body}, which the CLI's error
    # normalizer does not read (it looks for `error` or `info` on the rejection itself): it shows
    # "Server error" for any refusal but 400/401, whatever the server said.
    assert result.stdout == (
        "Subscribing to all events from device no_such_device's stream\n"
        "Error fetching event stream: Server error\n"
    )


def test_subscribe_with_an_invalid_token_fails(logged_in, account):
    config = {**logged_in.config(), "access_token": "0" * 40}
    logged_in.config_path.write_text(json.dumps(config))

    result = logged_in.run("subscribe")

    assert result.exit_code == 1
    assert result.stdout == (
        "Subscribing to all events from my devices\n"
        "Error fetching event stream: The access token provided is invalid.\n"
    )


def test_subscribe_shows_devices_coming_online_and_going_offline(
    logged_in, account, background, connect_device
):
    provisioned = provision("boron", owner=account)
    process = subscribe(logged_in, background)

    device = connect_device(provisioned)
    wait_for_event(process, "spark/status")
    device.stop()
    process.wait_for(lambda line: is_event(line) and json.loads(line)["data"] == "offline")

    online, offline = printed_events(process, 2)
    assert_event(online, name="spark/status", data="online", coreid=provisioned.device.id)
    assert_event(offline, name="spark/status", data="offline", coreid=provisioned.device.id)
    assert process.interrupt() == INTERRUPTED
