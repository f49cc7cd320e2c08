"""A product's Team page in a real browser against a live server: the owner invites someone through
the Invite dialog, they accept on their invitations page after signing in, and the owner removes
them again."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from console.accounts.models import User
from products.models import Invitation, Membership
from products.services import product_create
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ada(transactional_db) -> User:
    return User.objects.create_user(email="ada@example.com", password=PASSWORD)


@pytest.fixture
def grace(transactional_db) -> User:
    return User.objects.create_user(email="grace@example.com", password=PASSWORD)


@pytest.fixture
def second_page(live_asgi_server, browser) -> Iterator:
    """A second person's browser, like the ``page`` fixture's: any console error fails the test."""
    context = browser.new_context(base_url=live_asgi_server.url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.set_default_timeout(10_000)
    yield page
    context.close()
    assert not problems, f"browser console errors: {problems}"


def sign_in(page, email: str, lands_on: str) -> None:
    page.goto("/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(lands_on))


def test_invite_accept_and_remove_a_team_member(page, second_page, ada, grace):
    product = product_create(user=ada, name="Greenhouse sensors", platform_id=13)

    # The owner opens the team from the product's overview.
    sign_in(page, "ada@example.com", r"/$")
    page.goto(f"/products/{product.slug}/")
    page.get_by_role("link", name="Team and invitations").click()
    page.wait_for_url(re.compile(f"/products/{product.slug}/team/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Team")
    context = page.get_by_role("navigation", name="Product: Greenhouse sensors")
    expect(context.get_by_role("link", name="Team")).to_have_attribute("aria-current", "page")
    expect(page.get_by_text("1 of 5 seats used")).to_be_visible()

    # Someone without an account cannot be invited: the dialog says so under the email field.
    page.get_by_role("button", name="Invite team member").click()
    dialog = page.get_by_role("dialog", name="Invite team member")
    email = dialog.get_by_label("Email")
    expect(email).to_be_focused()
    email.fill("nobody@example.com")
    dialog.get_by_role("button", name="Send invitation").click()
    expect(dialog.get_by_text("No account uses nobody@example.com.")).to_be_visible()
    expect(dialog.get_by_label("Email")).to_be_focused()
    assert not Invitation.objects.exists()

    # Grace has one; she is invited as Support.
    dialog.get_by_label("Email").fill("grace@example.com")
    dialog.get_by_label("Support").check()
    dialog.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text("Invited grace@example.com as Support.")).to_be_visible()
    expect(dialog).to_be_hidden()
    pending = page.get_by_role("region", name="Pending invitations")
    expect(pending.get_by_role("row", name=re.compile("grace@example.com"))).to_contain_text("Support")
    expect(page.get_by_text("2 of 5 seats used")).to_be_visible()
    assert Invitation.objects.get().user == grace

    # Grace signs in, lands on her invitations, and accepts.
    sign_in(second_page, "grace@example.com", "/invitations/$")
    invitation = second_page.get_by_role("listitem").filter(has_text="Greenhouse sensors")
    expect(invitation).to_contain_text("ada@example.com invited you")
    invitation.get_by_role("button", name="Accept").click()
    expect(second_page.get_by_text("You joined the Greenhouse sensors team.")).to_be_visible()
    second_page.goto("/products/")
    expect(second_page.locator(f'tr[data-product-id="{product.id}"]')).to_contain_text("Support")
    assert Membership.objects.get(product=product, user=grace).role == "support"

    # The owner sees her on the team and removes her, after confirming.
    page.reload()
    members = page.get_by_role("region", name="Members")
    expect(members.get_by_role("row", name=re.compile("grace@example.com"))).to_contain_text("Support")
    expect(page.get_by_text("No invitations waiting for an answer.")).to_be_visible()
    members.get_by_role("button", name="Remove grace@example.com").click()
    confirm = page.get_by_role("dialog", name="Remove this member from the team?")
    expect(confirm).to_contain_text("grace@example.com")
    confirm.get_by_role("button", name="Remove member").click()
    expect(page.get_by_text("Removed grace@example.com from the team.")).to_be_visible()
    expect(members.get_by_role("row", name=re.compile("grace@example.com"))).to_have_count(0)
    assert not Membership.objects.filter(product=product, user=grace).exists()

    # And Grace no longer has the product.
    second_page.goto("/products/")
    expect(second_page.get_by_role("heading", name="No products yet")).to_be_visible()
