"""Production mode refuses unsafe configuration, and passes Django's deployment checklist."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SECRET = "k3y-" + "x9Qa" * 15


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {
        key: value for key, value in os.environ.items() if key not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"}
    }
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_checklist_passes_in_production():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_ENV="production",
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS="quanta.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "true", "SECRET_KEY": SECRET, "ALLOWED_HOSTS": "quanta.example.com"}, "DEBUG must be off"),
        ({"ALLOWED_HOSTS": "quanta.example.com"}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "short", "ALLOWED_HOSTS": "quanta.example.com"}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": SECRET}, "ALLOWED_HOSTS must list"),
    ],
)
def test_production_refuses_to_start_unsafely(env, message):
    result = run_manage("check", DJANGO_ENV="production", **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_unknown_environment_name_is_refused():
    result = run_manage("check", DJANGO_ENV="prod")
    assert result.returncode != 0
    assert "DJANGO_ENV must be" in result.stderr


def test_embedded_default_needs_no_configuration(tmp_path):
    env = {"QUANTA_VAR_DIR": str(tmp_path / "var")}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'console.settings';"
                "django.setup();"
                "from django.conf import settings as s;"
                "print(s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'],"
                " s.CELERY_TASK_ALWAYS_EAGER, s.MAILERS['default']['BACKEND'], s.DEBUG)"
            ),
        ],
        cwd=ROOT,
        env={
            k: v
            for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "REDIS_URL", "EMAIL_URL", "DJANGO_SETTINGS_MODULE"}
        }
        | env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "console.layers.InMemoryChannelLayer",
        "True",
        "console.mail.MailboxBackend",
        "True",
    ]
    assert (tmp_path / "var" / "secret_key").exists()
