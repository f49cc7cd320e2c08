"""Events through one server process: devices publishing (ingest), one event to many subscribers
(fan-out), and subscribers that stop reading (slow), each beside a bare server doing the same.

Run from the repository root, on the stack the figures are for:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/quanta_bench_events REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python bench/events_throughput.py [--scenario all] [--server both] [--seconds 10] [--quick]

Setup: a scratch var/ directory (the embedded default's SQLite database when ``DATABASE_URL`` is
not set), migrated; a ``bench-…@example.com`` user with an access token (SSE) and a logged-in
session (console websockets); ``manage.py provision_devices --owner`` for the devices, so what they
publish is the user's. The servers run with ``DEBUG=false``, logging at WARNING, the per-device
publish limit and the SSE streams-per-address limit raised out of the way, each as one process on
127.0.0.1, fresh for every scenario:

- daphne as the Procfile runs it (``--websocket_timeout -1``);
- uvicorn ``--loop uvloop --ws websockets --ws-per-message-deflate false``;
- ``raw``, the ceiling: bench/raw_broadcast.py, a bare ``websockets`` server (plus a bare SSE
  server) on uvloop doing what the hub does with the same coalescing and the same bytes, no Django.

The clients are bench/event_clients.py processes (uvloop, a minimal websocket client and a chunked
SSE reader), so the server, not the client, should be the limit; their CPU is printed to check.
Every event's data is ``"STEP SEQUENCE SEND-TIME"``; latency is receive time minus send time.

Scenarios (each rate is a step of ``--seconds``, then a drain until everything arrived or nothing
more comes; a step that loses events or has p99 over 2 s, or an ingest step that accepts less than
90% of the offered rate, ends the scenario for that server):

1. ingest: ``--devices`` devices do the Ed25519 handshake on /device/v1 and publish with an id at
   rising aggregate rates (``--ingest-rates``), round-robin, open loop; 2 SSE streams and 2 console
   websockets watch. Accepted/s counts acks; delivered counts what the subscribers got.
2. fan-out: ``--subscribers`` subscribers, half console websockets (session cookie, Origin), half SSE
   streams (Bearer token), events published straight to Redis (``PUBLISH`` on the events channel, what a
   publish does after validation) at ``--fanout-rates``, so publishing costs the server nothing.
   Deliveries/s counts events delivered to connections, frames/s websocket messages plus SSE writes.
3. slow: 1 console websocket and 1 SSE stream that read nothing after subscribing (a 4 KiB receive
   buffer, so the bytes pile up on the server's side), ~50 normal subscribers, ~1 KB events at a
   steady rate; the server's RSS is sampled every second. Then the slow ones read again: are they
   told they lagged (``"dropped": n`` / ``: lagged, n events dropped``)?

Without Redis (the embedded default) the fan-out and slow publishers are 20 devices on the gateway,
since there is no channel to publish to from outside. Nothing is asserted; docs/performance.md has
the figures measured so far and what limits them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    DAPHNE_WEBSOCKET_ARGS,
    HOST,
    PYTHON,
    UVICORN_WEBSOCKET_ARGS,
    GcWindow,
    backend_description,
    bounded,
    cpu_model,
    free_port,
    gc_state,
    gc_watch_env,
    gc_window,
    machine_cpu_seconds,
    manage,
    named_cpu_seconds,
    process_cpu_seconds,
    raise_fd_limit,
    ratio,
    rss_kib,
    server_command,
    server_env,
    start_process,
    stop_process,
    version,
)

BENCH = Path(__file__).resolve().parent
CLIENTS = BENCH / "event_clients.py"
RAW = BENCH / "raw_broadcast.py"
PLATFORM = "boron"
REDIS_PUBLISHER_DEVICES = 20  # publishers without Redis: this many gateway devices
SATURATED_P99_MS = 2000.0
SLOW_PAD = 900  # bytes of padding in each slow-scenario event's data
CALL_TIMEOUT = 120.0
NB = 16_000  # event_clients.NB

SETUP_SNIPPET = """
import secrets
from django.contrib.auth import get_user_model
from django.test import Client
from console.accounts.services import access_token_create
email = f"bench-{secrets.token_hex(6)}@example.com"
user = get_user_model().objects.create_user(email=email, password=secrets.token_urlsafe(24))
token = access_token_create(user=user, expires_in_seconds=6 * 3600).token
browser = Client()
browser.force_login(user)
print(f"BENCH_USER={user.pk} BENCH_EMAIL={email} BENCH_TOKEN={token} BENCH_SESSION={browser.cookies['sessionid'].value}")
from django.conf import settings
print("BENCH_CHANNEL=" + getattr(settings, "QUANTA_EVENT_CHANNEL", "quanta:events"))
"""

# Every server starts with all devices offline, as after a clean shutdown.
RESET_SNIPPET = """
from devices.models import Device, GatewayProcess
Device.objects.update(online=False, session_id="", gateway_process="", gateway_channel="")
GatewayProcess.objects.all().delete()
"""


@dataclass
class Stack:
    env: dict[str, str]
    backend: str
    key_file: Path
    user_id: int
    token: str
    session: str
    redis_url: str
    channel: str  # the Redis pub/sub channel the hub listens to
    first_device: str = ""


# --- Measuring ---------------------------------------------------------------------------------------------


QUIET_BELOW: float | None = None  # --quiet-below
QUIET_WAIT_MAX = 60.0


async def wait_for_quiet(limit: float) -> float:
    """Wait until the machine is busy less than ``limit``% of one core over a second (the servers and
    clients are idle between steps), for at most a minute; returns the seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < QUIET_WAIT_MAX:
        before, at = machine_cpu_seconds(), time.perf_counter()
        await asyncio.sleep(1.0)
        after = machine_cpu_seconds()
        if before is None or after is None or 100 * (after - before) / (time.perf_counter() - at) < limit:
            break
    return time.perf_counter() - started


def thread_count(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def hist_add(total: dict[int, int], part: dict) -> None:
    for index, count in part.items():
        total[int(index)] = total.get(int(index), 0) + count


def hist_ms(hist: dict[int, int], fraction: float) -> float:
    """The upper edge, in ms, of the bucket holding the ``fraction`` quantile."""
    total = sum(hist.values())
    if not total:
        return float("nan")
    wanted, seen = fraction * total, 0
    for index in sorted(hist):
        seen += hist[index]
        if seen >= wanted:
            return (index + 1) / 10 if index < 10_000 else 1000 + (index - 10_000 + 1) * 10
    return float("inf")


class Meter:
    """CPU seconds over one step: the server, the client processes, Redis, PostgreSQL, the machine."""

    def __init__(self, server_pid: int, publisher_pid: int, subscriber_pids: list[int]) -> None:
        self.server_pid = server_pid
        self.publisher_pid = publisher_pid
        self.subscriber_pids = subscriber_pids
        self.before = self.read_raw()

    def read_raw(self) -> dict:
        return {
            "wall": time.perf_counter(),
            "server": process_cpu_seconds(self.server_pid) or 0.0,
            "publisher": process_cpu_seconds(self.publisher_pid) or 0.0,
            "subscribers": sum(process_cpu_seconds(pid) or 0.0 for pid in self.subscriber_pids),
            "redis": named_cpu_seconds({"redis-server"}),
            "postgres": named_cpu_seconds({"postgres"}),
            "machine": machine_cpu_seconds() or 0.0,
            "self": time.process_time(),
        }

    def read(self) -> dict:
        after = self.read_raw()
        spent = {key: after[key] - self.before[key] for key in after}
        spent["elapsed"] = spent.pop("wall")
        # What is left includes interrupt and softirq time the kernel charged to no process (on
        # 127.0.0.1, part of the TCP stack's work for this traffic).
        known = sum(spent[key] for key in ("server", "publisher", "subscribers", "redis", "postgres", "self"))
        spent["other"] = max(0.0, spent["machine"] - known)
        return spent


@dataclass
class Step:
    server: str
    rate: float
    seconds: float
    sent: int = 0
    skipped: int = 0
    elapsed: float = 0.0
    subscribers: int = 0
    delivered: int = 0
    expected: int = 0
    frames: int = 0
    last_delivery: float = 0.0
    started: float = 0.0
    hist: dict[int, int] = field(default_factory=dict)
    kind_hists: dict[str, dict[int, int]] = field(default_factory=dict)  # ws, sse: latency histograms
    acked: int = 0
    ack_last: float = 0.0
    ack_hist: dict[int, int] = field(default_factory=dict)
    publish_errors: dict = field(default_factory=dict)
    dropped: int = 0  # events the server said it dropped
    lag_notices: int = 0
    errors: int = 0
    closes: dict = field(default_factory=dict)
    publisher_closes: dict = field(default_factory=dict)  # devices the server closed
    connect_failures: dict = field(default_factory=dict)  # kind -> reason -> connections never opened
    publishers_open: int = 0  # devices connected when the step started
    cpu: dict = field(default_factory=dict)
    rss_kib: int | None = None
    gc: GcWindow = field(default_factory=GcWindow)  # the server's collections, step and drain
    threads: int | None = None  # the server's threads after the step
    waited: float = 0.0  # seconds spent waiting for the machine to be quiet first (--quiet-below)
    min_per_connection: int = 0
    silent: int = 0  # subscribers that got none of the step's events

    @property
    def window(self) -> float:
        """From the first publish to the last delivery (at least the publishing time)."""
        return max(self.elapsed, self.last_delivery - self.started, 1e-9)

    @property
    def deliveries_per_second(self) -> float:
        return self.delivered / self.window

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.window

    @property
    def accepted_per_second(self) -> float:
        return self.acked / max(self.elapsed, self.ack_last - self.started, 1e-9)

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.delivered)

    def p(self, fraction: float) -> float:
        return hist_ms(self.hist, fraction)

    def cpu_percent(self, key: str) -> float:
        return 100 * self.cpu.get(key, 0.0) / self.cpu["elapsed"] if self.cpu.get("elapsed") else float("nan")

    @property
    def saturated(self) -> bool:
        return self.lost > 0.001 * max(self.expected, 1) or self.p(0.99) > SATURATED_P99_MS


# --- Client processes -----------------------------------------------------------------------------------------


class ClientProcess:
    """One bench/event_clients.py process: a JSON command per line in, a JSON answer per line out."""

    def __init__(self, name: str, config: dict, log_path: Path) -> None:
        self.name, self.config, self.log_path = name, config, log_path
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> ClientProcess:
        with self.log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                PYTHON,
                str(CLIENTS),
                json.dumps(self.config),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                limit=64 << 20,
            )
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    async def call(self, command: dict, timeout: float = CALL_TIMEOUT) -> dict:
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        await self.process.stdin.drain()
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        except TimeoutError:
            line = b""
        if not line:
            raise RuntimeError(
                f"client {self.name} did not answer {command['cmd']}; its output:\n"
                f"{self.log_path.read_text()[-3000:]}"
            )
        return json.loads(line)

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(Exception):
            await self.call({"cmd": "quit"}, timeout=5)
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        await self.process.wait()


def merged(stats_list: list[dict], kinds: tuple[str, ...]) -> dict:
    """Merge the subscriber statistics of several client processes, over some connection kinds."""
    result = {
        "open": 0,
        "connections": 0,
        "steps": {},
        "per_connection": {},
        "closes": {},
        "dropped": 0,
        "lag_notices": 0,
        "errors": 0,
        "error_sample": "",
    }
    for stats in stats_list:
        for name in kinds:
            kind = stats["kinds"].get(name)
            if kind is None:
                continue
            result["open"] += kind["open"]
            result["connections"] += kind["connections"]
            for key in ("dropped", "lag_notices", "errors"):
                result[key] += kind[key]
            result["error_sample"] = result["error_sample"] or kind["error_sample"]
            for reason, count in kind["closes"].items():
                result["closes"][reason] = result["closes"].get(reason, 0) + count
            for step, counts in kind["steps"].items():
                into = result["steps"].setdefault(
                    int(step), {"events": 0, "frames": 0, "last": 0.0, "hist": {}}
                )
                into["events"] += counts["events"]
                into["frames"] += counts["frames"]
                into["last"] = max(into["last"], counts["last"])
                hist_add(into["hist"], counts["hist"])
            for step, (low, high, none) in kind["per_connection"].items():
                current = result["per_connection"].get(int(step))
                result["per_connection"][int(step)] = (
                    [low, high, none]
                    if current is None
                    else [min(current[0], low), max(current[1], high), current[2] + none]
                )
    return result


# --- Servers --------------------------------------------------------------------------------------------------


@dataclass
class Target:
    """A running server and where its clients connect."""

    name: str
    process: subprocess.Popen
    port: int
    sse_port: int
    ws_headers: dict[str, str]
    gc_file: Path  # the server's garbage collections (common.GC_WATCH)


async def start_target(name: str, stack: Stack, scratch: Path, *, devices: bool) -> Target:
    port = free_port()
    log_path = scratch / f"{name}-{port}.log"
    if name == "raw":
        sse_port = free_port()
        command = [
            PYTHON, str(RAW), "--port", str(port), "--sse-port", str(sse_port), "--owner-id", str(stack.user_id),
            "--keys", str(stack.key_file), "--redis-url", stack.redis_url, "--channel", stack.channel,
        ]  # fmt: skip
    else:
        sse_port = port
        if devices:
            manage(stack.env, "shell", "-c", RESET_SNIPPET)
        extra = (
            DAPHNE_WEBSOCKET_ARGS
            if name == "daphne"
            else (*UVICORN_WEBSOCKET_ARGS, "--loop", "uvloop", "--log-level", "warning")
        )
        command = server_command(name, port, extra)
    gc_file = scratch / f"{name}-{port}-gc.json"
    env = gc_watch_env(stack.env, scratch, gc_file)
    process = start_process(command, env=env, log_path=log_path, port=port, name=name)
    headers = {"Cookie": f"sessionid={stack.session}", "Origin": f"http://{HOST}:{port}"}
    target = Target(
        name=name, process=process, port=port, sse_port=sse_port, ws_headers=headers, gc_file=gc_file
    )
    try:
        await warm_server(target, stack, scratch)
    except BaseException:
        stop_process(process)
        raise
    return target


async def warm_server(target: Target, stack: Stack, scratch: Path) -> None:
    """One HTTP request and one console websocket first, so a cold server's imports and caches are not
    paid by the connections under test (daphne drops a websocket not accepted within 5 s). Not an SSE
    stream: Quanta would hold a database connection for it until it noticed the stream had gone."""
    with contextlib.suppress(OSError):
        urllib.request.urlopen(f"http://{HOST}:{target.port}/v1/user", timeout=30).close()  # noqa: S310
    client = await ClientProcess(
        f"{target.name}-warm",
        subscriber_config(target, stack, ws=1),
        scratch / f"{target.name}-warm.log",
    ).start()
    try:
        await client.call({"cmd": "connect"})
    finally:
        await client.stop()


def subscriber_config(target: Target, stack: Stack, **counts: int) -> dict:
    return {
        "host": HOST,
        "ws_port": target.port,
        "ws_path": "/ws/console",
        "ws_headers": target.ws_headers,
        "sse_port": target.sse_port,
        "sse_path": "/v1/devices/events",
        "sse_headers": {"Authorization": f"Bearer {stack.token}"},
        "slow_rcvbuf": 4096,
        "connect_concurrency": 50,
        **counts,
    }


def device_config(target: Target, stack: Stack, count: int) -> dict:
    return {
        "host": HOST,
        "device_port": target.port,
        "device_path": "/device/v1",
        "key_file": str(stack.key_file),
        "device_range": [0, count],
        "connect_concurrency": 50,
    }


def redis_publisher_config(stack: Stack) -> dict:
    return {
        "host": HOST,
        "redis_url": stack.redis_url,
        "channel": stack.channel,
        "owner_id": stack.user_id,
        "coreid": stack.first_device,
    }


async def connect_all(clients: list[ClientProcess], what: str) -> dict:
    """Connect every client process's connections; returns the failures by kind and reason."""
    replies = await asyncio.gather(*(client.call({"cmd": "connect"}, timeout=300) for client in clients))
    connected: dict[str, int] = {}
    failures: dict[str, dict] = {}
    for reply in replies:
        for kind, count in reply["connected"].items():
            connected[kind] = connected.get(kind, 0) + count
        for kind, reasons in reply.get("failures", {}).items():
            for reason, count in reasons.items():
                failures.setdefault(kind, {})
                failures[kind][reason] = failures[kind].get(reason, 0) + count
    seconds = max(reply["seconds"] for reply in replies)
    shown = ", ".join(f"{count} {kind}" for kind, count in connected.items() if count)
    print(f"    {what}: {shown or 'nothing'} connected in {seconds:.1f} s", flush=True)
    if failures:
        print(f"    connection failures: {failures}", flush=True)
    return failures


async def run_step(
    target: Target,
    step_id: int,
    rate: float,
    seconds: float,
    publisher: ClientProcess,
    subscribers: list[ClientProcess],
    *,
    kinds: tuple[str, ...] = ("ws", "sse"),
    pad: int = 0,
    drain_seconds: float = 10.0,
    rss_samples: list[int] | None = None,
) -> Step:
    """Publish at ``rate`` for ``seconds``, wait for the deliveries, and gather the figures."""
    step = Step(server=target.name, rate=rate, seconds=seconds)
    if QUIET_BELOW is not None and step_id:
        step.waited = await wait_for_quiet(QUIET_BELOW)
    before = merged([await client.call({"cmd": "stats"}) for client in subscribers], kinds)
    device_kind = (await publisher.call({"cmd": "stats"}))["kinds"].get("devices", {})
    closes_before = device_kind.get("closes", {})
    step.publishers_open = device_kind.get("open", 0)
    step.subscribers = before["open"]
    meter = Meter(target.process.pid, publisher.pid, [client.pid for client in subscribers])
    gc_before, gc_started = gc_state(target.gc_file), time.time()
    publishing = asyncio.ensure_future(
        publisher.call(
            {"cmd": "publish", "step": step_id, "rate": rate, "seconds": seconds, "pad": pad},
            timeout=seconds + CALL_TIMEOUT,
        )
    )
    while not publishing.done():
        if rss_samples is not None and (rss := rss_kib(target.process.pid)) is not None:
            rss_samples.append(rss)
        await asyncio.wait({publishing}, timeout=1.0)
    reply = publishing.result()
    step.cpu = meter.read()
    step.sent, step.skipped, step.elapsed, step.started = (
        reply["sent"],
        reply["skipped"],
        reply["elapsed"],
        reply["started"],
    )
    devices_publish = "key_file" in publisher.config
    # Drain: until every event arrived, or nothing more arrived for 2 s, or the drain time is up.
    deadline = time.monotonic() + drain_seconds
    progress, last_change = -1, time.monotonic()
    while True:
        published = await publisher.call({"cmd": "stats"})
        stats = [await client.call({"cmd": "stats"}) for client in subscribers]
        now_merged = merged(stats, kinds)
        delivered = now_merged["steps"].get(step_id, {}).get("events", 0)
        if devices_publish:
            device_steps = published["kinds"].get("devices", {}).get("steps", {})
            acked = device_steps.get(str(step_id), {}).get("events", 0)
            done = published["in_flight"] == 0 and delivered >= acked * step.subscribers
            marker = (acked, delivered)
        else:
            acked = step.sent
            done = delivered >= step.sent * step.subscribers
            marker = (delivered,)
        if done or time.monotonic() > deadline:
            break
        if marker != progress:
            progress, last_change = marker, time.monotonic()
        elif time.monotonic() - last_change > 3.0:
            break
        await asyncio.sleep(0.25)
    await asyncio.sleep(0.6)  # the GC watch writes twice a second
    step.gc = gc_window(gc_before, gc_state(target.gc_file), gc_started, time.time())
    step.rss_kib = rss_kib(target.process.pid)
    step.threads = thread_count(target.process.pid)
    counts = now_merged["steps"].get(step_id, {"events": 0, "frames": 0, "last": 0.0, "hist": {}})
    step.delivered, step.frames, step.last_delivery = counts["events"], counts["frames"], counts["last"]
    step.hist = {int(k): v for k, v in counts["hist"].items()}
    for kind in kinds:
        part = merged(stats, (kind,))["steps"].get(step_id, {"hist": {}})
        step.kind_hists[kind] = {int(k): v for k, v in part["hist"].items()}
    step.min_per_connection, _, step.silent = now_merged["per_connection"].get(step_id, [0, 0, 0])
    step.dropped = now_merged["dropped"] - before["dropped"]
    step.lag_notices = now_merged["lag_notices"] - before["lag_notices"]
    step.errors = now_merged["errors"] - before["errors"]
    step.closes = {
        reason: count - before["closes"].get(reason, 0)
        for reason, count in now_merged["closes"].items()
        if count - before["closes"].get(reason, 0)
    }
    if devices_publish:
        device_kind = published["kinds"].get("devices", {})
        counts = device_kind.get("steps", {}).get(str(step_id), {"events": 0, "last": 0.0, "hist": {}})
        step.acked, step.ack_last = counts["events"], counts["last"]
        step.ack_hist = {int(k): v for k, v in counts["hist"].items()}
        step.publish_errors = published["publish_errors"]
        step.publisher_closes = {
            reason: count - closes_before.get(reason, 0)
            for reason, count in device_kind.get("closes", {}).items()
            if count - closes_before.get(reason, 0)
        }
        step.expected = step.acked * step.subscribers
    else:
        step.acked = step.sent
        step.expected = step.sent * step.subscribers
    return step


# --- Scenarios ---------------------------------------------------------------------------------------------------


async def scenario_ingest(name: str, stack: Stack, scratch: Path, args) -> list[Step]:
    target = await start_target(name, stack, scratch, devices=True)
    clients: list[ClientProcess] = []
    try:
        subscribers = await ClientProcess(
            f"{name}-ingest-subscribers",
            subscriber_config(target, stack, ws=2, sse=2),
            scratch / f"{name}-ingest-subscribers.log",
        ).start()
        clients.append(subscribers)
        failures = await connect_all([subscribers], "subscribers")
        devices = await ClientProcess(
            f"{name}-devices", device_config(target, stack, args.devices), scratch / f"{name}-devices.log"
        ).start()
        clients.append(devices)
        failures.update(await connect_all([devices], "devices"))
        await run_step(target, 0, args.ingest_rates[0], args.warmup, devices, [subscribers], drain_seconds=5)
        steps = []
        for index, rate in enumerate(args.ingest_rates, start=1):
            print(f"    {rate:g} events/s for {args.seconds:g} s ...", flush=True)
            step = await run_step(
                target, index, rate, args.seconds, devices, [subscribers], drain_seconds=args.drain
            )
            step.connect_failures = failures
            steps.append(step)
            if step.saturated or step.accepted_per_second < 0.9 * rate:
                break
        return steps
    finally:
        for client in clients:
            await client.stop()
        stop_process(target.process)


async def publisher_for(target: Target, stack: Stack, scratch: Path, label: str) -> ClientProcess:
    if stack.redis_url:
        publisher = await ClientProcess(
            f"{target.name}-{label}-publisher", redis_publisher_config(stack), scratch / f"{label}-pub.log"
        ).start()
    else:
        publisher = await ClientProcess(
            f"{target.name}-{label}-publisher",
            device_config(target, stack, REDIS_PUBLISHER_DEVICES),
            scratch / f"{target.name}-{label}-pub.log",
        ).start()
    if stack.redis_url:
        await publisher.call({"cmd": "connect"})
        print("    publisher: straight to Redis", flush=True)
    else:
        await connect_all([publisher], "publisher")
    return publisher


async def scenario_fanout(name: str, stack: Stack, scratch: Path, args) -> list[Step]:
    target = await start_target(name, stack, scratch, devices=not stack.redis_url)
    clients: list[ClientProcess] = []
    try:
        processes = args.client_processes
        for index in range(processes):
            share = args.subscribers // processes + (1 if index < args.subscribers % processes else 0)
            client = await ClientProcess(
                f"{name}-fanout-subscribers-{index}",
                # 100 connecting at a time
                subscriber_config(
                    target, stack, ws=share // 2, sse=share - share // 2, connect_concurrency=100
                ),
                scratch / f"{name}-fanout-subscribers-{index}.log",
            ).start()
            clients.append(client)
        failures = await connect_all(clients, "subscribers")
        publisher = await publisher_for(target, stack, scratch, "fanout")
        subscribers = list(clients)
        clients.append(publisher)
        await run_step(target, 0, args.fanout_rates[0], args.warmup, publisher, subscribers, drain_seconds=5)
        steps = []
        for index, rate in enumerate(args.fanout_rates, start=1):
            print(
                f"    {rate:g} events/s to {args.subscribers} subscribers for {args.seconds:g} s ...",
                flush=True,
            )
            step = await run_step(
                target, index, rate, args.seconds, publisher, subscribers, drain_seconds=args.drain
            )
            step.connect_failures = failures
            steps.append(step)
            if step.saturated:
                break
        return steps
    finally:
        for client in clients:
            await client.stop()
        stop_process(target.process)


@dataclass
class SlowResult:
    server: str
    rate: float
    seconds: float
    step: Step | None = None  # the normal subscribers, while the slow ones read nothing
    rss_before: int | None = None
    rss_samples: list[int] = field(default_factory=list)
    rss_end: int | None = None  # when publishing stopped, the slow ones still not reading
    rss_after: int | None = None  # after the slow ones read again and caught up
    slow: dict[str, dict] = field(default_factory=dict)  # kind -> events received, dropped, notices, closes
    connect_failures: dict = field(default_factory=dict)


async def scenario_slow(name: str, stack: Stack, scratch: Path, args) -> SlowResult:
    target = await start_target(name, stack, scratch, devices=not stack.redis_url)
    clients: list[ClientProcess] = []
    result = SlowResult(server=name, rate=args.slow_rate, seconds=args.slow_seconds)
    try:
        normal = args.slow_normal
        subscribers = await ClientProcess(
            f"{name}-slow-subscribers",
            subscriber_config(target, stack, ws=normal // 2, sse=normal - normal // 2, slow_ws=1, slow_sse=1),
            scratch / f"{name}-slow-subscribers.log",
        ).start()
        clients.append(subscribers)
        result.connect_failures = await connect_all([subscribers], "subscribers")
        publisher = await publisher_for(target, stack, scratch, "slow")
        clients.append(publisher)
        await run_step(target, 0, args.slow_rate, args.warmup, publisher, [subscribers], drain_seconds=5)
        await asyncio.sleep(args.settle)
        result.rss_before = rss_kib(target.process.pid)
        print(
            f"    {args.slow_rate:g} events/s of ~{SLOW_PAD + 30} bytes for {args.slow_seconds:g} s, "
            "2 subscribers not reading ...",
            flush=True,
        )
        result.step = await run_step(
            target,
            1,
            args.slow_rate,
            args.slow_seconds,
            publisher,
            [subscribers],
            pad=SLOW_PAD,
            drain_seconds=args.drain,
            rss_samples=result.rss_samples,
        )
        result.rss_end = rss_kib(target.process.pid)
        # The slow ones read again while a little more is published, so a lag notice has a message to ride.
        await subscribers.call({"cmd": "resume_slow"})
        await run_step(
            target, 2, args.slow_rate, args.settle, publisher, [subscribers], pad=SLOW_PAD, drain_seconds=5
        )
        previous, quiet_since = None, time.monotonic()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and time.monotonic() - quiet_since < args.settle:
            stats = await subscribers.call({"cmd": "stats"})
            marker = json.dumps(
                [stats["kinds"].get(kind, {}).get("steps") for kind in ("slow_ws", "slow_sse")]
            )
            if marker != previous:
                previous, quiet_since = marker, time.monotonic()
            await asyncio.sleep(0.5)
        result.rss_after = rss_kib(target.process.pid)
        for kind in ("slow_ws", "slow_sse"):
            slow = merged([stats], (kind,))
            result.slow[kind] = {
                "connected": slow["connections"],
                "received": sum(counts["events"] for counts in slow["steps"].values()),
                "received_during": slow["steps"].get(1, {}).get("events", 0),
                "dropped": slow["dropped"],
                "notices": slow["lag_notices"],
                "closes": slow["closes"],
            }
        return result
    finally:
        for client in clients:
            await client.stop()
        stop_process(target.process)


# --- Report ---------------------------------------------------------------------------------------------------------


def ms(value: float) -> str:
    if value != value:  # nan
        return "n/a"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def pct(value: float) -> str:
    return "n/a" if value != value else f"{value:.0f}%"


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.0f}"


def closes_text(closes: dict) -> str:
    return ", ".join(f"{reason}: {count}" for reason, count in closes.items()) or "none"


def print_ingest(results: dict[str, list[Step]], args) -> None:
    print()
    print(
        f"1. Ingest: {args.devices} devices publishing with an id (acked), round-robin at each rate for "
        f"{args.seconds:g} s; 2 SSE streams + 2 console websockets subscribed"
    )
    header = (
        f"{'server':<8} {'offered/s':>9} {'accepted/s':>10} {'ack p99':>8} {'delivered/expected':>19} "
        f"{'lost':>6} {'dropped':>7} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7} {'server':>6} {'redis':>5} "
        f"{'pg':>4} {'devices':>7} {'subs':>5} {'other':>5} {'GC max':>6}"
    )
    print(header)
    print("-" * len(header))
    for steps in results.values():
        for s in steps:
            errors = s.errors + sum(s.publish_errors.values()) + s.lag_notices
            print(
                f"{s.server:<8} {s.rate:>9g} {s.accepted_per_second:>10.0f} {ms(hist_ms(s.ack_hist, 0.99)):>8} "
                f"{f'{s.delivered}/{s.expected}':>19} {s.lost:>6} {s.dropped:>7} {errors:>6} "
                f"{ms(s.p(0.5)):>7} {ms(s.p(0.99)):>7} {pct(s.cpu_percent('server')):>6} "
                f"{pct(s.cpu_percent('redis')):>5} {pct(s.cpu_percent('postgres')):>4} "
                f"{pct(100 * client_cpu(s, 0) / s.cpu['elapsed']):>7} "
                f"{pct(100 * client_cpu(s, 1) / s.cpu['elapsed']):>5} {pct(s.cpu_percent('other')):>5} "
                f"{gc_max(s):>6}"
            )
    for steps in results.values():
        for s in steps:
            if (
                s.publish_errors
                or s.closes
                or s.publisher_closes
                or s.skipped
                or s.publishers_open < args.devices
            ):
                print(
                    f"  {s.server} at {s.rate:g}/s: {s.publishers_open} devices connected at the start, publish errors {s.publish_errors or 'none'}, "
                    f"subscribers closed {closes_text(s.closes)}, devices closed "
                    f"{closes_text(s.publisher_closes)}, not sent (over 2 s of unacked publishes) {s.skipped}"
                )
    print_connect_failures(results)
    print_waits(results)
    print_ratios(
        results, "accepted/s", lambda s: s.accepted_per_second, per="event", per_value=lambda s: s.acked
    )
    print("Target: >= 5,000 events/s accepted with none dropped or lost.")
    for name, steps in results.items():
        if name == "raw":
            continue
        good = [s for s in steps if s.lost == 0 and s.dropped == 0 and not s.publish_errors]
        best = max((s.accepted_per_second for s in good), default=0.0)
        verdict = "met" if best >= 5000 else "missed"
        print(f"  {name}: {best:,.0f} events/s accepted with nothing lost ({verdict})")


def print_waits(results: dict[str, list[Step]]) -> None:
    if QUIET_BELOW is None:
        return
    waits = [f"{s.server} {s.rate:g}/s {s.waited:.0f} s" for steps in results.values() for s in steps]
    print(f"  waited for the machine to be busy < {QUIET_BELOW:g}% before each step: {', '.join(waits)}")


def gc_max(step: Step) -> str:
    """The longest garbage-collection pause of the server during the step, in ms."""
    return f"{step.gc.longest * 1000:.0f}" if step.gc.count else "0"


def print_connect_failures(results: dict[str, list[Step]]) -> None:
    for name, steps in results.items():
        if steps and steps[0].connect_failures:
            text = "; ".join(
                f"{kind}: " + ", ".join(f"{count} {reason}" for reason, count in reasons.items())
                for kind, reasons in steps[0].connect_failures.items()
            )
            print(f"  {name}: connections that never opened: {text}")


def client_cpu(step: Step, which: int) -> float:
    """CPU of the publisher (0) or of the subscriber processes (1) over the step."""
    return step.cpu.get("publisher" if which == 0 else "subscribers", 0.0)


def print_ratios(results: dict[str, list[Step]], label: str, value, *, per: str, per_value) -> None:
    raw = {s.rate: s for s in results.get("raw", [])}
    rows = [(name, s) for name, steps in results.items() if name != "raw" for s in steps if s.rate in raw]
    if not rows:
        return
    header = f"{'ours / raw':<10} {'rate':>6} {label:>14} {'p50':>7} {'p99':>7} {f'server CPU per {per}':>22}"
    print()
    print(header)
    print("-" * len(header))
    for name, s in rows:
        r = raw[s.rate]
        ours_cpu = s.cpu.get("server", 0.0) / max(per_value(s), 1)
        raw_cpu = r.cpu.get("server", 0.0) / max(per_value(r), 1)
        print(
            f"{name:<10} {s.rate:>6g} {ratio(value(s), value(r)):>13.2f}x {ratio(s.p(0.5), r.p(0.5)):>6.1f}x "
            f"{ratio(s.p(0.99), r.p(0.99)):>6.1f}x {ratio(ours_cpu, raw_cpu):>21.1f}x"
            f"  ({ours_cpu * 1e6:.0f} vs {raw_cpu * 1e6:.0f} µs)"
        )


def print_fanout(results: dict[str, list[Step]], args) -> None:
    print()
    print(
        f"2. Fan-out: {args.subscribers} subscribers (half console websockets, half SSE streams), events "
        f"published straight to Redis at each rate for {args.seconds:g} s"
        if args.redis
        else f"2. Fan-out: {args.subscribers} subscribers (half console websockets, half SSE), events published "
        f"by {REDIS_PUBLISHER_DEVICES} gateway devices (no Redis) at each rate for {args.seconds:g} s"
    )
    header = (
        f"{'server':<8} {'ev/s':>5} {'published':>9} {'deliveries/s':>12} {'frames/s':>8} {'lost':>7} "
        f"{'dropped':>7} {'p50 ms':>7} {'p99 ms':>7} {'ws p99':>6} {'sse p99':>7} {'server':>6} {'RSS MiB':>7} "
        f"{'clients':>7} {'redis':>5} {'other':>5} {'GC max':>6} {'GC %':>4}"
    )
    print(header)
    print("-" * len(header))
    for steps in results.values():
        for s in steps:
            clients = 100 * (client_cpu(s, 0) + client_cpu(s, 1)) / s.cpu["elapsed"]
            print(
                f"{s.server:<8} {s.rate:>5g} {s.sent:>9} {s.deliveries_per_second:>12,.0f} "
                f"{s.frames_per_second:>8,.0f} {s.lost:>7} {s.dropped:>7} {ms(s.p(0.5)):>7} {ms(s.p(0.99)):>7} "
                f"{ms(hist_ms(s.kind_hists.get('ws', {}), 0.99)):>6} "
                f"{ms(hist_ms(s.kind_hists.get('sse', {}), 0.99)):>7} {pct(s.cpu_percent('server')):>6} "
                f"{mib(s.rss_kib):>7} {pct(clients):>7} {pct(s.cpu_percent('redis')):>5} "
                f"{pct(s.cpu_percent('other')):>5} {gc_max(s):>6} {pct(100 * s.gc.seconds / s.window):>4}"
            )
    for steps in results.values():
        for s in steps:
            if s.closes or s.errors or s.silent or s.subscribers != args.subscribers:
                print(
                    f"  {s.server} at {s.rate:g}/s: {s.subscribers} subscribers open at the start, "
                    f"{s.silent} got none of the step's events, closes {closes_text(s.closes)}, "
                    f"error messages {s.errors}"
                )
    for name, steps in results.items():
        if steps:
            print(f"  {name}: {steps[-1].threads} threads in the server process after the last step")
    print_connect_failures(results)
    print_waits(results)
    print_ratios(
        results,
        "deliveries/s",
        lambda s: s.deliveries_per_second,
        per="delivery",
        per_value=lambda s: s.delivered,
    )
    print("Target: the highest rate with p99 <= 100 ms and nothing lost, >= 50,000 deliveries/s.")
    for name, steps in results.items():
        good = [s for s in steps if s.lost == 0 and s.p(0.99) <= 100]
        best = max(good, key=lambda s: s.deliveries_per_second, default=None)
        if best is None:
            print(f"  {name}: no rate had p99 <= 100 ms with nothing lost")
        else:
            verdict = "met" if best.deliveries_per_second >= 50_000 else "missed"
            print(
                f"  {name}: {best.rate:g} events/s, {best.deliveries_per_second:,.0f} deliveries/s, "
                f"p99 {ms(best.p(0.99))} ms ({verdict})"
            )


def print_slow(results: list[SlowResult], args) -> None:
    print()
    print(
        f"3. Slow subscribers: 1 console websocket + 1 SSE stream reading nothing (4 KiB receive buffer), "
        f"{args.slow_normal} normal subscribers, {args.slow_rate:g} events/s of ~{SLOW_PAD + 30} bytes for "
        f"{args.slow_seconds:g} s, then the slow ones read again"
    )
    header = (
        f"{'server':<8} {'normal got all':>14} {'p99 ms':>7} {'RSS MiB start/peak/end/after':>29} "
        f"{'slow ws: got/dropped/notices':>29} {'slow sse: got/dropped/notices':>30}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        s = r.step
        normal = f"{s.min_per_connection}/{s.sent}" if s else "n/a"
        peak = max(r.rss_samples, default=None)
        rss = f"{mib(r.rss_before)}/{mib(peak)}/{mib(r.rss_end)}/{mib(r.rss_after)}"
        ws, sse = r.slow.get("slow_ws", {}), r.slow.get("slow_sse", {})

        def slow_text(kind: dict) -> str:
            if not kind.get("connected"):
                return "not connected"
            return f"{kind['received_during']}/{kind['dropped']}/{kind['notices']}"

        print(
            f"{r.server:<8} {normal:>14} {ms(s.p(0.99)) if s else 'n/a':>7} {rss:>29} {slow_text(ws):>29} "
            f"{slow_text(sse):>30}"
        )
    print(
        "  normal got all: the fewest events of the slow phase any normal subscriber got / events published. "
        "got: events of the slow phase the slow subscriber received once it read again; dropped: what the "
        "server said it dropped; notices: messages carrying the count."
    )
    for r in results:
        closes = {kind: closes_text(r.slow[kind]["closes"]) for kind in r.slow if r.slow[kind]["closes"]}
        normal_closes = closes_text(r.step.closes) if r.step else "none"
        if r.connect_failures:
            print(f"  {r.server}: connections that never opened: {r.connect_failures}")
        print(
            f"  {r.server}: RSS samples (MiB, 1/s) {' '.join(mib(v) for v in r.rss_samples)}; "
            f"closes: slow {closes or 'none'}, normal {normal_closes}"
        )


def print_header(stack: Stack, args) -> None:
    print()
    print("=" * 100)
    print(f"Quanta events throughput; backend: {stack.backend}")
    print(
        f"Python {platform.python_version()}, Django {version('django')}, channels {version('channels')}, "
        f"daphne {version('daphne')} (Twisted {version('twisted')}), uvicorn {version('uvicorn')} "
        f"(uvloop {version('uvloop')}, websockets {version('websockets')}), redis-py {version('redis')}"
    )
    print(
        f"Machine: {os.cpu_count()} CPUs, {cpu_model()}; open files limit "
        f"{resource.getrlimit(resource.RLIMIT_NOFILE)[0]}; one server process at a time, fresh per scenario"
    )
    print(
        "Columns: latency is publish (send time in the event) to receipt by the subscriber; GC max: the server's "
        "longest garbage-collection pause (ms) during the step and its drain, GC %: their share of the time; "
        "CPU in % of one core "
        "over the publishing time: the server process, local Redis and PostgreSQL, the client processes "
        "(devices/publisher and subscribers), everything else on the machine; 'raw' is bench/raw_broadcast.py."
    )


# --- Main --------------------------------------------------------------------------------------------------------------


def prepare(scratch: Path, devices: int) -> Stack:
    redis_url = os.environ.get("REDIS_URL", "")
    env = server_env(
        scratch / "var",
        QUANTA_PUBLISH_RATE_PER_SECOND="1000000",
        QUANTA_PUBLISH_BURST="1000000",
        QUANTA_SSE_STREAMS_PER_IP="1000000",
        QUANTA_LOGIN_IP_FAILURE_LIMIT="1000000",
        QUANTA_LOGIN_ACCOUNT_FAILURE_LIMIT="1000000",
    )
    backend = backend_description("SQLite (embedded default, fresh file in a scratch directory)")
    print(f"Preparing: {backend}", flush=True)
    manage(env, "migrate", "--noinput")
    output = manage(env, "shell", "-c", SETUP_SNIPPET)
    found = dict(re.findall(r"(BENCH_\w+)=(\S+)", output))
    if "BENCH_SESSION" not in found:
        sys.exit(f"Could not create the benchmark user; manage.py shell printed:\n{output}")
    key_file = scratch / "devices.jsonl"
    started = time.perf_counter()
    manage(
        env, "provision_devices", "--platform", PLATFORM, "--count", str(devices), "--out", str(key_file),
        "--owner", found["BENCH_EMAIL"], timeout=1800,
    )  # fmt: skip
    print(f"Provisioned {devices} devices in {time.perf_counter() - started:.0f} s", flush=True)
    first_device = json.loads(key_file.read_text().split("\n", 1)[0])["device_id"]
    return Stack(
        env=env,
        backend=backend,
        key_file=key_file,
        user_id=int(found["BENCH_USER"]),
        token=found["BENCH_TOKEN"],
        session=found["BENCH_SESSION"],
        redis_url=redis_url,
        channel=found["BENCH_CHANNEL"],
        first_device=first_device,
    )


def rates(text: str) -> list[float]:
    values = [float(item) for item in text.split(",") if item.strip()]
    if not values or any(not 0 < value <= 100_000 for value in values):
        raise argparse.ArgumentTypeError("a comma-separated list of rates between 0 and 100000")
    return values


async def run(args, stack: Stack, scratch: Path) -> None:
    servers = {"both": ["daphne", "uvicorn"], "raw": []}.get(args.server, [args.server]) + ["raw"]
    scenarios = ["ingest", "fanout", "slow"] if args.scenario == "all" else [args.scenario]
    print_header(stack, args)
    before, started = machine_cpu_seconds(), time.perf_counter()
    await asyncio.sleep(3)
    if before is not None and (after := machine_cpu_seconds()) is not None:
        busy = 100 * (after - before) / (time.perf_counter() - started)
        print(
            f"Before the run, the machine was busy {busy:.0f}% of one core (out of {100 * (os.cpu_count() or 1)}%) "
            "with other work; the 'other' columns show it during each step."
        )
    for scenario in scenarios:
        print(f"\n[{scenario}]", flush=True)
        results = {}
        for server in servers:
            print(f"  {server}:", flush=True)
            if scenario == "ingest":
                results[server] = await scenario_ingest(server, stack, scratch, args)
            elif scenario == "fanout":
                results[server] = await scenario_fanout(server, stack, scratch, args)
            else:
                results[server] = await scenario_slow(server, stack, scratch, args)
        if scenario == "ingest":
            print_ingest(results, args)
        elif scenario == "fanout":
            print_fanout(results, args)
        else:
            print_slow(list(results.values()), args)
        sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--scenario", choices=("ingest", "fanout", "slow", "all"), default="all", help="(default all)"
    )
    parser.add_argument(
        "--server",
        choices=("daphne", "uvicorn", "both", "raw"),
        default="both",
        help="Quanta's server; the raw ceiling always runs too ('raw': only it) (default both)",
    )
    parser.add_argument("--seconds", type=bounded(float, 1, 600), help="seconds per step (default 10)")
    parser.add_argument(
        "--subscribers", type=bounded(int, 2, 20_000), help="fan-out subscribers (default 1000)"
    )
    parser.add_argument("--devices", type=bounded(int, 1, 20_000), help="ingest devices (default 1000)")
    parser.add_argument(
        "--ingest-rates", type=rates, help="events/s, comma-separated (default 1000,2000,5000,8000)"
    )
    parser.add_argument(
        "--fanout-rates", type=rates, help="events/s, comma-separated (default 5,20,50,100,200)"
    )
    parser.add_argument("--slow-rate", type=bounded(float, 1, 10_000), help="events/s (default 300)")
    parser.add_argument("--slow-seconds", type=bounded(float, 1, 600), help="seconds (default 25)")
    parser.add_argument("--slow-normal", type=bounded(int, 0, 5_000), help="normal subscribers (default 50)")
    parser.add_argument(
        "--client-processes", type=bounded(int, 1, 8), help="fan-out subscriber processes (default 1)"
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the scratch directory (server and client logs) and say where",
    )
    parser.add_argument(
        "--quiet-below",
        type=bounded(float, 1, 1000),
        metavar="PERCENT",
        help="on a shared machine: before each step, wait (up to a minute) until the machine is busy less "
        "than PERCENT%% of one core",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: small counts, 2 s steps, about a minute"
    )
    args = parser.parse_args()
    quick = args.quick
    defaults = {
        "seconds": 2.0 if quick else 10.0,
        "subscribers": 30 if quick else 1000,
        "devices": 50 if quick else 1000,
        "ingest_rates": [500.0] if quick else [1000.0, 2000.0, 5000.0, 8000.0],
        "fanout_rates": [20.0] if quick else [5.0, 20.0, 50.0, 100.0, 200.0],
        "slow_rate": 100.0 if quick else 300.0,
        "slow_seconds": 3.0 if quick else 25.0,
        "slow_normal": 10 if quick else 50,
        "client_processes": 1,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.warmup = 1.0 if quick else 2.0
    args.drain = 3.0 if quick else 10.0
    args.settle = 1.0 if quick else 2.0
    args.redis = bool(os.environ.get("REDIS_URL"))
    global QUIET_BELOW
    QUIET_BELOW = args.quiet_below
    servers = {"both": ["daphne", "uvicorn"], "raw": []}.get(args.server, [args.server])
    for server in servers:
        if importlib.util.find_spec(server) is None:
            sys.exit(f"{server} is not installed: pip install -e '.[dev]'")
    raise_fd_limit(max(args.subscribers, args.devices) * 2 + 2048)

    # A plain SIGTERM would end the process without running the finally blocks that stop the servers.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    scratch = Path(tempfile.mkdtemp(prefix="quanta-bench-"))
    started = time.perf_counter()
    try:
        needed = max(args.devices, REDIS_PUBLISHER_DEVICES)
        stack = prepare(scratch, needed)
        asyncio.run(run(args, stack, scratch))
        print(f"\nTotal time {time.perf_counter() - started:.0f} s")
    finally:
        if args.keep:
            print(f"Server and client logs kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
