"""Unit and service tests for the console package's plumbing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from celery.schedules import schedule
from django.core.mail import EmailMultiAlternatives
from django.test import RequestFactory
from django.utils import timezone

from console import mail, nav, permissions
from console.accounts import throttle
from console.errors import PermissionDenied, RateLimited
from console.http import client_ip
from console.models import AuditEntry
from console.scheduler import InProcessScheduler
from console.services import audit_prune, audit_record


# --- Permission table -------------------------------------------------------------------------------
def test_every_action_allows_the_owner_and_denies_nobody_role():
    for action in permissions.PERMISSIONS:
        assert permissions.role_can(permissions.Role.OWNER, action)
        assert not permissions.role_can(None, action)


def test_viewers_only_read():
    writable = [a for a in permissions.PERMISSIONS if permissions.role_can("viewer", a)]
    assert all(action.endswith(".read") for action in writable)


def test_only_the_owner_manages_billing():
    assert [r for r in permissions.Role if permissions.role_can(r, "billing.manage")] == [
        permissions.Role.OWNER
    ]


def test_unknown_action_is_an_error_not_a_grant():
    with pytest.raises(KeyError):
        permissions.role_can("owner", "device.teleport")


def test_require_raises_with_a_message():
    with pytest.raises(PermissionDenied, match="firmware release"):
        permissions.require("developer", "firmware.release")


# --- Login throttle (pure cache logic) ----------------------------------------------------------------
def test_ip_lockout_then_expiry(settings):
    settings.QUANTA_LOGIN_IP_FAILURE_LIMIT = 3
    now = 1_000_000.0
    for _ in range(3):
        throttle.login_check_allowed(ip="1.2.3.4", username="a@x.io", now=now)
        throttle.login_record_failure(ip="1.2.3.4", username="a@x.io", now=now)
    with pytest.raises(RateLimited) as locked:
        throttle.login_check_allowed(ip="1.2.3.4", username="a@x.io", now=now + 60)
    assert locked.value.retry_after == settings.QUANTA_LOGIN_IP_LOCKOUT_SECONDS - 60
    assert "29 minutes" in locked.value.message
    throttle.login_check_allowed(ip="5.6.7.8", username="b@x.io", now=now + 60)  # other IPs are fine
    throttle.login_check_allowed(
        ip="1.2.3.4", username="a@x.io", now=now + settings.QUANTA_LOGIN_IP_LOCKOUT_SECONDS + 1
    )


def test_account_window(settings):
    settings.QUANTA_LOGIN_ACCOUNT_FAILURE_LIMIT = 2
    now = 2_000_000.0
    throttle.login_record_failure(ip="1.1.1.1", username="A@x.io", now=now)
    throttle.login_record_failure(ip="2.2.2.2", username="a@x.io", now=now + 10)
    with pytest.raises(RateLimited, match="this account"):
        throttle.login_check_allowed(ip="3.3.3.3", username="a@X.io", now=now + 20)
    throttle.login_check_allowed(ip="3.3.3.3", username="a@x.io", now=now + 3601)


# --- Client address -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "9.9.9.9", "10.0.0.1"),
        (1, "9.9.9.9, 8.8.8.8", "8.8.8.8"),
        (2, "6.6.6.6, 9.9.9.9, 8.8.8.8", "9.9.9.9"),
    ],
)
def test_client_ip_trusts_only_configured_proxies(settings, proxies, forwarded, expected):
    settings.QUANTA_TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


# --- Audit log ---------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_audit_record_and_prune(user, settings):
    entry = audit_record(
        actor=user, action="token.create", target=user, metadata={"client": "cli"}, via="api"
    )
    assert (entry.actor_label, entry.subject_user, entry.target_type) == (user.email, user, "user")
    AuditEntry.objects.filter(pk=entry.pk).update(created_at=timezone.now() - timedelta(days=400))
    audit_record(actor=None, subject_user=user, action="account.password_reset")
    assert audit_prune() == 1
    assert AuditEntry.objects.get().actor_label == ""


# --- Nav registry ---------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_nav_registry_orders_and_hides(rf, user):
    nav.nav_register(
        nav.NavItem(key="hidden", label="Hidden", url_name="console:home", icon="x", visible=lambda r: False)
    )
    try:
        request = rf.get("/")
        request.user = user
        labels = [item.label for item in nav.nav_items(request, nav.Section.ACCOUNT)]
        assert labels == ["Account", "Access tokens", "Audit log", "API reference"]
        assert "Hidden" not in [item.label for item in nav.nav_items(request, nav.Section.MAIN)]
    finally:
        nav._registry.pop("hidden")


# --- Dev mailbox --------------------------------------------------------------------------------------------
def test_mailbox_backend_round_trip(mailbox):
    message = EmailMultiAlternatives(
        "Reset your password", "Click https://x.io/r", "q@x.io", ["ada@example.com"]
    )
    message.attach_alternative("<p>Click</p>", "text/html")
    assert mail.MailboxBackend().send_messages([message]) == 1
    [stored] = mail.mailbox_list()
    assert (stored.subject, stored.to, stored.text.strip()) == (
        "Reset your password",
        "ada@example.com",
        "Click https://x.io/r",
    )
    assert stored.html == "<p>Click</p>\n" or stored.html.strip() == "<p>Click</p>"
    assert mail.mailbox_get(message_id=stored.id) == stored
    assert mail.mailbox_get(message_id="../secret_key") is None
    assert not list(mailbox.glob(".*"))  # no temporary files left behind


def test_mailbox_reads_plain_messages(mailbox):
    mailbox.mkdir(parents=True)
    plain = EmailMessage()
    plain["Subject"], plain["To"], plain["From"] = "Hi", "a@x.io", "b@x.io"
    plain.set_content("text only")
    (mailbox / "20260101T000000000000-abcd1234.eml").write_bytes(plain.as_bytes())
    [stored] = mail.mailbox_list()
    assert stored.html is None
    assert stored.text.strip() == "text only"
    assert stored.date is None


# --- In-process scheduler -------------------------------------------------------------------------------
@pytest.mark.django_db
def test_in_process_scheduler_runs_due_jobs(user, settings):
    AuditEntry.objects.create(action="old", subject_user=user)
    AuditEntry.objects.update(created_at=timezone.now() - timedelta(days=1000))
    start = datetime.now(UTC) - timedelta(hours=2)
    scheduler = InProcessScheduler(
        {"prune": {"task": "console.tasks.prune_audit_log", "schedule": schedule(timedelta(hours=1))}},
        now=start,
    )
    wait = scheduler.run_pending()
    assert not AuditEntry.objects.filter(action="old").exists()
    assert 1 <= wait <= 3600
    assert scheduler.entries["prune"]["last_run_at"] > start


def test_beat_schedule_tasks_exist():
    from console.celery import app

    app.loader.import_default_modules()
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks, f"beat schedules unknown task {entry['task']}"


def test_celery_queues_and_reliability_settings():
    from console.celery import app

    assert {q.name for q in app.conf.task_queues} == {"default", "ota", "webhooks", "billing"}
    assert app.conf.task_acks_late
    assert app.conf.task_reject_on_worker_lost
    assert app.conf.task_annotations["*"]["max_retries"] == 5
