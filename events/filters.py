"""The Event Logs filter: Particle's console search syntax, parsed once and matched per event.

Terms are separated by whitespace. Free text must all match (as a substring of the event's name,
data, device ID, device name or publish time); ``device:``, ``event:``, ``range:`` and ``data:``
narrow by field. Several modifiers of one kind mean "any of", different kinds "all of".
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from events.types import Event, iso_millis

MAX_FILTER_LENGTH = 500

_MODIFIER = re.compile(r"[A-Za-z][A-Za-z_-]*:")
# ASCII digits only: ``\d`` and float() would also accept other scripts' digits.
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NUMBER_RE = re.compile(_NUMBER)
_RANGE_RE = re.compile(rf"\s*({_NUMBER})\s*-\s*({_NUMBER})\s*")
# Inside quotes a backslash only escapes " and \, so only a backslash before those (or before the
# closing quote) needs doubling.
_BACKSLASH_TO_ESCAPE = re.compile(r'\\(?=["\\]|\Z)')


class FilterError(ValueError):
    """A filter the user must fix. ``position`` is the 0-based offset of the problem, for the UI."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass(frozen=True, slots=True)
class Modifier:
    name: str
    syntax: str
    description: str
    example: str


MODIFIERS = (
    Modifier(
        "device",
        "device:<name or ID>",
        "Events from devices whose name or device ID contains this text. "
        "Repeat it to see events from any of several devices.",
        "device:my-sensor",
    ),
    Modifier(
        "event",
        "event:<name>",
        "Events whose name contains this text. Repeat it to see any of several events.",
        "event:temperature",
    ),
    Modifier(
        "range",
        "range:<min>-<max>",
        "Events whose data is a number from min to max, both included. "
        "Either bound may be negative or have decimals, e.g. range:-5.5-20.",
        "range:20-30",
    ),
    Modifier(
        "data",
        "data:<text>",
        'Events whose data contains this text. Put text with spaces in quotes, e.g. data:"door open".',
        "data:open",
    ),
)
_EXAMPLES = {modifier.name: modifier.example for modifier in MODIFIERS}
# Which EventFilter field each modifier fills.
_FIELDS = {"device": "devices", "event": "events", "range": "ranges", "data": "data"}


@dataclass(frozen=True, slots=True)
class NumberRange:
    low: float
    high: float
    text: str  # "min-max" as typed (bounds without spaces), for the canonical form

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True, slots=True)
class EventFilter:
    terms: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    ranges: tuple[NumberRange, ...] = ()
    data: tuple[str, ...] = ()
    # Casefolded once here: matches() runs for every event and every subscriber.
    _terms: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _devices: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _events: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _data: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("terms", "devices", "events", "data"):
            object.__setattr__(self, f"_{name}", tuple(value.casefold() for value in getattr(self, name)))

    @property
    def is_empty(self) -> bool:
        return not (self.terms or self.devices or self.events or self.ranges or self.data)

    def matches(self, event: Event) -> bool:
        if self._devices and not _any_in(self._devices, event.coreid, event.device_name):
            return False
        if self._events and not _any_in(self._events, event.name):
            return False
        if self._data and not _any_in(self._data, event.data):
            return False
        if self.ranges:
            value = _number(event.data)
            if value is None or not any(value in bounds for bounds in self.ranges):
                return False
        if self._terms:
            fields = _folded(
                event.name, event.data, event.coreid, event.device_name, iso_millis(event.published_at)
            )
            return all(any(term in text for text in fields) for term in self._terms)
        return True

    def canonical(self) -> str:
        """The filter as text in a fixed order, which parses back to an equal filter."""
        parts = [_quote(term, free_text=True) for term in self.terms]
        parts += [f"device:{_quote(value)}" for value in self.devices]
        parts += [f"event:{_quote(value)}" for value in self.events]
        parts += [f"range:{bounds.text}" for bounds in self.ranges]
        parts += [f"data:{_quote(value)}" for value in self.data]
        return " ".join(parts)

    def __str__(self) -> str:
        return self.canonical()


def parse_filter(text: str) -> EventFilter:
    """Parse what the user typed; raises FilterError (only) with a message for them."""
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(
            f"Filters are at most {MAX_FILTER_LENGTH} characters; this one has {len(text)}.",
            MAX_FILTER_LENGTH,
        )
    found: dict[str, list] = {"terms": [], "devices": [], "events": [], "ranges": [], "data": []}
    for term in _split(text):
        match = _MODIFIER.match(term.lead)
        if match is None:
            if term.text:  # an empty "" searches for nothing
                found["terms"].append(term.text)
            continue
        key = match.group()[:-1].lower()
        if key not in _EXAMPLES:
            raise FilterError(
                f'Unknown filter "{match.group()}". Use device:, event:, range: or data:, '
                "or put the text in quotes to search for it.",
                term.start,
            )
        value, at = term.text[match.end() :], term.start + match.end()
        if not value:
            raise FilterError(f"{key}: needs a value, e.g. {_EXAMPLES[key]}", at)
        found[_FIELDS[key]].append(_parse_range(value, at) if key == "range" else value)
    # Duplicates change nothing but the time matching takes.
    return EventFilter(**{name: tuple(dict.fromkeys(values)) for name, values in found.items()})


@dataclass(frozen=True, slots=True)
class _Term:
    start: int
    lead: str  # the unquoted text before any quote: only there can a modifier's key be
    text: str  # the whole term with quotes removed and escapes resolved


def _split(text: str) -> Iterator[_Term]:
    """Whitespace-separated terms; quoted parts join the text around them, as in a shell."""
    index, end = 0, len(text)
    while index < end:
        if text[index].isspace():
            index += 1
            continue
        start, parts, lead = index, [], None
        while index < end and not text[index].isspace():
            if text[index] == '"':
                if lead is None:
                    lead = "".join(parts)
                part, index = _quoted(text, index)
            else:
                stop = index
                while stop < end and not text[stop].isspace() and text[stop] != '"':
                    stop += 1
                part, index = text[index:stop], stop
            parts.append(part)
        whole = "".join(parts)
        yield _Term(start, whole if lead is None else lead, whole)


def _quoted(text: str, opening: int) -> tuple[str, int]:
    """The text of the quote opening at ``opening`` and the index just after its closing quote."""
    chars, index = [], opening + 1
    while index < len(text):
        char = text[index]
        if char == '"':
            return "".join(chars), index + 1
        if char == "\\" and index + 1 < len(text) and text[index + 1] in '"\\':
            index += 1
            char = text[index]
        chars.append(char)
        index += 1
    raise FilterError(f"Unclosed quote at character {opening + 1}.", opening)


def _parse_range(value: str, at: int) -> NumberRange:
    match = _RANGE_RE.fullmatch(value)
    if match is None:
        raise FilterError(
            f'range: needs two numbers as min-max, e.g. range:20-30 or range:-10-0.5, not "{value}".', at
        )
    low_text, high_text = match.groups()
    low, high = float(low_text), float(high_text)
    if low > high:
        raise FilterError(f"range: the minimum ({low_text}) is above the maximum ({high_text}).", at)
    return NumberRange(low, high, f"{low_text}-{high_text}")


def _number(data: str | None) -> float | None:
    """The event's data as a finite number, or None when it is anything else."""
    if data is None:
        return None
    text = data.strip()
    if not _NUMBER_RE.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _folded(*texts: str | None) -> list[str]:
    return [text.casefold() for text in texts if text]


def _any_in(needles: tuple[str, ...], *haystacks: str | None) -> bool:
    folded = _folded(*haystacks)
    return any(needle in haystack for needle in needles for haystack in folded)


def _quote(value: str, *, free_text: bool = False) -> str:
    """The value as it must be typed: quoted when it has spaces or quotes, or would read as a modifier."""
    plain = (
        value
        and not any(char.isspace() or char == '"' for char in value)
        and not (free_text and _MODIFIER.match(value))
    )
    if plain:
        return value
    return '"' + _BACKSLASH_TO_ESCAPE.sub(r"\\\\", value).replace('"', '\\"') + '"'
