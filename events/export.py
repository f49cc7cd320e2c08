"""History as a download: CSV for spreadsheets, NDJSON for scripts."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator

from events.types import Event

CSV_COLUMNS = ("published_at", "name", "data", "device_id", "device_name", "ttl")


def _row(event: Event) -> dict:
    wire = event.console_wire()
    return {
        "published_at": wire["published_at"],
        "name": wire["name"],
        "data": wire["data"],
        "device_id": wire["coreid"],
        "device_name": wire["device_name"],
        "ttl": wire["ttl"],
    }


_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _inert(value):
    """A cell starting with = + - @ would run as a formula in a spreadsheet; numbers stay numbers."""
    if (
        isinstance(value, str)
        and value[:1] in ("=", "+", "-", "@", "\t", "\r")
        and not _NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


def csv_lines(events: Iterable[Event]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for event in events:
        writer.writerow({key: _inert(value) for key, value in _row(event).items()})
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()


def ndjson_lines(events: Iterable[Event]) -> Iterator[str]:
    for event in events:
        yield json.dumps(_row(event), ensure_ascii=False) + "\n"
