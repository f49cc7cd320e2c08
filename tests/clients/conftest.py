"""Drive the official Particle clients (pinned in package.json) against ``live_asgi_server``.

``npm ci`` in this directory installs them. Every client process gets a throwaway ``HOME``, so
the CLI's ``~/.particle`` settings never touch the developer's own. ``connect_device`` brings
provisioned devices online: each is a ``devices.simulator.SimulatedDevice`` on a thread of its own.
``background`` runs clients that stay up (``particle subscribe``, event streams) while a test acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pexpect
import pytest
from oauth2_provider.models import AccessToken

from console.accounts.models import User
from console.accounts.services import access_token_create
from console.accounts.tokens import token_checksum
from console.platforms import platform_from_string
from devices.models import Device
from devices.services import ProvisionedDevice, devices_provision
from devices.simulator import DeviceKey, SimulatedDevice
from tests.conftest import PASSWORD, LiveServer, require_or_skip

CLIENTS_DIR = Path(__file__).resolve().parent
NODE_MODULES = CLIENTS_DIR / "node_modules"
PARTICLE_BIN = NODE_MODULES / ".bin" / "particle"
API_JS_SCRIPT = CLIENTS_DIR / "scripts" / "api_js_call.js"

COMMAND_TIMEOUT = 30  # seconds for one client process, prompts included
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text).replace("\r", "")


@pytest.fixture(scope="session", autouse=True)
def _client_prerequisites() -> None:
    """Checked before the live server starts, so a machine without node skips quickly."""
    require_or_skip(shutil.which("node") is not None, "node is not on PATH (needed for the client tests)")
    require_or_skip(
        PARTICLE_BIN.exists() and (NODE_MODULES / "particle-api-js").is_dir(),
        "the Particle clients are not installed: run `npm ci` in tests/clients",
    )


def _client_environment(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PARTICLE_")}
    env.update(HOME=str(home), PARTICLE_DISABLE_UPDATE="1", NO_UPDATE_NOTIFIER="1", TERM="xterm")
    return env


@dataclass
class CLIResult:
    exit_code: int
    stdout: str
    stderr: str = ""  # empty for commands run in a PTY, where both streams are one

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class ParticleCLI:
    """particle-cli with its own HOME, pointed at the live server."""

    def __init__(self, home: Path, api_url: str) -> None:
        self.home = home
        self.api_url = api_url
        self.env = _client_environment(home)

    @property
    def config_path(self) -> Path:
        return self.home / ".particle" / "particle.config.json"

    def config(self) -> dict[str, Any]:
        return json.loads(self.config_path.read_text())

    def run(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> CLIResult:
        """A command that needs no input. stdin is closed: a prompt would end the command."""
        completed = subprocess.run(
            [str(PARTICLE_BIN), *args],
            cwd=self.home,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return CLIResult(completed.returncode, strip_ansi(completed.stdout), strip_ansi(completed.stderr))

    def interact(
        self, *args: str, answers: list[tuple[str, str | None]], timeout: float = COMMAND_TIMEOUT
    ) -> CLIResult:
        """Run a command in a PTY. For each ``(text, answer)`` in turn, wait for the text (a prompt's
        plain message, or any output) and type the answer, unless it is None."""
        transcript = io.StringIO()
        child = pexpect.spawn(
            str(PARTICLE_BIN),
            list(args),
            cwd=str(self.home),
            env=self.env,
            encoding="utf-8",
            codec_errors="replace",
            dimensions=(40, 200),
            timeout=timeout,
        )
        child.logfile_read = transcript
        try:
            for prompt, answer in answers:
                child.expect_exact(prompt)
                if answer is not None:
                    child.sendline(answer)
            child.expect_exact(pexpect.EOF)
        except pexpect.TIMEOUT:
            child.close(force=True)
            pytest.fail(
                f"particle {' '.join(args)} timed out; output so far:\n{strip_ansi(transcript.getvalue())}"
            )
        child.close()
        return CLIResult(child.exitstatus, strip_ansi(transcript.getvalue()))


@pytest.fixture
def particle(live_asgi_server: LiveServer, tmp_path: Path) -> ParticleCLI:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    cli = ParticleCLI(home, live_asgi_server.url)
    result = cli.run("config", "set", "apiUrl", live_asgi_server.url)
    assert result.exit_code == 0, result.output
    assert cli.config()["apiUrl"] == live_asgi_server.url
    return cli


class ApiJs:
    """particle-api-js 12.0.3, one method call per node process (scripts/api_js_call.js)."""

    def __init__(self, base_url: str, home: Path) -> None:
        self.base_url = base_url
        self.env = _client_environment(home)

    def call(self, method: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        completed = subprocess.run(
            ["node", str(API_JS_SCRIPT), self.base_url, method],
            cwd=CLIENTS_DIR,
            # In the environment, not argv, so passwords stay out of the process list.
            env={**self.env, "API_JS_ARGS": json.dumps(args or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        assert completed.returncode == 0, f"node failed:\n{completed.stdout}\n{completed.stderr}"
        return json.loads(completed.stdout)


@pytest.fixture
def api_js(live_asgi_server: LiveServer, tmp_path: Path) -> ApiJs:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return ApiJs(live_asgi_server.url, home)


class BackgroundProcess:
    """A client process that runs on (``particle subscribe``, scripts/api_js_stream.js): threads
    collect its output lines as they come, so a test can act between them."""

    def __init__(self, argv: list[str], *, cwd: Path, env: dict[str, str]) -> None:
        self.argv = argv
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.errors), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(strip_ansi(line).rstrip("\n"))  # list.append is atomic

    @property
    def transcript(self) -> str:
        text = "\n".join(self.lines)
        return text + ("\n--- stderr ---\n" + "\n".join(self.errors) if self.errors else "")

    def wait_for(self, predicate: Callable[[str], Any], *, start: int = 0, timeout: float = 10) -> int:
        """The index of the first output line from ``start`` on that ``predicate`` accepts."""
        deadline = time.monotonic() + timeout
        while True:
            ended = self.process.poll() is not None and not self._reading  # before the last look
            for index in range(start, len(self.lines)):
                if predicate(self.lines[index]):
                    return index
            if ended or time.monotonic() > deadline:
                pytest.fail(f"{' '.join(self.argv[:2])}: no such line after {timeout}s:\n{self.transcript}")
            time.sleep(0.05)

    @property
    def _reading(self) -> bool:
        return any(reader.is_alive() for reader in self._readers)

    def wait(self, timeout: float = 10) -> int:
        """Wait for the process to end by itself; its exit code."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{' '.join(self.argv[:2])} did not exit in {timeout}s:\n{self.transcript}")
        for reader in self._readers:
            reader.join(5)
        return code

    def interrupt(self, timeout: float = 5) -> int:
        """Ctrl-C, as a user ends it; its exit code once it has ended."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture
def background() -> Iterator[Callable[..., BackgroundProcess]]:
    """``background(argv, cwd=..., env=...)`` starts a process; any still running at teardown is killed."""
    started: list[BackgroundProcess] = []

    def start(argv: list[str], *, cwd: Path, env: dict[str, str]) -> BackgroundProcess:
        process = BackgroundProcess(argv, cwd=cwd, env=env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def account(transactional_db) -> User:
    """Committed, so the server process sees it."""
    return User.objects.create_user(email="maker@example.com", password=PASSWORD, first_name="Mae")


def stored(token: str) -> AccessToken | None:
    """The server-side row of a token a client printed or stored, by checksum."""
    return (
        AccessToken.objects.select_related("user", "application")
        .filter(token_checksum=token_checksum(token))
        .first()
    )


def bearer_get(server: LiveServer, path: str, token: str) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def wait_until(condition: Callable[[], Any], *, timeout: float = 5, what: str = "the condition") -> Any:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def logged_in(particle: ParticleCLI, account: User) -> ParticleCLI:
    """The CLI with a token for ``account`` saved as `particle login` saves it (no login round trip)."""
    token = access_token_create(user=account, expires_in_seconds=3600, client_id="CLI2").token
    config = {**particle.config(), "access_token": token, "username": account.email}
    particle.config_path.write_text(json.dumps(config))
    return particle


@pytest.fixture
def account_token(account: User) -> str:
    return access_token_create(user=account, expires_in_seconds=3600, client_id="particle-api").token


# --- Devices connected to the live server ---------------------------------------------------------


def provision(platform: str = "boron", *, owner: User | None = None) -> ProvisionedDevice:
    """One device with fresh keys, committed so the server sees it."""
    return devices_provision(platform=platform_from_string(platform), count=1, owner=owner)[0]


class OnlineDevice:
    """A ``devices.simulator.SimulatedDevice`` connected to the live server, on a thread with its
    own event loop. It publishes nothing, so its readings hold still; ``simulated`` shows what it
    was asked (``led``, ``signaling``, ``stats.calls``)."""

    def __init__(
        self, server: LiveServer, provisioned: ProvisionedDevice, *, product_version: int = 3
    ) -> None:
        device = provisioned.device
        self.device_id = device.id
        self.simulated = SimulatedDevice(
            DeviceKey(
                device_id=device.id, private_key=provisioned.keys.private_key, platform_id=device.platform_id
            ),
            server.url.replace("http://", "ws://", 1) + "/device/v1",
            rng=random.Random(device.id),  # noqa: S311 (simulated readings)
            publish_rate=0,
            product_version=product_version,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10) -> OnlineDevice:
        self._thread = threading.Thread(target=self._run, name=f"device-{self.device_id}", daemon=True)
        self._thread.start()
        stats = self.simulated.stats
        deadline = time.monotonic() + timeout
        while not stats.connected and not stats.errors and time.monotonic() < deadline:
            time.sleep(0.02)
        if not stats.connected:
            self.stop()
            pytest.fail(f"device {self.device_id} did not come online: {stats.last_error or 'timed out'}")
        return self

    def publish(self, name: str, data: str | None = None, *, timeout: float = 5) -> int:
        """Have the device publish one event now (from any thread); returns the frame's id."""
        assert self._loop is not None, f"device {self.device_id} is not running"
        future = asyncio.run_coroutine_threadsafe(self.simulated.publish(name, data), self._loop)
        return future.result(timeout)

    def stop(self, timeout: float = 10) -> None:
        """Cancel the device's task (it closes its connection on the way out) and wait for the thread."""
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout
        while self._task is None and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if self._loop is not None and self._task is not None:
            with contextlib.suppress(RuntimeError):  # the loop finished meanwhile
                self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        assert not self._thread.is_alive(), f"device {self.device_id} did not stop"
        self._thread = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        task = loop.create_task(self.simulated.run(asyncio.Event()))
        self._loop, self._task = loop, task
        try:
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(task)
        finally:
            loop.close()


@pytest.fixture
def connect_device(live_asgi_server: LiveServer, transactional_db) -> Iterator[Callable[..., OnlineDevice]]:
    """``connect_device(provisioned, **options)`` brings a device online; all go offline at teardown,
    and the server has recorded it before the database is flushed."""
    started: list[OnlineDevice] = []

    def connect(provisioned: ProvisionedDevice, **options: Any) -> OnlineDevice:
        device = OnlineDevice(live_asgi_server, provisioned, **options)
        started.append(device)
        return device.start()

    yield connect
    for device in started:
        device.stop()
    ids = [device.device_id for device in started]
    if ids:
        wait_until(
            lambda: not Device.objects.filter(id__in=ids, online=True).exists(),
            what="the server to record the devices offline",
        )
