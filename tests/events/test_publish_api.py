"""POST /v1/devices/events: a user publishes to their own devices' stream, as Particle's clients do
(form or JSON bodies), every refusal publishes nothing, and the per-user rate limit."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlencode

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient
from rest_framework.test import APIClient

from console.accounts.services import access_token_create
from events.hub import Subscription, hub
from events.ratelimit import buckets
from events.types import API_COREID
from tests.devices.device_client import hub_ready

URL = "/v1/devices/events"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(autouse=True)
def _isolated(settings):
    settings.QUANTA_EVENT_USAGE_FLUSH_SECONDS = 3600  # no background writes from these tests
    buckets._local.clear()  # user ids repeat between tests; their token buckets must not


def recent(user) -> list:
    return hub.recent(user_id=user.pk, limit=10)


def post_form(client: APIClient, fields: dict):
    return client.post(URL, urlencode(fields), content_type=FORM)


def client_for(user) -> APIClient:
    client = APIClient()
    token = access_token_create(user=user, expires_in_seconds=3600, client_id="particle").token
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


# --- Publishing -------------------------------------------------------------------------------------------
def test_a_form_publish_is_recorded_for_the_user(auth_client, user):
    response = post_form(auth_client, {"name": "temp", "data": "21.5", "ttl": "30", "private": "false"})
    assert (response.status_code, response.json()) == (200, {"ok": True})
    [event] = recent(user)
    assert (event.name, event.data, event.ttl, event.private) == ("temp", "21.5", 30, False)
    assert (event.coreid, event.owner_id, event.product_id, event.device_name) == (
        API_COREID,
        user.pk,
        None,
        None,
    )
    assert API_COREID == "api"


def test_a_json_publish_with_defaults(auth_client, user):
    response = auth_client.post(URL, {"name": "door/open"}, format="json")
    assert (response.status_code, response.json()) == (200, {"ok": True})
    [event] = recent(user)
    assert (event.name, event.data, event.ttl, event.private, event.coreid) == (
        "door/open",
        None,
        60,
        True,
        "api",
    )


def test_a_multipart_publish_and_json_values(auth_client, user):
    assert auth_client.post(URL, {"name": "a", "data": "x", "ttl": "0", "private": "1"}).json() == {
        "ok": True
    }
    response = auth_client.post(
        URL, {"name": "b", "data": 21.5, "ttl": 16_777_215, "private": False}, format="json"
    )
    assert response.json() == {"ok": True}
    response = auth_client.post(URL, {"name": "c", "data": 7, "ttl": 2.0, "private": "TRUE"}, format="json")
    assert response.json() == {"ok": True}
    assert [(e.name, e.data, e.ttl, e.private) for e in recent(user)] == [
        ("a", "x", 0, True),
        ("b", "21.5", 16_777_215, False),
        ("c", "7", 2, True),
    ]


def test_the_largest_allowed_publish(auth_client, user):
    response = post_form(auth_client, {"name": "n" * 64, "data": "\u00e9" * 512})  # 1024 bytes
    assert response.status_code == 200
    [event] = recent(user)
    assert (len(event.name), event.data) == (64, "\u00e9" * 512)


def test_the_token_may_come_in_the_form_body(api_client, user, token):
    response = post_form(api_client, {"name": "temp", "data": "1", "access_token": token})
    assert (response.status_code, response.json()) == (200, {"ok": True})
    assert [e.data for e in recent(user)] == ["1"]


# --- Refusals ---------------------------------------------------------------------------------------------
def test_anonymous_is_told_the_token_was_not_found(api_client, user):
    response = post_form(api_client, {"name": "temp"})
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "The access token was not found",
    }
    assert recent(user) == []


def test_a_bad_token_is_401(api_client, user):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer " + "0" * 40)
    response = post_form(api_client, {"name": "temp"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert recent(user) == []


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "1 to 64 characters"),
        ("n" * 65, "this one has 65"),
        ("temp\u00e9rature", "printable ASCII"),
        ("spark/x", "reserved"),
        ("Particle-y", "reserved"),
    ],
)
def test_bad_names_are_refused_with_the_field(auth_client, user, name, fragment):
    response = post_form(auth_client, {"name": name, "data": "1"})
    assert response.status_code == 400
    body = response.json()
    assert (body["ok"], body["field"]) == (False, "name")
    assert fragment in body["error"]
    assert recent(user) == []


def test_a_missing_name_is_refused(auth_client, user):
    response = auth_client.post(URL, {"data": "1"}, format="json")
    assert (response.status_code, response.json()["field"]) == (400, "name")
    assert recent(user) == []


@pytest.mark.parametrize(("data", "size"), [("x" * 1025, 1025), ("\u00e9" * 513, 1026)])
def test_data_over_1024_bytes_is_refused_naming_both_sizes(auth_client, user, data, size):
    response = post_form(auth_client, {"name": "temp", "data": data})
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "data"
    assert "1024" in body["error"]
    assert str(size) in body["error"]
    assert recent(user) == []


@pytest.mark.parametrize("data", [{"a": 1}, ["x"], True])
def test_data_that_is_not_a_string_is_refused(auth_client, user, data):
    response = auth_client.post(URL, {"name": "temp", "data": data}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "data"
    assert "string" in body["error"]
    assert recent(user) == []


@pytest.mark.parametrize("ttl", ["-1", "abc", "16777216", "1.5"])
def test_bad_ttl_is_refused(auth_client, user, ttl):
    response = post_form(auth_client, {"name": "temp", "ttl": ttl})
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "ttl"
    assert "16777215" in body["error"]
    assert recent(user) == []


@pytest.mark.parametrize("ttl", [1.5, True, -1, [60]])
def test_bad_json_ttl_is_refused(auth_client, user, ttl):
    response = auth_client.post(URL, {"name": "temp", "ttl": ttl}, format="json")
    assert (response.status_code, response.json()["field"]) == (400, "ttl")
    assert recent(user) == []


@pytest.mark.parametrize(("private", "form"), [("maybe", True), ("yes", True), (1, False), ([], False)])
def test_bad_private_is_refused(auth_client, user, private, form):
    fields = {"name": "temp", "private": private}
    response = post_form(auth_client, fields) if form else auth_client.post(URL, fields, format="json")
    assert response.status_code == 400
    body = response.json()
    assert (body["field"], body["error"]) == ("private", "private is true or false.")
    assert recent(user) == []


# --- Other methods on the same path -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", URL),
        ("delete", URL),
        ("patch", URL),
        ("post", URL + "/temp"),  # with a prefix, the path is a stream, not a publish
        ("post", "/v1/events/temp"),
    ],
)
def test_other_methods_are_405_and_publish_nothing(auth_client, user, method, path):
    response = getattr(auth_client, method)(path, urlencode({"name": "temp"}), content_type=FORM)
    assert response.status_code == 405
    assert response.json()["ok"] is False
    assert method.upper() in response.json()["error"]
    assert recent(user) == []


def test_a_get_with_publish_fields_streams_and_publishes_nothing(auth_client, user):
    response = auth_client.get(URL, {"name": "temp", "data": "1"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert recent(user) == []


# --- The rate limit ---------------------------------------------------------------------------------------
def test_bursts_are_limited_per_user(settings, auth_client, user, other_user):
    settings.QUANTA_PUBLISH_BURST = 4
    settings.QUANTA_PUBLISH_RATE_PER_SECOND = 1.0
    for index in range(4):
        response = post_form(auth_client, {"name": "temp", "data": str(index)})
        assert response.status_code == 200, index
    response = post_form(auth_client, {"name": "temp", "data": "4"})
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "1"
    body = response.json()
    assert body["ok"] is False
    assert body["error"].startswith("Too many events")
    assert "bursts of 4" in body["error"]
    assert [e.data for e in recent(user)] == ["0", "1", "2", "3"]

    # Another user draws from a bucket of their own.
    other = client_for(other_user)
    for index in range(4):
        assert post_form(other, {"name": "temp", "data": f"o{index}"}).status_code == 200
    assert post_form(other, {"name": "temp"}).status_code == 429
    assert [e.data for e in recent(other_user)] == ["o0", "o1", "o2", "o3"]


def test_the_bucket_refills(settings, auth_client, user):
    settings.QUANTA_PUBLISH_BURST = 1
    settings.QUANTA_PUBLISH_RATE_PER_SECOND = 20  # a token every 50 ms
    assert post_form(auth_client, {"name": "temp", "data": "a"}).status_code == 200
    assert post_form(auth_client, {"name": "temp", "data": "b"}).status_code == 429
    time.sleep(0.12)
    assert post_form(auth_client, {"name": "temp", "data": "c"}).status_code == 200
    assert [e.data for e in recent(user)] == ["a", "c"]


# --- Isolation between users ------------------------------------------------------------------------------
def test_one_users_events_never_reach_another_users_history(auth_client, user, other_user):
    other = client_for(other_user)
    assert post_form(auth_client, {"name": "temp", "data": "mine"}).status_code == 200
    assert post_form(other, {"name": "temp", "data": "theirs"}).status_code == 200
    assert [(e.data, e.owner_id) for e in recent(user)] == [("mine", user.pk)]
    assert [(e.data, e.owner_id) for e in recent(other_user)] == [("theirs", other_user.pk)]


@pytest.mark.django_db(transaction=True)
async def test_a_publish_reaches_the_users_subscription_only(user, other_user, token):
    mine = hub.subscribe(Subscription(user_id=user.pk))
    theirs = hub.subscribe(Subscription(user_id=other_user.pk))
    await hub_ready()

    response = await AsyncClient().post(
        URL,
        urlencode({"name": "temp", "data": "21.5", "ttl": "5"}),
        content_type=FORM,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert (response.status_code, response.json()) == (200, {"ok": True})
    events, dropped = await asyncio.wait_for(mine.next_batch(), 2)
    assert dropped == 0
    assert [(e.name, e.data, e.ttl, e.private, e.coreid, e.owner_id) for e in events] == [
        ("temp", "21.5", 5, True, "api", user.pk)
    ]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(theirs.next_batch(), 0.1)
    assert await sync_to_async(hub.recent)(user_id=other_user.pk, limit=10) == []
    hub.unsubscribe(mine)
    hub.unsubscribe(theirs)
    # The view ran in asgiref's worker thread; the test client leaves its connection open.
    await sync_to_async(connections.close_all)()
