"""What the benchmarks share: the server's environment, starting and stopping a server process,
``manage.py``, and reading CPU time and memory from /proc.

Imported by the scripts in this directory (run them from the repository root as
``.venv/bin/python bench/NAME.py``; Python puts this directory on the import path).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HOST = "127.0.0.1"
SERVER_START_TIMEOUT = 60.0
SERVER_STOP_TIMEOUT = 10.0
SETUP_TIMEOUT = 600.0
DATABASE_PROCESSES = frozenset({"postgres", "redis-server"})
SQLITE_DEFAULT = "SQLite (embedded default, a database file of its own)"

# What a server needs to hold websockets the way production does: no time limit on a connection
# under daphne (as the Procfile runs it), and no permessage-deflate under uvicorn (browsers and the
# websockets client offer it, and compressing many small frames costs more CPU than it saves).
DAPHNE_WEBSOCKET_ARGS = ("--websocket_timeout", "-1")
UVICORN_WEBSOCKET_ARGS = ("--ws", "websockets", "--ws-per-message-deflate", "false")


# --- Environment and setup --------------------------------------------------------------------------


def redacted(url: str) -> str:
    """A URL without its user name and password, to print."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def backend_description(sqlite: str = SQLITE_DEFAULT) -> str:
    """The database and Redis the servers use, from ``DATABASE_URL`` and ``REDIS_URL``, redacted."""
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if database_url:
        engine = "PostgreSQL" if database_url.startswith("postgres") else "DATABASE_URL"
        backend = f"{engine} ({redacted(database_url)})"
    else:
        backend = sqlite
    return backend + (
        f", Redis ({redacted(redis_url)})" if redis_url else ", in-memory cache and channel layer"
    )


def server_env(var_dir: Path, **overrides: str) -> dict[str, str]:
    """This process's environment with a var/ directory of the benchmark's own, ``DEBUG`` off and
    logging at WARNING; ``overrides`` add or replace variables."""
    env = dict(os.environ)
    env.update(
        {
            "QUANTA_VAR_DIR": str(var_dir),
            "DEBUG": "false",
            "DJANGO_ENV": "development",
            "LOG_LEVEL": "WARNING",
            "ALLOWED_HOSTS": HOST,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = SETUP_TIMEOUT) -> str:
    """Run ``manage.py`` and return what it printed; ends the benchmark if it fails."""
    completed = subprocess.run(
        [PYTHON, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        sys.exit(f"manage.py {args[0]} failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    return completed.stdout


# --- Server processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def server_command(server: str, port: int, extra: Iterable[str] = ()) -> list[str]:
    """Quanta under ``daphne`` (what the Procfile runs) or ``uvicorn``, one process on ``port``."""
    if server == "daphne":
        return [PYTHON, "-m", "daphne", "-b", HOST, "-p", str(port), *extra, "console.asgi:application"]
    if server == "uvicorn":
        return [
            PYTHON, "-m", "uvicorn", "console.asgi:application", "--host", HOST, "--port", str(port),
            "--no-access-log", "--lifespan", "off", *extra,
        ]  # fmt: skip
    raise ValueError(f"unknown server {server!r}")


def start_process(
    command: list[str],
    *,
    env: dict[str, str],
    log_path: Path,
    port: int,
    name: str,
    probe: Callable[[], bool] | None = None,
) -> subprocess.Popen:
    """Start a server and wait until it accepts connections on ``port`` (and ``probe()``, if given,
    returns true); ends the benchmark with the server's output if it does not within a minute.
    It inherits this process's file-descriptor limit."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop_process reaches any child
        )
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection((HOST, port), timeout=1.0).close()
        except OSError:
            time.sleep(0.2)
            continue
        if probe is None or probe():
            return process
        time.sleep(0.2)
    stop_process(process)
    sys.exit(f"{name} did not start on port {port}; its output:\n{log_path.read_text()[-4000:]}")


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL it if it is still there after 10 s."""
    if process.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=SERVER_STOP_TIMEOUT)
            return
        except subprocess.TimeoutExpired:
            continue


def raise_fd_limit(needed: int) -> None:
    """Each connection is a socket here and one in the server; servers inherit this process's limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return
        except (ValueError, OSError):
            sys.exit(f"{needed} open files are needed and the hard limit is {hard}; raise it (ulimit -Hn).")
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


# --- CPU and memory (Linux /proc) ---------------------------------------------------------------------


def rss_kib(pid: int) -> int | None:
    """VmRSS of a process, in KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def process_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of one process, all its threads (Linux /proc only)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float | None:
    """Busy CPU time of the whole machine, all cores (Linux /proc only)."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    ticks = [int(value) for value in first[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def named_cpu_seconds(names: Iterable[str]) -> float:
    """CPU time of the local processes with these names, with their exited children (PostgreSQL has
    a backend per connection)."""
    names = frozenset(names)
    total = 0.0
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_file.read_text()
        except OSError:
            continue
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        if name in names:
            fields = stat.rsplit(")", 1)[1].split()
            total += sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def database_cpu_seconds() -> float:
    """CPU time of local PostgreSQL and Redis processes, so a database on this machine is not
    mistaken for other work."""
    return named_cpu_seconds(DATABASE_PROCESSES)


# --- Garbage collection in the server ---------------------------------------------------------------

# Put first on each server's PYTHONPATH as sitecustomize.py: times every cyclic garbage collection of
# the process and writes the totals, and the pauses of 5 ms or more with when they ended, to a file
# twice a second. It changes nothing else in the server.
GC_WATCH = """
import gc, json, os, threading, time

_path = os.environ.get("BENCH_GC_FILE")
if _path:
    _state = {"count": 0, "seconds": 0.0, "pauses": []}
    _started = [0.0]

    def _watch(phase, info):
        if phase == "start":
            _started[0] = time.perf_counter()
            return
        elapsed = time.perf_counter() - _started[0]
        _state["count"] += 1
        _state["seconds"] += elapsed
        if elapsed >= 0.005:
            _state["pauses"].append((time.time(), elapsed, info["generation"]))

    def _write():
        while True:
            time.sleep(0.5)
            with open(_path + ".tmp", "w") as out:
                json.dump(_state, out)
            os.replace(_path + ".tmp", _path)

    gc.callbacks.append(_watch)
    threading.Thread(target=_write, name="bench-gc-watch", daemon=True).start()
"""


@dataclass
class GcWindow:
    """The server's garbage collections over one phase."""

    count: int = 0
    seconds: float = 0.0
    longest: float = 0.0  # seconds
    over_50ms: int = 0

    def summary(self, elapsed: float) -> str:
        if not self.count:
            return "no GC figures"
        share = f"{100 * self.seconds / elapsed:.0f}% of the time" if elapsed else ""
        return (
            f"{self.count} collections, {self.seconds:.2f} s ({share}), longest {self.longest * 1000:.0f} ms, "
            f"{self.over_50ms} of 50 ms or more"
        )


def gc_state(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"count": 0, "seconds": 0.0, "pauses": []}


def gc_window(before: dict, after: dict, started: float, ended: float) -> GcWindow:
    pauses = [seconds for at, seconds, _ in after["pauses"] if started <= at <= ended]
    return GcWindow(
        count=after["count"] - before["count"],
        seconds=after["seconds"] - before["seconds"],
        longest=max(pauses, default=0.0),
        over_50ms=sum(seconds >= 0.05 for seconds in pauses),
    )


def gc_watch_env(env: dict[str, str], scratch: Path, gc_file: Path) -> dict[str, str]:
    """``env`` with the GC watch first on PYTHONPATH, writing to ``gc_file``."""
    watch_dir = scratch / "gc-watch"
    watch_dir.mkdir(exist_ok=True)
    (watch_dir / "sitecustomize.py").write_text(GC_WATCH)
    env = dict(env, BENCH_GC_FILE=str(gc_file))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(watch_dir), env.get("PYTHONPATH")]))
    return env


# --- Report -------------------------------------------------------------------------------------------


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def percent(cpu: float | None, elapsed: float) -> str:
    """CPU seconds over wall seconds, in % of one core."""
    return "n/a" if cpu is None or not elapsed else f"{100 * cpu / elapsed:.0f}%"


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def bounded(kind, low, high):
    """An argparse type: ``kind`` between ``low`` and ``high``."""

    def parse(text: str):
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse
