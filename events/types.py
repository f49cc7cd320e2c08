"""The event: one object per publish, carried by value through the bus."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime

CLOUD_COREID = "particle-internal"
# Events a user publishes through the API come from no device.
API_COREID = "api"
DEFAULT_TTL = 60


def iso_millis(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and ``Z``, as Particle's streams send."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    data: str | None
    published_at: datetime
    coreid: str
    # Who may see it: the owner of the publishing device (or the publishing user), and the
    # members of its product. Ids only: the bus never imports devices or products.
    owner_id: int | None
    product_id: int | None = None
    ttl: int = DEFAULT_TTL
    private: bool = True
    # The publishing device's name when it was published (for the console and filters); the
    # SSE wire format does not carry it.
    device_name: str | None = None
    # Serialised forms, made once however many subscribers the event reaches (a thousand
    # subscribers would otherwise format the same timestamp a thousand times).
    _serialised: dict = field(default_factory=dict, compare=False, repr=False)

    def _once(self, kind: str, make: Callable[[], str]) -> str:
        value = self._serialised.get(kind)
        if value is None:
            value = self._serialised[kind] = make()
        return value

    @property
    def published_at_iso(self) -> str:
        return self._once("published_at", lambda: iso_millis(self.published_at))

    def wire(self) -> dict:
        """The four keys Particle's stream clients expect, plus the name."""
        return {
            "name": self.name,
            "data": self.data,
            "ttl": self.ttl,
            "published_at": self.published_at_iso,
            "coreid": self.coreid,
        }

    def console_wire(self) -> dict:
        """What the console's event log shows: the wire keys and the device's name."""
        return {**self.wire(), "device_name": self.device_name}

    def console_json(self) -> str:
        """``console_wire`` as JSON text, made once."""
        return self._once("console", lambda: json.dumps(self.console_wire(), separators=(",", ":")))

    def sse_data(self) -> str:
        """The JSON of an SSE ``data:`` line: exactly data, ttl, published_at and coreid."""
        return self._once(
            "sse",
            lambda: json.dumps(
                {
                    "data": self.data,
                    "ttl": self.ttl,
                    "published_at": self.published_at_iso,
                    "coreid": self.coreid,
                },
                separators=(",", ":"),
            ),
        )

    def dumps(self) -> str:
        body = {f.name: getattr(self, f.name) for f in fields(self) if f.compare}
        body["published_at"] = self.published_at.isoformat()
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def loads(cls, raw: str | bytes) -> Event:
        body = json.loads(raw)
        body["published_at"] = datetime.fromisoformat(body["published_at"])
        return cls(**body)
