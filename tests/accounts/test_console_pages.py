"""Sign-up, sign-in, password reset and change, the account and tokens pages."""

from __future__ import annotations

import re

import pytest
from oauth2_provider.models import AccessToken

from console import mail
from console.accounts.models import User
from console.accounts.services import access_token_create
from console.accounts.tokens import token_checksum
from console.models import AuditEntry
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_login_page_renders(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b"Sign in" in response.content
    assert "Content-Security-Policy" in response


def test_signup_creates_account_and_signs_in(client):
    response = client.post(
        "/signup/", {"email": "New@Example.com", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert response.status_code == 302
    user = User.objects.get(email="new@example.com")
    assert client.session["_auth_user_id"] == str(user.pk)
    assert AuditEntry.objects.filter(subject_user=user, action="account.create").exists()


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"email": "x@example.com", "password1": "short", "password2": "short"}, "password1", "too short"),
        (
            {"email": "x@example.com", "password1": "12345678901", "password2": "12345678901"},
            "password1",
            "entirely numeric",
        ),
        (
            {"email": "x@example.com", "password1": PASSWORD, "password2": PASSWORD + "x"},
            "password2",
            "do not match",
        ),
        ({"email": "not-an-email", "password1": PASSWORD, "password2": PASSWORD}, "email", "valid email"),
        (
            {"email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD},
            "email",
            "already exists",
        ),
    ],
)
def test_signup_errors_name_the_field(client, user, form, field, message):
    response = client.post("/signup/", form)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert message in " ".join(errors[field])
    assert User.objects.count() == 1


def test_login_rotates_session_key(client, user):
    client.get("/login/")
    client.session.save()
    before = client.session.session_key
    response = client.post("/login/", {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.session.session_key != before


def test_login_wrong_password_shows_error(client, user):
    response = client.post("/login/", {"username": user.email, "password": "nope"})
    assert response.status_code == 200
    assert "correct email" in " ".join(response.context["form"].non_field_errors()).lower()


def test_login_lockout_message_says_when_to_retry(client, user, settings):
    for _ in range(settings.QUANTA_LOGIN_IP_FAILURE_LIMIT):
        client.post("/login/", {"username": user.email, "password": "nope"})
    response = client.post("/login/", {"username": user.email, "password": PASSWORD})
    assert response.status_code == 200
    assert "Try again in 30 minutes" in " ".join(response.context["form"].non_field_errors())
    assert "_auth_user_id" not in client.session


def test_login_and_token_endpoint_share_the_throttle(client, user, settings):
    for _ in range(settings.QUANTA_LOGIN_IP_FAILURE_LIMIT):
        client.post("/login/", {"username": user.email, "password": "nope"})
    response = client.post(
        "/oauth/token",
        {"grant_type": "password", "username": user.email, "password": PASSWORD, "client_id": "particle-cli"},
    )
    assert response.status_code == 429


def test_logout_requires_post(client, user):
    client.force_login(user)
    assert client.get("/logout/").status_code == 405
    assert client.post("/logout/").status_code == 302
    assert "_auth_user_id" not in client.session


def test_password_reset_by_email(client, user, mailbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/password-reset/", {"email": "ADA@example.com"})
    assert response.status_code == 302
    messages = mail.mailbox_list()
    assert len(messages) == 1
    assert messages[0].to == user.email
    link = re.search(r"https?://[^/\s]+(/password-reset/[^\s]+/)", messages[0].text).group(1)

    form_page = client.get(link, follow=True)
    assert form_page.context["validlink"]
    new_password = "a-brand-new-passphrase-7"
    response = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new_password)
    assert AuditEntry.objects.filter(subject_user=user, action="account.password_reset").exists()
    # The link is single-use.
    assert not client.get(link, follow=True).context["validlink"]


def test_password_reset_for_unknown_email_reveals_nothing(
    client, db, mailbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/password-reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert response["Location"] == "/password-reset/sent/"
    assert mail.mailbox_list() == []


def test_change_password(client, user):
    client.force_login(user)
    new_password = "another-long-passphrase-3"
    response = client.post(
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new_password)
    assert "_auth_user_id" in client.session  # this session stays signed in


def test_change_password_with_wrong_old_password(client, user):
    client.force_login(user)
    response = client.post(
        "/account/password/",
        {
            "old_password": "wrong",
            "new_password1": "another-long-passphrase-3",
            "new_password2": "another-long-passphrase-3",
        },
    )
    assert response.status_code == 400
    assert response.context["password_form"].errors["old_password"]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_profile_update(client, user):
    client.force_login(user)
    response = client.post("/account/profile/", {"first_name": " Ada ", "last_name": "Lovelace"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.first_name, user.last_name) == ("Ada", "Lovelace")


def test_tokens_page_creates_token_shown_once(client, user):
    client.force_login(user)
    response = client.post("/account/tokens/", {"description": "CI deploys", "expires_in": "0"})
    assert response.status_code == 200
    token = response.context["new_token"]
    assert token
    assert token.encode() in response.content
    stored = AccessToken.objects.get(token_checksum=token_checksum(token))
    assert stored.user == user
    assert stored.detail.description == "CI deploys"

    listing = client.get("/account/tokens/")
    assert token.encode() not in listing.content
    assert f"…{token[-4:]}".encode() in listing.content or token[-4:].encode() in listing.content
    row = listing.context["tokens"][0]
    assert row.expires is None
    assert row.description == "CI deploys"


def test_tokens_page_rejects_bad_lifetime(client, user):
    client.force_login(user)
    response = client.post("/account/tokens/", {"expires_in": "12"})
    assert response.status_code == 400
    assert response.context["create_form"].errors["expires_in"]
    assert not AccessToken.objects.exists()


def test_revoke_token_and_revoke_all(client, user):
    client.force_login(user)
    first = access_token_create(user=user, expires_in_seconds=60).access_token
    access_token_create(user=user, expires_in_seconds=60)
    assert client.post(f"/account/tokens/{first.pk}/revoke/").status_code == 302
    assert AccessToken.objects.filter(user=user).count() == 1
    assert client.post("/account/tokens/revoke-all/").status_code == 302
    assert not AccessToken.objects.filter(user=user).exists()


def test_cannot_revoke_someone_elses_token(client, user, other_user):
    theirs = access_token_create(user=other_user, expires_in_seconds=60).access_token
    client.force_login(user)
    assert client.post(f"/account/tokens/{theirs.pk}/revoke/").status_code == 404
    assert AccessToken.objects.filter(pk=theirs.pk).exists()


def test_audit_page_lists_own_entries_only(client, user, other_user):
    access_token_create(user=user, expires_in_seconds=60)
    access_token_create(user=other_user, expires_in_seconds=60)
    client.force_login(user)
    response = client.get("/account/audit/")
    entries = list(response.context["page_obj"])
    assert entries
    assert all(entry.subject_user_id == user.pk for entry in entries)


def test_home_shows_how_to_point_the_cli(client, user):
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    assert b"particle config set apiUrl http://testserver" in response.content


def test_sidebar_comes_from_the_nav_registry(client, user):
    client.force_login(user)
    response = client.get("/account/tokens/")
    labels = [item.label for item in response.context["nav_account"]]
    assert "Access tokens" in labels
    assert [item.label for item in response.context["nav_account"] if item.active] == ["Access tokens"]


def test_dev_mailbox_only_with_debug(client, settings, user, mailbox, django_capture_on_commit_callbacks):
    settings.DEBUG = False
    assert client.get("/dev/mailbox/").status_code == 404
    settings.DEBUG = True
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/password-reset/", {"email": user.email})
    response = client.get("/dev/mailbox/")
    assert response.status_code == 200
    assert response.context["message"].subject


def test_mailbox_refuses_path_tricks(client, settings):
    settings.DEBUG = True
    assert client.get("/dev/mailbox/..%2F..%2Fsecret_key/").status_code == 404
