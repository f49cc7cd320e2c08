"""The production topology: the Procfile declares the processes once, bin/procfile runs them, and
docker-compose runs each of them through bin/procfile, so the three cannot drift apart.

The end-to-end test starts the real processes (uvicorn, one Celery worker per queue, beat) against
PostgreSQL and Redis and drives them like a browser: sign in, open the console's websocket, and
have a worker send the password-reset email.
"""

from __future__ import annotations

import email
import email.policy
import importlib.machinery
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from django.conf import settings

from console.accounts.models import User
from tests.conftest import PASSWORD, ROOT, free_port, require_or_skip, server_environment, wait_for_http

PROCFILE = ROOT / "Procfile"
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROCFILE_SCRIPT = ROOT / "bin" / "procfile"
INFRASTRUCTURE = {"postgres", "redis"}
HAS_PROC = Path("/proc/self/environ").exists()


def _load_procfile_module() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("procfile_script", str(PROCFILE_SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # dataclasses look their module up there
    loader.exec_module(module)
    return module


procfile = _load_procfile_module()


def compose_services(text: str) -> dict[str, list[str] | None]:
    """``{service: command or None}`` from a compose file, without a YAML library.

    Enough YAML for our own docker-compose.yml: services are the two-space-indented keys under
    ``services:``, and commands are written as flow lists, ``command: ["python", "bin/procfile", ...]``.
    """
    services: dict[str, list[str] | None] = {}
    in_services = False
    service = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            in_services = line.rstrip() == "services:"
            continue
        if not in_services:
            continue
        if match := re.fullmatch(r" {2}([A-Za-z0-9_.-]+):\s*", line):
            service = match[1]
            services[service] = None
        elif service and (match := re.fullmatch(r" {4}command:\s*(\[.*\])\s*", line)):
            services[service] = json.loads(match[1])
    return services


# --- The declarations agree ----------------------------------------------------------------------


def test_procfile_declares_web_a_worker_per_queue_beat_and_release():
    entries = procfile.procfile_read(PROCFILE)
    queues = [queue.name for queue in settings.CELERY_TASK_QUEUES]
    assert set(entries) == {"release", "web", "beat", *(f"worker-{queue}" for queue in queues)}
    for queue in queues:
        argv = procfile.command_argv(entries[f"worker-{queue}"], {})
        assert argv[:4] == ["celery", "-A", "console", "worker"]
        assert argv[argv.index("-Q") + 1] == queue, f"worker-{queue} must consume exactly its queue"
    web = procfile.command_argv(entries["web"], {"PORT": "9000", "BIND_ADDRESS": "127.0.0.1"})
    assert web[:6] == ["uvicorn", "console.asgi:application", "--host", "127.0.0.1", "--port", "9000"]
    # Measured choices (docs/performance.md): uvloop, no permessage-deflate, no lifespan events.
    for flags in (["--loop", "uvloop"], ["--ws", "websockets"], ["--ws-per-message-deflate", "false"]):
        assert web[web.index(flags[0]) : web.index(flags[0]) + 2] == flags
    assert "--lifespan" in web
    beat = procfile.command_argv(entries["beat"], {"QUANTA_VAR_DIR": "/srv/quanta"})
    assert beat[beat.index("--schedule") + 1] == "/srv/quanta/celerybeat-schedule"
    assert procfile.select(entries, []) == [name for name in entries if name != "release"]


def test_compose_uses_procfile_commands():
    """Every app service runs one Procfile process through bin/procfile, and every process has one."""
    entries = procfile.procfile_read(PROCFILE)
    services = compose_services(COMPOSE_FILE.read_text())
    assert set(services) >= INFRASTRUCTURE
    runs: dict[str, str] = {}
    for service, argv in services.items():
        if service in INFRASTRUCTURE:
            continue
        assert argv is not None, f"service {service} must declare its command"
        assert argv[:3] == ["python", "bin/procfile", "exec"], f"service {service} bypasses the Procfile"
        assert len(argv) == 4, service
        assert argv[3] in entries, f"service {service} runs {argv[3]!r}, which the Procfile does not declare"
        assert argv[3] not in runs, f"{runs.get(argv[3])} and {service} both run {argv[3]}"
        runs[argv[3]] = service
    assert set(runs) == set(entries), "every Procfile process needs a compose service"
    assert runs["release"] == "migrate"


def test_compose_file_is_valid_yaml():
    yaml = pytest.importorskip("yaml")  # drf-spectacular depends on PyYAML
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    services = document["services"]
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert compose_services(COMPOSE_FILE.read_text()) == {
        name: service.get("command") for name, service in services.items()
    }
    for name in set(services) - INFRASTRUCTURE:
        environment = services[name]["environment"]
        assert environment["DJANGO_ENV"] == "production", name
        assert ".env" in services[name]["env_file"], name
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


# --- bin/procfile --------------------------------------------------------------------------------


def test_expand_uses_defaults_for_unset_and_empty_variables():
    assert procfile.expand("0.0.0.0:${PORT:-8000}", {}) == "0.0.0.0:8000"
    assert procfile.expand("0.0.0.0:${PORT:-8000}", {"PORT": ""}) == "0.0.0.0:8000"
    assert procfile.expand("0.0.0.0:${PORT:-8000}", {"PORT": "9001"}) == "0.0.0.0:9001"
    assert procfile.expand("${UNSET}x", {}) == "x"
    argv = procfile.command_argv("celery -n 'a b@%h' ${Q:-default}", {})
    assert argv == ["celery", "-n", "a b@%h", "default"]


def test_procfile_rejects_malformed_lines(tmp_path):
    path = tmp_path / "Procfile"
    path.write_text("web: daphne\nnot a process line\n")
    with pytest.raises(procfile.ProcfileError, match=r"Procfile:2: expected 'name: command'"):
        procfile.procfile_read(path)
    path.write_text("web: a\nweb: b\n")
    with pytest.raises(procfile.ProcfileError, match="declared twice"):
        procfile.procfile_read(path)


def _procfile_command(path: Path, *args: str) -> list[str]:
    return [sys.executable, str(PROCFILE_SCRIPT), "--procfile", str(path), *args]


def _python_entry(code: str) -> str:
    return f'python -c "{code}"'


def test_run_prefixes_output_and_stops_everything_when_one_fails(tmp_path):
    path = tmp_path / "Procfile"
    path.write_text(
        f"sleeper: {_python_entry("import time; print('up'); time.sleep(60)")}\n"
        f"crasher: {_python_entry("import sys, time; time.sleep(1); print('bye'); sys.exit(3)")}\n"
        "release: false\n"
    )
    started = time.monotonic()
    result = subprocess.run(_procfile_command(path, "run"), capture_output=True, text=True, timeout=30)
    assert time.monotonic() - started < 20
    assert result.returncode == 1, result.stdout
    lines = result.stdout.splitlines()
    assert "sleeper  | up" in lines
    assert "crasher  | bye" in lines
    assert "procfile | crasher exited with code 3, stopping the others" in lines
    assert "procfile | failed: crasher (exit code 3)" in lines
    assert not any(line.startswith("procfile | started release") for line in lines)


@pytest.mark.skipif(not HAS_PROC, reason="finds leftover processes through /proc")
def test_run_leaves_nothing_behind_when_a_process_crashes(tmp_path):
    path = tmp_path / "Procfile"
    path.write_text('crasher: sh -c "sleep 300 & sleep 1; exit 3"\nsleeper: sleep 300\n')
    marker = f"PROCFILE_TEST={tmp_path}"
    result = subprocess.run(
        _procfile_command(path, "run"),
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PROCFILE_TEST": str(tmp_path)},
    )
    assert result.returncode == 1, result.stdout
    leftovers = _processes_with_environment(marker)
    for pid in leftovers:
        os.kill(pid, signal.SIGKILL)
    assert leftovers == [], "the crashed process's background child outlived bin/procfile"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_run_stops_everything_on_a_signal_and_exits_cleanly(tmp_path, signum):
    path = tmp_path / "Procfile"
    sleeper = _python_entry("import time; print('up'); time.sleep(60)")
    path.write_text(f"one: {sleeper}\ntwo: {sleeper}\n")
    log = tmp_path / "run.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            _procfile_command(path, "run"), stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_until(lambda: {"one      | up", "two      | up"} <= set(log.read_text().splitlines()), 20, log)
        os.kill(process.pid, signum)
        assert process.wait(timeout=20) == 0, log.read_text()
    finally:
        _stop_group(process)
    lines = log.read_text().splitlines()
    assert f"procfile | received {signal.Signals(signum).name}, stopping" in lines
    assert "procfile | all processes stopped" in lines


def test_exec_replaces_the_process_and_expands_the_environment(tmp_path):
    path = tmp_path / "Procfile"
    path.write_text(
        f"show: {_python_entry('import os, sys; print(os.getpid(), *sys.argv[1:])')} ${{GREETING:-hello}}\n"
    )
    process = subprocess.Popen(
        _procfile_command(path, "exec", "show"),
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "GREETING": "bonjour"},
    )
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert output.split() == [str(process.pid), "bonjour"]


# --- End to end ------------------------------------------------------------------------------------


def _wait_until(condition: Callable[[], object], timeout: float, log: Path, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    tail = "\n".join(log.read_text().splitlines()[-80:])
    raise AssertionError(f"Timed out after {timeout}s waiting for {what or condition}:\n{tail}")


def _stop_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _processes_with_environment(entry: str) -> list[int]:
    """Live processes whose environment holds ``entry`` (Linux), i.e. what we started."""
    needle = entry.encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(proc.name))
    return found


def _lines_of(log: Path, name: str) -> list[str]:
    prefix = re.compile(rf"^{re.escape(name)}\s+\| ")
    return [prefix.sub("", line) for line in log.read_text().splitlines() if prefix.match(line)]


@pytest.fixture
def production_services() -> None:
    require_or_skip(
        bool(os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")),
        "the production topology test needs DATABASE_URL (PostgreSQL) and REDIS_URL",
    )


@pytest.fixture
def topology(production_services, transactional_db, tmp_path) -> Iterator[tuple[str, Path, Path]]:
    """``bin/procfile run``: every process but release, on the test database and the test's Redis
    (REDIS_URL is inherited, so the web process, the workers and beat share one broker with us)."""
    var_dir = tmp_path / "var"
    log = tmp_path / "procfile.log"
    port = free_port()
    environment = server_environment(
        var_dir,
        PORT=str(port),
        BIND_ADDRESS="127.0.0.1",
        **{f"WORKER_{queue.name.upper()}_CONCURRENCY": "1" for queue in settings.CELERY_TASK_QUEUES},
    )
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, str(PROCFILE_SCRIPT), "run"],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    marker = f"QUANTA_VAR_DIR={var_dir}"
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/login/", process, log, timeout=60)
        for queue in settings.CELERY_TASK_QUEUES:
            _wait_until(
                lambda queue=queue: any(
                    re.search(rf"\b{queue.name}@\S+ ready\.", line)
                    for line in _lines_of(log, f"worker-{queue.name}")
                ),
                60,
                log,
                f"worker-{queue.name} to be ready",
            )
        yield url, var_dir, log

        # Stopping: SIGTERM reaches bin/procfile alone (its own session), which forwards it.
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
        assert "all processes stopped" in _lines_of(log, "procfile")
        if HAS_PROC:
            _wait_until(lambda: not _processes_with_environment(marker), 10, log, "no process left behind")
    finally:
        _stop_group(process)
        if HAS_PROC:
            for pid in _processes_with_environment(marker):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.topology
def test_production_processes_end_to_end(topology):
    import httpx
    from websockets.sync.client import connect

    url, var_dir, log = topology
    user = User.objects.create_user(email="ops@example.com", password=PASSWORD)

    with httpx.Client(base_url=url, timeout=10, trust_env=False) as client:
        # Sign in through the login form.
        assert client.get("/login/").status_code == 200
        response = client.post(
            "/login/",
            data={
                "username": user.email,
                "password": PASSWORD,
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
        )
        assert response.status_code == 302, response.text
        assert response.headers["location"] == "/"
        session = client.cookies[settings.SESSION_COOKIE_NAME]
        home = client.get("/")
        assert home.status_code == 200
        assert user.email in home.text

        # The console's websocket, through the same server and the Redis channel layer.
        port = url.rsplit(":", 1)[1]
        with connect(
            f"ws://127.0.0.1:{port}/ws/console",
            origin=f"http://127.0.0.1:{port}",
            additional_headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"},
            open_timeout=10,
            proxy=None,
        ) as websocket:
            assert json.loads(websocket.recv(timeout=10)) == {"type": "hello", "user": user.email}
            websocket.send(json.dumps({"type": "ping"}))
            assert json.loads(websocket.recv(timeout=10)) == {"type": "pong"}

        # A task: the web process enqueues the reset email, worker-default sends it.
        response = client.post(
            "/password-reset/",
            data={"email": user.email, "csrfmiddlewaretoken": client.cookies["csrftoken"]},
        )
        assert response.status_code == 302, response.text

    mail_dir = var_dir / "mail"
    _wait_until(lambda: list(mail_dir.glob("*.eml")), 30, log, "the password reset email")
    [sent] = mail_dir.glob("*.eml")
    message = email.message_from_bytes(sent.read_bytes(), policy=email.policy.default)
    assert message["To"] == user.email
    assert "/password-reset/" in message.get_body(preferencelist=("plain",)).get_content()

    worker = "\n".join(_lines_of(log, "worker-default"))
    assert re.search(r"Task console\.tasks\.send_email\[[0-9a-f-]+\] received", worker), worker
    assert re.search(r"Task console\.tasks\.send_email\[[0-9a-f-]+\] succeeded", worker), worker
    assert "send_email" not in "\n".join(_lines_of(log, "web"))  # not run eagerly by the web process
    assert "beat: Starting..." in "\n".join(_lines_of(log, "beat"))
