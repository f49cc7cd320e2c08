"""Drive the official Particle clients (pinned in package.json) against ``live_asgi_server``.

``npm ci`` in this directory installs them. Every client process gets a throwaway ``HOME``, so
the CLI's ``~/.particle`` settings never touch the developer's own.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pexpect
import pytest
from oauth2_provider.models import AccessToken

from console.accounts.models import User
from console.accounts.tokens import token_checksum
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
    home.mkdir()
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
