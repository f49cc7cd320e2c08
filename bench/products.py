"""Importing 100,000 devices into a product, and listing a product that large.

Run from the repository root, against a PostgreSQL database of its own:

    createdb -h 127.0.0.1 -U postgres quanta_bench_products
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/quanta_bench_products .venv/bin/python bench/products.py

Django runs in this process: the database is migrated, then a bench user, a Boron product with two
groups and ``--devices`` provisioned devices (bulk-inserted with a dummy public key, not through
``devices_provision``, whose key generation is slow) are created. Earlier runs' bench data (the bench
user's products, devices whose serial number starts with ``BENCHP``) is removed first, so it re-runs.

It times importing every id from a text file (``devices.imports``), then importing the same file
again (all already in the product), and the first page of the product's devices through Django's
test client: the API (plain, by group, by firmware version, by name) and the console page (plain,
by group), each ``--requests`` times after ``--warmup`` requests, with p50/p95/p99 latency and the
queries per request. The figures are printed, nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import string
import sys
import time
from dataclasses import dataclass
from datetime import timedelta

from common import ROOT, backend_description, bounded, cpu_model, version

sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

# As served: no debug pages or query log (the static files storage was chosen at import, unchanged).
settings.DEBUG = False

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from console.accounts.models import User  # noqa: E402
from console.accounts.services import access_token_create  # noqa: E402
from devices.imports import device_ids_from_file, devices_import  # noqa: E402
from devices.models import Device  # noqa: E402
from products.groups import group_create  # noqa: E402
from products.models import Product  # noqa: E402
from products.services import product_create  # noqa: E402

BORON = 13
BENCH_EMAIL = "bench-products@example.com"
SERIAL_PREFIX = "BENCHP"
GROUP_SHARE = 0.10
ONLINE_SHARE = 0.30
P95_TARGET_MS = 150.0
IMPORT_TARGET_S = 10.0
INSERT_BATCH = 5000


@dataclass
class Timing:
    name: str
    path: str
    latencies: list[float]  # seconds
    queries: list[int]
    status: int
    rows: str

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))
        return ordered[index] * 1000


def elapsed(started: float) -> str:
    return f"{time.perf_counter() - started:.2f} s"


def cleanup() -> None:
    started = time.perf_counter()
    with transaction.atomic():
        devices = Device.objects.filter(serial_number__startswith=SERIAL_PREFIX)
        Device.groups.through.objects.filter(device__in=devices).delete()
        removed, _ = devices.delete()
        Product.objects.filter(owner__email=BENCH_EMAIL).delete()
        User.objects.filter(email=BENCH_EMAIL).delete()
    print(f"  cleanup of earlier runs: {removed:,} rows removed in {elapsed(started)}")


def random_name(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=8)) + "_" + secrets.token_hex(2)


def devices_create(count: int, rng: random.Random) -> list[str]:
    started = time.perf_counter()
    now = timezone.now()
    key = bytes(32)
    ids: set[str] = set()
    while len(ids) < count:
        ids.add(secrets.token_hex(12))
    ordered = list(ids)
    batch: list[Device] = []
    with transaction.atomic():
        for index, device_id in enumerate(ordered):
            batch.append(
                Device(
                    id=device_id,
                    name=random_name(rng),
                    platform_id=BORON,
                    public_key=key,
                    serial_number=f"{SERIAL_PREFIX}{index:010d}",
                    firmware_product_id=None,
                    firmware_version=1 + index % 5,
                    online=rng.random() < ONLINE_SHARE,
                    last_heard=now - timedelta(seconds=rng.randrange(86_400)),
                )
            )
            if len(batch) == INSERT_BATCH:
                Device.objects.bulk_create(batch)
                batch = []
        if batch:
            Device.objects.bulk_create(batch)
    print(f"  {count:,} Boron devices bulk-inserted in {elapsed(started)}")
    return ordered


def groups_fill(groups, ids: list[str], rng: random.Random) -> None:
    started = time.perf_counter()
    through = Device.groups.through
    share = int(len(ids) * GROUP_SHARE)
    with transaction.atomic():
        for group in groups:
            members = rng.sample(ids, share)
            through.objects.bulk_create(
                [through(device_id=device_id, devicegroup_id=group.id) for device_id in members],
                batch_size=INSERT_BATCH,
            )
    print(f"  {share:,} devices put in each of {len(groups)} groups in {elapsed(started)}")


def timed_import(user, product, raw: bytes, label: str) -> None:
    started = time.perf_counter()
    parsed = device_ids_from_file(raw)
    parsed_at = time.perf_counter()
    with CaptureQueriesContext(connection) as captured:
        result = devices_import(actor=user, product=product, parsed=parsed, via="bench")
    total = time.perf_counter() - started
    target = "within" if total <= IMPORT_TARGET_S else "OVER"
    print(
        f"  {label:<26} {total:6.2f} s (parse {parsed_at - started:.2f} s), {len(captured):,} queries; "
        f"updated {len(result.updated):,}, existing {len(result.existing):,}, "
        f"invalid {len(result.invalid):,}, nonmember {len(result.nonmember):,} "
        f"[{target} the {IMPORT_TARGET_S:.0f} s target]"
    )


def measure(client: Client, name: str, path: str, warmup: int, requests: int, **headers) -> Timing:
    for _ in range(warmup):
        response = client.get(path, **headers)
        if response.status_code != 200:
            sys.exit(f"{name}: {path} answered {response.status_code}:\n{response.content[:2000]!r}")
    latencies, queries = [], []
    for _ in range(requests):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(path, **headers)
            latencies.append(time.perf_counter() - started)
        queries.append(len(captured))
    rows = f"{len(response.content) // 1024} KiB of HTML"
    if response.get("Content-Type", "").startswith("application/json"):
        body = response.json()
        rows = f"{len(body['devices'])} of {body['meta']['total']:,}"
    return Timing(name, path, latencies, queries, response.status_code, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=bounded(int, 100, 100_000), default=100_000)
    parser.add_argument("--requests", type=bounded(int, 1, 10_000), default=50)
    parser.add_argument("--warmup", type=bounded(int, 0, 1000), default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    print("Quanta product benchmark: import and list")
    print(f"  backend: {backend_description()}")
    print(
        f"  Django {version('django')}, Python {sys.version.split()[0]}, {cpu_model()}, {os.cpu_count()} CPUs"
    )
    print(
        f"  DEBUG={settings.DEBUG} (set after setup: the test client runs the full middleware stack in this process)"
    )

    print("\nSetup")
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"  migrate: {elapsed(started)}")
    cleanup()
    user = User.objects.create_user(email=BENCH_EMAIL, password=secrets.token_urlsafe(16))
    product = product_create(
        user=user, name=f"Bench fleet {secrets.token_hex(3)}", platform_id=BORON, via="bench"
    )
    groups = [
        group_create(actor=user, product=product, name=name, via="bench") for name in ("north", "south")
    ]
    print(f"  product {product.id} ({product.slug}), groups {', '.join(g.name for g in groups)}")
    ids = devices_create(args.devices, rng)
    raw = "".join(f"{device_id}\n" for device_id in ids).encode()
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Device._meta.db_table}")

    print(f"\nImport ({len(raw):,} byte text file, {len(ids):,} ids)")
    timed_import(user, product, raw, "first import (all new)")
    timed_import(user, product, raw, "re-import (all existing)")
    groups_fill(groups, ids, rng)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Device._meta.db_table}")
        cursor.execute(f"ANALYZE {Device.groups.through._meta.db_table}")

    token = access_token_create(user=user, expires_in_seconds=3600).token
    if "localhost" not in settings.ALLOWED_HOSTS and "*" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]
    api = Client(SERVER_NAME="localhost")
    console = Client(SERVER_NAME="localhost")
    console.force_login(user)
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    api_path = f"/v1/products/{product.id}/devices"
    page_path = f"/products/{product.slug}/devices/"
    scenarios = [
        (api, "API first page", api_path, bearer),
        (api, "API ?groups=", f"{api_path}?groups={groups[0].name}", bearer),
        (api, "API ?sortAttr=firmwareVersion", f"{api_path}?sortAttr=firmwareVersion", bearer),
        (api, "API ?deviceName=ab", f"{api_path}?deviceName=ab", bearer),
        (console, "console page", page_path, {}),
        (console, "console page ?group=", f"{page_path}?group={groups[1].name}", {}),
    ]
    print(f"\nList ({args.warmup} warm-up then {args.requests} measured requests each, Django test client)")
    results = [
        measure(client, name, path, args.warmup, args.requests, **h) for client, name, path, h in scenarios
    ]
    header = (
        f"  {'scenario':<31} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'queries':>8} {'status':>6}  rows"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for result in results:
        p95 = result.percentile(0.95)
        queries = (
            str(result.queries[0])
            if min(result.queries) == max(result.queries)
            else f"{min(result.queries)}-{max(result.queries)}"
        )
        flag = "" if p95 <= P95_TARGET_MS else f"  p95 OVER the {P95_TARGET_MS:.0f} ms target"
        print(
            f"  {result.name:<31} {result.percentile(0.50):7.1f} {p95:7.1f} {result.percentile(0.99):7.1f} "
            f"{queries:>8} {result.status:>6}  {result.rows}{flag}"
        )
    print("\n  paths:")
    for result in results:
        print(f"    {result.name:<31} GET {result.path}")


if __name__ == "__main__":
    main()
