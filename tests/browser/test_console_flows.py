"""End-to-end console flows in a real browser against a live server."""

from __future__ import annotations

import re

import pytest
from oauth2_provider.models import AccessToken
from playwright.sync_api import expect

from console.accounts.models import User
from console.accounts.tokens import token_checksum
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, email: str, password: str = PASSWORD) -> None:
    page.goto("/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_sign_up_lands_on_home(page):
    page.goto("/signup/")
    page.get_by_label("Email").fill("new.user@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile(r"/$"))
    expect(page.get_by_text("particle config set apiUrl").first).to_be_visible()
    assert User.objects.filter(email="new.user@example.com").exists()


def test_sign_up_error_is_shown_inline(page):
    page.goto("/signup/")
    page.get_by_label("Email").fill("x@example.com")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Confirm password").fill("short")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("too short").first).to_be_visible()
    assert not User.objects.filter(email="x@example.com").exists()


def test_wrong_password_then_sign_in(page, transactional_db):
    User.objects.create_user(email="ada@example.com", password=PASSWORD)
    sign_in(page, "ada@example.com", "not-the-password")
    expect(page.get_by_text(re.compile("correct email", re.I)).first).to_be_visible()
    sign_in(page, "ada@example.com")
    page.wait_for_url(re.compile(r"/$"))
    expect(page.get_by_text("ada@example.com").first).to_be_visible()


def test_create_copy_and_revoke_a_token(page, transactional_db):
    user = User.objects.create_user(email="ada@example.com", password=PASSWORD)
    sign_in(page, user.email)
    page.goto("/account/tokens/")
    page.get_by_role("button", name="New token").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Description").fill("Nightly build")
    dialog.get_by_label("Expires").select_option(label="Never expires")
    dialog.get_by_role("button", name="Create token").click()

    token = page.locator("#new-token-value").input_value()
    assert re.fullmatch(r"[0-9a-f]{40}", token)
    stored = AccessToken.objects.get(token_checksum=token_checksum(token))
    assert stored.detail.description == "Nightly build"

    page.goto("/account/tokens/")  # shown once: not on the next visit
    assert token not in page.content()
    row = page.get_by_role("row").filter(has_text="Nightly build")
    expect(row.get_by_text("Never").first).to_be_visible()
    row.get_by_role("button", name=re.compile("Revoke")).click()
    page.get_by_role("dialog").get_by_role("button", name=re.compile("Revoke")).click()
    expect(page.get_by_text("Token revoked.").first).to_be_visible()
    assert not AccessToken.objects.filter(pk=stored.pk).exists()


def test_escape_closes_dialog_and_focus_returns(page, transactional_db):
    User.objects.create_user(email="ada@example.com", password=PASSWORD)
    sign_in(page, "ada@example.com")
    page.goto("/account/tokens/")
    opener = page.get_by_role("button", name="New token").first
    opener.click()
    expect(page.get_by_role("dialog")).to_be_visible()
    assert page.evaluate("document.activeElement.closest('dialog') !== null"), (
        "focus did not move into the dialog"
    )
    page.keyboard.press("Escape")
    page.get_by_role("dialog").wait_for(state="hidden")
    assert "New token" in page.evaluate("document.activeElement.textContent")


def test_phone_layout_uses_a_drawer(live_asgi_server, browser, transactional_db):
    User.objects.create_user(email="ada@example.com", password=PASSWORD)
    context = browser.new_context(base_url=live_asgi_server.url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        sign_in(page, "ada@example.com")
        page.wait_for_url(re.compile(r"/$"))
        nav_link = page.locator("#sidebar").get_by_role("link", name="Access tokens")
        expect(nav_link).to_be_hidden()
        page.locator("[data-nav-toggle]").first.click()
        nav_link.wait_for(state="visible")
        nav_link.click()
        page.wait_for_url(re.compile("/account/tokens/"))
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, "the page scrolls sideways on a phone"
    finally:
        context.close()


def test_console_websocket_delivers_notifications(page, live_asgi_server, transactional_db):
    """A token created through /oauth/token (e.g. by the CLI) shows a toast in open console tabs."""
    import httpx

    user = User.objects.create_user(email="ada@example.com", password=PASSWORD)
    sign_in(page, user.email)
    page.wait_for_url(re.compile(r"/$"))
    # (not wait_for_function: polling a string predicate needs eval, which the console's CSP forbids)
    expect(page.locator("html")).to_have_attribute("data-realtime", "connected")
    response = httpx.post(
        f"{live_asgi_server.url}/oauth/token",
        data={
            "grant_type": "password",
            "username": user.email,
            "password": PASSWORD,
            "client_id": "particle-cli",
        },
    )
    assert response.status_code == 200
    expect(page.get_by_text("A new access token was created for Particle CLI").first).to_be_visible()
