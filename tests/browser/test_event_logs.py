"""The Event Logs page (/events/) and a device's event log, in a real browser against a live server.

Events are published into the live server through the API (a user's own stream, coreid "api") or
by devices connected over the real gateway. The per-user publish limit (1 a second, bursts of 4)
applies: ``publish`` waits out a 429 and tries again. A few tests feed the log synthetic stream
messages (``[data-event-log].eventLog.onMessage``) to reach numbers no publish limit allows.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from playwright.sync_api import expect

from console.accounts.models import User
from console.accounts.services import access_token_create
from devices.models import Device
from tests.browser.test_devices_browser import FakeDevice, provision
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The Publish dialog's field errors come back as HTTP 400 (and the limit as 429), which Chromium
# also reports on the console; anything else there still fails the test.
EXPECTED_CONSOLE = re.compile(r"Failed to load resource: the server responded with a status of (400|429)")

ROWS = "[data-event-log-spacer] > *"  # rows and the divider, top to bottom


@pytest.fixture
def page(live_asgi_server, browser):
    """Like the browser conftest's page, with the clipboard allowed."""
    context = browser.new_context(
        base_url=live_asgi_server.url,
        viewport={"width": 1280, "height": 800},
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if message.type == "error" and not EXPECTED_CONSOLE.search(message.text)
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.set_default_timeout(10_000)
    yield page
    context.close()
    assert not problems, f"browser console errors: {problems}"


@pytest.fixture
def ada(transactional_db) -> User:
    return User.objects.create_user(email="ada@example.com", password=PASSWORD)


@pytest.fixture
def token(ada) -> str:
    return access_token_create(user=ada, expires_in_seconds=3600).token


def sign_in(page, email: str = "ada@example.com") -> None:
    page.goto("/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))


def publish(server, token: str, name: str, data: str | None = None) -> None:
    """Publish as the user through the API, waiting out the publish limit."""
    body = {"name": name} if data is None else {"name": name, "data": data}
    for _ in range(10):
        response = httpx.post(
            f"{server.url}/v1/devices/events",
            data=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        if response.status_code != 429:
            break
        time.sleep(float(response.headers.get("Retry-After", "1")))
    assert response.status_code == 200, response.text


def open_log(page, path: str = "/events/") -> None:
    page.goto(path)
    page.locator("[data-event-log][data-ready]").wait_for()


def feed(page, count: int, start: int = 0, dropped: int = 0) -> None:
    """Hand the log a stream message with ``count`` synthetic live events named bulk/N."""
    page.evaluate(
        """([count, start, dropped]) => {
            const log = document.querySelector("[data-event-log]").eventLog;
            const events = [];
            for (let i = start; i < start + count; i++) {
                events.push({name: "bulk/" + i, data: String(i), ttl: 60, coreid: "api", device_name: null,
                             published_at: new Date(Date.UTC(2026, 0, 1) + i).toISOString()});
            }
            log.onMessage({type: "stream", id: log.streamId, events: events, dropped: dropped});
        }""",
        [count, start, dropped],
    )


def top_visible_event(page) -> str:
    """The name of the event in the row at the top edge of the list."""
    return page.evaluate(
        """() => {
            const box = document.querySelector("[data-event-log-viewport]").getBoundingClientRect();
            const row = document.elementFromPoint(box.left + 40, box.top + 5).closest(".event-row");
            return row.querySelector(".event-chip").textContent;
        }"""
    )


def selected(page):
    return page.locator('[role="option"][aria-selected="true"]')


def test_history_then_live_events_on_top(page, live_asgi_server, ada, token):
    publish(live_asgi_server, token, "boot", "first")
    publish(live_asgi_server, token, "greenhouse/temp", "21.5")
    sign_in(page)
    page.get_by_role("link", name="Events").first.click()
    page.wait_for_url(re.compile("/events/$"))
    page.locator("[data-event-log][data-ready]").wait_for()
    expect(page.get_by_role("heading", name="Event Logs")).to_be_visible()

    rows = page.locator(ROWS)
    # Newest first; the history the page opened with sits below "Live from here".
    expect(rows).to_have_text(
        [re.compile("Live from here"), re.compile("greenhouse/temp"), re.compile("boot")]
    )
    expect(rows.nth(1)).to_contain_text("21.5")
    expect(rows.nth(1)).to_contain_text("API")

    publish(live_asgi_server, token, "door/open", "yes")
    expect(rows).to_have_text(
        [
            re.compile("door/open"),
            re.compile("Live from here"),
            re.compile("greenhouse/temp"),
            re.compile("boot"),
        ]
    )
    expect(page.locator("[data-event-log-count]")).to_have_text("3 events")
    time_cell = rows.first.locator("time")
    expect(time_cell).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))
    expect(time_cell).to_have_attribute("title", re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"))


def test_filter_narrows_history_and_live_and_stays_in_the_url(page, live_asgi_server, ada, token):
    publish(live_asgi_server, token, "temp", "25")
    publish(live_asgi_server, token, "temp", "35")
    publish(live_asgi_server, token, "humidity", "25")
    sign_in(page)
    open_log(page)
    options = page.get_by_role("option")
    expect(options).to_have_count(3)

    page.get_by_label("Filter events").fill("event:temp range:20-30")
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("temp")
    expect(options.first).to_contain_text("25")
    page.wait_for_url(re.compile(r"\?q=event%3Atemp\+range%3A20-30$"))

    publish(live_asgi_server, token, "humidity", "22")
    publish(live_asgi_server, token, "temp", "22")
    expect(options).to_have_count(2)
    expect(options.first).to_contain_text("22")
    expect(page.locator(ROWS).nth(1)).to_have_text(re.compile("Live from here"))
    expect(page.get_by_role("listbox")).not_to_contain_text("humidity")

    page.reload()
    page.locator("[data-event-log][data-ready]").wait_for()
    expect(page.get_by_label("Filter events")).to_have_value("event:temp range:20-30")
    expect(options).to_have_count(2)
    expect(page.get_by_role("listbox")).not_to_contain_text("humidity")

    # Nothing matches: say so, and offer the way back.
    page.get_by_label("Filter events").fill("event:nothing-like-this")
    expect(page.get_by_text("No events match this filter")).to_be_visible()
    page.get_by_role("button", name="Clear the filter").click()
    expect(options).to_have_count(5)
    page.wait_for_url(re.compile("/events/$"))


def test_unknown_modifier_shows_the_servers_message_inline(page, ada):
    sign_in(page)
    open_log(page)
    field = page.get_by_label("Filter events")
    field.fill("foo:bar")
    error = page.locator("#event-filter-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text('Unknown filter "foo:"')
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_attribute("aria-describedby", "event-filter-error")

    field.fill('"foo:bar"')
    expect(error).to_be_hidden()
    expect(field).not_to_have_attribute("aria-invalid", "true")


def test_advanced_lists_the_modifiers_and_inserts_an_example(page, ada):
    sign_in(page)
    open_log(page)
    page.get_by_role("button", name="Advanced").click()
    help_panel = page.locator("#event-filter-help")
    expect(help_panel).to_be_visible()
    for syntax in ("device:<name or ID>", "event:<name>", "range:<min>-<max>", "data:<text>"):
        expect(help_panel.get_by_text(syntax)).to_be_visible()
    help_panel.get_by_role("button", name="range:20-30").click()
    expect(page.get_by_label("Filter events")).to_have_value("range:20-30")
    page.wait_for_url(re.compile(r"\?q=range%3A20-30$"))
    page.get_by_role("button", name="Advanced").click()
    expect(help_panel).to_be_hidden()


def test_selected_event_shows_pretty_json_raw_and_copies(page, live_asgi_server, ada, token):
    raw = '{"t":21.50,"ok":true,"tags":["a","b"],"none":null,"deep":{}}'
    publish(live_asgi_server, token, "env", raw)
    sign_in(page)
    open_log(page)
    page.get_by_role("option").first.click()

    detail = page.get_by_role("complementary", name="Event details")
    expect(detail.locator("[data-detail=name]")).to_have_text("env")
    expect(detail.locator("[data-detail=device]")).to_contain_text("API")
    expect(detail.locator("[data-detail=ttl]")).to_have_text("60 s")
    data = detail.locator("[data-detail=data]")
    expect(data.locator(".json-key").first).to_have_text('"t"')
    expect(data.locator(".json-number")).to_have_text("21.50")  # the published digits, not 21.5
    expect(data.locator(".json-boolean")).to_have_text("true")
    expect(data.locator(".json-null")).to_have_text("null")
    expect(data.locator(".json-string")).to_have_text(['"a"', '"b"'])
    assert "\n" in data.inner_text()  # pretty-printed over several lines

    raw_toggle = detail.get_by_role("button", name="RAW")
    raw_toggle.click()
    expect(raw_toggle).to_have_attribute("aria-pressed", "true")
    expect(data).to_have_text(raw)
    expect(data.locator(".json-key")).to_have_count(0)
    raw_toggle.click()
    expect(data.locator(".json-key").first).to_be_visible()

    detail.get_by_role("button", name="Copy").click()
    expect(page.get_by_text("Copied the data of env.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == raw


def test_event_data_is_shown_as_text_never_markup(page, live_asgi_server, ada, token):
    hostile = '<img src=x onerror="document.body.dataset.owned=1"><b>bold</b>'
    publish(live_asgi_server, token, "xss", hostile)
    sign_in(page)
    open_log(page)
    option = page.get_by_role("option").first
    expect(option).to_contain_text("<b>bold</b>")
    option.click()
    expect(page.locator("[data-detail=data]")).to_have_text(hostile)
    assert page.locator("[data-event-log] img, [data-event-log] b").count() == 0
    assert page.evaluate("document.body.dataset.owned") is None


def test_arrow_keys_move_the_selection(page, live_asgi_server, ada, token):
    for name in ("one", "two", "three"):
        publish(live_asgi_server, token, name, name.upper())
    sign_in(page)
    open_log(page)
    options = page.get_by_role("option")
    expect(options).to_have_count(3)
    name = page.locator("[data-detail=name]")

    options.first.click()
    expect(name).to_have_text("three")
    listbox = page.get_by_role("listbox", name="Events, newest first")
    expect(listbox).to_be_focused()
    listbox.press("ArrowDown")
    expect(selected(page)).to_contain_text("two")
    expect(name).to_have_text("two")
    listbox.press("ArrowDown")
    listbox.press("ArrowDown")  # stays on the last one
    expect(selected(page)).to_contain_text("one")
    expect(listbox).to_have_attribute("aria-activedescendant", re.compile(".+"))
    listbox.press("ArrowUp")
    expect(name).to_have_text("two")
    listbox.press("Home")
    expect(name).to_have_text("three")
    listbox.press("Escape")
    expect(selected(page)).to_have_count(0)
    expect(page.get_by_text("Select an event to see its data.")).to_be_visible()


def test_pause_queues_play_releases_in_order_and_clear_empties(page, live_asgi_server, ada, token):
    publish(live_asgi_server, token, "before")
    sign_in(page)
    open_log(page)
    options = page.get_by_role("option")
    expect(options).to_have_count(1)

    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_text("Paused: new events wait until you press Play.")).to_be_visible()
    for name in ("q1", "q2", "q3"):
        publish(live_asgi_server, token, name)
    expect(page.get_by_role("button", name="Play (3 new)")).to_be_visible()
    expect(options).to_have_count(1)

    page.get_by_role("button", name="Play (3 new)").click()
    expect(page.locator(ROWS)).to_have_text(
        [
            re.compile("q3"),
            re.compile("q2"),
            re.compile("q1"),
            re.compile("Live from here"),
            re.compile("before"),
        ]
    )
    expect(page.get_by_role("button", name="Pause")).to_be_visible()

    page.get_by_role("button", name="Clear").click()
    expect(options).to_have_count(0)
    expect(page.get_by_role("heading", name="Cleared")).to_be_visible()
    expect(page.locator("[data-event-log-count]")).to_have_text("No events")
    publish(live_asgi_server, token, "after")
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("after")


def test_publish_dialog_shows_field_errors_then_publishes(page, ada):
    sign_in(page)
    open_log(page)
    page.get_by_role("button", name="Publish event").first.click()
    dialog = page.get_by_role("dialog", name="Publish an event")
    expect(dialog).to_be_visible()
    name = dialog.get_by_label("Event name")
    expect(name).to_be_focused()

    name.fill("spark/x")
    dialog.get_by_role("button", name="Publish", exact=True).click()
    error = dialog.locator("#publish-name-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Event names starting with 'spark' or 'particle' are reserved")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(name).to_have_attribute("aria-describedby", re.compile("publish-name-error"))
    expect(name).to_be_focused()

    name.fill("door/open")
    dialog.get_by_label("Data").fill('{"open": true}')
    dialog.get_by_role("button", name="Publish", exact=True).click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_text("Published door/open.")).to_be_visible()
    option = page.get_by_role("option").first
    expect(option).to_contain_text("door/open")
    expect(option).to_contain_text("API")


def test_device_page_shows_only_that_devices_events(page, live_asgi_server, ada, token):
    mine, other = provision(ada, 2)
    Device.objects.filter(pk=mine.device.pk).update(name="greenhouse-north")
    first = FakeDevice(live_asgi_server.url, mine).connect()
    second = FakeDevice(live_asgi_server.url, other).connect()
    try:
        first.publish("greenhouse/temp", "22.4")
        second.publish("garage/door", "open")
        publish(live_asgi_server, token, "from-api", "x")
        sign_in(page)
        open_log(page, f"/devices/{mine.device.id}/")
        card = page.locator("[data-event-log]")
        expect(card.get_by_role("heading", name="Events", exact=True)).to_be_visible()
        options = card.get_by_role("option")
        expect(options).to_have_text([re.compile("greenhouse/temp"), re.compile("spark/status.*online")])
        expect(page.get_by_role("button", name="Publish event")).to_have_count(0)

        second.publish("garage/door", "closed")
        first.publish("greenhouse/humidity", "48")
        expect(options.first).to_contain_text("greenhouse/humidity")
        expect(options).to_have_count(3)
        expect(card.get_by_role("listbox")).not_to_contain_text("garage/door")
        expect(card.get_by_role("listbox")).not_to_contain_text("from-api")

        options.first.click()
        device_link = page.locator("[data-detail=device] a")
        expect(device_link).to_have_text("greenhouse-north")
        expect(device_link).to_have_attribute("href", f"/devices/{mine.device.id}/")

        export = card.locator('[data-event-log-export="csv"]')
        query = parse_qs(urlparse(export.get_attribute("href")).query)
        assert query == {"format": ["csv"], "device": [mine.device.id]}
    finally:
        first.close()
        second.close()


def test_export_csv_downloads_the_filtered_history(page, live_asgi_server, ada, token):
    publish(live_asgi_server, token, "temp", "21")
    publish(live_asgi_server, token, "humidity", "40")
    publish(live_asgi_server, token, "temp", '{"t": 22}')
    sign_in(page)
    page.goto("/events/?q=event:temp")
    page.locator("[data-event-log][data-ready]").wait_for()
    expect(page.get_by_role("option")).to_have_count(2)

    page.get_by_role("button", name="Export").click()
    with page.expect_download() as download_info:
        page.get_by_role("menuitem", name=re.compile("CSV")).click()
    download = download_info.value
    assert re.fullmatch(r"events-\d{8}-\d{6}\.csv", download.suggested_filename)
    with open(download.path(), encoding="utf-8", newline="") as file:
        rows = list(csv.reader(io.StringIO(file.read())))
    assert rows[0] == ["published_at", "name", "data", "device_id", "device_name", "ttl"]
    assert [(row[1], row[2], row[3]) for row in rows[1:]] == [
        ("temp", "21", "api"),
        ("temp", '{"t": 22}', "api"),
    ]

    page.get_by_role("button", name="Export").click()
    with page.expect_download() as download_info:
        page.get_by_role("menuitem", name=re.compile("NDJSON")).click()
    with open(download_info.value.path(), encoding="utf-8") as file:
        lines = [json.loads(line) for line in file]
    assert [line["data"] for line in lines] == ["21", '{"t": 22}']


def test_ten_thousand_events_stay_virtualised(page, ada):
    sign_in(page)
    open_log(page)
    expect(page.get_by_role("heading", name="No events yet")).to_be_visible()
    started = time.monotonic()
    feed(page, 12_000)
    assert time.monotonic() - started < 5
    expect(page.locator("[data-event-log-count]")).to_have_text("10,000 events (the newest 10,000 are kept)")
    options = page.get_by_role("option")
    expect(options.first).to_contain_text("bulk/11999")
    assert options.count() < 60  # only the visible window and its overscan are in the page
    expect(options.first).to_have_attribute("aria-setsize", "10000")

    listbox = page.get_by_role("listbox")
    options.first.click()
    listbox.press("End")
    expect(selected(page)).to_contain_text("bulk/2000")  # the oldest kept
    expect(selected(page)).to_be_in_viewport()
    expect(page.locator("[data-detail=name]")).to_have_text("bulk/2000")
    assert options.count() < 60


def test_scrolled_view_keeps_its_place_and_offers_the_new_events(page, ada):
    sign_in(page)
    open_log(page)
    feed(page, 60)
    listbox = page.get_by_role("listbox")
    listbox.evaluate("el => { el.scrollTop = 400; el.dispatchEvent(new Event('scroll')); }")
    top_row = top_visible_event(page)
    feed(page, 3, start=60)
    pill = page.get_by_role("button", name="3 new events")
    expect(pill).to_be_visible()
    assert top_visible_event(page) == top_row  # the view did not move
    pill.click()
    expect(pill).to_be_hidden()
    expect(page.get_by_role("option").first).to_contain_text("bulk/62")
    expect(page.get_by_role("option").first).to_be_in_viewport()


def test_lag_notice_when_the_server_dropped_events(page, ada):
    sign_in(page)
    open_log(page)
    feed(page, 1, dropped=7)
    notice = page.get_by_text("Your connection fell behind; 7 events were skipped.")
    expect(notice).to_be_visible()
    feed(page, 0, dropped=1)
    expect(page.get_by_text("Your connection fell behind; 8 events were skipped.")).to_be_visible()
    page.locator("[data-event-log-lag-dismiss]").click()
    expect(page.get_by_text("Your connection fell behind")).to_be_hidden()
