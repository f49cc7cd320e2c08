from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone
from oauth2_provider.models import AccessToken

from console.accounts.tokens import token_checksum


def access_token_authenticate(*, token: str) -> AccessToken | None:
    """The live access token with this value, or None (unknown, revoked or expired). One query."""
    if not token or len(token) > 512:
        return None
    access_token = (
        AccessToken.objects.select_related("user", "application", "detail")
        .filter(token_checksum=token_checksum(token))
        .first()
    )
    if access_token is None or access_token.expires <= timezone.now():
        return None
    if access_token.user is not None and not access_token.user.is_active:
        return None
    return access_token


def access_token_list_for_user(*, user) -> QuerySet[AccessToken]:
    return (
        AccessToken.objects.filter(user=user)
        .select_related("application", "detail")
        .order_by("-created", "-id")
    )


def access_token_count_active(*, user) -> int:
    return AccessToken.objects.filter(user=user, expires__gt=timezone.now()).count()


def access_token_find_for_user(*, user, token: str) -> AccessToken | None:
    return AccessToken.objects.filter(user=user, token_checksum=token_checksum(token)).first()
