"""The product overview's charts: the pure chart math (products/charts.py), then the page drawing
devices online over 24 hours and the firmware versions devices run."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from console.platforms import PLATFORMS
from devices.models import Device, DeviceOnlineSample
from devices.services import devices_provision, online_sample_period_start
from products.charts import (
    PLOT_WIDTH,
    FirmwareVersion,
    TimePoint,
    bars,
    firmware_version_bars,
    nice_ticks,
    percent_label,
    split_at_gaps,
    time_chart,
)
from products.models import Product
from products.services import product_create

BORON = 13
START = datetime(2026, 3, 13, 15, 10, tzinfo=UTC)
END = START + timedelta(hours=24)
FIVE_MINUTES = timedelta(minutes=5)


def point(minutes: float, value: int, total: int = 10) -> TimePoint:
    return TimePoint(at=START + timedelta(minutes=minutes), value=value, total=total)


# --- Scales ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("maximum", "ticks"),
    [
        (0, [0, 1]),
        (1, [0, 1]),
        (3, [0, 1, 2, 3]),
        (4, [0, 1, 2, 3, 4]),
        (5, [0, 2, 4, 6]),
        (7, [0, 2, 4, 6, 8]),
        (10, [0, 5, 10]),
        (50, [0, 20, 40, 60]),
        (100, [0, 25, 50, 75, 100]),
        (1000, [0, 250, 500, 750, 1000]),
        (1001, [0, 500, 1000, 1500]),
        (123_456, [0, 50_000, 100_000, 150_000]),
    ],
)
def test_nice_ticks(maximum, ticks):
    assert nice_ticks(maximum) == ticks


@given(st.integers(min_value=0, max_value=10**9))
def test_nice_ticks_cover_the_maximum_in_a_few_whole_even_steps(maximum):
    ticks = nice_ticks(maximum)
    steps = {b - a for a, b in zip(ticks, ticks[1:], strict=False)}
    assert ticks[0] == 0
    assert ticks[-1] >= maximum
    assert len(steps) == 1
    assert all(isinstance(tick, int) for tick in ticks)
    assert 2 <= len(ticks) <= 6
    assert ticks[-2] < max(maximum, 1)  # no empty step at the top


# --- Time charts -------------------------------------------------------------------------------------------
def test_runs_split_where_samples_are_missing():
    points = [point(0, 1), point(5, 2), point(10, 3), point(40, 4), point(45, 5), point(90, 6)]
    runs = split_at_gaps(points, max_gap=timedelta(minutes=12.5))
    assert [[p.value for p in run] for run in runs] == [[1, 2, 3], [4, 5], [6]]


def test_points_are_scaled_to_the_plot():
    chart = time_chart(
        [point(0, 0), point(12 * 60, 5), point(24 * 60, 10)],
        start=START,
        end=END,
        max_gap=timedelta(hours=13),
        plot_height=100,
    )
    assert chart.y_max == 10
    # x: the window across PLOT_WIDTH; y: 0 at the bottom of the plot, the top tick at its top.
    assert chart.line == f"M0 100 {PLOT_WIDTH // 2} 50 {PLOT_WIDTH} 0"
    assert chart.area == "M0 100L0 100 500 50 1000 0L1000 100Z"
    assert chart.total == "M0 0 500 0 1000 0"
    assert chart.last == "M1000 0h0"
    assert chart.last_point == point(24 * 60, 10)
    assert (chart.lowest, chart.highest) == (0, 10)
    assert [(tick.value, tick.y) for tick in chart.y_ticks] == [
        (0, chart.top + 100),
        (5, chart.top + 50),
        (10, chart.top + 0),
    ]
    assert chart.height == chart.top + 100 + 24


def test_gaps_break_the_line_and_lone_samples_are_dots():
    points = [point(0, 4), point(5, 4), point(10, 5), point(100, 6), point(300, 7), point(305, 7)]
    chart = time_chart(points, start=START, end=END, max_gap=timedelta(minutes=12.5))
    assert chart.line.count("M") == 2
    assert chart.area.count("Z") == 2
    assert chart.dots.count("M") == 1
    assert chart.dots.endswith("h0")
    assert chart.total.count("M") == 2


def test_points_outside_the_window_are_left_out():
    chart = time_chart(
        [point(-10, 9), point(0, 1), point(5, 2), point(24 * 60 + 1, 9)],
        start=START,
        end=END,
        max_gap=timedelta(minutes=12.5),
    )
    assert (chart.lowest, chart.highest) == (1, 2)
    assert chart.y_max == 10  # the totals still count


def test_time_ticks_every_six_hours_with_the_date_at_midnight():
    chart = time_chart([point(0, 1), point(5, 1)], start=START, end=END, max_gap=FIVE_MINUTES)
    assert [tick.label for tick in chart.x_ticks] == ["18:00", "Mar 14", "06:00", "12:00"]
    first = (datetime(2026, 3, 13, 18, tzinfo=UTC) - START) / (END - START) * 100
    assert chart.x_ticks[0].x == f"{first:.2f}%"
    assert {tick.anchor for tick in chart.x_ticks} == {"middle"}


def test_a_tick_at_an_edge_stays_inside_the_chart():
    start = datetime(2026, 3, 13, 12, 0, 30, tzinfo=UTC)
    chart = time_chart([], start=start, end=start + timedelta(hours=24), max_gap=FIVE_MINUTES)
    assert [(tick.label, tick.anchor) for tick in chart.x_ticks] == [
        ("18:00", "middle"),
        ("Mar 14", "middle"),
        ("06:00", "middle"),
        ("12:00", "end"),
    ]


def test_the_hours_table_summarises_each_hour():
    chart = time_chart(
        [point(0, 3), point(5, 5, total=11), point(55, 4, total=12)],
        start=START,
        end=END,
        max_gap=FIVE_MINUTES,
    )
    assert len(chart.hours) == 25  # the partial hours at both ends included
    first, second, third = chart.hours[:3]
    assert (first.start, first.lowest, first.highest, first.total) == (START.replace(minute=0), 3, 5, 11)
    assert (second.lowest, second.highest, second.total) == (4, 4, 12)
    assert (third.lowest, third.highest, third.total) == (None, None, None)


# --- Bars -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("count", "total", "label"),
    [
        (0, 0, "0%"),
        (0, 5, "0%"),
        (1, 1000, "<1%"),
        (1, 3, "33%"),
        (2, 3, "67%"),
        (999, 1000, ">99%"),
        (4, 4, "100%"),
    ],
)
def test_percent_labels(count, total, label):
    assert percent_label(count, total) == label


def test_bars_are_shares_of_their_sum():
    result = bars([("a", 3), ("b", 1)])
    assert [(bar.key, bar.count, bar.fraction, bar.percent, bar.width) for bar in result] == [
        ("a", 3, 0.75, "75%", "75.00%"),
        ("b", 1, 0.25, "25%", "25.00%"),
    ]


def test_firmware_versions_newest_first_and_unknown_last():
    result = firmware_version_bars([(None, 2), (3, 5), (12, 1), (4, 2)])
    assert [(bar.key, bar.count) for bar in result] == [
        (FirmwareVersion(12), 1),
        (FirmwareVersion(4), 2),
        (FirmwareVersion(3), 5),
        (FirmwareVersion(None), 2),
    ]
    assert [bar.percent for bar in result] == ["10%", "20%", "50%", "20%"]


def test_the_oldest_firmware_versions_share_a_row_past_the_limit():
    counts = [(version, 1) for version in range(1, 11)] + [(None, 5)]
    result = firmware_version_bars(counts, limit=5)
    assert [(bar.key, bar.count) for bar in result] == [
        (FirmwareVersion(10), 1),
        (FirmwareVersion(9), 1),
        (FirmwareVersion(8), 1),
        (FirmwareVersion(7, older=6), 7),  # v7 and the 6 versions below it
        (FirmwareVersion(None), 5),
    ]
    assert sum(bar.count for bar in result) == 15


# --- The page ------------------------------------------------------------------------------------------------
@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def product(user) -> Product:
    return product_create(user=user, name="Greenhouse sensors", platform_id=BORON)


def add_devices(product: Product, count: int, *, online: int = 0, version: int | None = None) -> None:
    ids = [
        item.device.pk for item in devices_provision(platform=PLATFORMS[BORON], count=count, product=product)
    ]
    Device.objects.filter(pk__in=ids).update(firmware_version=version)
    Device.objects.filter(pk__in=ids[:online]).update(online=True)


def add_samples(product: Product, ages: list[timedelta], *, online: int = 2, total: int = 5) -> None:
    now = online_sample_period_start(timezone.now())
    DeviceOnlineSample.objects.bulk_create(
        DeviceOnlineSample(product=product, taken_at=now - age, online=online, total=total) for age in ages
    )


def every_five_minutes(hours: float, *, after: float = 0) -> list[timedelta]:
    return [timedelta(minutes=after * 60 + 5 * step) for step in range(int(hours * 12))]


def online_chart(html: str) -> str:
    return html[html.index("data-online-chart") : html.index("data-firmware-chart")]


def firmware_chart(html: str) -> str:
    return html[html.index("data-firmware-chart") : html.index("data-event-log")]


@pytest.mark.django_db
def test_the_overview_draws_devices_online_over_24_hours(signed_in, product):
    add_devices(product, 5, online=3, version=2)
    add_samples(product, every_five_minutes(6), online=2)
    add_samples(product, every_five_minutes(3, after=10), online=4)  # four hours without samples

    html = signed_in.get(f"/products/{product.slug}/").content.decode()

    chart = online_chart(html)
    assert 'role="img"' in chart
    assert '<title id="online-chart-svg-title">Devices online over the last 24 hours</title>' in chart
    assert "3 of 5 devices online now; between 2 and 4 online over the last 24 hours" in chart
    assert "times in UTC" in chart
    line = re.search(r'class="time-chart-line" d="([^"]+)"', chart).group(1)
    assert line.count("M") == 2  # the line breaks over the gap
    assert 'class="time-chart-now"' in chart  # the live count ends the line
    assert re.search(r'<text x="[\d.]+%" y="\d+" text-anchor="\w+">\d\d:00</text>', chart)
    # The values, for screen readers: an hourly table, the quiet hours said so, and now.
    assert '<table class="visually-hidden">' in chart
    assert "No samples" in chart
    assert re.search(r"<th scope=\"row\">Now</th><td>3</td><td>5</td>", chart)
    assert "Collecting" not in chart


@pytest.mark.django_db
def test_the_online_chart_waits_for_two_samples(signed_in, product):
    add_devices(product, 4, online=1)
    for samples in ([], [timedelta(0)]):
        add_samples(product, samples, online=1, total=4)
        chart = online_chart(signed_in.get(f"/products/{product.slug}/").content.decode())
        assert "Collecting data" in chart
        assert "counted every 5 minutes; the chart starts with the second count" in chart
        assert "Now: 1 of 4 online." in chart
        assert '<svg class="time-chart-plot"' not in chart


@pytest.mark.django_db
def test_the_overview_draws_the_firmware_versions_devices_run(signed_in, product):
    add_devices(product, 6, version=3)
    add_devices(product, 3, version=12)
    add_devices(product, 1)

    response = signed_in.get(f"/products/{product.slug}/")

    chart = firmware_chart(response.content.decode())
    rows = re.findall(
        r'<th scope="row" class="bar-chart-label">(.*?)</th>.*?class="bar-chart-fill[^"]*" width="([\d.]+%)".*?'
        r'class="bar-chart-count">(\d+)</td>\s*<td class="bar-chart-percent">([^<]+)</td>',
        chart,
        flags=re.S,
    )
    labels = [re.sub(r"<[^>]+>", "", label) for label, *_ in rows]
    assert labels == ["v12", "v3", "Unknown"]
    assert [tuple(row[1:]) for row in rows] == [
        ("30.00%", "3", "30%"),
        ("60.00%", "6", "60%"),
        ("10.00%", "1", "10%"),
    ]
    assert "Devices by firmware version: " in chart  # the table's caption summarises it
    assert "No device has reported" not in chart
    # Version labels come from one include, so the firmware pages can link them later.
    assert "products/_firmware_version.html" in [template.name for template in response.templates]


@pytest.mark.django_db
def test_the_firmware_chart_without_devices_or_versions(signed_in, product):
    chart = firmware_chart(signed_in.get(f"/products/{product.slug}/").content.decode())
    assert "No devices yet" in chart
    assert "<table" not in chart

    add_devices(product, 2)
    chart = firmware_chart(signed_in.get(f"/products/{product.slug}/").content.decode())
    assert re.search(r">Unknown</span>.*?100%", chart, flags=re.S)
    assert "No device has reported a product firmware version yet" in chart


@pytest.mark.django_db
def test_the_page_costs_the_same_queries_for_0_and_50_devices(
    signed_in, product, django_assert_max_num_queries
):
    add_samples(product, every_five_minutes(24))
    url = f"/products/{product.slug}/"
    signed_in.get(url)  # warm the session cache

    with CaptureQueriesContext(connection) as empty:
        assert signed_in.get(url).status_code == 200
    for version in (1, 2, 3, 4, None):
        add_devices(product, 10, online=4, version=version)
    with django_assert_max_num_queries(5), CaptureQueriesContext(connection) as full:
        html = signed_in.get(url).content.decode()

    assert len(full) == len(empty)
    assert "data-device-total>50<" in html
    assert "20 of 50 devices online now" in html
