"""The product overview's charts, computed on the server and drawn as inline SVG by the templates
(the console's CSP allows no inline scripts or styles). Pure functions: no database, no requests.

A time chart is drawn in two coordinate systems so its text keeps its size on a phone and on a wide
screen: the data in a viewBox ``PLOT_WIDTH`` units wide that the browser stretches to the chart's
width (``preserveAspectRatio="none"`` with strokes that do not scale), and the labels in CSS
pixels, placed across the width in percentages.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

PLOT_WIDTH = 1000  # viewBox units across a time chart's data, whatever its width on screen


# --- Scales --------------------------------------------------------------------------------------------
def nice_step(maximum: float, *, target: int = 4) -> int:
    """A whole step of 1, 2, 2.5 or 5 times a power of ten, so about ``target`` steps cover
    ``maximum`` (counts of devices: never a fraction)."""
    raw = maximum / target
    if raw <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10):
        step = multiple * magnitude
        if step >= raw and step == int(step):
            return int(step)
    return int(10 * magnitude)  # not reached: 10 times the magnitude is always whole and big enough


def nice_ticks(maximum: float, *, target: int = 4) -> list[int]:
    """Axis values from 0 up to the first multiple of a nice step at or above ``maximum``."""
    maximum = max(maximum, 1)
    step = nice_step(maximum, target=target)
    top = math.ceil(maximum / step) * step
    return list(range(0, top + 1, step))


def _number(value: float) -> str:
    """A coordinate for a path: one decimal at most, so 288 points stay a few kilobytes."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


# --- Time charts ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TimePoint:
    at: datetime
    value: int  # the line (devices online)
    total: int  # the reference line above it (devices in the product)


@dataclass(frozen=True)
class YTick:
    value: int
    y: float  # CSS pixels from the top of the chart
    label: str


@dataclass(frozen=True)
class XTick:
    x: str  # a percentage of the chart's width, for an SVG x attribute
    label: str
    anchor: str  # text-anchor: the ticks at the edges stay inside the chart


@dataclass(frozen=True)
class HourRow:
    """One hour of a time chart, for the table that screen readers get instead of the picture."""

    start: datetime
    lowest: int | None  # None: no sample in that hour
    highest: int | None
    total: int | None


@dataclass(frozen=True)
class TimeChart:
    start: datetime
    end: datetime
    top: int  # CSS pixels above the plot
    plot_height: int  # CSS pixels (and viewBox units) of the plot
    height: int  # the whole chart, with the time axis under the plot
    y_max: int
    y_ticks: list[YTick]
    x_ticks: list[XTick]
    line: str  # path data: the value, one subpath per run of samples without a gap
    area: str  # path data: the area under each run
    total: str  # path data: the reference line
    dots: str  # path data: zero-length subpaths, drawn as round caps, for points with no neighbour
    last: str  # path data: the last point (the live value), drawn as a marker
    last_point: TimePoint | None
    lowest: int | None  # the value's range over the chart
    highest: int | None
    hours: list[HourRow] = field(default_factory=list)

    @property
    def axis_label_y(self) -> int:
        return self.height - 4


def split_at_gaps(points: Sequence[TimePoint], *, max_gap: timedelta) -> list[list[TimePoint]]:
    """Runs of points in time order; a run ends where the next point is more than ``max_gap`` later
    (nothing was measured in between, and a line across would claim otherwise)."""
    runs: list[list[TimePoint]] = []
    for point in points:
        if runs and point.at - runs[-1][-1].at <= max_gap:
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs


def _time_ticks(start: datetime, end: datetime, every: timedelta) -> list[XTick]:
    """A tick at each whole multiple of ``every`` since midnight UTC inside (start, end]; the first
    one of a day shows the date instead of 00:00."""
    span = (end - start).total_seconds()
    step = int(every.total_seconds())
    first = math.floor(start.timestamp() / step) * step + step
    ticks = []
    for stamp in range(first, int(end.timestamp()) + 1, step):
        at = datetime.fromtimestamp(stamp, tz=start.tzinfo)
        fraction = (stamp - start.timestamp()) / span
        anchor = "start" if fraction < 0.04 else "end" if fraction > 0.96 else "middle"
        label = f"{at:%b} {at.day}" if (at.hour, at.minute) == (0, 0) else f"{at:%H:%M}"
        ticks.append(XTick(x=f"{fraction * 100:.2f}%", label=label, anchor=anchor))
    return ticks


def _hours(points: Sequence[TimePoint], start: datetime, end: datetime) -> list[HourRow]:
    first = start.replace(minute=0, second=0, microsecond=0)
    buckets: dict[datetime, list[TimePoint]] = {}
    for point in points:
        buckets.setdefault(point.at.replace(minute=0, second=0, microsecond=0), []).append(point)
    rows = []
    hour = first
    while hour <= end:
        inside = buckets.get(hour, [])
        rows.append(
            HourRow(
                start=hour,
                lowest=min((p.value for p in inside), default=None),
                highest=max((p.value for p in inside), default=None),
                total=inside[-1].total if inside else None,
            )
        )
        hour += timedelta(hours=1)
    return rows


def time_chart(
    points: Iterable[TimePoint],
    *,
    start: datetime,
    end: datetime,
    max_gap: timedelta,
    plot_height: int = 140,
    top: int = 8,
    axis_height: int = 24,
    tick_every: timedelta = timedelta(hours=6),
) -> TimeChart:
    """A line of ``value`` (with the area under it) and a dashed line of ``total`` over
    [start, end], broken where samples are more than ``max_gap`` apart. Points outside the window
    are left out."""
    inside = sorted((p for p in points if start <= p.at <= end), key=lambda p: p.at)
    span = (end - start).total_seconds()
    ticks = nice_ticks(max((max(p.total, p.value) for p in inside), default=0))
    y_max = ticks[-1]

    def x(point: TimePoint) -> str:
        return _number((point.at - start).total_seconds() / span * PLOT_WIDTH)

    def y(value: int) -> str:
        return _number(plot_height - value / y_max * plot_height)

    line, area, total, dots = [], [], [], []
    for run in split_at_gaps(inside, max_gap=max_gap):
        if len(run) == 1:
            dots.append(f"M{x(run[0])} {y(run[0].value)}h0")
            continue
        values = " ".join(f"{x(p)} {y(p.value)}" for p in run)
        line.append("M" + values)
        area.append(f"M{x(run[0])} {plot_height}L{values}L{x(run[-1])} {plot_height}Z")
        total.append("M" + " ".join(f"{x(p)} {y(p.total)}" for p in run))
    last_point = inside[-1] if inside else None
    return TimeChart(
        start=start,
        end=end,
        top=top,
        plot_height=plot_height,
        height=top + plot_height + axis_height,
        y_max=y_max,
        y_ticks=[YTick(value=t, y=top + float(y(t)), label=f"{t:,}") for t in ticks],
        x_ticks=_time_ticks(start, end, tick_every),
        line="".join(line),
        area="".join(area),
        total="".join(total),
        dots="".join(dots),
        last=f"M{x(last_point)} {y(last_point.value)}h0" if last_point else "",
        last_point=last_point,
        lowest=min((p.value for p in inside), default=None),
        highest=max((p.value for p in inside), default=None),
        hours=_hours(inside, start, end),
    )


# --- Bars ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bar:
    key: object  # what the bar stands for: the template draws its label
    count: int
    fraction: float
    percent: str  # for people: "42%", "<1%"
    width: str  # for an SVG width attribute: "42.31%"


def percent_label(count: int, total: int) -> str:
    """A whole percentage that never reads 0% for some or 100% for not all."""
    if not total or not count:
        return "0%"
    share = 100 * count / total
    if share < 1:
        return "<1%"
    if share > 99 and count < total:
        return ">99%"
    return f"{round(share)}%"


def bars(items: Iterable[tuple[object, int]]) -> list[Bar]:
    """One bar per (key, count), in the given order, as shares of their sum."""
    items = list(items)
    total = sum(count for _, count in items)
    return [
        Bar(
            key=key,
            count=count,
            fraction=count / total if total else 0.0,
            percent=percent_label(count, total),
            width=f"{100 * count / total if total else 0:.2f}%",
        )
        for key, count in items
    ]


@dataclass(frozen=True)
class FirmwareVersion:
    """A firmware chart row's label: a version, or None for devices that never reported one.
    ``older`` > 0: the row also counts that many versions below ``version``."""

    version: int | None
    older: int = 0


def firmware_version_bars(counts: Iterable[tuple[int | None, int]], *, limit: int = 8) -> list[Bar]:
    """Devices per firmware version, newest first and "never reported" last. Past ``limit`` rows,
    the oldest versions share one row, so a long-lived fleet's chart stays readable."""
    known = sorted(((v, n) for v, n in counts if n), key=lambda item: (item[0] is None, -(item[0] or 0)))
    unknown = sum(n for v, n in known if v is None)
    versions = [(v, n) for v, n in known if v is not None]
    room = limit - (1 if unknown else 0)
    rows: list[tuple[object, int]] = [(FirmwareVersion(v), n) for v, n in versions]
    if len(versions) > room:
        head, rest = versions[: room - 1], versions[room - 1 :]
        rows = [(FirmwareVersion(v), n) for v, n in head]
        rows.append((FirmwareVersion(rest[0][0], older=len(rest) - 1), sum(n for _, n in rest)))
    if unknown:
        rows.append((FirmwareVersion(None), unknown))
    return bars(rows)
