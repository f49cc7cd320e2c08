"""The product overview's charts in a real browser: both draw under the strict CSP (the page fixture
fails on any console error), at a desktop's and a phone's width."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from console.accounts.models import User
from console.platforms import PLATFORMS
from devices.models import Device, DeviceOnlineSample
from devices.services import devices_provision, online_sample_period_start
from products.services import product_create
from tests.browser.test_products_browser import sign_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_overview_draws_devices_online_and_firmware_versions(page, transactional_db):
    user = User.objects.create_user(email="ada@example.com", password=PASSWORD)
    product = product_create(user=user, name="Greenhouse sensors", platform_id=13)
    ids = [item.device.pk for item in devices_provision(platform=PLATFORMS[13], count=4, product=product)]
    Device.objects.filter(pk__in=ids[:3]).update(firmware_version=2, online=True)
    start = online_sample_period_start(timezone.now())
    DeviceOnlineSample.objects.bulk_create(
        DeviceOnlineSample(product=product, taken_at=start - timedelta(minutes=5 * step), online=2, total=4)
        for step in range(1, 49)
    )

    sign_in(page)
    page.goto(f"/products/{product.slug}/")

    chart = page.get_by_role("img", name="Devices online over the last 24 hours")
    expect(chart).to_be_visible()
    line = page.locator(".time-chart-line")
    assert line.bounding_box()["width"] > 50  # four of the 24 hours, from the chart's right end
    expect(page.locator(".time-chart-now")).to_have_count(1)
    firmware = page.get_by_role("table", name="Devices by firmware version")
    expect(firmware.get_by_role("row")).to_have_count(3)  # the (visually hidden) header, two versions
    expect(firmware.get_by_role("rowheader")).to_have_text(["v2", "Unknown"])

    page.set_viewport_size({"width": 390, "height": 844})
    plot = page.locator(".time-chart-plot").bounding_box()
    assert 200 < plot["width"] < 390  # the chart follows the phone's width
    label = page.locator(".time-chart-x text").first.bounding_box()
    assert 8 < label["height"] < 20  # its text keeps its size
