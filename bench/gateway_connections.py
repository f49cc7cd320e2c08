"""Device gateway connections: how fast simulated devices connect to one server process, and what
each connected device costs it.

Run from the repository root:

    .venv/bin/python bench/gateway_connections.py [--devices 10000] [--rate 500] [--server daphne]
        [--hold 60] [--reuse DIR]

Setup: a scratch var/ directory with a fresh SQLite database (or ``DATABASE_URL`` and ``REDIS_URL``
when they are set, and it says so), migrated, and ``manage.py provision_devices --platform boron``
for the devices plus 20 for the warm-up, their private keys in a key file. ``--reuse DIR`` keeps the
database and key file in DIR for the next run. Before each Quanta server starts, every device is
marked offline, as after a clean shutdown.

Servers, each as one process on a free port of 127.0.0.1, with the file-descriptor limit this
process raised for itself (they inherit it):

- daphne as the Procfile runs it: ``daphne -b 127.0.0.1 -p PORT --websocket_timeout -1 console.asgi:application``;
- uvicorn: ``uvicorn console.asgi:application --ws websockets --ws-per-message-deflate false
  --lifespan off --no-access-log``;
- always, as the ceiling, a bare ``websockets`` server in this file: the same challenge, hello and
  welcome with the same Ed25519 check, public keys in a dict, no Django and no database.

Load, from this one asyncio process with the ``websockets`` client (``compression=None``): 20
devices connect and leave (imports and caches warm up), then the devices connect on an open-loop
schedule of ``--rate`` per second that never waits for the server. Each opens /device/v1, signs the
challenge's nonce with a private key object built at load (the signing is client work, counted in
the client's CPU), sends its hello and waits for the welcome, all within 15 s. The handshake time
runs from the TCP connect to the welcome. Then all stay connected for ``--hold`` seconds, sending a
heartbeat whenever the welcome's ``heartbeat_s`` passes in silence; any close is counted as a drop.
The client's own cyclic garbage collector is off while it measures, so its pauses do not bunch up the
schedule.

Figures: handshakes per second (first connect to last welcome), p50/p99/max handshake time, server
VmRSS per connected device (all connected minus before the first, over the devices connected), CPU
of the server, the client, local PostgreSQL/Redis and everything else, failures by close code or
error, the server's garbage-collection pauses (timed by a ``sitecustomize`` put on its PYTHONPATH)
and accept-queue overflows; with ratios to the bare server. Nothing is asserted. Everything runs on
127.0.0.1, every phase has a deadline, and the servers are stopped and the scratch directory removed
however the script ends. docs/performance.md has the figures measured so far and what limits them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import importlib.util
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
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
    database_cpu_seconds,
    free_port,
    gc_state,
    gc_watch_env,
    gc_window,
    machine_cpu_seconds,
    manage,
    percent,
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
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

PATH = "/device/v1"
PLATFORM = "boron"
SYSTEM_VERSION = "5.3.1"
FUNCTIONS = ["led", "reboot", "setInterval"]
VARIABLES = {"temp": "double", "humidity": "double", "uptime": "int32", "firmware": "string"}
WARMUP_DEVICES = 20  # provisioned beyond --devices; they connect and leave before the measurement
SETTLE_SECONDS = 3.0  # after the warm-up, before the "before" RSS is read
HANDSHAKE_TIMEOUT = 15.0  # the gateway gives up on a hello after 10 s
HEARTBEAT_SECONDS = 30.0  # what the welcome says, unless it says otherwise
SETUP_TIMEOUT = 1800.0
MAX_DEVICES = 25_000  # 127.0.0.1 has about 28,000 ephemeral ports
MAX_RATE = 5_000.0
MAX_HOLD = 3_600.0
FD_HEADROOM = 1024
MAX_FRAME_BYTES = 64 * 1024


# --- Keys --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceKey:
    device_id: str
    private_key: Ed25519PrivateKey  # built once at load: signing is the device's work, not the server's
    platform_id: int


def load_keys(path: Path) -> list[DeviceKey]:
    keys = []
    for line in path.read_text().splitlines():
        if line.strip():
            entry = json.loads(line)
            keys.append(
                DeviceKey(
                    device_id=entry["device_id"],
                    private_key=Ed25519PrivateKey.from_private_bytes(base64.b64decode(entry["private_key"])),
                    platform_id=entry["platform_id"],
                )
            )
    return keys


def sign_cost_us(key: DeviceKey, rounds: int = 2000) -> float:
    nonce = secrets.token_bytes(32)
    started = time.perf_counter()
    for _ in range(rounds):
        base64.b64encode(key.private_key.sign(nonce)).decode()
    return (time.perf_counter() - started) / rounds * 1e6


# --- Setup -------------------------------------------------------------------------------------------

COUNT_SNIPPET = """
import json, os
from devices.models import Device
ids = [json.loads(line)["device_id"] for line in open(os.environ["BENCH_KEY_FILE"]) if line.strip()]
found = sum(Device.objects.filter(id__in=ids[i : i + 500]).count() for i in range(0, len(ids), 500))
print(f"BENCH_KEYS={len(ids)} BENCH_FOUND={found}")
"""

# Every run starts with all devices offline and no gateway process recorded, as after a clean
# shutdown: a handshake for a device still marked online would also tell its old session to close.
RESET_SNIPPET = """
from devices.models import Device, GatewayProcess
Device.objects.update(online=False, session_id="", gateway_process="", gateway_channel="")
GatewayProcess.objects.all().delete()
"""


@dataclass
class Stack:
    env: dict[str, str]
    key_file: Path
    backend: str
    provisioned_now: int = 0
    provision_seconds: float = 0.0


def prepare(workdir: Path, needed: int) -> Stack:
    """Migrate, and provision devices until the key file holds ``needed`` devices the database knows."""
    backend = backend_description()
    stack = Stack(env=server_env(workdir / "var"), key_file=workdir / "devices.jsonl", backend=backend)
    stack.env["BENCH_KEY_FILE"] = str(stack.key_file)
    marker = workdir / "backend.txt"
    if marker.exists() and marker.read_text() != backend:
        sys.exit(f"{workdir} was prepared for {marker.read_text()}, not {backend}; choose another directory.")
    workdir.mkdir(parents=True, exist_ok=True)
    marker.write_text(backend)
    print(f"Preparing: {backend}", flush=True)
    manage(stack.env, "migrate", "--noinput", timeout=SETUP_TIMEOUT)
    have = 0
    if stack.key_file.exists():
        output = manage(stack.env, "shell", "-c", COUNT_SNIPPET, timeout=SETUP_TIMEOUT)
        counts = dict(item.split("=") for item in output.split() if item.startswith("BENCH_"))
        have, found = int(counts["BENCH_KEYS"]), int(counts["BENCH_FOUND"])
        if found != have:
            sys.exit(
                f"{stack.key_file} lists {have} devices but the database knows {found} of them; "
                "remove the directory and start again."
            )
    if have < needed:
        print(f"Provisioning {needed - have} devices ({have} already in {stack.key_file}) ...", flush=True)
        started = time.perf_counter()
        manage(
            stack.env, "provision_devices", "--platform", PLATFORM, "--count", str(needed - have),
            "--out", str(stack.key_file), *(["--append"] if have else []), timeout=SETUP_TIMEOUT,
        )  # fmt: skip
        stack.provisioned_now = needed - have
        stack.provision_seconds = time.perf_counter() - started
    return stack


# --- The bare websockets server (the ceiling) ---------------------------------------------------------


async def bare_serve(port: int, key_file: Path) -> None:
    """The device handshake with nothing else: a dict for the database, no Django, no channel layer."""
    public_keys = {}  # device id -> raw public key, as the database row holds it
    for line in key_file.read_text().splitlines():
        if line.strip():
            entry = json.loads(line)
            private = Ed25519PrivateKey.from_private_bytes(base64.b64decode(entry["private_key"]))
            public_keys[entry["device_id"]] = private.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
    connections: dict[str, ServerConnection] = {}

    async def handler(ws: ServerConnection) -> None:
        nonce = secrets.token_bytes(32)
        await ws.send(
            json.dumps(
                {"type": "challenge", "nonce": base64.b64encode(nonce).decode(), "protocol": 1},
                separators=(",", ":"),
            )
        )
        try:
            async with asyncio.timeout(10):
                hello = json.loads(await ws.recv())
            device_id = hello["device_id"]
            signature = base64.b64decode(hello["signature"], validate=True)
            Ed25519PublicKey.from_public_bytes(public_keys[device_id]).verify(signature, nonce)
        except TimeoutError:
            await ws.close(4408)
            return
        except (InvalidSignature, KeyError, TypeError, ValueError):
            await ws.close(4401)
            return
        connections[device_id] = ws
        try:
            await ws.send(
                json.dumps(
                    {
                        "type": "welcome",
                        "session_id": uuid.uuid4().hex,
                        "heartbeat_s": int(HEARTBEAT_SECONDS),
                    },
                    separators=(",", ":"),
                )
            )
            async for _frame in ws:  # heartbeats
                pass
        finally:
            if connections.get(device_id) is ws:
                del connections[device_id]

    async with serve(handler, HOST, port, compression=None, max_size=MAX_FRAME_BYTES) as server:
        await server.serve_forever()


# --- Servers -------------------------------------------------------------------------------------------


def bare_command(port: int, stack: Stack) -> list[str]:
    return [PYTHON, str(Path(__file__).resolve()), "--bare-server", str(port), "--keys", str(stack.key_file)]


def start_server(server: str, stack: Stack, scratch: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = gc_watch_env(stack.env, scratch, scratch / f"{server}-gc.json")
    if server == "daphne":  # as the Procfile runs it
        command = server_command(server, port, DAPHNE_WEBSOCKET_ARGS)
    elif server == "uvicorn":
        command = server_command(server, port, UVICORN_WEBSOCKET_ARGS)
    else:
        command = bare_command(port, stack)
    process = start_process(command, env=env, log_path=scratch / f"{server}.log", port=port, name=server)
    return process, port


def listen_overflows() -> int | None:
    """Connections dropped because a listening socket's accept queue was full, machine-wide (Linux
    TcpExt ListenOverflows). The client's kernel sends the SYN again after 1 s."""
    try:
        lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines()]
    except OSError:
        return None
    for names, values in zip(lines, lines[1:], strict=False):
        if names[0] == "TcpExt:" and values[0] == "TcpExt:" and "ListenOverflows" in names:
            return int(values[names.index("ListenOverflows")])
    return None


@dataclass
class Cpu:
    """CPU seconds used over one phase: the server, this process, local databases, the machine."""

    elapsed: float = 0.0
    server: float | None = None
    client: float = 0.0
    database: float = 0.0
    machine: float | None = None

    @property
    def other(self) -> float | None:
        if self.machine is None or self.server is None:
            return None
        return max(0.0, self.machine - self.server - self.client - self.database)


class CpuMeter:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.wall = time.perf_counter()
        self.server = process_cpu_seconds(pid)
        self.client = time.process_time()
        self.database = database_cpu_seconds()
        self.machine = machine_cpu_seconds()

    def read(self) -> Cpu:
        server, machine = process_cpu_seconds(self.pid), machine_cpu_seconds()
        return Cpu(
            elapsed=time.perf_counter() - self.wall,
            server=server - self.server if server is not None and self.server is not None else None,
            client=time.process_time() - self.client,
            database=database_cpu_seconds() - self.database,
            machine=machine - self.machine if machine is not None and self.machine is not None else None,
        )


# --- Load ------------------------------------------------------------------------------------------------


@dataclass
class Result:
    server: str
    asked: int
    rate: float
    latencies: list[float] = field(default_factory=list)  # seconds, TCP connect to welcome
    lags: list[float] = field(default_factory=list)  # seconds each connect started after its schedule
    failures: Counter = field(default_factory=Counter)  # handshakes that did not end in a welcome
    drops: Counter = field(default_factory=Counter)  # connections closed after their welcome
    heartbeats: int = 0
    connect_elapsed: float = 0.0  # first connect started .. last welcome
    connect_cpu: Cpu = field(default_factory=Cpu)
    hold_seconds: float = 0.0
    hold_cpu: Cpu = field(default_factory=Cpu)
    rss_before: int | None = None  # KiB
    rss_connected: int | None = None
    rss_held: int | None = None
    connected_after_connect: int = 0
    connected_at_end: int = 0
    connect_gc: GcWindow = field(default_factory=GcWindow)
    listen_overflows: int | None = None  # while connecting
    hold_gc: GcWindow = field(default_factory=GcWindow)

    @property
    def handshakes(self) -> int:
        return len(self.latencies)

    @property
    def handshakes_per_second(self) -> float:
        return self.handshakes / self.connect_elapsed if self.connect_elapsed else 0.0

    def percentile_ms(self, values: list[float], fraction: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
        return ordered[index] * 1000

    def latency_ms(self, fraction: float) -> float:
        return self.percentile_ms(self.latencies, fraction)

    def rss_per_device_kib(self, after: int | None) -> float:
        if after is None or self.rss_before is None or not self.connected_after_connect:
            return float("nan")
        return (after - self.rss_before) / self.connected_after_connect

    def server_cpu_per_handshake_ms(self) -> float:
        if self.connect_cpu.server is None or not self.handshakes:
            return float("nan")
        return self.connect_cpu.server / self.handshakes * 1000


def hello_frame(key: DeviceKey, nonce: bytes) -> str:
    return json.dumps(
        {
            "type": "hello",
            "device_id": key.device_id,
            "signature": base64.b64encode(key.private_key.sign(nonce)).decode(),
            "platform_id": key.platform_id,
            "system_version": SYSTEM_VERSION,
            "functions": FUNCTIONS,
            "variables": VARIABLES,
        },
        separators=(",", ":"),
    )


def expect(raw: str | bytes, kind: str) -> dict:
    frame = json.loads(raw)
    if not isinstance(frame, dict) or frame.get("type") != kind:
        raise HandshakeError(f"expected {kind}, got {str(frame)[:80]}")
    return frame


class HandshakeError(Exception):
    pass


async def handshake(url: str, key: DeviceKey) -> tuple[ClientConnection, float]:
    """Open, answer the challenge, wait for the welcome; returns the connection and its heartbeat."""
    ws = await connect(
        url,
        compression=None,
        open_timeout=None,  # the caller's timeout covers the whole handshake
        ping_interval=None,  # devices keep the session alive with heartbeats; pongs are automatic
        close_timeout=1,
        max_size=MAX_FRAME_BYTES,
        max_queue=4,
        user_agent_header=None,
    )
    try:
        challenge = expect(await ws.recv(), "challenge")
        await ws.send(hello_frame(key, base64.b64decode(challenge["nonce"])))
        welcome = expect(await ws.recv(), "welcome")
    except BaseException:
        ws.transport.abort()
        raise
    heartbeat = welcome.get("heartbeat_s")
    return ws, float(heartbeat) if isinstance(heartbeat, int | float) and heartbeat > 0 else HEARTBEAT_SECONDS


def failure_name(error: BaseException) -> str:
    if isinstance(error, ConnectionClosed):
        return f"close {error.rcvd.code}" if error.rcvd is not None else "closed, no close frame"
    if isinstance(error, InvalidStatus):
        return f"HTTP {error.response.status_code}"
    if isinstance(error, TimeoutError):
        return "timeout"
    return type(error).__name__


class Fleet:
    """The simulated devices of one run: each is one task and one connection."""

    def __init__(self, url: str, result: Result) -> None:
        self.url = url
        self.result = result
        self.open: set[ClientConnection] = set()
        self.pending = 0  # handshakes started and not finished
        self.idle = asyncio.Event()
        self.measuring = True  # drops count until the teardown
        self.last_welcome = 0.0

    async def device(self, key: DeviceKey) -> None:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                ws, heartbeat = await handshake(self.url, key)
        except (WebSocketException, HandshakeError, TimeoutError, OSError, ValueError, KeyError) as error:
            self.result.failures[failure_name(error)] += 1
            return
        finally:
            self.pending -= 1
            if not self.pending:
                self.idle.set()
        self.last_welcome = time.perf_counter()
        self.result.latencies.append(self.last_welcome - started)
        self.open.add(ws)
        try:
            while True:
                try:
                    async with asyncio.timeout(heartbeat):
                        await ws.recv()  # the gateway sends nothing unasked; a close ends this
                except TimeoutError:
                    await ws.send('{"type":"heartbeat"}')
                    self.result.heartbeats += 1
        except ConnectionClosed as closed:
            if self.measuring:
                self.result.drops[failure_name(closed)] += 1
        finally:
            self.open.discard(ws)

    def start(self, key: DeviceKey) -> asyncio.Task:
        self.pending += 1
        self.idle.clear()
        return asyncio.get_running_loop().create_task(self.device(key))


async def warm_up(url: str, keys: list[DeviceKey], server: str) -> None:
    """Import, start and cache what the first connections need, so it is not counted per device."""
    for key in keys:
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                ws, _ = await handshake(url, key)
                await ws.close()
        except Exception as error:  # noqa: BLE001 - any failure here ends the run with its reason
            sys.exit(f"{server}: the warm-up handshake failed: {failure_name(error)} {error}")


async def measure(
    server: str, pid: int, port: int, keys: list[DeviceKey], warm: list[DeviceKey], gc_file: Path, args
) -> Result:
    url = f"ws://{HOST}:{port}{PATH}"
    result = Result(server=server, asked=len(keys), rate=args.rate)
    await warm_up(url, warm, server)
    await asyncio.sleep(SETTLE_SECONDS)
    result.rss_before = rss_kib(pid)
    fleet = Fleet(url, result)
    tasks: list[asyncio.Task] = []
    loop = asyncio.get_running_loop()
    # This process's own cyclic garbage collections over thousands of connections delayed its connect
    # schedule by up to 0.75 s, which then caught up in a burst: the client must not pause like that.
    gc.collect()
    gc.disable()
    try:
        meter = CpuMeter(pid)
        gc_before, connect_started = gc_state(gc_file), time.time()
        overflows = listen_overflows()
        first = time.perf_counter()
        begin = loop.time()
        for index, key in enumerate(keys):  # open loop: the schedule does not wait for the server
            due = begin + index / args.rate
            if (delay := due - loop.time()) > 0:
                await asyncio.sleep(delay)
            result.lags.append(max(0.0, loop.time() - due))
            tasks.append(fleet.start(key))
        await asyncio.wait_for(fleet.idle.wait(), HANDSHAKE_TIMEOUT + 5)  # every handshake is bounded
        result.connect_elapsed = max(fleet.last_welcome - first, 1e-9)
        result.connect_cpu = meter.read()
        connect_ended, gc_connected = time.time(), gc_state(gc_file)
        if overflows is not None and (after := listen_overflows()) is not None:
            result.listen_overflows = after - overflows
        result.connected_after_connect = len(fleet.open)
        result.rss_connected = rss_kib(pid)
        if args.hold:
            heartbeats_before = result.heartbeats
            meter = CpuMeter(pid)
            await asyncio.sleep(args.hold)
            result.hold_cpu = meter.read()
            result.hold_seconds = args.hold
            result.heartbeats -= heartbeats_before
            result.rss_held = rss_kib(pid)
        result.connected_at_end = len(fleet.open)
        hold_ended = time.time()
        await asyncio.sleep(0.6)  # the watcher writes twice a second
        gc_after = gc_state(gc_file)
        result.connect_gc = gc_window(gc_before, gc_connected, connect_started, connect_ended)
        result.hold_gc = gc_window(gc_connected, gc_after, connect_ended, hold_ended)
    finally:
        gc.enable()
        fleet.measuring = False
        for ws in list(fleet.open):
            ws.transport.abort()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return result


def run_server(server: str, stack: Stack, keys, warm, scratch: Path, args) -> Result:
    if server != "bare":
        manage(stack.env, "shell", "-c", RESET_SNIPPET, timeout=SETUP_TIMEOUT)
    process, port = start_server(server, stack, scratch)
    try:
        print(
            f"  {server}: {len(keys)} devices at {args.rate:g}/s, then {args.hold:g} s held ...", flush=True
        )
        return asyncio.run(
            measure(server, process.pid, port, keys, warm, scratch / f"{server}-gc.json", args)
        )
    finally:
        stop_process(process)


# --- Report ---------------------------------------------------------------------------------------------


def counted(counter: Counter) -> str:
    return ", ".join(f"{kind}: {count}" for kind, count in counter.most_common()) or "0"


def print_report(results: list[Result], stack: Stack, sign_us: float, args) -> None:
    print()
    print(
        f"Quanta device gateway connections: {args.devices} devices connecting at {args.rate:g}/s "
        f"(open loop), then held {args.hold:g} s with heartbeats, from one asyncio + websockets process"
    )
    print(f"Backend: {stack.backend}")
    print(
        f"Python {platform.python_version()}, Django {version('django')}, channels {version('channels')}, "
        f"daphne {version('daphne')} (Twisted {version('twisted')}, autobahn {version('autobahn')}), "
        f"uvicorn {version('uvicorn')} (uvloop {version('uvloop')}), websockets {version('websockets')}, "
        f"cryptography {version('cryptography')}"
    )
    print(
        f"Machine: {os.cpu_count()} CPUs, {cpu_model()}; open files limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}"
    )
    print(
        f"Client: signing a nonce costs {sign_us:.0f} µs (keys built once at load), "
        f"{sign_us * args.rate / 1e4:.1f}% of a core at {args.rate:g}/s; counted in the client CPU column."
    )
    print(
        "Handshake time: TCP connect to welcome. RSS/device: server VmRSS with all connected minus before, "
        "divided by the devices connected. CPU columns: % of one core over the connect phase."
    )
    header = (
        f"{'server':<8} {'connected/asked':>15} {'hs/s':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'KiB/dev':>7} {'server':>6} {'client':>6} {'db':>4} {'other':>5}  failures"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in results:
        cpu = r.connect_cpu
        print(
            f"{r.server:<8} {f'{r.connected_after_connect}/{r.asked}':>15} {r.handshakes_per_second:>6.0f} "
            f"{r.latency_ms(0.50):>7.1f} {r.latency_ms(0.99):>7.1f} {r.latency_ms(1.0):>7.1f} "
            f"{r.rss_per_device_kib(r.rss_connected):>7.1f} {percent(cpu.server, cpu.elapsed):>6} "
            f"{percent(cpu.client, cpu.elapsed):>6} {percent(cpu.database, cpu.elapsed):>4} "
            f"{percent(cpu.other, cpu.elapsed):>5}  {counted(r.failures)}"
        )
    print()
    print("KiB: 1024 bytes, the unit of VmRSS. Details:")
    for r in results:
        print(
            f"  {r.server}: server CPU {r.server_cpu_per_handshake_ms():.2f} ms per handshake; "
            f"RSS {fmt_mib(r.rss_before)} before, {fmt_mib(r.rss_connected)} connected; "
            f"connect schedule lag p99 {r.percentile_ms(r.lags, 0.99):.1f} ms, max {r.percentile_ms(r.lags, 1.0):.1f} ms; "
            f"p90 {r.latency_ms(0.90):.1f} ms, p99.9 {r.latency_ms(0.999):.1f} ms"
        )
        print(f"    server GC while connecting: {r.connect_gc.summary(r.connect_cpu.elapsed)}")
        if r.listen_overflows is not None:
            print(f"    accept queue overflows while connecting (machine-wide): {r.listen_overflows}")
        if args.hold:
            print(f"    server GC while held: {r.hold_gc.summary(r.hold_cpu.elapsed)}")
    if args.hold:
        header = (
            f"{'held':<8} {'seconds':>7} {'connected at end':>16} {'heartbeats':>10} {'KiB/dev':>7} "
            f"{'server':>6} {'client':>6} {'db':>4} {'other':>5}  drops"
        )
        print()
        print(header)
        print("-" * len(header))
        for r in results:
            cpu = r.hold_cpu
            print(
                f"{r.server:<8} {r.hold_seconds:>7.0f} {f'{r.connected_at_end}/{r.connected_after_connect}':>16} "
                f"{r.heartbeats:>10} {r.rss_per_device_kib(r.rss_held):>7.1f} "
                f"{percent(cpu.server, cpu.elapsed):>6} {percent(cpu.client, cpu.elapsed):>6} "
                f"{percent(cpu.database, cpu.elapsed):>4} {percent(cpu.other, cpu.elapsed):>5}  {counted(r.drops)}"
            )
    by_server = {r.server: r for r in results}
    bare = by_server.get("bare")
    quanta = [r for r in results if r.server != "bare"]
    if bare and quanta:
        header = (
            f"{'server / bare':<14} {'hs/s':>6} {'p50':>7} {'p99':>7} {'KiB/dev':>7} {'CPU/handshake':>14}"
        )
        print()
        print(header)
        print("-" * len(header))
        for r in quanta:
            print(
                f"{r.server:<14} {ratio(r.handshakes_per_second, bare.handshakes_per_second):>5.2f}x "
                f"{ratio(r.latency_ms(0.5), bare.latency_ms(0.5)):>6.1f}x "
                f"{ratio(r.latency_ms(0.99), bare.latency_ms(0.99)):>6.1f}x "
                f"{ratio(r.rss_per_device_kib(r.rss_connected), bare.rss_per_device_kib(bare.rss_connected)):>6.1f}x "
                f"{ratio(r.server_cpu_per_handshake_ms(), bare.server_cpu_per_handshake_ms()):>13.1f}x"
            )
    if quanta:
        print()
        print(
            "Targets: >= 10,000 devices on one process, <= 30 KB (taken as KiB) each, handshake p99 <= 50 ms at 500/s"
        )
        for r in quanta:
            held = r.connected_at_end if args.hold else r.connected_after_connect
            kb = r.rss_per_device_kib(r.rss_connected)
            p99 = r.latency_ms(0.99)
            print(
                f"  {r.server}: {held} connected{' after the hold' if args.hold else ''} "
                f"({'met' if held >= 10_000 else 'missed'}); {kb:.1f} KiB each ({'met' if kb <= 30 else 'missed'}); "
                f"p99 {p99:.1f} ms at {r.rate:g}/s "
                f"({'met' if p99 <= 50 and r.rate >= 500 else 'missed' if p99 > 50 else 'rate below 500/s'})"
            )


def fmt_mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.0f} MiB"


# --- Main ---------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--devices",
        type=bounded(int, 1, MAX_DEVICES),
        default=10_000,
        help="devices to connect (default 10000)",
    )
    parser.add_argument(
        "--rate",
        type=bounded(float, 1, MAX_RATE),
        default=500.0,
        help="connections started per second, on a fixed schedule (default 500)",
    )
    parser.add_argument(
        "--server",
        choices=("daphne", "uvicorn", "both"),
        default="daphne",
        help="Quanta's server; the bare websockets server always runs too (default daphne)",
    )
    parser.add_argument(
        "--hold",
        type=bounded(float, 0, MAX_HOLD),
        default=60.0,
        help="seconds to keep every device connected, sending heartbeats, after the last one connected (default 60)",
    )
    parser.add_argument(
        "--reuse",
        type=Path,
        metavar="DIR",
        help="keep the database and key file in DIR and reuse them next time instead of provisioning again",
    )
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--keys", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:  # the bare server's own process, started by this script
        asyncio.run(bare_serve(args.bare_server, args.keys))
        return
    servers = ["daphne", "uvicorn"] if args.server == "both" else [args.server]
    for server in servers:
        if importlib.util.find_spec(server) is None:
            sys.exit(f"{server} is not installed: pip install -e '.[dev]'")
    servers.append("bare")
    raise_fd_limit(args.devices + WARMUP_DEVICES + FD_HEADROOM)

    # A plain SIGTERM would end the process without running the finally blocks that stop the servers.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    scratch = Path(tempfile.mkdtemp(prefix="quanta-bench-"))
    try:
        workdir = args.reuse.resolve() if args.reuse else scratch
        stack = prepare(workdir, args.devices + WARMUP_DEVICES)
        if stack.provisioned_now:
            print(
                f"Provisioned {stack.provisioned_now} devices in {stack.provision_seconds:.0f} s", flush=True
            )
        all_keys = load_keys(stack.key_file)
        keys, warm = all_keys[: args.devices], all_keys[-WARMUP_DEVICES:]
        sign_us = sign_cost_us(keys[0])
        results = [run_server(server, stack, keys, warm, scratch, args) for server in servers]
        print_report(results, stack, sign_us, args)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
