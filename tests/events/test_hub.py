"""The per-process hub: who sees which event, bounded buffers, dispatch, and publishing through it
embedded and over Redis."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from events.hub import Hub, Subscription
from events.services import device_status_event, event_build
from events.types import Event, iso_millis
from events.validation import PublishRefused

OWNER, STRANGER, PRODUCT = 1, 2, 500
DEVICE, OTHER_DEVICE = "a" * 24, "b" * 24


def event(name: str = "temp", *, owner_id=OWNER, product_id=None, coreid=DEVICE, data="1") -> Event:
    return Event(
        name=name,
        data=data,
        published_at=timezone.now(),
        coreid=coreid,
        owner_id=owner_id,
        product_id=product_id,
    )


@pytest.fixture
def embedded(settings) -> None:
    settings.REDIS_URL = ""


# --- Matching ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("subscription", "candidate", "seen"),
    [
        ({"user_id": OWNER}, {}, True),
        ({"user_id": STRANGER}, {}, False),
        ({"user_id": OWNER}, {"owner_id": None}, False),
        ({}, {}, False),  # no user, no product: sees nothing
        ({"product_ids": [PRODUCT]}, {"owner_id": None, "product_id": PRODUCT}, True),
        ({"product_ids": [PRODUCT]}, {"product_id": 501}, False),
        ({"product_ids": [PRODUCT]}, {"product_id": None}, False),
        ({"user_id": STRANGER, "product_ids": [PRODUCT]}, {"product_id": PRODUCT}, True),
        ({"user_id": OWNER, "prefix": "temp"}, {"name": "temperature"}, True),
        ({"user_id": OWNER, "prefix": "temp"}, {"name": "tem"}, False),
        ({"user_id": OWNER, "prefix": "temp"}, {"name": "Temperature"}, False),  # case-sensitive
        ({"user_id": OWNER, "prefix": ""}, {"name": "spark/status"}, True),
        ({"user_id": OWNER, "device_id": DEVICE}, {}, True),
        ({"user_id": OWNER, "device_id": OTHER_DEVICE}, {}, False),
        ({"user_id": STRANGER, "device_id": DEVICE}, {}, False),  # a device filter grants nothing
        ({"product_ids": [PRODUCT], "prefix": "t", "device_id": DEVICE}, {"product_id": PRODUCT}, True),
    ],
)
def test_matching(subscription, candidate, seen):
    assert Subscription(**subscription).matches(event(**candidate)) is seen


# --- Buffers ---------------------------------------------------------------------------------------------
async def test_a_full_buffer_drops_the_oldest_and_counts():
    subscription = Subscription(user_id=OWNER, buffer_size=3)
    events = [event(data=str(index)) for index in range(5)]
    for item in events:
        subscription.offer(item)
    assert await subscription.next_batch() == (events[2:], 2)
    subscription.offer(events[0])
    assert await subscription.next_batch() == ([events[0]], 0)  # the count starts over


def test_the_default_buffer_size_is_the_setting(settings):
    settings.QUANTA_SUBSCRIBER_BUFFER = 7
    assert Subscription(user_id=OWNER).buffer.maxlen == 7


async def test_next_batch_waits_for_events_and_hands_over_what_arrived_together():
    subscription = Subscription(user_id=OWNER)
    waiting = asyncio.ensure_future(subscription.next_batch())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    first, second = event(data="1"), event(data="2")
    subscription.offer(first)
    subscription.offer(second)
    assert await asyncio.wait_for(waiting, 1) == ([first, second], 0)


async def test_closing_wakes_a_waiting_subscriber():
    subscription = Subscription(user_id=OWNER)
    waiting = asyncio.ensure_future(subscription.next_batch())
    await asyncio.sleep(0)
    subscription.close()
    assert await asyncio.wait_for(waiting, 1) == ([], 0)
    assert subscription.closed


# --- Dispatch and unsubscribe ------------------------------------------------------------------------------
async def test_dispatch_hands_each_event_once_to_each_matching_subscription(embedded):
    hub = Hub()
    by_owner = hub.subscribe(Subscription(user_id=OWNER))
    by_product = hub.subscribe(Subscription(product_ids=[PRODUCT]))
    both = hub.subscribe(Subscription(user_id=OWNER, product_ids=[PRODUCT]))
    temps_only = hub.subscribe(Subscription(user_id=OWNER, prefix="temp"))
    stranger = hub.subscribe(Subscription(user_id=STRANGER))
    assert hub.subscriber_count == 5

    product_event = event("humidity", product_id=PRODUCT)
    owner_event = event("temp")
    nobodys = event("temp", owner_id=None)
    assert hub.dispatch([product_event, owner_event, nobodys]) == 3 + 3
    assert (await by_owner.next_batch())[0] == [product_event, owner_event]
    assert (await by_product.next_batch())[0] == [product_event]
    assert (await both.next_batch())[0] == [product_event, owner_event]  # once each, not twice
    assert (await temps_only.next_batch())[0] == [owner_event]
    assert list(stranger.buffer) == []
    assert hub.dispatch([]) == 0


async def test_unsubscribe_stops_delivery_and_forgets_the_subscription(embedded):
    hub = Hub()
    subscription = hub.subscribe(Subscription(user_id=OWNER, product_ids=[PRODUCT, 501]))
    other = hub.subscribe(Subscription(user_id=OWNER))
    hub.unsubscribe(subscription)
    assert subscription.closed
    assert hub.subscriber_count == 1
    assert set(hub.by_product) == set()
    assert hub.dispatch([event(product_id=PRODUCT)]) == 1
    assert list(subscription.buffer) == []
    hub.unsubscribe(other)
    assert (hub.subscriber_count, dict(hub.by_user)) == (0, {})
    hub.unsubscribe(other)  # twice is harmless


async def test_a_slow_subscriber_loses_the_oldest_and_is_told(embedded):
    hub = Hub()
    slow = hub.subscribe(Subscription(user_id=OWNER, buffer_size=2))
    events = [event(data=str(index)) for index in range(4)]
    assert hub.dispatch(events) == 4
    assert await slow.next_batch() == (events[2:], 2)


# --- Publishing through the hub --------------------------------------------------------------------------
async def test_embedded_publish_from_the_loop_and_from_threads(embedded):
    hub = Hub()
    subscription = hub.subscribe(Subscription(user_id=OWNER))

    in_loop = event(data="loop")
    await hub.apublish(in_loop)
    assert list(subscription.buffer) == [in_loop]  # handed over at once
    await subscription.next_batch()

    from_thread = event(data="thread")
    await asyncio.to_thread(hub.publish, from_thread)
    assert await asyncio.wait_for(subscription.next_batch(), 1) == ([from_thread], 0)


def test_embedded_publish_without_a_bound_loop_is_dropped(embedded):
    Hub().publish(event())  # nobody listens in this process: nothing to do, nothing raised


async def wait_until_listening(hub: Hub, timeout: float = 3) -> None:
    probe = hub.subscribe(Subscription(user_id=-1))
    deadline = time.monotonic() + timeout
    try:
        while True:
            await hub.apublish(event("probe", owner_id=-1))
            try:
                await asyncio.wait_for(probe.next_batch(), 0.05)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
    finally:
        hub.unsubscribe(probe)


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
async def test_publish_over_redis_from_a_thread_reaches_a_subscription(settings):
    assert settings.REDIS_URL
    hub = Hub()
    subscription = hub.subscribe(Subscription(user_id=OWNER, prefix="temp"))
    await wait_until_listening(hub)

    published = Event(
        name="temperature",
        data="21.5",
        published_at=datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
        coreid=DEVICE,
        owner_id=OWNER,
        product_id=PRODUCT,
        ttl=30,
        private=False,
    )
    await asyncio.to_thread(hub.publish, published)
    await asyncio.to_thread(hub.publish, event("temp", owner_id=STRANGER))
    events, dropped = await asyncio.wait_for(subscription.next_batch(), 2)
    assert (events, dropped) == ([published], 0)  # the same value, field for field

    await hub.apublish(event("temp", data="from the loop"))
    events, _ = await asyncio.wait_for(subscription.next_batch(), 2)
    assert [e.data for e in events] == ["from the loop"]
    hub._listener.cancel()


# --- The event value and the publishing services ---------------------------------------------------------
def test_event_wire_format_and_serialization():
    published = Event(
        name="temp",
        data=None,
        published_at=datetime(2026, 3, 1, 12, 0, 0, 7999, tzinfo=UTC),
        coreid=DEVICE,
        owner_id=OWNER,
    )
    assert published.wire() == {
        "name": "temp",
        "data": None,
        "ttl": 60,
        "published_at": "2026-03-01T12:00:00.007Z",
        "coreid": DEVICE,
    }
    assert Event.loads(published.dumps()) == published
    assert Event.loads(published.dumps().encode()) == published
    assert iso_millis(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000Z"


def test_event_build_validates_and_reserves_cloud_names():
    built = event_build(name="temp", data="1", coreid=DEVICE, owner_id=OWNER, ttl=5, private=False)
    assert (built.name, built.data, built.ttl, built.private, built.owner_id) == (
        "temp",
        "1",
        5,
        False,
        OWNER,
    )
    with pytest.raises(PublishRefused):
        event_build(name="spark/status", data="online", coreid=DEVICE, owner_id=OWNER)
    assert event_build(
        name="spark/status", data="online", coreid=DEVICE, owner_id=OWNER, reserved_name_allowed=True
    )
    with pytest.raises(PublishRefused) as refused:
        event_build(name="temp", data="x" * 101, coreid=DEVICE, owner_id=OWNER, data_limit=100)
    assert refused.value.code == "too_large"


def test_device_status_event():
    online = device_status_event(device_id=DEVICE, owner_id=OWNER, product_id=PRODUCT, online=True)
    offline = device_status_event(device_id=DEVICE, owner_id=None, product_id=None, online=False)
    assert (online.name, online.data, online.coreid, online.product_id) == (
        "spark/status",
        "online",
        DEVICE,
        PRODUCT,
    )
    assert (offline.data, offline.owner_id) == ("offline", None)
