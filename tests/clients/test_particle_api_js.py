"""particle-api-js 12.0.3, called from node (scripts/api_js_call.js), against a live server.

Each call is one node process, so the server's database can be checked between the calls.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from oauth2_provider.models import AccessToken

from console.accounts import services
from console.accounts.models import User
from console.models import AuditEntry
from tests.clients.conftest import stored
from tests.conftest import PASSWORD

pytestmark = pytest.mark.clients

API_JS_VERSION = "12.0.3"
INVALID_TOKEN = "The access token provided is invalid."
BAD_CREDENTIALS = "User credentials are invalid"


def succeeded(outcome: dict) -> dict:
    assert outcome["ok"], outcome
    assert outcome["version"] == API_JS_VERSION
    return outcome["body"]


def api_js_login(api_js, email: str, **extra) -> str:
    body = succeeded(api_js.call("login", {"username": email, "password": PASSWORD, **extra}))
    return body["access_token"]


def test_login_user_info_then_logout(api_js, account):
    login = api_js.call("login", {"username": account.email, "password": PASSWORD})

    body = succeeded(login)
    assert login["statusCode"] == 200
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 7776000  # api-js asks for its default tokenDuration explicitly
    assert body["refresh_token"]
    token = body["access_token"]
    access_token = stored(token)
    assert access_token.user == account
    assert access_token.application.client_id == "particle-api"
    assert abs(access_token.expires - (timezone.now() + timedelta(seconds=7776000))) < timedelta(minutes=1)
    assert AuditEntry.objects.filter(actor=account, action="account.login", via="api").count() == 1

    user = api_js.call("getUserInfo", {"auth": token})

    assert succeeded(user)["username"] == account.email
    assert user["body"]["account_info"]["first_name"] == account.first_name
    assert user["body"]["mfa"] == {"enabled": False}

    deleted = api_js.call("deleteCurrentAccessToken", {"auth": token})

    assert succeeded(deleted) == {"ok": True}
    assert deleted["statusCode"] == 200
    assert stored(token) is None
    assert AuditEntry.objects.filter(
        actor=account, action="token.revoke", target_id=str(access_token.pk), via="api"
    ).exists()

    after = api_js.call("getUserInfo", {"auth": token})

    assert after["ok"] is False
    assert after["statusCode"] == 401
    assert after["body"] == {"error": "invalid_token", "error_description": INVALID_TOKEN}
    assert after["shortErrorDescription"] == INVALID_TOKEN
    assert after["errorDescription"].endswith(f"/v1/user - {INVALID_TOKEN}")


def test_login_with_bad_password_is_rejected(api_js, account):
    outcome = api_js.call("login", {"username": account.email, "password": "not-the-password"})

    assert outcome["ok"] is False
    assert outcome["statusCode"] == 400
    assert outcome["shortErrorDescription"] == BAD_CREDENTIALS
    assert outcome["body"] == {"error": "invalid_grant", "error_description": BAD_CREDENTIALS}
    assert not AccessToken.objects.exists()
    assert not AuditEntry.objects.filter(action__in=["account.login", "token.create"]).exists()


def test_login_with_token_duration_zero_never_expires(api_js, account):
    token = api_js_login(api_js, account.email, tokenDuration=0)

    assert stored(token).expires > timezone.now() + timedelta(days=50 * 365)
    current = succeeded(api_js.call("getUserInfo", {"auth": token}))
    assert current["username"] == account.email


def test_delete_access_token_needs_only_the_token(api_js, account):
    token = api_js_login(api_js, account.email)
    other = api_js_login(api_js, account.email)
    access_token_id = stored(token).pk

    # deleteAccessToken sends no Authorization header: the token in the path is the credential.
    deleted = api_js.call("deleteAccessToken", {"token": token})

    assert succeeded(deleted) == {"ok": True}
    assert stored(token) is None
    assert stored(other) is not None
    assert AuditEntry.objects.filter(
        actor=account, action="token.revoke", target_id=str(access_token_id), via="api"
    ).exists()
    assert api_js.call("getUserInfo", {"auth": token})["statusCode"] == 401
    assert succeeded(api_js.call("getUserInfo", {"auth": other}))["username"] == account.email

    again = api_js.call("deleteAccessToken", {"token": token})

    assert again["ok"] is False
    assert again["statusCode"] == 404
    assert again["shortErrorDescription"]  # readable, not just "HTTP error 404"
    assert stored(other) is not None


def test_delete_active_access_tokens_revokes_all_of_the_users_tokens(api_js, account):
    tokens = [api_js_login(api_js, account.email) for _ in range(2)]
    tokens.append(
        services.access_token_create(user=account, expires_in_seconds=3600, client_id="particle").token
    )
    stranger = User.objects.create_user(email="stranger@example.com", password=PASSWORD)
    strangers_token = api_js_login(api_js, stranger.email)

    outcome = api_js.call("deleteActiveAccessTokens", {"auth": tokens[0]})

    assert succeeded(outcome) == {"ok": True, "deleted": 3}
    assert not AccessToken.objects.filter(user=account).exists()
    assert AuditEntry.objects.get(actor=account, action="token.revoke_all").metadata == {"count": 3}
    for token in tokens:
        assert api_js.call("getUserInfo", {"auth": token})["statusCode"] == 401
    assert stored(strangers_token).user == stranger
    assert succeeded(api_js.call("getUserInfo", {"auth": strangers_token}))["username"] == stranger.email
