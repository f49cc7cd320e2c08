"""Account and access-token writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, RefreshToken, set_token_value

from console.accounts.models import TokenDetail, User
from console.accounts.tokens import generate_access_token
from console.errors import ApplicationError
from console.realtime import user_notify
from console.services import audit_record

CONSOLE_CLIENT_ID = "quanta-console"
CLIENT_LABELS = {
    "particle-cli": "Particle CLI",
    "CLI2": "Particle CLI",
    "particle-api": "particle-api-js",
    "particle": "API",
    "user": "Particle CLI",
    CONSOLE_CLIENT_ID: "Console",
}


def client_label(application: Application | None) -> str:
    if application is None:
        return "Unknown client"
    return CLIENT_LABELS.get(application.client_id, application.name or application.client_id)


def builtin_client_get(*, client_id: str) -> Application | None:
    """The application row for one of the official tools' client ids, created on first use."""
    if client_id != CONSOLE_CLIENT_ID and client_id not in settings.QUANTA_BUILTIN_OAUTH_CLIENTS:
        return None
    application, _ = Application.objects.get_or_create(
        client_id=client_id,
        defaults={
            "name": CLIENT_LABELS.get(client_id, client_id),
            "client_type": Application.CLIENT_PUBLIC,
            "authorization_grant_type": Application.GRANT_PASSWORD,
            "client_secret": "",
            "hash_client_secret": False,
            "skip_authorization": True,
        },
    )
    return application


def user_sign_up(*, email: str, password: str, ip_address: str | None = None) -> User:
    email = User.objects.normalize_email(email.strip()).lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ApplicationError("An account with this email address already exists.", field="email")
    candidate = User(email=email)
    try:
        password_validation.validate_password(password, candidate)
    except ValidationError as error:
        raise ApplicationError(" ".join(error.messages), field="password") from None
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password)
    except IntegrityError:  # a concurrent sign-up with the same address won the race
        raise ApplicationError("An account with this email address already exists.", field="email") from None
    audit_record(actor=user, action="account.create", target=user, ip_address=ip_address)
    return user


def user_profile_update(*, user: User, first_name: str, last_name: str) -> User:
    user.first_name = first_name.strip()
    user.last_name = last_name.strip()
    user.save(update_fields=["first_name", "last_name"])
    audit_record(actor=user, action="account.update", target=user)
    return user


def user_password_change(*, user: User, new_password: str, ip_address: str | None = None) -> None:
    user.set_password(new_password)
    user.save(update_fields=["password"])
    audit_record(actor=user, action="account.password_change", target=user, ip_address=ip_address)


def user_password_reset_complete(*, user: User) -> None:
    audit_record(actor=None, subject_user=user, action="account.password_reset", target=user)


def user_logged_in(*, user: User, ip_address: str | None, via: str) -> None:
    audit_record(actor=user, action="account.login", target=user, ip_address=ip_address, via=via)


@dataclass(frozen=True)
class IssuedToken:
    access_token: AccessToken
    token: str  # the plain value, returned to the caller once and never stored


def access_token_detail_record(
    *, access_token: AccessToken, token: str, description: str = ""
) -> TokenDetail:
    return TokenDetail.objects.create(
        access_token=access_token, hint=token[-4:], description=description[:100]
    )


def access_token_issued(
    *, access_token: AccessToken, token: str, ip_address: str | None, via: str, description: str = ""
) -> None:
    """Bookkeeping for a token issued by any path: its detail row, the audit entry, a console toast."""
    access_token_detail_record(access_token=access_token, token=token, description=description)
    user = access_token.user
    label = client_label(access_token.application)
    audit_record(
        actor=user,
        action="token.create",
        target_type="access_token",
        target_id=str(access_token.pk),
        target_label=f"…{token[-4:]} ({label})",
        metadata={"client": access_token.application.client_id if access_token.application else None},
        ip_address=ip_address,
        via=via,
    )
    if user is not None and via != "console":
        user_notify(user_id=user.pk, message=f"A new access token was created for {label}.")


@transaction.atomic
def access_token_create(
    *,
    user: User,
    expires_in_seconds: int,
    client_id: str = CONSOLE_CLIENT_ID,
    description: str = "",
    ip_address: str | None = None,
    via: str = "console",
) -> IssuedToken:
    application = builtin_client_get(client_id=client_id)
    if application is None:
        raise ApplicationError(f"Unknown client {client_id!r}.", field="client_id")
    token = generate_access_token()
    access_token = AccessToken(
        user=user,
        application=application,
        scope="*",
        expires=timezone.now() + timedelta(seconds=expires_in_seconds),
    )
    set_token_value(access_token, token)
    access_token.save()
    access_token_issued(
        access_token=access_token, token=token, ip_address=ip_address, via=via, description=description
    )
    return IssuedToken(access_token=access_token, token=token)


def access_token_revoke(
    *, user: User, access_token: AccessToken, ip_address: str | None = None, via: str = "console"
) -> None:
    if access_token.user_id != user.pk:
        raise ApplicationError("That access token does not belong to you.")
    detail = getattr(access_token, "detail", None)
    audit_record(
        actor=user,
        action="token.revoke",
        target_type="access_token",
        target_id=str(access_token.pk),
        target_label=f"…{detail.hint} ({client_label(access_token.application)})" if detail else "",
        ip_address=ip_address,
        via=via,
    )
    RefreshToken.objects.filter(access_token=access_token).delete()
    access_token.delete()


@transaction.atomic
def access_token_revoke_all(*, user: User, ip_address: str | None = None, via: str = "console") -> int:
    _, per_model = AccessToken.objects.filter(user=user).delete()
    deleted = per_model.get(AccessToken._meta.label, 0)
    RefreshToken.objects.filter(user=user).delete()
    audit_record(
        actor=user,
        action="token.revoke_all",
        target=user,
        metadata={"count": deleted},
        ip_address=ip_address,
        via=via,
    )
    return deleted


def access_token_touch(*, access_token: AccessToken, ip_address: str | None) -> None:
    """Note that the token was used, at most once a minute per token (a conditional UPDATE)."""
    now = timezone.now()
    detail = getattr(access_token, "detail", None)
    resolution = timedelta(seconds=settings.QUANTA_TOKEN_LAST_USED_RESOLUTION_SECONDS)
    if detail is None or (detail.last_used_at is not None and now - detail.last_used_at < resolution):
        return
    TokenDetail.objects.filter(pk=detail.pk).update(last_used_at=now, last_used_ip=ip_address)
    detail.last_used_at = now
