"""Reads owned by the console package."""

from __future__ import annotations

from django.db.models import QuerySet

from console.models import AuditEntry


def audit_entries_for_user(*, user) -> QuerySet[AuditEntry]:
    """The entries shown on a user's audit page: what they did and what was done to their account."""
    return AuditEntry.objects.filter(subject_user=user).select_related("actor")
