"""Writes owned by the console package: the audit log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from console.models import AuditEntry


def audit_record(
    *,
    actor: Any | None,
    action: str,
    target: Any | None = None,
    target_type: str = "",
    target_id: str = "",
    target_label: str = "",
    subject_user: Any | None = None,
    metadata: dict | None = None,
    ip_address: str | None = None,
    via: str = "console",
) -> AuditEntry:
    """Record one audit entry. ``target`` (a model instance) fills the target fields when given."""
    if target is not None:
        target_type = target_type or target._meta.model_name
        target_id = target_id or str(target.pk)
        target_label = target_label or str(target)[:200]
    actor_user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEntry.objects.create(
        actor=actor_user,
        actor_label=getattr(actor_user, "email", "") or "",
        subject_user=subject_user if subject_user is not None else actor_user,
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_label=target_label,
        metadata=metadata or {},
        ip_address=ip_address,
        via=via,
    )


def audit_prune(*, now=None) -> int:
    """Delete entries older than the retention period; returns how many went."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.QUANTA_AUDIT_RETENTION_DAYS)
    deleted, _ = AuditEntry.objects.filter(created_at__lt=cutoff).delete()
    return deleted
