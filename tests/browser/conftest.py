"""Playwright driving Debian's Chromium (``playwright install`` cannot download browsers here)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_or_skip

CHROMIUM = os.environ.get("QUANTA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser(live_asgi_server) -> Iterator:
    """Module-scoped: Playwright's event loop must not outlive the browser tests.
    Depends on the live server so the test database exists before the loop starts."""
    require_or_skip(Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM} (set QUANTA_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread while the browser lives;
    # the ORM calls these tests make are still synchronous, so Django's async guard stands aside.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()


@pytest.fixture
def page(live_asgi_server, browser) -> Iterator:
    """A fresh browser context per test; fails the test on any console error (CSP violations
    included) or uncaught page error."""
    context = browser.new_context(base_url=live_asgi_server.url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.set_default_timeout(10_000)
    yield page
    context.close()
    assert not problems, f"browser console errors: {problems}"
