"""POST /oauth/token in Particle's dialect (PARTICLE_API.md §1.3, §2.9)."""

from __future__ import annotations

import base64

import pytest
from oauth2_provider.models import AccessToken

from console.accounts.models import TokenDetail
from console.accounts.tokens import token_checksum
from console.models import AuditEntry
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def login(client, **overrides):
    form = {
        "grant_type": "password",
        "username": "ada@example.com",
        "password": PASSWORD,
        "client_id": "particle-cli",
        "client_secret": "particle-cli",
        **overrides,
    }
    form = {key: value for key, value in form.items() if value is not None}
    return client.post("/oauth/token", form)


@pytest.mark.parametrize(
    ("client_id", "client_secret"),
    [
        ("particle-cli", "particle-cli"),
        ("CLI2", "client_secret_here"),
        ("particle-api", "particle-api"),
        ("particle", "x"),
    ],
)
def test_password_grant_with_official_clients(client, user, client_id, client_secret):
    response = login(client, client_id=client_id, client_secret=client_secret)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token_type", "access_token", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 7776000
    assert len(body["access_token"]) == 40
    stored = AccessToken.objects.get(token_checksum=token_checksum(body["access_token"]))
    assert stored.user == user
    assert stored.application.client_id == client_id
    assert stored.token == ""  # only the checksum is kept
    assert TokenDetail.objects.get(access_token=stored).hint == body["access_token"][-4:]


def test_client_credentials_as_http_basic(client, user):
    basic = base64.b64encode(b"particle:particle").decode()
    response = client.post(
        "/oauth/token",
        {"grant_type": "password", "username": user.email, "password": PASSWORD},
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )
    assert response.status_code == 200


def test_username_is_case_insensitive(client, user):
    assert login(client, username="ADA@Example.com").status_code == 200


@pytest.mark.parametrize(("expires_in", "expected"), [("0", 0), ("60", 60), ("", 7776000)])
def test_expires_in(client, user, expires_in, expected):
    response = login(client, expires_in=expires_in)
    assert response.json()["expires_in"] == expected


def test_never_expiring_token_reports_null_expiry(client, user):
    token = login(client, expires_in="0").json()["access_token"]
    current = client.get("/v1/access_tokens/current", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert current.status_code == 200
    assert current.json()["expires_at"] is None
    assert current.json()["client_id"] == "particle-cli"


@pytest.mark.parametrize("expires_in", ["-1", "soon", "99999999999"])
def test_bad_expires_in_is_refused(client, user, expires_in):
    response = login(client, expires_in=expires_in)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "expires_in" in response.json()["error_description"]
    assert not AccessToken.objects.exists()


def test_wrong_password(client, user):
    response = login(client, password="nope")
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": "User credentials are invalid"}
    assert not AccessToken.objects.exists()


def test_unknown_user(client, db):
    response = login(client, username="nobody@example.com")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_unknown_client(client, user):
    response = login(client, client_id="someone-else", client_secret="x")
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client", "error_description": "Client authentication failed"}


def test_missing_password(client, user):
    response = login(client, password=None)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "password" in response.json()["error_description"]


def test_unsupported_grant(client, user):
    response = login(client, grant_type="magic")
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    assert response.json()["error_description"]


def test_json_body_is_refused_with_a_clear_message(client, user):
    response = client.post(
        "/oauth/token",
        {"grant_type": "password", "username": user.email, "password": PASSWORD, "client_id": "particle-cli"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "form-encoded" in response.json()["error_description"]


def test_get_is_a_json_405(client, db):
    response = client.get("/oauth/token")
    assert response.status_code == 405
    assert response.json()["error_description"]


def test_inactive_user_cannot_log_in(client, user):
    user.is_active = False
    user.save()
    assert login(client).status_code == 400


def test_login_is_audited(client, user):
    login(client)
    actions = set(AuditEntry.objects.filter(subject_user=user).values_list("action", flat=True))
    assert {"token.create", "account.login"} <= actions


def test_ip_is_locked_out_after_ten_consecutive_failures(client, user, settings):
    for _ in range(settings.QUANTA_LOGIN_IP_FAILURE_LIMIT):
        assert login(client, password="wrong").status_code == 400
    locked = login(client)  # even the right password is refused now
    assert locked.status_code == 429
    assert locked.json()["error"] == "too_many_requests"
    assert "30 minutes" in locked.json()["error_description"]
    assert int(locked["Retry-After"]) > 29 * 60
    assert not AccessToken.objects.exists()


def test_success_resets_the_consecutive_count(client, user, settings):
    for _ in range(settings.QUANTA_LOGIN_IP_FAILURE_LIMIT - 1):
        login(client, password="wrong")
    assert login(client).status_code == 200
    for _ in range(settings.QUANTA_LOGIN_IP_FAILURE_LIMIT - 1):
        login(client, password="wrong")
    assert login(client).status_code == 200


def test_account_cap_holds_across_addresses(client, user, settings):
    settings.QUANTA_LOGIN_ACCOUNT_FAILURE_LIMIT = 5
    for attempt in range(5):
        login(client, password="wrong", REMOTE_ADDR=f"10.0.0.{attempt}")
    response = client.post(
        "/oauth/token",
        {"grant_type": "password", "username": user.email, "password": PASSWORD, "client_id": "particle-cli"},
        REMOTE_ADDR="10.0.1.1",
    )
    assert response.status_code == 429
    assert "this account" in response.json()["error_description"]
