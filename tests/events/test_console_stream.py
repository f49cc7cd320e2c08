"""The console's "events" stream over the console websocket: the filtered history first, then live
events filtered on the server, one device's events, bad parameters, re-subscribing, and what a
tab that falls behind is told."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import Client

from console.asgi import application
from events.hub import hub
from events.services import event_apublish
from events.streams import EventStream
from events.types import Event
from tests.devices.device_client import hub_ready

pytestmark = pytest.mark.django_db(transaction=True)

DEVICE, OTHER_DEVICE = "a" * 24, "b" * 24
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WIRE_KEYS = {"name", "data", "ttl", "published_at", "coreid", "device_name"}


def decoded(message):
    """A live message, which the stream hands over as JSON text (encoded once for every tab)."""
    return json.loads(message) if isinstance(message, str) else message


@pytest.fixture(autouse=True)
def _quiet_usage(settings):
    settings.QUANTA_EVENT_USAGE_FLUSH_SECONDS = 3600  # no background writes from these tests


class Clock:
    """Distinct, increasing publish times, so history order and identities are exact."""

    def __init__(self) -> None:
        self.ticks = 0

    def __call__(self) -> datetime:
        self.ticks += 1
        return START + timedelta(milliseconds=self.ticks)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def publish(clock):
    async def publish(owner, name="temp", data="21.5", *, coreid=DEVICE, device_name="kitchen") -> Event:
        event = Event(
            name=name,
            data=data,
            published_at=clock(),
            coreid=coreid,
            owner_id=owner.pk if owner is not None else None,
            device_name=device_name,
        )
        await event_apublish(event)
        return event

    return publish


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    name = django_settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}"


async def connect(user) -> WebsocketCommunicator:
    cookie = await sync_to_async(_session_cookie)(user)
    communicator = WebsocketCommunicator(
        application,
        "/ws/console",
        headers=[(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie.encode())],
    )
    connected, _ = await communicator.connect()
    assert connected
    assert await communicator.receive_json_from() == {"type": "hello", "user": user.email}
    return communicator


async def subscribe(communicator: WebsocketCommunicator, stream_id: str = "log", **params) -> dict:
    """Subscribe; the history message (live, also over Redis, on return)."""
    await communicator.send_json_to(
        {"type": "subscribe", "id": stream_id, "stream": "events", "params": params}
    )
    assert await communicator.receive_json_from() == {"type": "subscribed", "id": stream_id}
    history = await communicator.receive_json_from()
    assert (history["type"], history["id"], history["events"], history["dropped"]) == (
        "stream",
        stream_id,
        [],
        0,
    )
    await hub_ready()
    return history


async def live(communicator: WebsocketCommunicator, count: int, timeout: float = 2) -> list[dict]:
    """Exactly the next ``count`` live events (they may come in several messages)."""
    events: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(events) < count:
        message = await communicator.receive_json_from(max(0.01, deadline - time.monotonic()))
        assert (message["type"], "history" in message) == ("stream", False), message
        assert message["dropped"] == 0
        events += message["events"]
    assert len(events) == count, events
    return events


def summary(events: list[dict]) -> list[tuple]:
    return [(e["name"], e["data"], e["coreid"]) for e in events]


# --- History, then live -------------------------------------------------------------------------------------
async def test_history_first_then_live_events_both_filtered(user, other_user, publish):
    first = await publish(user, "temp", "21.5")
    await publish(user, "temp", "35")
    await publish(user, "humidity", "25")
    await publish(other_user, "temp", "22")  # never anyone else's
    communicator = await connect(user)

    history = await subscribe(communicator, filter="range:20-30")
    assert summary(history["history"]) == [("temp", "21.5", DEVICE), ("humidity", "25", DEVICE)]
    assert history["history"][0] == first.console_wire()
    assert set(history["history"][0]) == WIRE_KEYS
    assert history["history"][0]["device_name"] == "kitchen"

    await publish(user, "temp", "99")  # outside the range
    await publish(other_user, "temp", "24")  # someone else's
    await publish(user, "temp", "not a number")
    await publish(user, "temp", "29.9", coreid=OTHER_DEVICE, device_name="garage")
    [event] = await live(communicator, 1)
    assert (event["name"], event["data"], event["coreid"], event["device_name"]) == (
        "temp",
        "29.9",
        OTHER_DEVICE,
        "garage",
    )
    assert await communicator.receive_nothing(0.1)
    await communicator.disconnect()


async def test_without_a_filter_everything_of_the_users_in_order(user, publish):
    published = [await publish(user, "temp", str(index)) for index in range(3)]
    communicator = await connect(user)
    history = await subscribe(communicator)
    assert history["history"] == [event.console_wire() for event in published]
    await communicator.disconnect()


async def test_history_can_be_skipped(user, publish):
    await publish(user)
    communicator = await connect(user)
    await communicator.send_json_to(
        {"type": "subscribe", "id": "log", "stream": "events", "params": {"history": False}}
    )
    assert await communicator.receive_json_from() == {"type": "subscribed", "id": "log"}
    await hub_ready()
    await publish(user, "live", "1")
    message = await communicator.receive_json_from()
    assert "history" not in message
    assert summary(message["events"]) == [("live", "1", DEVICE)]
    await communicator.disconnect()


async def test_device_id_and_prefix_narrow(user, publish):
    await publish(user, "temp", "1")
    await publish(user, "temp", "2", coreid=OTHER_DEVICE)
    await publish(user, "humidity", "3")
    communicator = await connect(user)
    history = await subscribe(communicator, device_id=DEVICE, prefix="te")
    assert summary(history["history"]) == [("temp", "1", DEVICE)]

    await publish(user, "temp", "4", coreid=OTHER_DEVICE)
    await publish(user, "humidity", "5")
    await publish(user, "temperature", "6")
    assert summary(await live(communicator, 1)) == [("temperature", "6", DEVICE)]
    assert await communicator.receive_nothing(0.1)
    await communicator.disconnect()


async def test_free_text_and_device_name_filters(user, publish):
    communicator = await connect(user)
    await subscribe(communicator, filter='device:KITCH "door open"')
    await publish(user, "door", "door open")
    await publish(user, "door", "door open", coreid=OTHER_DEVICE, device_name="garage")
    await publish(user, "door", "door closed")
    assert summary(await live(communicator, 1)) == [("door", "door open", DEVICE)]
    assert await communicator.receive_nothing(0.1)
    await communicator.disconnect()


# --- Bad parameters -------------------------------------------------------------------------------------
BAD_PARAMETERS = [
    ({"filter": "colour:red"}, 'Unknown filter "colour:"'),
    ({"filter": "range:30-20"}, "the minimum (30) is above the maximum (20)"),
    ({"filter": 'data:"open'}, "Unclosed quote at character 6"),
    ({"filter": "event:"}, "event: needs a value"),
    ({"filter": 5}, "filter is a string"),
    ({"prefix": "p" * 65}, "prefix is a string of at most 64 characters"),
    ({"device_id": 7}, "device_id is a device ID"),
]


async def test_bad_parameters_answer_an_error_naming_the_problem(user):
    communicator = await connect(user)
    for index, (params, fragment) in enumerate(BAD_PARAMETERS):
        stream_id = f"log-{index}"
        await communicator.send_json_to(
            {"type": "subscribe", "id": stream_id, "stream": "events", "params": params}
        )
        reply = await communicator.receive_json_from()
        assert set(reply) == {"type", "id", "message"}, params
        assert (reply["type"], reply["id"]) == ("error", stream_id), params
        assert fragment in reply["message"], (params, reply["message"])
    assert hub.subscriber_count == 0
    assert await communicator.receive_nothing(0.05)
    await communicator.disconnect()


# --- Re-subscribing and unsubscribing -------------------------------------------------------------------
async def test_resubscribing_with_the_same_id_replaces_the_filter(user, publish):
    await publish(user, "temp", "1")
    await publish(user, "humidity", "2")
    communicator = await connect(user)
    assert summary((await subscribe(communicator, filter="event:temp"))["history"]) == [("temp", "1", DEVICE)]
    history = await subscribe(communicator, filter="event:humidity")
    assert summary(history["history"]) == [("humidity", "2", DEVICE)]
    assert len(hub.by_user[user.pk]) == 1  # the first subscription is gone

    await publish(user, "temp", "3")
    await publish(user, "humidity", "4")
    assert summary(await live(communicator, 1)) == [("humidity", "4", DEVICE)]
    assert await communicator.receive_nothing(0.1)

    # A refused filter under the same id replaces the stream too: the tab asked for a new view,
    # and showing the old one under it would be wrong.
    await communicator.send_json_to(
        {"type": "subscribe", "id": "log", "stream": "events", "params": {"filter": "range:x"}}
    )
    assert (await communicator.receive_json_from())["type"] == "error"
    assert not hub.by_user.get(user.pk)
    await publish(user, "humidity", "5")
    assert await communicator.receive_nothing(0.1)
    await communicator.disconnect()


async def test_two_streams_on_one_connection_and_unsubscribe(user, publish):
    communicator = await connect(user)
    await subscribe(communicator, "temps", filter="event:temp")
    await subscribe(communicator, "all")
    await publish(user, "temp", "1")
    messages = [await communicator.receive_json_from() for _ in range(2)]
    assert sorted((m["id"], summary(m["events"])[0][1]) for m in messages) == [("all", "1"), ("temps", "1")]

    await communicator.send_json_to({"type": "unsubscribe", "id": "temps"})
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}
    assert len(hub.by_user[user.pk]) == 1
    await publish(user, "temp", "2")
    message = await communicator.receive_json_from()
    assert (message["id"], summary(message["events"])) == ("all", [("temp", "2", DEVICE)])
    assert await communicator.receive_nothing(0.1)

    await communicator.disconnect()
    await asyncio.sleep(0)
    assert user.pk not in hub.by_user  # closing the tab ends its streams


# --- The stream itself: no duplicates, and what a slow tab is told ---------------------------------------
@pytest.mark.django_db
async def test_an_event_published_between_subscribe_and_history_is_shown_once(user, publish):
    before = await publish(user, "temp", "before")
    stream = EventStream(SimpleNamespace(pk=user.pk), {})
    await hub_ready()
    between = await publish(user, "temp", "between")  # in the history and in the live buffer
    deadline = time.monotonic() + 2
    while not stream.subscription.buffer and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert list(stream.subscription.buffer) == [between]

    messages = stream.messages()
    first = await anext(messages)
    assert first == {
        "history": [before.console_wire(), between.console_wire()],
        "events": [],
        "dropped": 0,
    }
    after = await publish(user, "temp", "after")
    assert decoded(await asyncio.wait_for(anext(messages), 2)) == {
        "events": [after.console_wire()],
        "dropped": 0,
    }
    stream.close()
    assert user.pk not in hub.by_user
    await messages.aclose()


@pytest.mark.django_db
async def test_a_tab_that_falls_behind_is_told_how_many_it_missed(user, publish, settings):
    settings.QUANTA_SUBSCRIBER_BUFFER = 3
    stream = EventStream(SimpleNamespace(pk=user.pk), {"filter": "event:temp", "history": False})
    await hub_ready()
    published = [await publish(user, "temp", str(index)) for index in range(5)]
    await publish(user, "humidity", "ignored")  # dispatched to the stream, filtered out after
    deadline = time.monotonic() + 2
    while stream.subscription.dropped < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert len(stream.subscription.buffer) == 3

    messages = stream.messages()
    assert decoded(await asyncio.wait_for(anext(messages), 2)) == {
        "events": [event.console_wire() for event in published[3:]],
        "dropped": 3,
    }
    stream.close()
    await messages.aclose()


@pytest.mark.django_db
async def test_a_tab_is_told_it_lagged_even_when_nothing_left_passes_the_filter(user, publish, settings):
    settings.QUANTA_SUBSCRIBER_BUFFER = 2
    stream = EventStream(SimpleNamespace(pk=user.pk), {"filter": "event:temp", "history": False})
    await hub_ready()
    await publish(user, "temp", "lost")
    for index in range(2):
        await publish(user, "humidity", str(index))
    deadline = time.monotonic() + 2
    while stream.subscription.dropped < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)

    messages = stream.messages()
    assert decoded(await asyncio.wait_for(anext(messages), 2)) == {"events": [], "dropped": 1}
    stream.close()
    await messages.aclose()


async def test_the_websocket_reports_dropped_events(user, publish, settings):
    settings.QUANTA_SUBSCRIBER_BUFFER = 2
    communicator = await connect(user)
    await subscribe(communicator)
    [subscription] = hub.by_user[user.pk]
    # Delivered straight into the buffer, faster than the tab's task can forward them.
    events = [
        Event(name="burst", data=str(index), published_at=START, coreid=DEVICE, owner_id=user.pk)
        for index in range(5)
    ]
    hub.dispatch(events)
    assert (len(subscription.buffer), subscription.dropped) == (2, 3)
    message = await communicator.receive_json_from()
    assert (message["dropped"], [e["data"] for e in message["events"]]) == (3, ["3", "4"])
    await communicator.disconnect()
