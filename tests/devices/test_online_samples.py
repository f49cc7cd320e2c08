"""Sampling how many of each product's devices are online, for the product overview's chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings as django_settings
from django.db import IntegrityError, transaction

from console.management.commands.seed_demo import demo_online_history_seed
from console.platforms import PLATFORMS
from console.scheduler import InProcessScheduler
from devices.models import Device, DeviceOnlineSample
from devices.services import devices_provision, online_sample_period_start, online_samples_take
from devices.tasks import sample_online_devices
from products.models import Product
from products.services import product_create

pytestmark = pytest.mark.django_db

BORON = 13
NOW = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)


def make_product(owner, name: str) -> Product:
    return product_create(user=owner, name=name, platform_id=BORON)


def add_devices(product: Product | None, count: int, *, online: int = 0, owner=None) -> list[Device]:
    devices = [
        item.device
        for item in devices_provision(platform=PLATFORMS[BORON], count=count, product=product, owner=owner)
    ]
    Device.objects.filter(pk__in=[device.pk for device in devices[:online]]).update(online=True)
    return devices


def samples() -> dict[tuple[int, datetime], tuple[int, int]]:
    return {
        (sample.product_id, sample.taken_at): (sample.online, sample.total)
        for sample in DeviceOnlineSample.objects.all()
    }


def test_one_sample_per_product_counts_its_online_and_offline_devices(user):
    greenhouse, silos, empty = (make_product(user, name) for name in ("Greenhouse", "Silos", "Empty"))
    add_devices(greenhouse, 5, online=2)
    add_devices(silos, 3, online=3)
    add_devices(None, 4, online=4, owner=user)  # personal devices belong to no product's chart

    assert online_samples_take(now=NOW) == 3

    period = datetime(2026, 3, 14, 15, 5, tzinfo=UTC)  # the start of NOW's 5-minute period
    assert samples() == {
        (greenhouse.id, period): (2, 5),
        (silos.id, period): (3, 3),
        # A product without devices is sampled too: a gap in its chart only ever means downtime.
        (empty.id, period): (0, 0),
    }


def test_the_work_is_one_aggregate_and_one_insert_whatever_the_fleet(user, django_assert_num_queries):
    for index in range(3):
        add_devices(make_product(user, f"Fleet {index}"), 20, online=index * 5)
    # The grouped count, the bulk insert, the prune.
    with django_assert_num_queries(3):
        online_samples_take(now=NOW)
    assert sorted(samples().values()) == [(0, 20), (5, 20), (10, 20)]


def test_a_second_run_in_the_same_period_changes_nothing(user):
    product = make_product(user, "Greenhouse")
    devices = add_devices(product, 4, online=1)
    online_samples_take(now=NOW)
    Device.objects.filter(pk=devices[1].pk).update(online=True)

    online_samples_take(now=NOW + timedelta(seconds=30))  # a double run: ignored, not an error

    assert list(samples().values()) == [(1, 4)]
    online_samples_take(now=NOW + timedelta(minutes=5))  # the next period gets its own sample
    assert sorted(samples().values()) == [(1, 4), (2, 4)]


def test_the_period_follows_the_setting(user, settings):
    settings.QUANTA_ONLINE_SAMPLE_SECONDS = 900
    assert online_sample_period_start(NOW) == datetime(2026, 3, 14, 15, 0, tzinfo=UTC)
    make_product(user, "Greenhouse")
    online_samples_take(now=NOW)
    assert DeviceOnlineSample.objects.get().taken_at == datetime(2026, 3, 14, 15, 0, tzinfo=UTC)


def test_samples_past_retention_are_pruned(user, settings):
    settings.QUANTA_ONLINE_SAMPLE_RETENTION_DAYS = 7
    product = make_product(user, "Greenhouse")
    for age in (timedelta(days=8), timedelta(days=7, minutes=5), timedelta(days=6, hours=23)):
        DeviceOnlineSample.objects.create(product=product, taken_at=NOW - age, online=0, total=0)

    online_samples_take(now=NOW)

    assert sorted(DeviceOnlineSample.objects.values_list("taken_at", flat=True)) == [
        NOW - timedelta(days=6, hours=23),
        online_sample_period_start(NOW),
    ]


def test_the_database_refuses_more_online_than_devices(user):
    product = make_product(user, "Greenhouse")
    with pytest.raises(IntegrityError), transaction.atomic():
        DeviceOnlineSample.objects.create(product=product, taken_at=NOW, online=3, total=2)


def test_the_task_samples_and_the_schedule_runs_it(user):
    product = make_product(user, "Greenhouse")
    add_devices(product, 2, online=1)
    assert sample_online_devices.apply().get() == 1

    entry = django_settings.CELERY_BEAT_SCHEDULE["sample-online-devices"]
    assert entry["task"] == "devices.tasks.sample_online_devices"
    assert entry["schedule"] == timedelta(seconds=django_settings.QUANTA_ONLINE_SAMPLE_SECONDS)
    DeviceOnlineSample.objects.all().delete()
    # The embedded default's in-process scheduler runs the same schedule: due once a period passed.
    scheduler = InProcessScheduler(
        django_settings.CELERY_BEAT_SCHEDULE, now=datetime.now(UTC) - timedelta(minutes=6)
    )
    scheduler.entries = {"sample-online-devices": scheduler.entries["sample-online-devices"]}
    scheduler.run_pending()
    assert list(samples().values()) == [(1, 2)]


# --- The demo product's made-up history (manage.py seed_demo) --------------------------------------------
def test_the_demo_history_covers_a_day_from_the_real_device_count(user):
    product = make_product(user, "Farm sensors")
    add_devices(product, 10, online=10)

    added = demo_online_history_seed(product, now=NOW)

    rows = list(DeviceOnlineSample.objects.order_by("taken_at"))
    assert added == len(rows) == 24 * 12
    assert {row.total for row in rows} == {10}
    assert all(0 <= row.online <= 10 for row in rows)
    assert len({row.online for row in rows}) > 1  # it looks like a fleet, not a flat line
    # It ends where the sampler takes over: the current period is left to the real sample.
    assert rows[-1].taken_at == online_sample_period_start(NOW) - timedelta(minutes=5)
    assert rows[0].taken_at == rows[-1].taken_at - timedelta(hours=24) + timedelta(minutes=5)


def test_the_demo_history_never_overwrites_or_repeats(user):
    product = make_product(user, "Farm sensors")
    add_devices(product, 10, online=10)
    real = online_sample_period_start(NOW) - timedelta(hours=2)
    DeviceOnlineSample.objects.create(product=product, taken_at=real, online=7, total=10)

    added = demo_online_history_seed(product, now=NOW)

    # Only the periods before the first real sample; the real one stays as it was.
    assert added == 22 * 12
    assert DeviceOnlineSample.objects.get(taken_at=real).online == 7
    assert demo_online_history_seed(product, now=NOW) == 0
    assert demo_online_history_seed(product, now=NOW + timedelta(days=1)) == 0  # a real gap stays a gap
