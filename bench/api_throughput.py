"""HTTP throughput of Quanta behind its ASGI server: daphne (what the Procfile runs) and uvicorn.

Run from the repository root:

    .venv/bin/python bench/api_throughput.py [--seconds 10] [--concurrency 32] [--server both]

It builds a scratch var/ directory with a fresh SQLite database (or uses ``DATABASE_URL`` and
``REDIS_URL`` when they are set, and says so), migrates it, collects static files, creates a user
and an access token, then starts each server as one process on 127.0.0.1 and drives it from this
process with asyncio and httpx over keep-alive HTTP/1.1 connections. Each scenario gets a warm-up,
then a measured run of fixed length; the figures are printed, nothing is asserted. See
docs/performance.md for the figures measured so far and what limits them.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from common import (
    HOST,
    backend_description,
    bounded,
    cpu_model,
    database_cpu_seconds,
    free_port,
    machine_cpu_seconds,
    manage,
    percent,
    process_cpu_seconds,
    ratio,
    server_command,
    server_env,
    start_process,
    stop_process,
    version,
)

WARMUP_SECONDS = 2.0
REQUEST_TIMEOUT = 10.0
MAX_SECONDS = 600.0
MAX_CONCURRENCY = 1024


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    authenticated: bool
    expected_status: int
    marker: str  # text a correct response contains (checked once before the load starts)


SCENARIOS = (
    Scenario("GET /v1/user (token)", "/v1/user", True, 200, '"username"'),
    Scenario("GET /v1/user (no token)", "/v1/user", False, 400, '"error"'),
    Scenario("GET /login/", "/login/", False, 200, "Sign in"),
)


@dataclass
class Result:
    server: str
    scenario: Scenario
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    errors: Counter = field(default_factory=Counter)
    server_cpu: float | None = None  # CPU seconds the server process used during the measured run
    client_cpu: float = 0.0  # CPU seconds this process (the load generator) used
    machine_cpu: float | None = None  # CPU seconds all processes on the machine used
    database_cpu: float = 0.0  # CPU seconds local PostgreSQL and Redis processes used

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
        return ordered[index] * 1000


@dataclass
class Stack:
    env: dict[str, str]
    token: str
    backend: str


# --- Setup -----------------------------------------------------------------------------------------

SETUP_SNIPPET = """
import secrets
from django.contrib.auth import get_user_model
from console.accounts.services import access_token_create
user = get_user_model().objects.create_user(
    email=f"bench-{secrets.token_hex(6)}@example.com", password=secrets.token_urlsafe(24)
)
print("BENCH_TOKEN=" + access_token_create(user=user, expires_in_seconds=3600).token)
"""


def prepare(var_dir: Path) -> Stack:
    env = server_env(
        var_dir,
        QUANTA_LOGIN_IP_FAILURE_LIMIT="1000000",
        QUANTA_LOGIN_ACCOUNT_FAILURE_LIMIT="1000000",
    )
    backend = backend_description("SQLite (embedded default, fresh file in a scratch directory)")
    print(f"Preparing: {backend}", flush=True)
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")  # DEBUG off serves the manifest storage's files
    output = manage(env, "shell", "-c", SETUP_SNIPPET)
    match = re.search(r"^BENCH_TOKEN=(\w+)$", output, re.MULTILINE)
    if match is None:
        sys.exit(f"Could not create an access token; manage.py shell printed:\n{output}")
    return Stack(env=env, token=match.group(1), backend=backend)


# --- Servers ---------------------------------------------------------------------------------------


def start_server(server: str, stack: Stack, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    base_url = f"http://{HOST}:{port}"

    def answers() -> bool:
        try:
            httpx.get(f"{base_url}/v1/user", timeout=2.0)
        except httpx.TransportError:
            return False
        return True

    # uvicorn with uvloop and httptools, from uvicorn[standard]
    process = start_process(
        server_command(server, port), env=stack.env, log_path=log_path, port=port, name=server, probe=answers
    )
    return process, base_url


def other_cpu(result: Result) -> float | None:
    """CPU seconds used by neither the server, the load generator nor a local database."""
    if result.machine_cpu is None or result.server_cpu is None:
        return None
    return max(0.0, result.machine_cpu - result.server_cpu - result.client_cpu - result.database_cpu)


# --- Load --------------------------------------------------------------------------------------------


async def drive(client: httpx.AsyncClient, scenario: Scenario, seconds: float, concurrency: int, result):
    """``concurrency`` workers issue requests back to back until the deadline; returns elapsed seconds."""
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                response = await client.get(scenario.path)
            except httpx.HTTPError as error:
                result.errors[type(error).__name__] += 1
                continue
            if response.status_code == scenario.expected_status:
                result.latencies.append(time.perf_counter() - started)
            else:
                result.errors[f"HTTP {response.status_code}"] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def measure(
    server: str, process: subprocess.Popen, base_url: str, scenario: Scenario, stack: Stack, args
) -> Result:
    headers = {"Authorization": f"Bearer {stack.token}"} if scenario.authenticated else {}
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=REQUEST_TIMEOUT
    ) as client:
        probe = await client.get(scenario.path)
        if probe.status_code != scenario.expected_status or scenario.marker not in probe.text:
            sys.exit(
                f"{server}: {scenario.name} answered {probe.status_code}, expected "
                f"{scenario.expected_status} with {scenario.marker!r} in the body:\n{probe.text[:2000]}"
            )
        await drive(client, scenario, WARMUP_SECONDS, args.concurrency, Result(server, scenario))
        result = Result(server, scenario)
        server_cpu_before = process_cpu_seconds(process.pid)
        database_cpu_before = database_cpu_seconds()
        machine_cpu_before = machine_cpu_seconds()
        client_cpu_before = time.process_time()
        result.elapsed = await drive(client, scenario, args.seconds, args.concurrency, result)
        result.client_cpu = time.process_time() - client_cpu_before
        machine_cpu_after = machine_cpu_seconds()
        result.database_cpu = database_cpu_seconds() - database_cpu_before
        server_cpu_after = process_cpu_seconds(process.pid)
        if server_cpu_before is not None and server_cpu_after is not None:
            result.server_cpu = server_cpu_after - server_cpu_before
        if machine_cpu_before is not None and machine_cpu_after is not None:
            result.machine_cpu = machine_cpu_after - machine_cpu_before
    return result


def run_server(server: str, stack: Stack, scratch: Path, args) -> list[Result]:
    process, base_url = start_server(server, stack, scratch / f"{server}.log")
    try:
        results = []
        for scenario in SCENARIOS:
            print(f"  {server}: {scenario.name} ...", flush=True)
            results.append(asyncio.run(measure(server, process, base_url, scenario, stack, args)))
        return results
    finally:
        stop_process(process)


# --- Report ------------------------------------------------------------------------------------------


def print_report(results: list[Result], stack: Stack, args) -> None:
    print()
    print(
        f"Quanta API throughput: {args.seconds:g} s per scenario after a {WARMUP_SECONDS:g} s warm-up, "
        f"{args.concurrency} concurrent keep-alive HTTP/1.1 connections from one asyncio+httpx process"
    )
    print(f"Backend: {stack.backend}")
    print(
        f"Python {platform.python_version()}, Django {version('django')}, daphne {version('daphne')}, "
        f"uvicorn {version('uvicorn')} (uvloop {version('uvloop')}, httptools {version('httptools')}), "
        f"httpx {version('httpx')}"
    )
    print(f"Machine: {os.cpu_count()} CPUs, {cpu_model()}")
    print(
        "CPU columns, in % of one core over the measured run: the server process, the load generator, "
        "local PostgreSQL and Redis processes, and everything else on the machine."
    )
    header = (
        f"{'server':<8} {'scenario':<24} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'errors':>7} {'server':>7} {'loadgen':>8} {'db':>5} {'other':>6}"
    )
    print()
    print(header)
    print("-" * len(header))
    for result in results:
        print(
            f"{result.server:<8} {result.scenario.name:<24} {result.requests_per_second:>8.0f} "
            f"{result.percentile_ms(0.50):>8.1f} {result.percentile_ms(0.95):>8.1f} "
            f"{result.percentile_ms(0.99):>8.1f} {sum(result.errors.values()):>7} "
            f"{percent(result.server_cpu, result.elapsed):>7} "
            f"{percent(result.client_cpu, result.elapsed):>8} "
            f"{percent(result.database_cpu, result.elapsed):>5} "
            f"{percent(other_cpu(result), result.elapsed):>6}"
        )
    for result in results:
        if result.errors:
            details = ", ".join(f"{kind}: {count}" for kind, count in result.errors.most_common())
            print(f"errors, {result.server} {result.scenario.name}: {details}")
    by_key = {(result.server, result.scenario.name): result for result in results}
    if {"daphne", "uvicorn"} <= {result.server for result in results}:
        print()
        header = f"{'uvicorn / daphne':<33} {'req/s':>8} {'p50':>8} {'p99':>8}"
        print(header)
        print("-" * len(header))
        for scenario in SCENARIOS:
            daphne, uvicorn = by_key[("daphne", scenario.name)], by_key[("uvicorn", scenario.name)]
            rps = ratio(uvicorn.requests_per_second, daphne.requests_per_second)
            p50 = ratio(uvicorn.percentile_ms(0.50), daphne.percentile_ms(0.50))
            p99 = ratio(uvicorn.percentile_ms(0.99), daphne.percentile_ms(0.99))
            print(f"{scenario.name:<33} {rps:>7.2f}x {p50:>7.2f}x {p99:>7.2f}x")


# --- Main --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--seconds",
        type=bounded(float, 1, MAX_SECONDS),
        default=10.0,
        help="measured seconds per scenario, after a 2 s warm-up (default 10)",
    )
    parser.add_argument(
        "--concurrency",
        type=bounded(int, 1, MAX_CONCURRENCY),
        default=32,
        help="concurrent connections, one request in flight on each (default 32)",
    )
    parser.add_argument("--server", choices=("daphne", "uvicorn", "both"), default="both")
    args = parser.parse_args()
    servers = ["daphne", "uvicorn"] if args.server == "both" else [args.server]
    for server in servers:
        if importlib.util.find_spec(server) is None:
            sys.exit(f"{server} is not installed: pip install -e '.[dev]'")

    # A plain SIGTERM would end the process without running the finally blocks that stop the servers.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    scratch = Path(tempfile.mkdtemp(prefix="quanta-bench-"))
    try:
        stack = prepare(scratch / "var")
        results = []
        for server in servers:
            results.extend(run_server(server, stack, scratch, args))
        print_report(results, stack, args)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
