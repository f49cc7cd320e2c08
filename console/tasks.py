from __future__ import annotations

from celery import shared_task
from django.core.mail import EmailMultiAlternatives

from console.services import audit_prune


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_email(
    *, subject: str, body: str, to: list[str], from_email: str | None = None, html: str | None = None
) -> None:
    message = EmailMultiAlternatives(subject=subject, body=body, from_email=from_email, to=to)
    if html:
        message.attach_alternative(html, "text/html")
    message.send()


@shared_task
def prune_audit_log() -> int:
    return audit_prune()
