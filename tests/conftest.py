"""Shared fixtures. Without DATABASE_URL/REDIS_URL the suite runs on the embedded default."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.cache import cache
from rest_framework.test import APIClient

from console.accounts.models import User
from console.accounts.services import access_token_create

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PASSWORD = "correct-horse-battery-9"


def require_or_skip(condition: bool, reason: str) -> None:
    """Skip loudly when a prerequisite is missing locally; in CI a missing prerequisite fails."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI prerequisite missing: {reason}")
    sys.stderr.write(f"\n*** SKIPPED: {reason} ***\n")
    pytest.skip(reason)


def _flush_retrying_on_deadlock() -> None:
    """A live server may still be writing (a disconnected device's batched metering upsert) when a
    transactional test flushes the database; PostgreSQL then aborts one side as a deadlock. The
    flush is retried so the test's teardown does not fail on the server's late bookkeeping."""
    from django.db import OperationalError
    from django.test import TransactionTestCase

    teardown = TransactionTestCase._fixture_teardown

    def fixture_teardown(self) -> None:
        attempts = 5
        for attempt in range(1, attempts + 1):
            try:
                teardown(self)
                break
            except Exception as error:  # flush wraps the database error in a CommandError
                cause = error if isinstance(error, OperationalError) else error.__cause__
                if (
                    not isinstance(cause, OperationalError)
                    or "deadlock" not in str(cause)
                    or attempt == attempts
                ):
                    raise
                time.sleep(0.2)

    TransactionTestCase._fixture_teardown = fixture_teardown


_flush_retrying_on_deadlock()


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    from events import history, ratelimit, sse, usage

    cache.clear()  # login throttles and other counters never leak between tests
    history.ring.clear()
    sse.slots.clear()
    ratelimit.buckets.clear()
    yield
    usage.counter.discard()


@pytest.fixture(autouse=True)
def _test_settings(tmp_path, settings) -> None:
    settings.MAIL_DIR = tmp_path / "mail"
    settings.QUANTA_INPROCESS_SCHEDULER = False  # tests run periodic jobs explicitly
    settings.QUANTA_EVENT_USAGE_FLUSH_SECONDS = 3600  # no background writes outside the test's transaction


@pytest.fixture(autouse=True)
def _fresh_channel_layer() -> Iterator[None]:
    """Each test gets its own channel layer instance: a Redis layer keeps locks and buffers bound
    to the event loop it first ran on, and every async test has a loop of its own."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _tasks_run_in_process() -> Iterator[None]:
    """Tasks run inline in tests, also with REDIS_URL set; tests/test_topology.py proves the
    real broker and workers."""
    from console.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def mailbox(settings) -> Path:
    """Send through the dev mailbox backend (tests otherwise use Django's in-memory outbox)."""
    settings.MAILERS = {"default": {"BACKEND": "console.mail.MailboxBackend"}}
    return settings.MAIL_DIR


@pytest.fixture
def user(db) -> User:
    return User.objects.create_user(email="ada@example.com", password=PASSWORD, first_name="Ada")


@pytest.fixture
def other_user(db) -> User:
    return User.objects.create_user(email="grace@example.com", password=PASSWORD)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def token(user) -> str:
    return access_token_create(user=user, expires_in_seconds=3600, client_id="particle").token


@pytest.fixture
def auth_client(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


# --- A live server in its own process, for real clients and browsers ---------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url_for_processes() -> str:
    """The URL of the test database pytest-django created, for processes we start."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "127.0.0.1"
    port = db["PORT"] or 5432
    return f"postgres://{credentials}@{host}:{port}/{db['NAME']}"


def server_environment(var_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_processes(),
        "QUANTA_VAR_DIR": str(var_dir),
        "DJANGO_ENV": "development",
        "DEBUG": "true",
        "QUANTA_LOGIN_IP_FAILURE_LIMIT": "1000",
        "QUANTA_LOGIN_ACCOUNT_FAILURE_LIMIT": "1000",
        "QUANTA_INPROCESS_SCHEDULER": "false",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def wait_for_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The server exited early:\n{log.read_text()}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"The server did not answer {url} in {timeout}s:\n{log.read_text()}")


class LiveServer:
    def __init__(self, url: str, var_dir: Path) -> None:
        self.url = url
        self.var_dir = var_dir

    @property
    def mail_dir(self) -> Path:
        return self.var_dir / "mail"


@pytest.fixture(scope="session")
def live_asgi_server(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[LiveServer]:
    """daphne serving the test database on a free port. Tests using it need ``transactional_db``
    so what they write is committed and visible to the server."""
    var_dir = tmp_path_factory.mktemp("server-var")
    log = var_dir / "daphne.log"
    port = free_port()
    daphne = shutil.which("daphne", path=str(Path(sys.executable).parent)) or "daphne"
    with log.open("w") as output:
        process = subprocess.Popen(
            [daphne, "-b", "127.0.0.1", "-p", str(port), "console.asgi:application"],
            cwd=ROOT,
            env=server_environment(var_dir),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/login/", process, log)
        yield LiveServer(url, var_dir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Same algorithm name, so a live server verifies these hashes; far fewer iterations."""

    iterations = 1000


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    settings.PASSWORD_HASHERS = ["tests.conftest.FastPBKDF2PasswordHasher"]
