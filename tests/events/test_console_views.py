"""Console views for events: the Publish button (/events/publish/) and the history download
(/events/export/, CSV and NDJSON)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from events.hub import hub
from events.ratelimit import buckets
from events.services import event_publish
from events.types import Event

PUBLISH, EXPORT = "/events/publish/", "/events/export/"
DEVICE, OTHER_DEVICE = "a" * 24, "b" * 24
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HEADER = "published_at,name,data,device_id,device_name,ttl"


@pytest.fixture(autouse=True)
def _isolated(settings):
    settings.QUANTA_EVENT_USAGE_FLUSH_SECONDS = 3600  # no background writes from these tests
    buckets._local.clear()  # user ids repeat between tests; their token buckets must not


@pytest.fixture
def console(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def recent(user) -> list[Event]:
    return hub.recent(user_id=user.pk, limit=10)


# --- Publish ------------------------------------------------------------------------------------------------
def test_anonymous_is_sent_to_login(client, user):
    response = client.post(PUBLISH, {"name": "temp"})
    assert response.status_code == 302
    assert response.url == f"{reverse('accounts:login')}?next={PUBLISH}"
    response = client.get(EXPORT)
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))
    assert recent(user) == []


def test_csrf_is_enforced(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(PUBLISH, {"name": "temp"}).status_code == 403
    assert recent(user) == []

    secret = "A" * 32
    client.cookies["csrftoken"] = secret
    response = client.post(PUBLISH, {"name": "temp"}, headers={"X-CSRFToken": secret})
    assert response.status_code == 200
    assert [e.name for e in recent(user)] == ["temp"]


def test_publish_answers_the_event(console, user):
    response = console.post(PUBLISH, {"name": "door", "data": "  open  "})
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    [event] = recent(user)
    assert body["event"] == event.console_wire()
    assert {k: v for k, v in body["event"].items() if k != "published_at"} == {
        "name": "door",
        "data": "  open  ",  # data is sent as typed
        "ttl": 60,
        "coreid": "api",
        "device_name": None,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["event"]["published_at"])
    assert (event.owner_id, event.private) == (user.pk, True)


def test_empty_data_publishes_no_data(console, user):
    assert console.post(PUBLISH, {"name": " temp ", "data": ""}).status_code == 200
    [event] = recent(user)
    assert (event.name, event.data) == ("temp", None)  # the name is stripped


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"name": "spark/status"}, "name", "reserved"),
        ({"name": "Particle-y"}, "name", "reserved"),
        ({"name": ""}, "name", "required"),
        ({"name": "n" * 65}, "name", "at most 64"),
        ({"name": "temp\u00e9"}, "name", "printable ASCII"),
        ({"name": "temp", "data": "x" * 1025}, "data", "1025"),
    ],
)
def test_refusals_name_the_field(console, user, fields, field, fragment):
    response = console.post(PUBLISH, fields)
    assert response.status_code == 400
    body = response.json()
    assert body["ok"] is False
    assert list(body["errors"]) == [field]
    assert fragment in body["errors"][field]
    assert recent(user) == []


def test_publish_is_rate_limited(console, user, settings):
    settings.QUANTA_PUBLISH_BURST = 2
    settings.QUANTA_PUBLISH_RATE_PER_SECOND = 1.0
    assert console.post(PUBLISH, {"name": "a"}).status_code == 200
    assert console.post(PUBLISH, {"name": "b"}).status_code == 200
    response = console.post(PUBLISH, {"name": "c"})
    assert response.status_code == 429
    assert response["Retry-After"] == "1"
    body = response.json()
    assert body["ok"] is False
    assert body["errors"]["__all__"].startswith("Too many events")
    assert [e.name for e in recent(user)] == ["a", "b"]


def test_publish_is_post_only(console):
    assert console.get(PUBLISH).status_code == 405


# --- Export ------------------------------------------------------------------------------------------------
def publish(owner_id, name, data, *, coreid=DEVICE, device_name="kitchen", offset=0, ttl=60) -> Event:
    """A device's event, straight into the bus (as the gateway publishes it)."""
    return event_publish(
        Event(
            name=name,
            data=data,
            published_at=START + timedelta(seconds=offset),
            coreid=coreid,
            owner_id=owner_id,
            device_name=device_name,
            ttl=ttl,
        )
    )


@pytest.fixture
def history(user, other_user) -> None:
    publish(user.pk, "temp", "21.5", offset=0)
    publish(user.pk, "cmd", '=HYPERLINK("http://evil")', offset=1)
    publish(user.pk, "temp", "-5.5", coreid=OTHER_DEVICE, device_name="garage", offset=2)
    publish(user.pk, "note", "+call @home", offset=3, ttl=5)
    publish(user.pk, "empty", None, device_name=None, offset=4)
    publish(other_user.pk, "temp", "secret", offset=5)


def export(client: Client, **query) -> tuple:
    response = client.get(EXPORT, query)
    body = b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()
    return response, body


def test_csv_export(console, history):
    response, body = export(console)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="events-\d{8}-\d{6}\.csv"', response["Content-Disposition"])
    lines = body.split("\r\n")
    assert lines[0] == HEADER
    assert lines[-1] == ""
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[1:] == [
        ["2026-03-01T12:00:00.000Z", "temp", "21.5", DEVICE, "kitchen", "60"],
        ["2026-03-01T12:00:01.000Z", "cmd", '\'=HYPERLINK("http://evil")', DEVICE, "kitchen", "60"],
        ["2026-03-01T12:00:02.000Z", "temp", "-5.5", OTHER_DEVICE, "garage", "60"],  # a number stays one
        ["2026-03-01T12:00:03.000Z", "note", "'+call @home", DEVICE, "kitchen", "5"],
        ["2026-03-01T12:00:04.000Z", "empty", "", DEVICE, "", "60"],
    ]
    assert "secret" not in body  # another user's events are never exported


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-cmd", "'-cmd"),
        ("+1", "+1"),
        ("-0.5e3", "-0.5e3"),
        ("\tx", "'\tx"),
        ("plain = text", "plain = text"),
    ],
)
def test_csv_formula_guard(console, user, value, cell):
    publish(user.pk, "=name", value)
    _, body = export(console)
    [row] = list(csv.reader(io.StringIO(body)))[1:]
    assert (row[1], row[2]) == ("'=name", cell)


def test_export_applies_the_filter_and_the_device(console, history):
    _, body = export(console, q="event:temp")
    assert [row[2] for row in list(csv.reader(io.StringIO(body)))[1:]] == ["21.5", "-5.5"]
    _, body = export(console, q="device:garage")
    assert [row[2] for row in list(csv.reader(io.StringIO(body)))[1:]] == ["-5.5"]
    _, body = export(console, q="range:-10-0")
    assert [row[2] for row in list(csv.reader(io.StringIO(body)))[1:]] == ["-5.5"]
    _, body = export(console, device=DEVICE, q="event:temp")
    assert [row[2] for row in list(csv.reader(io.StringIO(body)))[1:]] == ["21.5"]
    _, body = export(console, device=OTHER_DEVICE)
    assert [row[1] for row in list(csv.reader(io.StringIO(body)))[1:]] == ["temp"]
    _, body = export(console, q="secret")
    assert body == HEADER + "\r\n"


def test_a_bad_filter_or_format_is_400(console, history):
    response, body = export(console, q="range:9-1")
    assert response.status_code == 400
    assert body == "Filter: range: the minimum (9) is above the maximum (1)."
    response, body = export(console, format="xlsx")
    assert (response.status_code, body) == (400, "format is csv or ndjson.")


def test_ndjson_export(console, history):
    response, body = export(console, format="ndjson", q="device:kitchen")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"].endswith('.ndjson"')
    assert body.endswith("\n")
    rows = [json.loads(line) for line in body.splitlines()]
    assert rows == [
        {
            "published_at": "2026-03-01T12:00:00.000Z",
            "name": "temp",
            "data": "21.5",
            "device_id": DEVICE,
            "device_name": "kitchen",
            "ttl": 60,
        },
        {
            "published_at": "2026-03-01T12:00:01.000Z",
            "name": "cmd",
            "data": '=HYPERLINK("http://evil")',  # JSON is not a spreadsheet: data as published
            "device_id": DEVICE,
            "device_name": "kitchen",
            "ttl": 60,
        },
        {
            "published_at": "2026-03-01T12:00:03.000Z",
            "name": "note",
            "data": "+call @home",
            "device_id": DEVICE,
            "device_name": "kitchen",
            "ttl": 5,
        },
    ]


def test_the_other_user_exports_only_theirs(history, other_user):
    client = Client()
    client.force_login(other_user)
    _, body = export(client, format="ndjson")
    assert [json.loads(line)["data"] for line in body.splitlines()] == ["secret"]
    _, body = export(client, device=DEVICE)
    assert [row[2] for row in list(csv.reader(io.StringIO(body)))[1:]] == ["secret"]
