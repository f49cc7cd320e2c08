"""particle-cli 3.43.1 against a live server: login, whoami, token create/revoke and logout.

Every test checks both what the CLI shows (and its exit code) and what the server stored.
``particle token list`` is not tested: it does not exist in 3.43.1, whose ``token`` category has
only ``create`` and ``revoke`` (the CLI answers "No such command 'token list'").
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from oauth2_provider.models import AccessToken

from console.accounts import services
from console.accounts.models import TokenDetail
from console.accounts.tokens import token_checksum
from console.models import AuditEntry
from tests.clients.conftest import ParticleCLI, bearer_get, stored
from tests.conftest import PASSWORD

pytestmark = pytest.mark.clients

EMAIL_PROMPT = "Please enter your email address"
PASSWORD_PROMPT = "Please enter your password"
LOGIN_OK = "> Successfully completed login!"
LOGIN_ERROR = "! There was an error logging you in!"
LOGIN_GAVE_UP = "It seems we're having trouble with logging in."
EXPIRED = "! Please login - it appears your access token may have expired"
BAD_CREDENTIALS = "User credentials are invalid"
INVALID_TOKEN = {"error": "invalid_token", "error_description": "The access token provided is invalid."}
DEFAULT_LIFETIME = timedelta(days=90)


def printed_token(output: str) -> str:
    """The token `particle token create` prints on its own line, after four spaces."""
    match = re.search(r"^ {4}([0-9a-f]{40})$", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def login(particle: ParticleCLI, email: str) -> str:
    result = particle.run("login", "-u", email, "-p", PASSWORD)
    assert result.exit_code == 0, result.output
    return particle.config()["access_token"]


def assert_close(actual: datetime, expected: datetime, slack: timedelta = timedelta(minutes=1)) -> None:
    assert abs(actual - expected) < slack, (actual, expected)


# --- login ---------------------------------------------------------------------------------------


def test_login_interactive(particle, account, live_asgi_server):
    result = particle.interact("login", answers=[(EMAIL_PROMPT, account.email), (PASSWORD_PROMPT, PASSWORD)])

    assert result.exit_code == 0, result.output
    assert LOGIN_OK in result.output
    assert PASSWORD not in result.output  # the password prompt does not echo
    config = particle.config()
    assert config["username"] == account.email
    token = config["access_token"]
    access_token = stored(token)
    assert access_token is not None
    assert access_token.user == account
    assert access_token.application.client_id == "CLI2"  # settings.clientId of the CLI
    assert_close(access_token.expires, timezone.now() + DEFAULT_LIFETIME)
    assert TokenDetail.objects.get(access_token=access_token).hint == token[-4:]
    assert AuditEntry.objects.filter(actor=account, action="account.login", via="api").count() == 1
    created = AuditEntry.objects.get(actor=account, action="token.create")
    assert created.target_id == str(access_token.pk)
    assert created.metadata == {"client": "CLI2"}
    response = bearer_get(live_asgi_server, "/v1/user", token)
    assert response.status_code == 200
    assert response.json()["username"] == account.email


def test_login_with_username_and_password_options(particle, account):
    result = particle.run("login", "-u", account.email, "-p", PASSWORD)

    assert result.exit_code == 0, result.output
    assert LOGIN_OK in result.stdout
    config = particle.config()
    assert config["username"] == account.email
    assert stored(config["access_token"]).user == account
    assert AccessToken.objects.filter(user=account).count() == 1


def test_login_with_wrong_password_fails(particle, account):
    result = particle.run("login", "-u", account.email, "-p", "not-the-password")

    assert result.exit_code != 0
    assert LOGIN_ERROR in result.stdout
    assert f"! {BAD_CREDENTIALS}" in result.stderr
    assert LOGIN_GAVE_UP in result.output  # with -u and -p there is no retry
    assert LOGIN_OK not in result.output
    assert particle.config().get("access_token") is None
    assert not AccessToken.objects.exists()
    assert not AuditEntry.objects.filter(action__in=["account.login", "token.create"]).exists()


def test_login_again_after_the_token_was_revoked(particle, account, live_asgi_server):
    # The CLI sends its stored (now revoked) token as a Bearer with the password grant.
    old = login(particle, account.email)
    AccessToken.objects.filter(token_checksum=token_checksum(old)).delete()

    new = login(particle, account.email)

    assert new != old
    assert stored(new).user == account
    assert bearer_get(live_asgi_server, "/v1/user", new).status_code == 200


def test_login_interactive_retries_after_wrong_password(particle, account):
    result = particle.interact(
        "login",
        answers=[
            (EMAIL_PROMPT, account.email),
            (PASSWORD_PROMPT, "not-the-password"),
            # The CLI prompts again, with the email as the default.
            ("Let's try again.", None),
            (EMAIL_PROMPT, ""),
            (PASSWORD_PROMPT, PASSWORD),
        ],
    )

    assert result.exit_code == 0, result.output
    assert result.output.count(BAD_CREDENTIALS) == 1
    assert LOGIN_OK in result.output
    assert particle.config()["username"] == account.email
    assert stored(particle.config()["access_token"]).user == account
    assert AccessToken.objects.count() == 1


# --- whoami --------------------------------------------------------------------------------------


def test_whoami_prints_the_username_until_the_token_is_revoked(particle, account):
    token = login(particle, account.email)

    result = particle.run("whoami")

    assert result.exit_code == 0, result.output
    assert f"> {account.email}" in result.stdout
    access_token = stored(token)
    assert TokenDetail.objects.get(access_token=access_token).last_used_at is not None

    services.access_token_revoke(user=account, access_token=access_token)
    result = particle.run("whoami")

    assert result.exit_code == 1
    assert EXPIRED in result.stdout
    assert "Failed to find username! Try: `particle login`" in result.output
    assert f"> {account.email}" not in result.output


def test_login_with_token_takes_the_username_from_the_server(particle, account):
    # whoami prefers the username saved at login; `login --token` saves the one GET /v1/user returns.
    token = services.access_token_create(user=account, expires_in_seconds=3600, client_id="particle").token

    result = particle.run("login", "--token", token)

    assert result.exit_code == 0, result.output
    assert particle.config()["username"] == account.email
    assert particle.config()["access_token"] == token
    assert f"> {account.email}" in particle.run("whoami").stdout


def test_whoami_without_login_makes_no_request(particle, account):
    result = particle.run("whoami")

    assert result.exit_code == 1
    assert "You're not logged in. Please login using particle login" in result.output
    assert not AccessToken.objects.exists()


# --- token create --------------------------------------------------------------------------------


def test_token_create_never_expires(particle, account, live_asgi_server):
    # Not logged in: the CLI asks for the email too.
    result = particle.interact(
        "token",
        "create",
        "--never-expires",
        answers=[(EMAIL_PROMPT, account.email), (PASSWORD_PROMPT, PASSWORD)],
    )

    assert result.exit_code == 0, result.output
    assert "New access token never expires" in result.output
    token = printed_token(result.output)
    assert "access_token" not in particle.config()  # token create leaves the CLI's own login alone
    access_token = stored(token)
    assert access_token.user == account
    assert access_token.application.client_id == "user"
    assert access_token.expires > timezone.now() + timedelta(days=50 * 365)
    assert AuditEntry.objects.filter(
        actor=account, action="token.create", target_id=str(access_token.pk), metadata={"client": "user"}
    ).exists()
    user = bearer_get(live_asgi_server, "/v1/user", token)
    assert user.status_code == 200
    assert user.json()["username"] == account.email
    current = bearer_get(live_asgi_server, "/v1/access_tokens/current", token)
    assert current.status_code == 200
    assert current.json()["expires_at"] is None
    assert current.json()["client_id"] == "user"


def test_token_create_expires_in(particle, account, live_asgi_server):
    login_token = login(particle, account.email)

    # Logged in: the CLI asks only for the password of the saved username.
    result = particle.interact(
        "token", "create", "--expires-in", "3600", answers=[(PASSWORD_PROMPT, PASSWORD)]
    )

    assert result.exit_code == 0, result.output
    assert f"Using account {account.email}" in result.output
    assert "New access token expires on " in result.output
    assert "never expires" not in result.output
    token = printed_token(result.output)
    assert token != login_token
    assert particle.config()["access_token"] == login_token
    assert_close(stored(token).expires, timezone.now() + timedelta(hours=1))
    current = bearer_get(live_asgi_server, "/v1/access_tokens/current", token)
    assert current.status_code == 200
    expires_at = datetime.fromisoformat(current.json()["expires_at"].replace("Z", "+00:00"))
    assert_close(expires_at, timezone.now() + timedelta(hours=1))
    assert bearer_get(live_asgi_server, "/v1/user", login_token).status_code == 200
    assert AccessToken.objects.filter(user=account).count() == 2


def test_token_create_with_wrong_password_fails(particle, account):
    login(particle, account.email)

    result = particle.interact("token", "create", answers=[(PASSWORD_PROMPT, "not-the-password")])

    assert result.exit_code == 1
    assert "Error while creating a new access token: invalid_grant" in result.output
    assert AccessToken.objects.filter(user=account).count() == 1  # only the login's


# --- token revoke --------------------------------------------------------------------------------


def test_token_revoke(particle, account, live_asgi_server):
    login_token = login(particle, account.email)
    token = services.access_token_create(user=account, expires_in_seconds=3600, client_id="particle").token
    access_token_id = stored(token).pk
    assert bearer_get(live_asgi_server, "/v1/user", token).status_code == 200

    result = particle.run("token", "revoke", token)

    assert result.exit_code == 0, result.output
    assert "Successfully revoked all provided tokens" in result.stdout
    assert stored(token) is None
    response = bearer_get(live_asgi_server, "/v1/user", token)
    assert response.status_code == 401
    assert response.json() == INVALID_TOKEN
    assert AuditEntry.objects.filter(
        actor=account, action="token.revoke", target_id=str(access_token_id), via="api"
    ).exists()
    assert stored(login_token) is not None  # only the named token goes
    assert bearer_get(live_asgi_server, "/v1/user", login_token).status_code == 200


def test_token_revoke_unknown_token_reports_a_failure(particle, account):
    token = services.access_token_create(user=account, expires_in_seconds=3600, client_id="particle").token
    unknown = "0" * 40

    result = particle.run("token", "revoke", unknown)

    # The CLI reports the failure on stderr but still exits 0 (it ignores its handler's -1).
    assert "Failed to revoke the following access tokens:" in result.stderr
    assert f"token: {unknown}; reason: HTTP error 404" in result.stderr
    assert "Successfully revoked" not in result.stdout
    assert stored(token) is not None
    assert not AuditEntry.objects.filter(action="token.revoke").exists()


def test_token_revoke_of_the_cli_own_token_needs_force(particle, account, live_asgi_server):
    token = login(particle, account.email)

    refused = particle.run("token", "revoke", token)

    assert f"WARNING: {token} is this CLI's access token" in refused.stdout
    assert "use --force to delete it" in refused.stdout
    assert stored(token) is not None

    forced = particle.run("token", "revoke", "--force", token)

    assert forced.exit_code == 0, forced.output
    assert "**forcing**" in forced.stdout
    assert "Successfully revoked all provided tokens" in forced.stdout
    assert stored(token) is None
    assert bearer_get(live_asgi_server, "/v1/user", token).json() == INVALID_TOKEN


# --- logout --------------------------------------------------------------------------------------


def test_logout_revokes_the_token_and_clears_the_config(particle, account, live_asgi_server):
    token = login(particle, account.email)
    access_token_id = stored(token).pk

    result = particle.run("logout")

    assert result.exit_code == 0, result.output
    assert f"> You have been logged out from {account.email}" in result.stdout
    config = particle.config()
    assert config["access_token"] is None
    assert config["username"] is None
    assert config["apiUrl"] == live_asgi_server.url
    assert stored(token) is None
    assert bearer_get(live_asgi_server, "/v1/user", token).status_code == 401
    assert AuditEntry.objects.filter(
        actor=account, action="token.revoke", target_id=str(access_token_id), via="api"
    ).exists()

    again = particle.run("logout")

    assert again.exit_code == 0, again.output
    assert "You were already logged out." in again.stdout


def test_logout_keeps_a_token_the_server_rejects(particle, account):
    token = login(particle, account.email)
    AccessToken.objects.filter(token_checksum=token_checksum(token)).delete()

    result = particle.run("logout")

    assert result.exit_code == 1
    assert "There was an error revoking the token: The access token provided is invalid." in result.output
    assert particle.config()["access_token"] == token
