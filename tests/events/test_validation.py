"""Particle's publish rules: event names, event data, and the token bucket."""

from __future__ import annotations

import pytest

from events.ratelimit import TokenBucket
from events.validation import PublishRefused, validate_data, validate_name


# --- Names ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "t",
        "temp",
        "n" * 64,
        "a/b/c",
        "with space",
        "UPPER-case_1",
        "sensor:kitchen",
        "spar",
        "my-spark",
        "particl",
    ],
)
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        (None, "needs a name of 1 to 64"),
        ("", "needs a name of 1 to 64"),
        (5, "needs a name of 1 to 64"),
        (["temp"], "needs a name of 1 to 64"),
        ("n" * 65, "at most 64 characters; this one has 65"),
        ("temp\u00e9", "printable ASCII"),
        ("tab\there", "printable ASCII"),
        ("new\nline", "printable ASCII"),
        ("nul\x00", "printable ASCII"),
        ("spark", "reserved"),
        ("spark/status", "reserved"),
        ("sparkle", "reserved"),
        ("SPARK/x", "reserved"),
        ("particle", "reserved"),
        ("Particle/device/name", "reserved"),
    ],
)
def test_invalid_names_are_bad_name(name, fragment):
    with pytest.raises(PublishRefused) as refused:
        validate_name(name)
    assert refused.value.code == "bad_name"
    assert fragment in refused.value.message


def test_the_cloud_may_use_reserved_names():
    assert validate_name("spark/status", cloud=True) == "spark/status"
    assert validate_name("particle/device/updates/pending", cloud=True)
    with pytest.raises(PublishRefused):
        validate_name("", cloud=True)
    with pytest.raises(PublishRefused):
        validate_name("s" * 65, cloud=True)


# --- Data -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data", [None, "", "21.5", "x" * 1024, "\u00e9" * 512, "\u20ac" * 341, '{"json": true}']
)
def test_valid_data(data):
    assert validate_data(data) == data


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("x" * 1025, "too_large"),
        ("\u00e9" * 513, "too_large"),  # 513 characters, 1026 bytes
        ("\u20ac" * 342, "too_large"),  # 1026 bytes
        (b"bytes", "too_large"),
        (21.5, "bad_data"),
        (7, "bad_data"),
        ({"a": 1}, "bad_data"),
    ],
)
def test_invalid_data(data, code):
    with pytest.raises(PublishRefused) as refused:
        validate_data(data)
    assert refused.value.code == code


def test_data_limit_is_in_bytes_and_configurable():
    with pytest.raises(PublishRefused, match="at most 1024 bytes; this is 1025"):
        validate_data("x" * 1025)
    assert validate_data("x" * 16384, limit=16384)
    with pytest.raises(PublishRefused, match="at most 100 bytes; this is 101"):
        validate_data("x" * 101, limit=100)


def test_data_limit_follows_the_setting(settings):
    settings.QUANTA_EVENT_DATA_LIMIT = 10
    assert validate_data("x" * 10)
    with pytest.raises(PublishRefused):
        validate_data("x" * 11)


# --- Token bucket ------------------------------------------------------------------------------------------
def take(bucket: TokenBucket, now: float, times: int) -> list[bool]:
    return [bucket.take(now) for _ in range(times)]


def test_a_full_bucket_allows_a_burst_then_refuses():
    bucket = TokenBucket(rate=1, capacity=4, now=0)
    assert take(bucket, 0, 5) == [True, True, True, True, False]


def test_tokens_refill_at_the_rate():
    bucket = TokenBucket(rate=1, capacity=4, now=0)
    take(bucket, 0, 4)
    assert bucket.take(0.5) is False
    assert bucket.take(0.999) is False
    assert bucket.take(1.0) is True
    assert bucket.take(1.0) is False
    assert bucket.take(2.0) is True
    assert take(bucket, 4.0, 3) == [True, True, False]


def test_refill_never_exceeds_the_capacity():
    bucket = TokenBucket(rate=1, capacity=4, now=0)
    assert take(bucket, 1000, 5) == [True, True, True, True, False]


def test_one_per_second_on_average():
    bucket = TokenBucket(rate=1, capacity=4, now=0)
    allowed = sum(bucket.take(step * 0.1) for step in range(600))  # ten tries a second for a minute
    assert allowed == 4 + 59  # the burst, then one a second


def test_fractional_and_fast_rates():
    slow = TokenBucket(rate=0.5, capacity=1, now=0)
    assert take(slow, 0, 2) == [True, False]
    assert slow.take(1.9) is False
    assert slow.take(2.0) is True
    fast = TokenBucket(rate=10, capacity=2, now=0)
    assert take(fast, 0, 3) == [True, True, False]
    assert fast.take(0.1) is True


def test_refused_takes_do_not_spend_tokens():
    bucket = TokenBucket(rate=1, capacity=1, now=0)
    assert bucket.take(0) is True
    assert take(bucket, 0.5, 10) == [False] * 10
    assert bucket.take(1.0) is True


def test_time_defaults_to_the_monotonic_clock():
    bucket = TokenBucket(rate=1, capacity=2)
    assert [bucket.take(), bucket.take(), bucket.take()] == [True, True, False]
