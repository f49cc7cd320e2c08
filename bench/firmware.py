"""Firmware at fleet scale: release previews, release targeting and the handshake-time update
decision on a 100,000-device product, and concurrent firmware transfers through one server process.

Run from the repository root, against a PostgreSQL database of its own:

    createdb -h 127.0.0.1 -U postgres quanta_bench_firmware
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/quanta_bench_firmware .venv/bin/python bench/firmware.py

Django runs in this process (``DEBUG`` off, Celery tasks run eagerly in-process). Earlier runs'
bench data (the bench user's products, devices whose serial number starts with ``BENCHF``) is
removed first, so it re-runs. Setup: a Boron product with versions 1 to 5 uploaded through
``firmware_upload`` (modules built by ``firmware.encoder.build_module``), ``--devices`` devices
bulk-inserted into it (running versions 1 to 4, a few reporting none; 5% development devices, 2%
locked to a version, ten canaries locked to and running version 5), four groups (north 10%, no
release; fields 10%, version 2; beta 5% and lab 2%, version 4) and version 3 the product default,
all released through ``firmware_release``.

Scenarios (``--scenario``, comma-separated; all by default):

- impact: ``release_plan`` + ``release_impact`` (what the release dialog's live preview runs) for
  version 5 (a) as the new product default and (b) released to the north group; p50/p95 over
  ``--runs`` runs and the queries per preview, as the database is configured and again with
  ``SET LOCAL jit = off``; then PostgreSQL's EXPLAIN ANALYZE of the counting query once, with its
  JIT compilation time and, without JIT, the plan nodes that took the most time.
- targeting: ``firmware_release`` of version 5 as the product default (and back to version 3),
  timed; then, with every device online, ``updates_start_for_product`` (what an intelligent
  release runs): the decision plus one ``FirmwareUpdate`` row per device due. The devices' gateway
  channel is empty, so no offer is sent (``_offer`` is skipped for an empty channel); what one
  offer through the channel layer costs is timed on its own afterwards.
- handshakes: ``firmware.ota.handshakes_observed`` (the gateway's handshake hook, with the
  ``start_updates`` task it queues run eagerly) driven on an open-loop schedule of
  ``--handshake-rate`` handshakes per second for ``--handshake-seconds``, batched as the gateway
  batches them (the batch closes ``QUANTA_HANDSHAKE_BATCH_SECONDS`` after its first handshake, or
  when the previous batch is done if that is later). Each handshake's time runs from its scheduled
  arrival to the end of the batch that decided it. Devices have a gateway channel of their own
  (in the in-memory channel layer), so every offer is sent. Run twice: in a steady state (every
  device runs its target) and just after version 5 became the product default (most devices due).
  When a run falls behind, it is repeated at 80% of the measured capacity. In production the
  gateway's thread runs the hook's own queries and an ``ota`` worker runs ``start_updates``; here
  one thread does both, as the embedded default does. With ``--worker`` (``REDIS_URL`` set, a Redis
  database of its own) both runs are repeated through Redis and a Celery worker process this script
  starts and stops (``-Q ota --concurrency 2``, as the Procfile runs it); a handshake is then
  decided when the worker finished its batch's task (the result's ``date_done``).
- transfers: a uvicorn server process on the same database, with the embedded channel layer and
  tasks run in-process, and ``--transfers`` simulated devices (``devices.simulator``, in this
  process) of a second product, each locked to a ``--image-kib`` version before it connects, so
  the server's handshake hook offers the update at once (what Flash now does for an online device).
  One device takes the update first (imports, caches, the binary read from the database); then all
  connect at once. Figures: MB/s delivered (10^6 bytes), time from the first connect to the last
  transfer, p50/p99 per-device transfer time (``ota_begin`` to ``ota_done``), CPU and RSS.
  ``--chunk-bytes`` and ``--window-chunks`` set the server's ``QUANTA_OTA_CHUNK_BYTES`` and
  ``QUANTA_OTA_WINDOW_CHUNKS``; other ``QUANTA_OTA_*`` variables in the environment reach the
  server as they are.

Other options: ``--devices`` (100,000), ``--quick`` (10,000 devices, 5 runs, 5 s steps, 10 and 100
transfers), ``--runs``, ``--handshake-rate`` (1,000), ``--handshake-seconds`` (10),
``--worker``, ``--worker-concurrency`` (2), ``--transfers`` (10,100,500), ``--image-kib`` (256),
``--transfer-seconds`` (60, the deadline per count), ``--jit-off`` (``SET jit = off`` on this
process's connection), ``--seed``.

Targets it flags: preview <= 1 s, release targeting <= 10 s, decision p99 <= 20 ms at 1,000
handshakes/s. The figures are printed, nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import logging
import os
import random
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    PYTHON,
    ROOT,
    UVICORN_WEBSOCKET_ARGS,
    bounded,
    cpu_model,
    database_cpu_seconds,
    free_port,
    machine_cpu_seconds,
    percent,
    process_cpu_seconds,
    redacted,
    rss_kib,
    server_command,
    server_env,
    start_process,
    stop_process,
    version,
)
from websockets.asyncio.client import ClientConnection

sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # Celery logs every eager task at INFO

import django  # noqa: E402

django.setup()
# Eager tasks make kombu warn once that the in-memory broker URL names no host.
logging.getLogger("kombu.connection").setLevel(logging.ERROR)

from django.conf import settings  # noqa: E402

settings.DEBUG = False  # as served: no query log

from asgiref.sync import async_to_sync  # noqa: E402
from celery.result import AsyncResult  # noqa: E402
from celery.signals import after_task_publish  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Count, F, QuerySet, Value  # noqa: E402
from django.db.models.functions import Concat  # noqa: E402
from django.utils import timezone  # noqa: E402

from console.accounts.models import User  # noqa: E402
from console.celery import app as celery_app  # noqa: E402
from devices.keys import key_pair_generate  # noqa: E402
from devices.models import Device, GatewayProcess  # noqa: E402
from devices.ota import HandshakeSeen, OtaOffer  # noqa: E402
from devices.simulator import DeviceKey, FleetStats, OtaTransfer, SimulatedDevice  # noqa: E402
from firmware import ota  # noqa: E402
from firmware.binary import ModuleFunction  # noqa: E402
from firmware.encoder import build_module  # noqa: E402
from firmware.models import FirmwareUpdate, ProductFirmware  # noqa: E402
from firmware.releases import Impact, ReleasePlan, firmware_release, release_impact, release_plan  # noqa: E402
from firmware.services import firmware_upload  # noqa: E402
from firmware.targeting import devices_due_an_update, devices_with_targets, impacted_devices  # noqa: E402
from products.groups import group_create  # noqa: E402
from products.models import DeviceGroup, Product  # noqa: E402
from products.services import product_create  # noqa: E402

BORON = 13
DEVICE_OS = (int(ModuleFunction.SYSTEM_PART), 1, 6101)  # system part 1 of Device OS 6.1.1
BENCH_EMAIL = "bench-firmware@example.com"
SERIAL_PREFIX = "BENCHF"
INSERT_BATCH = 5000
VERSIONS = (1, 2, 3, 4, 5)
DEFAULT_VERSION = 3
NEW_VERSION = 5
RUNNING_WEIGHTS = {1: 10, 2: 25, 3: 60, 4: 4, None: 1}  # what the fleet reports running, in %
DEVELOPMENT_SHARE = 0.05
LOCKED_SHARE = 0.02
CANARIES = 10  # locked to version 5 and running it: version 5 may then be released
ONLINE_SHARE = 0.30
# (name, share of the fleet, version released to it)
GROUPS: tuple[tuple[str, float, int | None], ...] = (
    ("north", 0.10, None),
    ("fields", 0.10, 2),
    ("beta", 0.05, 4),
    ("lab", 0.02, 4),
)
PREVIEW_GROUP = "north"
# + device id: a channel of its own per device, nobody reads it. Not a process-local name (with
# "!"): channels_redis keeps those of one process in one list, capped at the layer's capacity.
DUMMY_CHANNEL = "bench-ota."
OFFER_SAMPLE = 2000

IMPACT_TARGET_S = 1.0
TARGETING_TARGET_S = 10.0
DECISION_P99_TARGET_MS = 20.0
DECISION_TARGET_RATE = 1000.0
BACKLOG_LIMIT_S = 0.25
WORKER_RESULT_TIMEOUT = 300.0
WORKER_LOG = "worker.log"
# What the worker logs at INFO for each task: how long the task's own function took.
TASK_SUCCEEDED = re.compile(r"Task firmware\.tasks\.start_updates\[[0-9a-f-]+\] succeeded in ([0-9.e-]+)s")

OTA_SMALL_KIB = 4  # what the transfer devices run before the update
WARMUP_DEVICES = 1
TRANSFER_REBOOT_SECONDS = (0.2, 0.5)
CONFIRM_SECONDS = 10.0  # after the last transfer: devices restart and their handshake confirms it


# --- Measuring ---------------------------------------------------------------------------------------


class QueryCounter:
    """Counts the queries run on a connection (``connection.execute_wrapper``); unlike
    CaptureQueriesContext it keeps no SQL, so 100,000 inserts cost no memory."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable, sql: str, params: object, many: bool, context: dict) -> object:
        self.count += 1
        return execute(sql, params, many, context)


def counted(function: Callable[[], object]) -> tuple[float, int, object]:
    """Seconds, queries and result of one call."""
    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        result = function()
        seconds = time.perf_counter() - started
    return seconds, counter.count, result


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def versus(value: float, target: float, unit: str) -> str:
    """``value`` against a ceiling target: how far under or over."""
    if value <= 0:
        return f"(within the {target:g} {unit} target)"
    ratio = target / value if value <= target else value / target
    shown = f"{ratio:.2f}" if ratio < 2 else f"{ratio:.1f}"
    if value <= target:
        return f"({shown}x under the {target:g} {unit} target)"
    return f"({shown}x OVER the {target:g} {unit} target)"


def elapsed(started: float) -> str:
    return f"{time.perf_counter() - started:.2f} s"


def queries_text(values: list[int]) -> str:
    return str(values[0]) if min(values) == max(values) else f"{min(values)}-{max(values)}"


def analyze(*models) -> None:
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"ANALYZE {model._meta.db_table}")


# --- Setup -------------------------------------------------------------------------------------------


@dataclass
class Fleet:
    user: User
    product: Product
    firmware: dict[int, ProductFirmware]
    groups: dict[str, DeviceGroup]
    ids: list[str]


def cleanup() -> None:
    started = time.perf_counter()
    devices = Device.objects.filter(serial_number__startswith=SERIAL_PREFIX)
    with transaction.atomic():
        updates, _ = FirmwareUpdate.objects.filter(product__owner__email=BENCH_EMAIL).delete()
        Device.groups.through.objects.filter(device__in=devices).delete()
        removed, _ = devices.delete()
        Product.objects.filter(owner__email=BENCH_EMAIL).delete()
        User.objects.filter(email=BENCH_EMAIL).delete()
    print(f"  cleanup of earlier runs: {removed + updates:,} rows removed in {elapsed(started)}")


def image(product: Product, version_number: int, size: int) -> bytes:
    """A valid user part of exactly ``size`` bytes carrying ``version_number``."""

    def build(payload_size: int) -> bytes:
        return build_module(
            platform_id=BORON,
            product_id=product.id,
            product_version=version_number,
            dependencies=[DEVICE_OS],
            payload_size=payload_size,
        )

    overhead = len(build(0))
    return build(max(0, size - overhead))


def upload(user: User, product: Product, version_number: int, size: int) -> ProductFirmware:
    return firmware_upload(
        actor=user,
        product=product,
        data=image(product, version_number, size),
        version=version_number,
        title=f"bench v{version_number}",
        via="bench",
    )


def random_name(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=8)) + "_" + secrets.token_hex(2)


def bulk_insert(devices: Iterable[Device]) -> None:
    batch: list[Device] = []
    for device in devices:
        batch.append(device)
        if len(batch) == INSERT_BATCH:
            Device.objects.bulk_create(batch)
            batch = []
    if batch:
        Device.objects.bulk_create(batch)


def fleet_devices(product: Product, count: int, rng: random.Random, serial_offset: int) -> list[Device]:
    now = timezone.now()
    key = bytes(32)  # never connects: no key needed
    running_versions, weights = list(RUNNING_WEIGHTS), list(RUNNING_WEIGHTS.values())
    devices = []
    for index in range(count):
        draw = rng.random()
        development = index >= CANARIES and draw < DEVELOPMENT_SHARE
        locked = None
        if index < CANARIES:
            locked = NEW_VERSION
        elif not development and draw < DEVELOPMENT_SHARE + LOCKED_SHARE:
            locked = rng.choice(VERSIONS[:-1])
        running = NEW_VERSION if index < CANARIES else rng.choices(running_versions, weights)[0]
        devices.append(
            Device(
                id=secrets.token_hex(12),
                name=random_name(rng),
                platform_id=BORON,
                public_key=key,
                serial_number=f"{SERIAL_PREFIX}{serial_offset + index:010d}",
                product=product,
                development=development,
                desired_firmware_version=locked,
                firmware_product_id=product.id,
                firmware_version=running,
                online=rng.random() < ONLINE_SHARE,
                last_heard=now,
            )
        )
    return devices


def fleet_create(count: int, image_size: int, rng: random.Random) -> Fleet:
    user = User.objects.create_user(email=BENCH_EMAIL, password=secrets.token_urlsafe(16))
    product = product_create(
        user=user, name=f"Bench firmware {secrets.token_hex(3)}", platform_id=BORON, via="bench"
    )
    started = time.perf_counter()
    firmware = {number: upload(user, product, number, image_size) for number in VERSIONS}
    print(
        f"  product {product.id}: versions {', '.join(map(str, VERSIONS))} uploaded "
        f"({image_size // 1024} KiB each) in {elapsed(started)}"
    )
    started = time.perf_counter()
    with transaction.atomic():
        devices = fleet_devices(product, count, rng, serial_offset=0)
        bulk_insert(devices)
    ids = [device.id for device in devices]
    print(f"  {count:,} Boron devices bulk-inserted in {elapsed(started)}")
    started = time.perf_counter()
    through = Device.groups.through
    groups: dict[str, DeviceGroup] = {}
    with transaction.atomic():
        for name, share, _ in GROUPS:
            group = group_create(actor=user, product=product, name=name, via="bench")
            groups[name] = group
            through.objects.bulk_create(
                [
                    through(device_id=device_id, devicegroup_id=group.id)
                    for device_id in rng.sample(ids, int(count * share))
                ],
                batch_size=INSERT_BATCH,
            )
    sizes = ", ".join(f"{name} {int(count * share):,}" for name, share, _ in GROUPS)
    print(f"  groups ({sizes}) filled in {elapsed(started)}")
    analyze(Device, through)
    started = time.perf_counter()
    firmware_release(
        actor=user,
        product=product,
        firmware=firmware[DEFAULT_VERSION],
        product_default=True,
        group_names=None,
        via="bench",
    )
    released: dict[int, list[str]] = {}
    for name, _, released_version in GROUPS:
        if released_version is not None:
            released.setdefault(released_version, []).append(name)
    for released_version, names in released.items():
        firmware_release(
            actor=user,
            product=product,
            firmware=firmware[released_version],
            product_default=None,
            group_names=names,
            via="bench",
        )
    shown = "; ".join(f"v{v} to {', '.join(names)}" for v, names in released.items())
    print(f"  released: v{DEFAULT_VERSION} as the product default; {shown} ({elapsed(started)})")
    composition = Counter(
        "development" if d.development else "locked" if d.desired_firmware_version else "released"
        for d in devices
    )
    running = Counter(d.firmware_version for d in devices)
    print(
        f"  fleet: {composition['development']:,} development, {composition['locked']:,} locked "
        f"({CANARIES} of them canaries on v{NEW_VERSION}); running "
        + ", ".join(f"v{v} {running[v]:,}" for v in (*VERSIONS, None) if v and running[v])
        + f", none reported {running[None]:,}"
    )
    return Fleet(user=user, product=product, firmware=firmware, groups=groups, ids=ids)


def updates_clear(product: Product) -> int:
    removed, _ = FirmwareUpdate.objects.filter(product=product).delete()
    return removed


def set_default(fleet: Fleet, version_number: int) -> None:
    firmware_release(
        actor=fleet.user,
        product=fleet.product,
        firmware=fleet.firmware[version_number],
        product_default=True,
        group_names=None,
        via="bench",
    )


# --- 1. Impact preview ---------------------------------------------------------------------------------


def plan_nodes(node: dict, out: list[tuple[float, dict]]) -> None:
    """Each plan node with its own time (its total over all loops minus its children's)."""
    children = node.get("Plans", [])
    own = node["Actual Total Time"] * node["Actual Loops"] - sum(
        child["Actual Total Time"] * child["Actual Loops"] for child in children
    )
    out.append((max(0.0, own), node))
    for child in children:
        plan_nodes(child, out)


def node_label(node: dict) -> str:
    parts = [node["Node Type"]]
    if "Relation Name" in node:
        parts.append(f"on {node['Relation Name']}")
    if "Index Name" in node:
        parts.append(f"using {node['Index Name']}")
    if node.get("Subplan Name"):
        parts.append(f"[{node['Subplan Name']}]")
    return " ".join(parts)


def explain_plan(sql: str, params: Sequence[object], *, jit: bool) -> dict:
    with transaction.atomic(), connection.cursor() as cursor:
        if not jit:
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        raw = cursor.fetchone()[0]
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]


def explain(queryset: QuerySet) -> None:
    """EXPLAIN ANALYZE as the database is configured, then without JIT compilation, whose time
    PostgreSQL charges to the first plan node that evaluates an expression."""
    sql, params = queryset.query.sql_with_params()
    top = explain_plan(sql, params, jit=True)
    plan = top["Plan"]
    subplans = sum(1 for node in iter_nodes(plan) if node.get("Parent Relationship") == "SubPlan")
    jit_ms = top.get("JIT", {}).get("Timing", {}).get("Total", 0.0)
    print(
        f"  EXPLAIN ANALYZE of the counting query (new product default): execution {top['Execution Time']:.0f} ms "
        f"(of which JIT compilation {jit_ms:.0f} ms), planning {top['Planning Time']:.1f} ms; "
        f"estimated cost {plan['Total Cost']:,.0f} (jit_above_cost {jit_setting('jit_above_cost')}); "
        f"top node {node_label(plan)}; {subplans} correlated subplans"
    )
    top = explain_plan(sql, params, jit=False)
    nodes: list[tuple[float, dict]] = []
    plan_nodes(top["Plan"], nodes)
    nodes.sort(key=lambda item: item[0], reverse=True)
    print(
        f"  without JIT: execution {top['Execution Time']:.0f} ms; where it goes (own time of each plan node, "
        "all loops; a node's filter evaluates the subplans listed under it):"
    )
    for own, node in nodes[:6]:
        print(f"    {own:8.0f} ms  {node['Actual Loops']:>9,} loops  {node_label(node)}")


def jit_setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


def iter_nodes(node: dict) -> Iterator[dict]:
    yield node
    for child in node.get("Plans", []):
        yield from iter_nodes(child)


def scenario_impact(fleet: Fleet, runs: int) -> None:
    group_size = int(len(fleet.ids) * dict((n, s) for n, s, _ in GROUPS)[PREVIEW_GROUP])
    firmware = fleet.firmware[NEW_VERSION]
    cases = [
        (f"v{NEW_VERSION} as the new product default", {"product_default": True, "group_names": None}),
        (
            f"v{NEW_VERSION} to group {PREVIEW_GROUP} ({group_size:,} devices)",
            {"product_default": None, "group_names": [PREVIEW_GROUP]},
        ),
    ]
    print(
        f"\n1. Impact preview: release_plan + release_impact, 1 warm-up then {runs} runs each "
        f"(PostgreSQL jit = {jit_setting('jit')}; then again with SET LOCAL jit = off)"
    )
    header = f"  {'preview':<48} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'queries':>7} {'devices':>8}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    first_plan = None
    variants = [(label, options, True) for label, options in cases]
    variants += [(f"{label}, jit off", options, False) for label, options in cases]
    for label, options, jit in variants:

        def preview(options: dict = options, jit: bool = jit) -> tuple[ReleasePlan, Impact]:
            with transaction.atomic():
                if not jit:
                    with connection.cursor() as cursor:
                        cursor.execute("SET LOCAL jit = off")
                plan = release_plan(product=fleet.product, firmware=firmware, **options)
                return plan, release_impact(product=fleet.product, plan=plan)

        preview()
        times, queries = [], []
        for _ in range(runs):
            seconds, count, (plan, impact) = counted(preview)
            times.append(seconds)
            queries.append(count - (0 if jit else 1))  # not the SET
        first_plan = first_plan or plan
        p95 = percentile(times, 0.95)
        print(
            f"  {label:<48} {percentile(times, 0.5) * 1000:8.0f} {p95 * 1000:8.0f} {max(times) * 1000:8.0f} "
            f"{queries_text(queries):>7} {impact.total:>8,}  p95 {versus(p95, IMPACT_TARGET_S, 's')}"
        )
        by_version = ", ".join(
            f"v{v}: {n:,}" if v is not None else f"none: {n:,}"
            for v, n in sorted(impact.by_running_version.items(), key=lambda i: (i[0] is None, i[0] or 0))
        )
        if jit:
            print(f"  {'':<48} by running version: {by_version}")
    counting = (
        impacted_devices(product=fleet.product, planned=first_plan.planned)
        .order_by()
        .values("firmware_version")
        .annotate(count=Count("id"))
    )
    explain(counting)


# --- 2. Release targeting ------------------------------------------------------------------------------


def offer_message(update: FirmwareUpdate) -> dict:
    """What ``firmware.ota._offer`` sends."""
    return OtaOffer(
        update_id=update.pk,
        ota_id=update.ota_id,
        version=update.version,
        size=update.size,
        sha256=update.sha256,
    ).as_message()


def scenario_targeting(fleet: Fleet, runs: int) -> None:
    product = fleet.product
    print(
        f"\n2. Release targeting: firmware_release (v{NEW_VERSION} as the default, then back to "
        f"v{DEFAULT_VERSION}), {runs} runs"
    )
    forward, back, forward_queries = [], [], []
    for _ in range(runs):
        seconds, count, _ = counted(lambda: set_default(fleet, NEW_VERSION))
        forward.append(seconds)
        forward_queries.append(count)
        seconds, _, _ = counted(lambda: set_default(fleet, DEFAULT_VERSION))
        back.append(seconds)
    print(
        f"  release v{NEW_VERSION} as the default of {len(fleet.ids):,} devices: p50 {percentile(forward, 0.5) * 1000:.0f} ms, "
        f"max {max(forward) * 1000:.0f} ms, {queries_text(forward_queries)} queries "
        f"{versus(max(forward), TARGETING_TARGET_S, 's')}; back to v{DEFAULT_VERSION}: p50 {percentile(back, 0.5) * 1000:.0f} ms"
    )
    print("  (no per-device rows: devices take their new target at their next handshake)")

    set_default(fleet, NEW_VERSION)
    updates_clear(product)
    started = time.perf_counter()
    marked = Device.objects.filter(product=product).update(online=True, gateway_channel="")
    analyze(Device)
    online = Device.objects.filter(product=product, online=True, quarantined=False)
    due = devices_with_targets(online).filter(target_version__isnull=False)
    due_count = due.exclude(firmware_version=F("target_version")).count()
    print(
        f"  every device marked online, with no gateway channel ({marked:,} rows, {elapsed(started)}); "
        f"{due_count:,} of them are due an update"
    )
    seconds, queries, offers = counted(lambda: ota.updates_start_for_product(product=product))
    rows = FirmwareUpdate.objects.filter(product=product).count()
    batches = (len(fleet.ids) + 999) // 1000
    print(
        f"  updates_start_for_product (an intelligent release): {seconds:.1f} s for {len(fleet.ids):,} online "
        f"devices in {batches} batches of 1,000; {rows:,} FirmwareUpdate rows, {rows / seconds:,.0f} rows/s; "
        f"{queries:,} queries ({queries / max(rows, 1):.2f} per row) {versus(seconds, TARGETING_TARGET_S, 's')}"
    )
    if offers != rows:
        print(f"  note: it reported {offers:,} offers for {rows:,} rows")

    layer = get_channel_layer()
    sample = list(FirmwareUpdate.objects.filter(product=product)[:OFFER_SAMPLE])
    started = time.perf_counter()
    for update in sample:
        ota._offer(update, f"{DUMMY_CHANNEL}{update.device_id}")
    per_offer = (time.perf_counter() - started) / max(len(sample), 1)
    async_to_sync(layer.flush)()
    messages = [(f"{DUMMY_CHANNEL}{update.device_id}", offer_message(update)) for update in sample]

    async def send_all() -> None:
        for channel, message in messages:
            await layer.send(channel, message)

    started = time.perf_counter()
    async_to_sync(send_all)()
    batched = (time.perf_counter() - started) / max(len(sample), 1)
    async_to_sync(layer.flush)()
    print(
        f"  one offer through the channel layer ({type(layer).__name__}, a channel per device): "
        f"{per_offer * 1e6:.0f} µs, measured over {len(sample):,}; for {rows:,} devices that adds "
        f"{per_offer * rows:.1f} s. The same messages sent from one async_to_sync call: {batched * 1e6:.0f} µs each"
    )
    started = time.perf_counter()
    removed = updates_clear(product)
    set_default(fleet, DEFAULT_VERSION)
    print(
        f"  cleanup: {removed:,} FirmwareUpdate rows removed, v{DEFAULT_VERSION} the default again ({elapsed(started)})"
    )


# --- 3. Handshake -> OTA decision ------------------------------------------------------------------------


@dataclass
class HandshakeRun:
    label: str
    rate: float
    handshakes: int = 0
    latencies: list[float] = field(default_factory=list)  # arrival to decision, seconds
    services: list[float] = field(default_factory=list)  # per batch, seconds in handshakes_observed
    sizes: list[int] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    span: float = 0.0  # first arrival to last decision
    final_lag: float = 0.0  # the last handshake's time to its decision
    offers: int = 0
    worker: bool = False  # decided by an ota worker process (services: the hook's own work)
    tasks_done: list[float] = field(default_factory=list)  # wall-clock end of each worker task
    task_seconds: list[float] = field(default_factory=list)  # each task's own time, from the worker's log

    @property
    def busy(self) -> float:
        return sum(self.services)

    @property
    def capacity(self) -> float:
        if self.worker:  # its busy time is in another process: what it got through is the figure
            return self.handshakes / self.span if self.span else float("inf")
        return self.handshakes / self.busy if self.busy else float("inf")

    @property
    def kept_up(self) -> bool:
        # Behind schedule means a backlog that grows until the schedule ends: the last handshake
        # then waits for all of it. A quarter of a second is over ten times the decision target.
        return self.final_lag <= BACKLOG_LIMIT_S


def handshake_loop(
    label: str,
    rate: float,
    seconds: float,
    devices: list[tuple[str, int | None]],
    product_id: int,
    *,
    worker: bool = False,
) -> HandshakeRun:
    """Open loop: handshake ``i`` arrives at ``i / rate``; a batch closes the batch window after its
    first arrival (or when the previous batch is done, if later) and takes every arrival so far.

    With ``worker``, ``start_updates`` goes through Redis to an ``ota`` worker process, and a
    handshake is decided when the worker finished its task (the result's ``date_done``)."""
    window = settings.QUANTA_HANDSHAKE_BATCH_SECONDS
    count = min(len(devices), max(1, int(rate * seconds)))
    run = HandshakeRun(label=label, rate=rate, handshakes=count)
    began = time.perf_counter() + 0.05
    began_wall = time.time() + (began - time.perf_counter())  # the worker's clock is the wall clock
    arrivals = [began + index / rate for index in range(count)]
    counter = QueryCounter()
    published: list[str] = []
    batches: list[tuple[int, int, int]] = []  # first handshake, end, tasks published before it

    def note_task(sender: object = None, headers: dict | None = None, **kwargs: object) -> None:
        if headers and headers.get("task") == "firmware.tasks.start_updates":
            published.append(headers["id"])

    if worker:
        after_task_publish.connect(note_task, weak=False)
    index = 0
    try:
        with connection.execute_wrapper(counter):
            while index < count:
                close_at = arrivals[index] + window
                if (wait := close_at - time.perf_counter()) > 0:
                    time.sleep(wait)
                now = time.perf_counter()
                end = bisect.bisect_right(arrivals, now, lo=index)
                batch = [
                    HandshakeSeen(device_id=device_id, product_id=product_id, firmware_version=running)
                    for device_id, running in devices[index:end]
                ]
                before = counter.count
                batches.append((index, end, len(published)))
                ota.handshakes_observed(batch)
                decided = time.perf_counter()
                run.services.append(decided - now)
                run.sizes.append(end - index)
                run.queries.append(counter.count - before)
                if not worker:
                    run.latencies.extend(decided - arrivals[i] for i in range(index, end))
                index = end
    finally:
        if worker:
            after_task_publish.disconnect(note_task)
    if not worker:
        run.span = decided - began
        run.final_lag = decided - arrivals[-1]
        return run
    done_at: list[float] = []
    for task_id in published:
        result = AsyncResult(task_id, app=celery_app)
        result.get(timeout=WORKER_RESULT_TIMEOUT, propagate=False)
        done_at.append(result.date_done.timestamp() if result.date_done else float("nan"))
    for first, end, task in batches:
        finished = done_at[task] if task < len(done_at) else float("nan")
        run.latencies.extend(finished - (began_wall + i / rate) for i in range(first, end))
    run.span = max(done_at) - began_wall
    run.final_lag = done_at[-1] - (began_wall + (count - 1) / rate)
    run.worker = True
    run.tasks_done = done_at
    return run


def handshake_report(run: HandshakeRun) -> None:
    lat = [value * 1000 for value in run.latencies]
    p99 = percentile(lat, 0.99)
    achieved = run.handshakes / run.span if run.span else 0.0
    print(
        f"  {run.label}: {run.handshakes:,} handshakes at {run.rate:,.0f}/s scheduled, {achieved:,.0f}/s achieved; "
        f"{run.offers:,} offers made"
    )
    print(
        f"    arrival -> decision: p50 {percentile(lat, 0.5):.1f} ms, p95 {percentile(lat, 0.95):.1f} ms, "
        f"p99 {p99:.1f} ms, max {max(lat):.0f} ms  p99 {versus(p99, DECISION_P99_TARGET_MS, 'ms')}"
    )
    services = [value * 1000 for value in run.services]
    where = (
        "in the hook on this thread (the queued task not counted)" if run.worker else "in handshakes_observed"
    )
    print(
        f"    {len(run.sizes):,} batches of {percentile(run.sizes, 0.5):.0f} handshakes (p50; max {max(run.sizes)}), "
        f"each {percentile(services, 0.5):.1f} ms p50 / {percentile(services, 0.99):.1f} ms p99 {where}, "
        f"{queries_text(run.queries)} queries (p50 {percentile(run.queries, 0.5):.0f})"
    )
    verdict = (
        "kept up"
        if run.kept_up
        else f"FELL BEHIND: the backlog grew to {run.final_lag:.1f} s by the end of the schedule"
    )
    if run.worker:
        tasks = len(run.tasks_done)
        first, last = min(run.tasks_done), max(run.tasks_done)
        per_second = (tasks - 1) / (last - first) if last > first else float("nan")
        own = [value * 1000 for value in run.task_seconds]
        print(
            f"    the worker decided {run.capacity:,.0f} handshakes/s over {run.span:.1f} s, {tasks:,} tasks at "
            f"{per_second:,.0f} tasks/s; each task's own time (its log) p50 {percentile(own, 0.5):.1f} ms, "
            f"p99 {percentile(own, 0.99):.1f} ms; {verdict}"
        )
        return
    per_handshake = run.busy / run.handshakes * 1000
    print(
        f"    busy {run.busy:.1f} s of {run.span:.1f} s; {per_handshake:.2f} ms per handshake, so at most "
        f"{run.capacity:,.0f} handshakes/s on one thread at these batch sizes; {verdict}"
    )


def running_now(product: Product, ids: list[str]) -> list[tuple[str, int | None]]:
    versions = dict(Device.objects.filter(product=product).values_list("pk", "firmware_version"))
    return [(device_id, versions[device_id]) for device_id in ids]


def targets_reached(product: Product) -> int:
    """Make every device run its target, as after a finished rollout: nothing is due."""
    pending = (
        devices_with_targets(Device.objects.filter(product=product))
        .filter(target_version__isnull=False)
        .exclude(firmware_version=F("target_version"))
        .values_list("pk", "target_version")
    )
    by_version: dict[int, list[str]] = {}
    for device_id, target in pending:
        by_version.setdefault(target, []).append(device_id)
    changed = 0
    with transaction.atomic():
        for target, ids in by_version.items():
            for start in range(0, len(ids), INSERT_BATCH):
                changed += Device.objects.filter(pk__in=ids[start : start + INSERT_BATCH]).update(
                    firmware_version=target
                )
    return changed


def handshake_step(
    fleet: Fleet,
    label: str,
    rate: float,
    seconds: float,
    rng: random.Random,
    *,
    worker_log: Path | None = None,
) -> None:
    """One run at ``rate``; if it falls behind in this process, another at 80% of what it managed.
    (A worker's limit is tasks per second, one per batch: a lower rate only makes batches smaller.)"""
    while True:
        updates_clear(fleet.product)
        async_to_sync(get_channel_layer().flush)()
        ids = rng.sample(fleet.ids, min(len(fleet.ids), max(1, int(rate * seconds))))
        logged = worker_log.stat().st_size if worker_log else 0
        run = handshake_loop(
            label, rate, seconds, running_now(fleet.product, ids), fleet.product.id, worker=bool(worker_log)
        )
        run.offers = FirmwareUpdate.objects.filter(product=fleet.product).count()
        if worker_log:
            time.sleep(0.5)  # the log is written just after the result
            with worker_log.open("rb") as log:
                log.seek(logged)
                text = log.read().decode(errors="replace")
            run.task_seconds = [float(match) for match in TASK_SUCCEEDED.findall(text)]
        handshake_report(run)
        if run.kept_up or worker_log or label.endswith("of that") or rate <= 1:
            return
        rate = max(1.0, round(0.8 * run.capacity, -1) or 0.8 * run.capacity)
        label = f"{label}, again at 80% of that"


def query_breakdown(fleet: Fleet, rng: random.Random, batch: int = 5, rounds: int = 200) -> None:
    """Where a batch's targeting query (in ``updates_start``) spends its time: Django building the
    queryset, compiling it to SQL, and PostgreSQL planning and running it."""

    def build() -> QuerySet:
        ids = rng.sample(fleet.ids, batch)
        devices = Device.objects.filter(pk__in=ids, online=True, quarantined=False, product__isnull=False)
        return devices_due_an_update(devices).values(
            "pk", "product_id", "target_version", "firmware_version", "gateway_channel"
        )

    started = time.perf_counter()
    querysets = [build() for _ in range(rounds)]
    built = (time.perf_counter() - started) / rounds
    started = time.perf_counter()
    compiled = [queryset.query.sql_with_params() for queryset in querysets]
    compiling = (time.perf_counter() - started) / rounds
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for sql, params in compiled:
            cursor.execute(sql, params)
            cursor.fetchall()
    running = (time.perf_counter() - started) / rounds
    print(
        f"  the targeting query of a batch of {batch} (updates_start), over {rounds} batches: building the "
        f"queryset {built * 1000:.2f} ms, compiling it to SQL {compiling * 1000:.2f} ms, PostgreSQL "
        f"(round trip, planning, execution) {running * 1000:.2f} ms"
    )


def worker_start(scratch: Path, concurrency: int) -> subprocess.Popen:
    """A Celery worker on the ota queue as the Procfile runs it, on this database and Redis."""
    name = f"bench-ota-{secrets.token_hex(3)}@{socket.gethostname()}"
    command = [
        PYTHON, "-m", "celery", "-A", "console", "worker", "-Q", "ota", "--concurrency", str(concurrency),
        "-n", name, "--without-gossip", "--without-mingle", "-l", "INFO",
    ]  # fmt: skip
    log_path = scratch / WORKER_LOG
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=server_env(scratch / "var"),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop_process reaches its children
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if celery_app.control.ping(destination=[name], timeout=1.0):
            return process
    stop_process(process)
    sys.exit(f"the ota worker did not start; its output:\n{log_path.read_text()[-4000:]}")


def scenario_handshakes(
    fleet: Fleet, rate: float, seconds: float, rng: random.Random, worker_concurrency: int = 0
) -> None:
    product = fleet.product
    window = settings.QUANTA_HANDSHAKE_BATCH_SECONDS
    print(
        f"\n3. Handshake -> OTA decision: handshakes_observed at {rate:,.0f}/s for {seconds:g} s, batch window "
        f"{window * 1000:g} ms, start_updates run eagerly, one thread"
    )
    started = time.perf_counter()
    Device.objects.filter(product=product).update(
        online=True, gateway_channel=Concat(Value(DUMMY_CHANNEL), "id")
    )
    set_default(fleet, DEFAULT_VERSION)
    changed = targets_reached(product)
    analyze(Device)
    print(
        f"  every device online with a channel of its own; {changed:,} set to run their target, so "
        f"nothing is due ({elapsed(started)})"
    )
    query_breakdown(fleet, rng)
    handshake_step(fleet, "steady state (nothing due)", rate, seconds, rng)
    set_default(fleet, NEW_VERSION)
    handshake_step(fleet, f"just after v{NEW_VERSION} became the default (most due)", rate, seconds, rng)
    if worker_concurrency:
        print(
            f"  through Redis and a Celery worker process (-Q ota --concurrency {worker_concurrency}, as the "
            "Procfile runs it); decided when the worker's task finished (its result's date_done)"
        )
        scratch = Path(tempfile.mkdtemp(prefix="quanta-bench-firmware-"))
        worker = worker_start(scratch, worker_concurrency)
        celery_app.conf.task_always_eager = False
        try:
            set_default(fleet, DEFAULT_VERSION)
            log = scratch / WORKER_LOG
            handshake_step(fleet, "worker, steady state (nothing due)", rate, seconds, rng, worker_log=log)
            set_default(fleet, NEW_VERSION)
            label = f"worker, just after v{NEW_VERSION} became the default"
            handshake_step(fleet, label, rate, seconds, rng, worker_log=log)
        finally:
            celery_app.conf.task_always_eager = True
            stop_process(worker)
            shutil.rmtree(scratch, ignore_errors=True)
    removed = updates_clear(product)
    async_to_sync(get_channel_layer().flush)()
    set_default(fleet, DEFAULT_VERSION)
    print(f"  cleanup: {removed:,} FirmwareUpdate rows removed, v{DEFAULT_VERSION} the default again")


# --- 4. Concurrent transfers through one server process ---------------------------------------------------


@dataclass
class TransferLog:
    connected: dict[str, float] = field(default_factory=dict)  # first welcome
    begun: dict[str, float] = field(default_factory=dict)  # first ota_begin
    done: dict[str, tuple[float, bool, int]] = field(default_factory=dict)  # ota_done: at, ok, size
    handshakes: Counter = field(default_factory=Counter)


class TimedDevice(SimulatedDevice):
    """A simulated device that notes when its handshake, its offer and its transfer's end happen."""

    def __init__(self, *args, log: TransferLog, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.log = log

    async def _handshake(self, ws: ClientConnection) -> float:
        heartbeat = await super()._handshake(ws)
        self.log.connected.setdefault(self.device_id, time.perf_counter())
        self.log.handshakes[self.device_id] += 1
        return heartbeat

    async def _on_ota_begin(self, ws: ClientConnection, frame: dict) -> None:
        self.log.begun.setdefault(self.device_id, time.perf_counter())
        await super()._on_ota_begin(ws, frame)

    async def _ota_done(self, ws: ClientConnection, transfer: OtaTransfer, error: str = "") -> None:
        await super()._ota_done(ws, transfer, error)
        self.log.done.setdefault(self.device_id, (time.perf_counter(), not error, transfer.size))


@dataclass
class TransferResult:
    devices: int
    log: TransferLog
    started: float = 0.0
    finished: float = 0.0
    server_cpu: float | None = None
    client_cpu: float = 0.0
    database_cpu: float = 0.0
    machine_cpu: float | None = None
    rss_before: int | None = None
    rss_peak: int | None = None
    states: dict[str, int] = field(default_factory=dict)
    timed_out: bool = False

    @property
    def completed(self) -> list[tuple[float, bool, int]]:
        return [done for done in self.log.done.values() if done[1]]

    @property
    def wall(self) -> float:
        return self.finished - self.started


async def transfers_drive(
    url: str, keys: list[DeviceKey], product_id: int, deadline: float, pid: int, seed: int
) -> TransferResult:
    log = TransferLog()
    result = TransferResult(devices=len(keys), log=log)
    rng = random.Random(seed)
    stats = FleetStats(devices=len(keys))
    fleet = [
        TimedDevice(
            key,
            url,
            rng=rng,
            publish_rate=0.0,
            product_id=product_id,
            product_version=1,
            ota_reboot_seconds=TRANSFER_REBOOT_SECONDS,
            stats=stats,
            log=log,
        )
        for key in keys
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    result.rss_before = rss_kib(pid)
    server_before, client_before = process_cpu_seconds(pid), time.process_time()
    database_before, machine_before = database_cpu_seconds(), machine_cpu_seconds()
    result.started = time.perf_counter()
    tasks = [loop.create_task(device.run(stop)) for device in fleet]
    peak = result.rss_before or 0
    try:
        while len(log.done) < len(keys):
            if time.perf_counter() - result.started > deadline:
                result.timed_out = True
                break
            await asyncio.sleep(0.2)
            peak = max(peak, rss_kib(pid) or 0)
        finished = [at for at, _, _ in log.done.values()]
        result.finished = max(finished) if finished else time.perf_counter()
        server_after = process_cpu_seconds(pid)
        if server_before is not None and server_after is not None:
            result.server_cpu = server_after - server_before
        result.client_cpu = time.process_time() - client_before
        result.database_cpu = database_cpu_seconds() - database_before
        machine_after = machine_cpu_seconds()
        if machine_before is not None and machine_after is not None:
            result.machine_cpu = machine_after - machine_before
        result.rss_peak = peak
        # The updated devices restart and come back reporting the new version, which confirms it.
        confirm_by = time.perf_counter() + CONFIRM_SECONDS
        while time.perf_counter() < confirm_by:
            back = sum(
                1 for device_id, (_, ok, _) in log.done.items() if ok and log.handshakes[device_id] >= 2
            )
            if back >= len(result.completed):
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # the handshake hook runs a batch window after the welcome
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return result


def transfer_devices(product: Product, count: int, rng: random.Random) -> list[DeviceKey]:
    """Devices with real keys, running version 1 and locked to version 2."""
    keys: list[DeviceKey] = []
    rows: list[Device] = []
    for index in range(count):
        pair = key_pair_generate()
        device_id = secrets.token_hex(12)
        keys.append(
            DeviceKey(
                device_id=device_id,
                private_key=pair.private_key,
                platform_id=BORON,
                product_id=product.id,
                product_version=1,
            )
        )
        rows.append(
            Device(
                id=device_id,
                name=random_name(rng),
                platform_id=BORON,
                public_key=pair.public_key,
                serial_number=f"{SERIAL_PREFIX}9{index:09d}",
                product=product,
                desired_firmware_version=2,
                firmware_product_id=product.id,
                firmware_version=1,
            )
        )
    Device.objects.bulk_create(rows)
    return keys


def transfers_reset(product: Product) -> None:
    FirmwareUpdate.objects.filter(product=product).delete()
    Device.objects.filter(product=product).update(
        online=False, session_id="", gateway_process="", gateway_channel="", firmware_version=1
    )


def transfer_run(
    count: int,
    keys: list[DeviceKey],
    warm: list[DeviceKey],
    product: Product,
    scratch: Path,
    args: argparse.Namespace,
) -> TransferResult:
    transfers_reset(product)
    env = server_env(scratch / "var")
    env.pop("REDIS_URL", None)  # the embedded channel layer, tasks in-process: one process does it all
    env["QUANTA_OTA_CHUNK_BYTES"] = str(args.chunk_bytes)
    env["QUANTA_OTA_WINDOW_CHUNKS"] = str(args.window_chunks)
    port = free_port()
    log_path = scratch / f"uvicorn-{count}.log"
    server = start_process(
        server_command("uvicorn", port, UVICORN_WEBSOCKET_ARGS),
        env=env,
        log_path=log_path,
        port=port,
        name="uvicorn",
    )
    url = f"ws://127.0.0.1:{port}/device/v1"
    try:
        warm_up = asyncio.run(transfers_drive(url, warm, product.id, 30.0, server.pid, args.seed))
        if not warm_up.completed:
            sys.exit(
                f"the warm-up transfer did not complete; the server's output:\n{log_path.read_text()[-4000:]}"
            )
        result = asyncio.run(
            transfers_drive(url, keys[:count], product.id, args.transfer_seconds, server.pid, args.seed)
        )
    finally:
        stop_process(server)
        GatewayProcess.objects.filter(pid=server.pid).delete()
    measured = [key.device_id for key in keys[:count]]
    result.states = dict(
        FirmwareUpdate.objects.filter(device_id__in=measured)
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    return result


def transfer_report(results: list[TransferResult], size: int) -> None:
    header = (
        f"  {'devices':>7} {'done':>9} {'finish s':>8} {'MB/s':>6} {'p50 s':>6} {'p99 s':>6} {'connect s':>9} {'offered s':>9} "
        f"{'server':>6} {'client':>6} {'db':>4} {'other':>5} {'RSS MiB':>13}  confirmed"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for r in results:
        durations = [
            r.log.done[d][0] - r.log.begun[d] for d in r.log.done if d in r.log.begun and r.log.done[d][1]
        ]
        delivered = sum(done[2] for done in r.completed)
        rate = delivered / r.wall / 1e6 if r.wall > 0 else 0.0
        connects = list(r.log.connected.values())
        spread = max(connects) - r.started if connects else float("nan")
        offered = max(r.log.begun.values()) - r.started if r.log.begun else float("nan")
        other = None
        if r.machine_cpu is not None and r.server_cpu is not None:
            other = max(0.0, r.machine_cpu - r.server_cpu - r.client_cpu - r.database_cpu)
        rss = (
            f"{(r.rss_before or 0) / 1024:.0f} -> {(r.rss_peak or 0) / 1024:.0f}"
            if r.rss_before is not None
            else "n/a"
        )
        confirmed = r.states.get("success", 0)
        others = ", ".join(f"{state} {n}" for state, n in sorted(r.states.items()) if state != "success")
        print(
            f"  {r.devices:>7} {f'{len(r.completed)}/{r.devices}':>9} {r.wall:8.1f} {rate:6.1f} "
            f"{percentile(durations, 0.5):6.2f} {percentile(durations, 0.99):6.2f} {spread:9.2f} {offered:9.2f} "
            f"{percent(r.server_cpu, r.wall):>6} {percent(r.client_cpu, r.wall):>6} "
            f"{percent(r.database_cpu, r.wall):>4} {percent(other, r.wall):>5} {rss:>13}  "
            f"{confirmed}{f' ({others})' if others else ''}{' TIMED OUT' if r.timed_out else ''}"
        )
    print(
        f"  image {size:,} bytes; finish: first connect to the last ota_done; MB/s: bytes of completed "
        "transfers over that time; p50/p99: ota_begin to ota_done per device; connect: first connect to "
        "the last device's welcome; offered: first connect to the last ota_begin; CPU in % of one core over the finish time; confirmed: updates the "
        "server counted a success once the device came back running the new version."
    )


def scenario_transfers(args: argparse.Namespace, rng: random.Random, user: User | None) -> None:
    size = args.image_kib * 1024
    counts = args.transfers
    print(
        f"\n4. Concurrent OTA transfers through one uvicorn process: {', '.join(map(str, counts))} devices, "
        f"{args.image_kib} KiB image, chunk {args.chunk_bytes} bytes, window {args.window_chunks} chunks, "
        "embedded channel layer"
    )
    if user is None:
        user = User.objects.create_user(email=BENCH_EMAIL, password=secrets.token_urlsafe(16))
    product = product_create(
        user=user, name=f"Bench OTA {secrets.token_hex(3)}", platform_id=BORON, via="bench"
    )
    upload(user, product, 1, OTA_SMALL_KIB * 1024)
    upload(user, product, 2, size)
    keys = transfer_devices(product, max(counts) + WARMUP_DEVICES, rng)
    warm, keys = keys[-WARMUP_DEVICES:], keys[:-WARMUP_DEVICES]
    scratch = Path(tempfile.mkdtemp(prefix="quanta-bench-firmware-"))
    results = []
    try:
        for count in counts:
            print(f"  {count} devices ...", flush=True)
            results.append(transfer_run(count, keys, warm, product, scratch, args))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        transfers_reset(product)
    transfer_report(results, size)


# --- Main ------------------------------------------------------------------------------------------------

SCENARIOS = ("impact", "targeting", "handshakes", "transfers")


def scenario_list(text: str) -> list[str]:
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    if chosen == ["all"]:
        return list(SCENARIOS)
    unknown = [item for item in chosen if item not in SCENARIOS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(SCENARIOS)} or all")
    return chosen


def count_list(text: str) -> list[int]:
    try:
        values = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of device counts") from None
    if not values or not all(1 <= value <= 2000 for value in values):
        raise argparse.ArgumentTypeError("each count from 1 to 2000")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--devices", type=bounded(int, 1000, 200_000), help="fleet size (100000; --quick 10000)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="10,000 devices, fewer runs, 10 and 100 transfers"
    )
    parser.add_argument(
        "--scenario", type=scenario_list, default=list(SCENARIOS), help="comma-separated, or all"
    )
    parser.add_argument(
        "--runs", type=bounded(int, 1, 1000), help="measured runs per preview/release (10; --quick 5)"
    )
    parser.add_argument("--handshake-rate", type=bounded(float, 1, 20_000), default=DECISION_TARGET_RATE)
    parser.add_argument("--handshake-seconds", type=bounded(float, 1, 600), help="per step (10; --quick 5)")
    parser.add_argument(
        "--worker", action="store_true",
        help="handshakes: also through Redis and a Celery ota worker process (needs REDIS_URL)",
    )  # fmt: skip
    parser.add_argument("--worker-concurrency", type=bounded(int, 1, 16), default=2, help="its processes (2)")
    parser.add_argument("--transfers", type=count_list, help="device counts (10,100,500; --quick 10,100)")
    parser.add_argument(
        "--image-kib", type=bounded(int, 1, 4096), default=256, help="firmware image size (256)"
    )
    parser.add_argument(
        "--chunk-bytes", type=bounded(int, 256, 16 * 1024), default=settings.QUANTA_OTA_CHUNK_BYTES,
        help="the server's QUANTA_OTA_CHUNK_BYTES for the transfers",
    )  # fmt: skip
    parser.add_argument(
        "--window-chunks", type=bounded(int, 1, 64), default=settings.QUANTA_OTA_WINDOW_CHUNKS,
        help="the server's QUANTA_OTA_WINDOW_CHUNKS for the transfers",
    )  # fmt: skip
    parser.add_argument(
        "--jit-off", action="store_true",
        help="SET jit = off on this process's database connection (the impact preview measures both anyway)",
    )  # fmt: skip
    parser.add_argument(
        "--transfer-seconds", type=bounded(float, 5, 600), default=60.0, help="deadline per count"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.devices = args.devices or (10_000 if args.quick else 100_000)
    args.runs = args.runs or (5 if args.quick else 10)
    args.handshake_seconds = args.handshake_seconds or (5.0 if args.quick else 10.0)
    args.transfers = args.transfers or ([10, 100] if args.quick else [10, 100, 500])

    database_url = os.environ.get("DATABASE_URL", "")
    if connection.vendor != "postgresql":
        sys.exit(
            "Set DATABASE_URL to a PostgreSQL database of its own, e.g.\n"
            "  createdb -h 127.0.0.1 -U postgres quanta_bench_firmware\n"
            "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/quanta_bench_firmware .venv/bin/python bench/firmware.py"
        )
    if args.worker and not os.environ.get("REDIS_URL"):
        sys.exit(
            "--worker needs REDIS_URL (a Redis database number of its own: the script flushes its channel layer)"
        )
    # The handshake hook queues start_updates; here it runs in this process, as without Redis.
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    # A plain SIGTERM would skip the finally blocks that stop the server.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    rng = random.Random(args.seed)

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    print("Quanta firmware benchmark: release preview, targeting, handshake decision, transfers")
    print(
        f"  database: PostgreSQL {postgres} ({redacted(database_url)}); channel layer "
        f"{type(get_channel_layer()).__name__}; Celery tasks run eagerly in this process"
    )
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"  Machine: {os.cpu_count()} CPUs, {cpu_model()}, load average {load}; Python {sys.version.split()[0]}, "
        f"Django {version('django')}, uvicorn {version('uvicorn')}, websockets {version('websockets')}"
    )

    if args.jit_off:
        with connection.cursor() as cursor:
            cursor.execute("SET jit = off")
        print("  jit = off for this process's connection (--jit-off)")

    print("\nSetup")
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"  migrate: {elapsed(started)}")
    cleanup()
    fleet = None
    if set(args.scenario) - {"transfers"}:
        fleet = fleet_create(args.devices, args.image_kib * 1024, rng)
    if "impact" in args.scenario:
        scenario_impact(fleet, args.runs)
    if "targeting" in args.scenario:
        scenario_targeting(fleet, args.runs)
    if "handshakes" in args.scenario:
        scenario_handshakes(
            fleet,
            args.handshake_rate,
            args.handshake_seconds,
            rng,
            args.worker_concurrency if args.worker else 0,
        )
    if "transfers" in args.scenario:
        scenario_transfers(args, rng, fleet.user if fleet else None)
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"\nLoad average at the end: {load}")


if __name__ == "__main__":
    main()
