"""The product pages in a real browser against a live server: creating a product through the New
product dialog, its overview, and its events through the sidebar's product context."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from console.accounts.models import User
from console.platforms import PLATFORMS
from devices.services import devices_provision
from products.models import Product
from products.services import product_create
from tests.browser.test_devices_browser import FakeDevice, provision
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ada(transactional_db) -> User:
    return User.objects.create_user(email="ada@example.com", password=PASSWORD)


def sign_in(page, email: str = "ada@example.com") -> None:
    page.goto("/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))


def test_create_a_product_then_open_its_events_from_the_sidebar(page, ada):
    sign_in(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Products").click()
    page.wait_for_url(re.compile("/products/$"))
    expect(page.get_by_role("heading", name="No products yet")).to_be_visible()

    page.get_by_role("button", name="New product").first.click()
    dialog = page.get_by_role("dialog", name="New product")
    expect(dialog.get_by_label("Name")).to_be_focused()
    dialog.get_by_label("Platform").select_option(label="Boron")
    dialog.get_by_role("button", name="Create product").click()
    expect(dialog.get_by_text("A product needs a name.")).to_be_visible()
    expect(dialog.get_by_label("Name")).to_be_focused()
    expect(dialog.get_by_label("Platform")).to_have_value("13")  # what was chosen stays

    dialog.get_by_label("Name").fill("Greenhouse sensors")
    dialog.get_by_label("Description").fill("Soil moisture in the north greenhouses")
    dialog.get_by_role("button", name="Create product").click()

    page.wait_for_url(re.compile("/products/greenhouse-sensors/$"))
    product = Product.objects.get()
    assert (product.name, product.platform_id, product.owner) == ("Greenhouse sensors", 13, ada)
    expect(page.get_by_text(f"Created Greenhouse sensors. Its product ID is {product.id}.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Greenhouse sensors")
    expect(page.locator("#product-id-value")).to_have_text(str(product.id))
    expect(page.get_by_text("Soil moisture in the north greenhouses")).to_be_visible()
    team = page.get_by_role("region", name="Team")
    expect(team).to_contain_text("ada@example.com")
    expect(team).to_contain_text("Owner")

    context = page.get_by_role("navigation", name="Product: Greenhouse sensors")
    expect(context).to_contain_text(str(product.id))
    expect(context.get_by_role("link", name="Overview")).to_have_attribute("aria-current", "page")
    context.get_by_role("link", name="Events").click()

    page.wait_for_url(re.compile("/products/greenhouse-sensors/events/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Events")
    expect(context.get_by_role("link", name="Events")).to_have_attribute("aria-current", "page")
    page.locator(f'[data-event-log][data-product-id="{product.id}"][data-ready]').wait_for()
    expect(page.get_by_text("No events from this product yet")).to_be_visible()

    context.get_by_role("link", name="All products").click()
    page.wait_for_url(re.compile("/products/$"))
    expect(page.locator(f'tr[data-product-id="{product.id}"]')).to_contain_text("Owner")


def test_a_products_events_are_only_its_devices(page, live_asgi_server, ada):
    product = product_create(user=ada, name="Greenhouse sensors", platform_id=13)
    in_product = devices_provision(platform=PLATFORMS[13], count=1, product=product)[0]
    own = provision(ada)[0]
    sensor = FakeDevice(live_asgi_server.url, in_product).connect()
    other = FakeDevice(live_asgi_server.url, own).connect()
    try:
        sensor.publish("greenhouse/temp", "22.4")
        other.publish("garage/door", "open")
        sign_in(page)
        page.goto(f"/products/{product.slug}/")
        log = page.locator(f'[data-event-log][data-product-id="{product.id}"]')
        log.and_(page.locator("[data-ready]")).wait_for()
        expect(log.get_by_role("heading", name="Recent events")).to_be_visible()
        options = log.get_by_role("option")
        expect(options).to_have_text([re.compile("greenhouse/temp"), re.compile("spark/status.*online")])
        expect(page.locator("#event-export-button")).to_have_count(0)

        other.publish("garage/door", "closed")
        sensor.publish("greenhouse/humidity", "48")
        expect(options.first).to_contain_text("greenhouse/humidity")
        expect(options).to_have_count(3)
        expect(log.get_by_role("listbox")).not_to_contain_text("garage/door")
    finally:
        sensor.close()
        other.close()
