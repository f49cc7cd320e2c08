"""The Event Logs filter: Particle's console syntax, what each term matches, its errors, and its
canonical text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from events.filters import MAX_FILTER_LENGTH, MODIFIERS, EventFilter, FilterError, parse_filter
from events.types import CLOUD_COREID, Event

DEVICE = "0a1b2c3d4e5f0a1b2c3d4e5f"
PARTICLE_DEVICE = "34003d001647353236343012"
WHEN = datetime(2026, 11, 26, 8, 15, 30, 123000, tzinfo=UTC)  # 2026-11-26T08:15:30.123Z


def event(
    name: str = "temperature",
    data: str | None = "35",
    *,
    coreid: str = DEVICE,
    device_name: str | None = "kitchen-sensor",
    published_at: datetime = WHEN,
) -> Event:
    return Event(
        name=name,
        data=data,
        published_at=published_at,
        coreid=coreid,
        owner_id=1,
        device_name=device_name,
    )


# --- Matching ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "fields", "matched"),
    [
        # Empty filters match everything.
        ("", {}, True),
        (" \t\n ", {"data": None}, True),
        ('""', {}, True),
        # Particle's examples.
        (f"device:{PARTICLE_DEVICE} event:temperature range:30-50", {"coreid": PARTICLE_DEVICE}, True),
        (f"device:{PARTICLE_DEVICE} event:temperature range:30-50", {"coreid": DEVICE}, False),
        (
            f"device:{PARTICLE_DEVICE} event:temperature range:30-50",
            {"coreid": PARTICLE_DEVICE, "data": "51"},
            False,
        ),
        (
            f"device:{PARTICLE_DEVICE} event:temperature range:30-50",
            {"coreid": PARTICLE_DEVICE, "name": "humidity"},
            False,
        ),
        ("35 event:temperature", {}, True),
        ("35 event:temperature", {"data": "36"}, False),
        ("35 event:temperature", {"name": "humidity"}, False),
        # Free text: a substring of the name, data, device ID, device name or publish time, any case.
        ("temp", {}, True),
        ("TEMP", {}, True),
        ("ratu", {}, True),
        ("35", {"name": "x"}, True),
        ("1b2c3d", {}, True),
        ("kitchen", {}, True),
        ("Kitchen-SENSOR", {}, True),
        ("garage", {}, False),
        ("kitchen", {"device_name": None}, False),
        ("2026-11-26", {}, True),
        ("2026-11-27", {}, False),
        ("08:15", {}, True),
        ("t08:15:30.123z", {}, True),
        ("08:16", {}, False),
        ("open", {"data": None, "name": "door-open"}, True),
        ("open", {"data": None}, False),
        ("internal", {"coreid": CLOUD_COREID, "device_name": None}, True),
        # Free text terms must all match, in any of the fields.
        ("temp kitchen 35", {}, True),
        ("temp garage", {}, False),
        ("temp temp   temp", {}, True),
        # Quoted text is one term; a quote may sit inside a word, as in a shell.
        ('"door open"', {"data": "Door Open now"}, True),
        ('"door open"', {"data": "open the door"}, False),
        ("door open", {"data": "open the door"}, True),
        ('"say \\"hi\\""', {"data": 'say "hi"'}, True),
        ('"back\\\\slash"', {"data": "back\\slash"}, True),
        ('"c:\\temp"', {"data": "c:\\temp"}, True),
        ('kit"chen sen"sor', {"data": "kitchen sensor"}, True),
        ('"event:temp"', {"data": "event:temp"}, True),
        ('"event:temp"', {}, False),
        # device: the device ID or name, any case.
        ("device:kitchen", {}, True),
        ("device:KITCHEN", {}, True),
        (f"device:{DEVICE}", {"device_name": None}, True),
        (f"device:{DEVICE.upper()}", {}, True),
        ("device:4e5f", {}, True),
        ("device:garage", {}, False),
        ("device:temp", {}, False),
        ("device:particle", {"coreid": CLOUD_COREID, "device_name": None}, True),
        (f"device:{CLOUD_COREID}", {"coreid": CLOUD_COREID}, True),
        ('device:"kitchen sensor"', {"device_name": "Kitchen Sensor 2"}, True),
        ('device:"kitchen sensor"', {}, False),
        ("Device:kitchen", {}, True),
        # event: the name only.
        ("event:temp", {}, True),
        ("EVENT:Temp", {}, True),
        ("event:kitchen", {}, False),
        ("event:35", {}, False),
        ("event:a:b", {"name": "a:b/c"}, True),
        # data: the data only; no data never matches.
        ("data:35", {}, True),
        ("data:open", {"data": "door OPEN"}, True),
        ('data:"door open"', {"data": "the door open"}, True),
        ('data:"door open"', {"data": "door-open"}, False),
        ("data:temp", {}, False),
        ("data:35", {"data": None}, False),
        ("data:STRASSE", {"data": "Hauptstraße 1"}, True),
        # range: data that is a finite number, bounds included.
        ("range:30-50", {"data": "30"}, True),
        ("range:30-50", {"data": "50"}, True),
        ("range:30-50", {"data": "40.5"}, True),
        ("range:30-50", {"data": "29.999"}, False),
        ("range:30-50", {"data": "50.001"}, False),
        ("range:30-50", {"data": " 40\n"}, True),
        ("range:30-50", {"data": "4e1"}, True),
        ("range:30-50", {"data": "+40"}, True),
        ("range:30-50", {"data": "40 degrees"}, False),
        ("range:30-50", {"data": None}, False),
        ("range:30-50", {"data": ""}, False),
        ("range:30-50", {"data": "0x20"}, False),
        ("range:-1e999-1e999", {"data": "inf"}, False),
        ("range:-1e999-1e999", {"data": "nan"}, False),
        ("range:-1e999-1e999", {"data": "1e999"}, False),
        ("range:-1e999-1e999", {"data": "1e300"}, True),
        ("range:-1e999-1e999", {"data": "\u0663"}, False),  # Arabic-Indic three is not a number here
        ("range:-5.5-20", {"data": "-5.5"}, True),
        ("range:-5.5-20", {"data": "-5.6"}, False),
        ("range:-5.5-20", {"data": "20"}, True),
        ("range:-10--2", {"data": "-10"}, True),
        ("range:-10--2", {"data": "-2"}, True),
        ("range:-10--2", {"data": "-1"}, False),
        ("range:-10--2", {"data": "2"}, False),
        ("range:0.5-1.5", {"data": ".5"}, True),
        ("range:0.5-1.5", {"data": "1."}, True),
        ("range:0.5-1.5", {"data": "1.5"}, True),
        ("range:0.5-1.5", {"data": "0.49"}, False),
        ("range:1e-3-5", {"data": "0.001"}, True),
        ("range:5-5", {"data": "5.0"}, True),
        ('range:" 1 - 5 "', {"data": "3"}, True),
        # Several of one kind: any of them.
        ("device:kitchen device:garage", {"device_name": "garage"}, True),
        ("device:kitchen device:garage", {"device_name": "attic"}, False),
        ("event:temp event:humid", {"name": "humidity"}, True),
        ("event:temp event:humid", {"name": "pressure"}, False),
        ("data:open data:closed", {"data": "closed"}, True),
        ("range:0-10 range:20-30", {"data": "25"}, True),
        ("range:0-10 range:20-30", {"data": "15"}, False),
        # Different kinds, and free text: all of them.
        ("device:kitchen event:humidity", {}, False),
        ("device:kitchen event:temp", {}, True),
        ("range:0-100 data:5", {"data": "50"}, True),
        ("range:0-100 data:5", {"data": "40"}, False),
        ("kitchen range:30-40 data:3", {}, True),
        ("garage range:30-40", {}, False),
        ("device:kitchen device:garage event:temp event:humid range:0-1 range:30-40", {}, True),
        # Duplicates are harmless.
        ("event:temp event:temp device:kitchen device:kitchen", {}, True),
    ],
)
def test_matching(text, fields, matched):
    assert parse_filter(text).matches(event(**fields)) is matched


def test_an_empty_filter_is_empty():
    assert parse_filter("").is_empty
    assert parse_filter("  \t ").is_empty
    assert parse_filter('"" ""').is_empty
    assert not parse_filter("x").is_empty
    assert not parse_filter("range:1-2").is_empty
    assert str(parse_filter("   ")) == ""


# --- Errors -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ('"door open', "Unclosed quote at character 1.", 0),
        ('data:"door', "Unclosed quote at character 6.", 5),
        ('temp "a\\"', "Unclosed quote at character 6.", 5),
        ('12"', "Unclosed quote at character 3.", 2),
        (
            "foo:bar",
            'Unknown filter "foo:". Use device:, event:, range: or data:, or put the text in quotes to search for it.',
            0,
        ),
        ("temp http://example.com", 'Unknown filter "http:"', 5),
        ("Sensor_Name:x", 'Unknown filter "Sensor_Name:"', 0),
        ("devices:x", 'Unknown filter "devices:"', 0),
        ("device:", "device: needs a value, e.g. device:my-sensor", 7),
        ('device:""', "device: needs a value, e.g. device:my-sensor", 7),
        ("temp EVENT:", "event: needs a value, e.g. event:temperature", 11),
        ("data: open", "data: needs a value", 5),
        ("range:", "range: needs a value, e.g. range:20-30", 6),
        (
            "range:abc",
            'range: needs two numbers as min-max, e.g. range:20-30 or range:-10-0.5, not "abc".',
            6,
        ),
        ("range:5", "e.g. range:20-30", 6),
        ("range:1-2-3", "e.g. range:20-30", 6),
        ("range:-", "e.g. range:20-30", 6),
        ("range:1-", "e.g. range:20-30", 6),
        ("range:nan-5", "e.g. range:20-30", 6),
        ("range:0x1-5", "e.g. range:20-30", 6),
        ("range:1..2-3", "e.g. range:20-30", 6),
        ("range:50-30", "range: the minimum (50) is above the maximum (30).", 6),
        ("x range:-2--10", "range: the minimum (-2) is above the maximum (-10).", 8),
        ("a" * 501, "Filters are at most 500 characters; this one has 501.", 500),
    ],
)
def test_bad_filters(text, message, position):
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    assert message in caught.value.message
    assert str(caught.value) == caught.value.message
    assert caught.value.position == position
    assert isinstance(caught.value, ValueError)


def test_the_longest_filter_is_accepted():
    assert parse_filter("a" * MAX_FILTER_LENGTH).matches(event(name="a" * 64)) is False
    assert parse_filter(" " * MAX_FILTER_LENGTH).is_empty


# --- Canonical text ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("  temp\t 35 ", "temp 35"),
        (
            'DATA:"door open" Range:-5.5-20 Device:kitchen "event:x" temp EVENT:t',
            '"event:x" temp device:kitchen event:t range:-5.5-20 data:"door open"',
        ),
        ('range:" 1 - 5 "', "range:1-5"),
        ("event:a event:a a a", "a event:a"),
        ('kit"chen sen"sor', '"kitchen sensor"'),
        ('"say \\"hi\\""', '"say \\"hi\\""'),
        ('"c:\\temp dir\\\\"', '"c:\\temp dir\\\\"'),
        ("a\\b", "a\\b"),
        ('""', ""),
    ],
)
def test_canonical_text(text, canonical):
    parsed = parse_filter(text)
    assert str(parsed) == parsed.canonical() == canonical
    assert parse_filter(canonical) == parsed


def test_the_help_covers_every_modifier():
    assert [modifier.name for modifier in MODIFIERS] == ["device", "event", "range", "data"]
    for modifier in MODIFIERS:
        assert modifier.syntax.startswith(f"{modifier.name}:")
        assert modifier.description
        assert not parse_filter(modifier.example).is_empty


# --- Any input --------------------------------------------------------------------------------------------
PIECES = [
    "device:",
    "event:",
    "range:",
    "data:",
    "DATA:",
    "foo:",
    '"',
    "\\",
    "-",
    ":",
    " ",
    "\t",
    "1",
    "-2.5",
    "10",
]
filter_texts = st.one_of(
    st.text(),
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), max_size=16).map("".join),
)


def samples(text: str) -> list[Event]:
    """Events a generated filter might match: some built from its own text."""
    return [
        event(),
        event(data=None, device_name=None),
        event(name="x", data="5", coreid=CLOUD_COREID),
        event(name=text[:64], data=text, device_name=text),
        event(name="x", data=text.replace('"', ""), device_name=None),
    ]


@settings(max_examples=300, deadline=None)
@given(filter_texts)
def test_any_text_parses_or_raises_a_filter_error(text):
    try:
        parsed: EventFilter | FilterError = parse_filter(text)
    except FilterError as error:
        parsed = error
    if isinstance(parsed, FilterError):
        assert parsed.message
        assert parsed.position is None or 0 <= parsed.position <= len(text)
        return
    assert isinstance(parsed, EventFilter)
    for sample in samples(text):
        assert parsed.matches(sample) in (True, False)


@settings(max_examples=300, deadline=None)
@given(filter_texts)
def test_the_canonical_text_parses_to_the_same_filter(text):
    try:
        parsed = parse_filter(text)
    except FilterError:
        return
    canonical = str(parsed)
    assume(len(canonical) <= MAX_FILTER_LENGTH)  # escaping may lengthen a filter at the limit
    again = parse_filter(canonical)
    assert again == parsed
    assert str(again) == canonical
    for sample in samples(text):
        assert again.matches(sample) is parsed.matches(sample)
