"""/v1/user, /v1/users and /v1/access_tokens: shapes, token transports, errors, authorization."""

from __future__ import annotations

import base64

import pytest
from django.utils import timezone
from oauth2_provider.models import AccessToken

from console.accounts.models import TokenDetail, User
from console.accounts.services import access_token_create
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def basic(email: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{email}:{password}".encode()).decode()


# --- Token transports and auth errors -----------------------------------------------------------------
def test_bearer_header(api_client, user, token):
    response = api_client.get("/v1/user", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response.json()["username"] == user.email


def test_legacy_query_parameter(api_client, token):
    assert api_client.get(f"/v1/user?access_token={token}").status_code == 200


def test_legacy_form_field(api_client, user, token):
    response = api_client.post(
        "/v1/access_tokens", {"access_token": token, "expires_in": "60"}, format="multipart"
    )
    assert response.status_code == 200


def test_missing_token_is_400_with_particles_message(api_client, db):
    response = api_client.get("/v1/user")
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "The access token was not found",
    }


@pytest.mark.parametrize("value", ["nope", "0" * 40, "x" * 600, "Bearer"])
def test_invalid_token_is_401(api_client, db, value):
    response = api_client.get("/v1/user", HTTP_AUTHORIZATION=f"Bearer {value}")
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "The access token provided is invalid.",
    }


def test_expired_token_is_401(api_client, user, token):
    AccessToken.objects.update(expires=timezone.now())
    assert api_client.get("/v1/user", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401


def test_token_of_inactive_user_is_401(api_client, user, token):
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert api_client.get("/v1/user", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401


def test_last_used_is_recorded_at_most_once_a_minute(auth_client, token, django_assert_num_queries):
    auth_client.get("/v1/user")
    detail = TokenDetail.objects.get()
    first = detail.last_used_at
    assert first is not None
    with django_assert_num_queries(1):  # the token lookup only: no write within the minute
        auth_client.get("/v1/user")
    assert TokenDetail.objects.get().last_used_at == first


def test_unknown_route_and_wrong_method_are_json(auth_client):
    missing = auth_client.get("/v1/nothing/here")
    assert missing.status_code == 404
    assert missing.json()["ok"] is False
    wrong = auth_client.patch("/v1/user")
    assert wrong.status_code == 405
    assert "PATCH" in wrong.json()["error_description"]


def test_malformed_json_body_is_a_clear_400(auth_client):
    response = auth_client.post("/v1/access_tokens", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON" in response.json()["error_description"]


# --- /v1/users ---------------------------------------------------------------------------------------------
def test_create_user_via_api(api_client, db):
    response = api_client.post("/v1/users", {"username": "New@Example.com", "password": PASSWORD})
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert User.objects.filter(email="new@example.com").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "x@example.com", "password": "123"}, "password"),
        ({"username": "bad", "password": PASSWORD}, "username"),
    ],
)
def test_create_user_validation(api_client, db, body, field):
    response = api_client.post("/v1/users", body)
    assert response.status_code == 400
    assert response.json()["ok"] is False
    assert field in response.json()["error_description"] or response.json().get("field") == field
    assert not User.objects.exists()


def test_create_duplicate_user(api_client, user):
    response = api_client.post("/v1/users", {"username": user.email.upper(), "password": PASSWORD})
    assert response.status_code == 400
    assert "already exists" in response.json()["error_description"]


# --- /v1/access_tokens -------------------------------------------------------------------------------------
def test_list_with_password_basic_auth(api_client, user, token, other_user):
    access_token_create(user=other_user, expires_in_seconds=60)
    response = api_client.get("/v1/access_tokens", HTTP_AUTHORIZATION=basic(user.email, PASSWORD))
    assert response.status_code == 200
    [listed] = response.json()
    assert listed["token"] == f"…{token[-4:]}"
    assert listed["client"] == "particle"
    assert set(listed) == {"id", "token", "client", "created_at", "expires_at", "last_used_at", "description"}


def test_list_with_wrong_password(api_client, user):
    response = api_client.get("/v1/access_tokens", HTTP_AUTHORIZATION=basic(user.email, "wrong"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token" or response.json()["error_description"]


def test_create_token_via_api(auth_client, user):
    response = auth_client.post(
        "/v1/access_tokens", {"expires_in": 0, "description": "nightly"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert len(body["token"]) == 40
    assert body["expires_at"] is None
    assert body["description"] == "nightly"


def test_create_token_with_bad_lifetime(auth_client, user):
    before = AccessToken.objects.count()
    response = auth_client.post("/v1/access_tokens", {"expires_in": "-5"}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "expires_in"
    assert AccessToken.objects.count() == before


def test_current_token(auth_client, token):
    body = auth_client.get("/v1/access_tokens/current").json()
    assert body["client_id"] == "particle"
    assert body["expires_at"].endswith("Z")
    assert body["scopes"] == []
    assert body["orgs"] == []


def test_current_token_requires_a_token_not_a_password(api_client, user):
    response = api_client.get("/v1/access_tokens/current", HTTP_AUTHORIZATION=basic(user.email, PASSWORD))
    assert response.status_code in {400, 401}


def test_delete_current_token_logs_out(auth_client, token):
    assert auth_client.delete("/v1/access_tokens/current").json() == {"ok": True}
    assert auth_client.get("/v1/user").status_code == 401


def test_delete_token_by_value_without_credentials(api_client, token):
    """particle token revoke and api-js deleteAccessToken send only the token in the path."""
    assert api_client.delete(f"/v1/access_tokens/{token}").json() == {"ok": True}
    assert not AccessToken.objects.exists()


def test_delete_unknown_token(api_client, db):
    response = api_client.delete("/v1/access_tokens/" + "f" * 40)
    assert response.status_code == 404
    assert response.json()["error_description"]


def test_cannot_delete_another_users_token_while_signed_in(auth_client, other_user):
    theirs = access_token_create(user=other_user, expires_in_seconds=60)
    assert auth_client.delete(f"/v1/access_tokens/{theirs.token}").status_code == 404
    assert AccessToken.objects.filter(pk=theirs.access_token.pk).exists()


def test_delete_all_tokens(auth_client, user, other_user):
    access_token_create(user=user, expires_in_seconds=60)
    theirs = access_token_create(user=other_user, expires_in_seconds=60)
    response = auth_client.delete("/v1/access_tokens")
    assert response.json() == {"ok": True, "deleted": 2}
    assert list(AccessToken.objects.values_list("pk", flat=True)) == [theirs.access_token.pk]


def test_session_auth_needs_csrf(user):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get("/v1/user").status_code == 200
    response = client.delete("/v1/access_tokens")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error_description"]


def test_openapi_schema_is_served(api_client, db):
    response = api_client.get("/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert "/oauth/token" in schema["paths"]
    assert "/v1/user" in schema["paths"]
