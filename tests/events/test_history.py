"""Recent history: the last N events per user and per product, in this process's ring (embedded) or
in one capped Redis stream per scope, written in the publish's own round trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from events import history
from events.history import RingHistory, merge_recent, scope_key
from events.hub import Hub
from events.types import Event
from tests.conftest import require_or_skip

OWNER, STRANGER, PRODUCT, OTHER_PRODUCT = 1, 2, 500, 501
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def event(index: int, *, owner_id=OWNER, product_id=None, name="temp") -> Event:
    return Event(
        name=name,
        data=str(index),
        published_at=START + timedelta(milliseconds=index),
        coreid="a" * 24,
        owner_id=owner_id,
        product_id=product_id,
    )


def data(events: list[Event]) -> list[str]:
    return [e.data for e in events]


USER_KEY = scope_key(user_id=OWNER)
PRODUCT_KEY = scope_key(product_id=PRODUCT)


@pytest.fixture
def embedded(settings) -> None:
    settings.REDIS_URL = ""


@pytest.fixture
def redis(settings):
    require_or_skip(bool(settings.REDIS_URL), "needs REDIS_URL")
    import redis as redis_py

    client = redis_py.Redis.from_url(settings.REDIS_URL)  # emptied by the autouse cache.clear()
    yield client
    client.close()


# --- Scopes ---------------------------------------------------------------------------------------------
def test_scope_keys():
    assert scope_key(user_id=7) == "quanta:history:user:7"
    assert scope_key(product_id=9) == "quanta:history:product:9"
    assert history.scope_keys(user_id=7, product_ids=[9, 10]) == [
        "quanta:history:user:7",
        "quanta:history:product:9",
        "quanta:history:product:10",
    ]
    assert history.scope_keys() == []
    for both_or_neither in ({"user_id": 1, "product_id": 2}, {}):
        with pytest.raises(ValueError, match="one user or one product"):
            scope_key(**both_or_neither)
    assert history.history_keys(event(0, product_id=PRODUCT)) == [USER_KEY, PRODUCT_KEY]
    assert history.history_keys(event(0, owner_id=None, product_id=PRODUCT)) == [PRODUCT_KEY]
    assert history.history_keys(event(0, owner_id=None)) == []


# --- The ring (embedded) --------------------------------------------------------------------------------
def test_the_ring_keeps_the_last_n_per_user_oldest_first(settings):
    settings.QUANTA_EVENT_HISTORY_SIZE = 3
    ring = RingHistory()
    for index in range(5):
        ring.append(event(index))
    ring.append(event(100, owner_id=STRANGER))
    assert data(ring.recent([USER_KEY], 10)) == ["2", "3", "4"]
    assert data(ring.recent([scope_key(user_id=STRANGER)], 10)) == ["100"]
    assert ring.recent([scope_key(user_id=99)], 10) == []


def test_the_ring_keeps_the_last_n_per_product(settings):
    settings.QUANTA_EVENT_HISTORY_SIZE = 2
    ring = RingHistory()
    for index in range(4):
        ring.append(event(index, owner_id=None, product_id=PRODUCT))
    ring.append(event(10, owner_id=None, product_id=OTHER_PRODUCT))
    assert data(ring.recent([PRODUCT_KEY], 10)) == ["2", "3"]
    assert data(ring.recent([scope_key(product_id=OTHER_PRODUCT)], 10)) == ["10"]
    # Events of nobody's and no product are remembered nowhere.
    ring.append(event(20, owner_id=None))
    assert data(ring.recent([USER_KEY, PRODUCT_KEY], 10)) == ["2", "3"]


def test_user_and_product_scopes_merge_without_duplicates_and_respect_the_limit(settings):
    settings.QUANTA_EVENT_HISTORY_SIZE = 10
    ring = RingHistory()
    ring.append(event(0))  # the user's own device
    ring.append(event(1, product_id=PRODUCT))  # the user's device in the product: in both scopes
    ring.append(event(2, owner_id=STRANGER, product_id=PRODUCT))  # a teammate's product device
    ring.append(event(3, owner_id=None, product_id=PRODUCT))  # an unclaimed product device
    ring.append(event(4, owner_id=STRANGER))  # not visible to OWNER

    assert data(ring.recent([USER_KEY, PRODUCT_KEY], 10)) == ["0", "1", "2", "3"]
    assert data(ring.recent([PRODUCT_KEY, USER_KEY], 10)) == ["0", "1", "2", "3"]
    assert data(ring.recent([USER_KEY, PRODUCT_KEY], 2)) == ["2", "3"]  # the newest two
    assert ring.recent([USER_KEY, PRODUCT_KEY], 0) == []
    assert data(ring.recent([USER_KEY], 10)) == ["0", "1"]


def test_the_ring_orders_by_publish_time_not_arrival(settings):
    settings.QUANTA_EVENT_HISTORY_SIZE = 10
    ring = RingHistory()
    for index in (2, 0, 1):
        ring.append(event(index))
    assert data(ring.recent([USER_KEY], 10)) == ["0", "1", "2"]


def test_the_ring_follows_a_changed_size(settings):
    settings.QUANTA_EVENT_HISTORY_SIZE = 2
    ring = RingHistory()
    for index in range(3):
        ring.append(event(index))
    settings.QUANTA_EVENT_HISTORY_SIZE = 4
    ring.append(event(3))
    assert data(ring.recent([USER_KEY], 10)) == ["1", "2", "3"]
    settings.QUANTA_EVENT_HISTORY_SIZE = 1
    ring.append(event(4))
    assert data(ring.recent([USER_KEY], 10)) == ["4"]
    ring.clear()
    assert ring.recent([USER_KEY], 10) == []


def test_merge_recent_keeps_distinct_events_with_one_identity_once():
    twin = event(1)
    assert data(merge_recent([[event(0), twin], [twin], [event(2)]], 10)) == ["0", "1", "2"]
    assert merge_recent([], 5) == []


# --- Through the hub ------------------------------------------------------------------------------------
def test_hub_recent_embedded(embedded, settings):
    settings.QUANTA_EVENT_HISTORY_SIZE = 3
    hub = Hub()
    for index in range(5):
        hub.publish(event(index, product_id=PRODUCT if index % 2 else None))
    hub.publish(event(9, owner_id=STRANGER, product_id=OTHER_PRODUCT))
    assert data(hub.recent(user_id=OWNER, limit=10)) == ["2", "3", "4"]
    assert data(hub.recent(user_id=OWNER, limit=2)) == ["3", "4"]
    assert data(hub.recent(product_ids=[PRODUCT], limit=10)) == ["1", "3"]
    assert data(hub.recent(user_id=OWNER, product_ids=[PRODUCT], limit=10)) == ["1", "2", "3", "4"]
    assert data(hub.recent(product_ids=[OTHER_PRODUCT], limit=10)) == ["9"]
    assert hub.recent(limit=10) == []
    assert hub.recent(user_id=OWNER, limit=0) == []


async def test_hub_apublish_records_history_embedded(embedded):
    hub = Hub()
    await hub.apublish(event(0))
    await hub.apublish(event(1, product_id=PRODUCT))
    assert data(hub.recent(user_id=OWNER, product_ids=[PRODUCT], limit=10)) == ["0", "1"]
    assert data(history.ring.recent([PRODUCT_KEY], 10)) == ["1"]


# --- Redis ----------------------------------------------------------------------------------------------
def test_publish_writes_history_and_broadcasts_in_one_pipeline(redis, settings):
    settings.QUANTA_EVENT_HISTORY_SIZE = 50
    published = event(0, product_id=PRODUCT)
    pipe = Hub._pipeline(redis, published)
    commands = [args for args, _ in pipe.command_stack]
    assert [args[0] for args in commands] == ["XADD", "XADD", "PUBLISH"]
    assert [args[1] for args in commands] == [USER_KEY, PRODUCT_KEY, settings.QUANTA_EVENT_CHANNEL]
    for args in commands[:2]:  # capped approximately at the history size
        assert [part.decode() if isinstance(part, bytes) else str(part) for part in args[2:5]] == [
            "MAXLEN",
            "~",
            "50",
        ]
    pipe.reset()

    Hub().publish(published)
    for key in (USER_KEY, PRODUCT_KEY):
        [(_, fields)] = redis.xrange(key)
        assert Event.loads(fields[b"e"]) == published
    assert ring_is_unused()


def ring_is_unused() -> bool:
    return history.ring.recent([USER_KEY, PRODUCT_KEY], 10) == []


def test_redis_history_is_trimmed_approximately_and_read_back_exactly(redis, settings):
    size = 20
    settings.QUANTA_EVENT_HISTORY_SIZE = size
    node_entries = int(redis.config_get("stream-node-max-entries")["stream-node-max-entries"])
    hub = Hub()
    count = size + 3 * node_entries
    for index in range(count):
        Hub._pipeline(redis, event(index)).execute()

    kept = redis.xlen(USER_KEY)
    assert size <= kept <= size + node_entries  # trimmed whole nodes at a time, never below N
    assert data(hub.recent(user_id=OWNER, limit=size)) == [str(i) for i in range(count - size, count)]
    assert data(hub.recent(user_id=OWNER, limit=3)) == [str(i) for i in range(count - 3, count)]
    assert hub.recent(user_id=STRANGER, limit=3) == []


def test_redis_history_merges_scopes_without_duplicates(redis, settings):
    settings.QUANTA_EVENT_HISTORY_SIZE = 10
    hub = Hub()
    hub.publish(event(0))
    hub.publish(event(1, product_id=PRODUCT))
    hub.publish(event(2, owner_id=STRANGER, product_id=PRODUCT))
    hub.publish(event(3, owner_id=STRANGER))
    assert data(hub.recent(user_id=OWNER, product_ids=[PRODUCT], limit=10)) == ["0", "1", "2"]
    assert data(hub.recent(user_id=OWNER, product_ids=[PRODUCT], limit=2)) == ["1", "2"]
    assert data(hub.recent(product_ids=[PRODUCT], limit=10)) == ["1", "2"]
    assert ring_is_unused()


async def test_redis_history_read_from_the_event_loop(redis, settings):
    settings.QUANTA_EVENT_HISTORY_SIZE = 10
    hub = Hub()
    for index in range(4):
        await hub.apublish(event(index, product_id=PRODUCT if index == 3 else None))
    keys = history.scope_keys(user_id=OWNER, product_ids=[PRODUCT])
    assert data(await history.aredis_recent(hub._aredis(), keys, 10)) == ["0", "1", "2", "3"]
    assert data(await history.aredis_recent(hub._aredis(), keys, 2)) == ["2", "3"]
    await hub._aredis().aclose()
