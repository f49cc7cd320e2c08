"""Product teams: invitations by email, accepting and declining, removing and leaving, the free
plan's limit, and the team API, each with who may do it."""

from __future__ import annotations

import pytest
from django.core import mail
from rest_framework.test import APIClient

from console.accounts.models import User
from console.accounts.services import access_token_create
from console.models import AuditEntry
from console.permissions import Role
from products.limits import FREE_TEAM_MEMBER_LIMIT
from products.models import Invitation, Membership
from products.services import product_create
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def person(email: str) -> User:
    return User.objects.create_user(email=email, password=PASSWORD)


def client_for(someone: User) -> APIClient:
    client = APIClient()
    token = access_token_create(user=someone, expires_in_seconds=3600).token
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def product(user):
    return product_create(user=user, name="Greenhouse", platform_id=13)


def member(product, email: str, role: Role) -> User:
    someone = person(email)
    Membership.objects.create(product=product, user=someone, role=role)
    return someone


def team_state(product) -> tuple:
    return (
        sorted(Membership.objects.filter(product=product).values_list("user__email", "role")),
        sorted(Invitation.objects.filter(product=product).values_list("user__email", "role")),
    )


# --- Inviting -------------------------------------------------------------------------------------------
def test_the_owner_invites_someone_with_an_account_who_is_emailed(
    user, auth_client, product, django_capture_on_commit_callbacks
):
    hedy = person("hedy@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.post(
            f"/v1/products/{product.id}/team",
            {"username": "Hedy@Example.com", "role": "View-only"},
            format="json",
        )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is True
    assert body["invited"]["username"] == "hedy@example.com"
    assert body["invited"]["role"] == {"id": "viewer", "name": "View-only"}
    assert Invitation.objects.get(product=product).user == hedy
    assert not Membership.objects.filter(product=product, user=hedy).exists()  # not until accepted
    [message] = mail.outbox
    assert message.to == ["hedy@example.com"]
    assert "Greenhouse" in message.subject
    assert "ada@example.com invited you" in message.body
    assert "/invitations/" in message.body
    assert AuditEntry.objects.filter(action="team.invite", subject_user=hedy).exists()


def test_inviting_someone_without_an_account_says_so_and_creates_nothing(auth_client, product):
    before = team_state(product)
    response = auth_client.post(f"/v1/products/{product.id}/team", {"username": "nobody@example.com"})
    assert response.status_code == 400
    assert "No account uses nobody@example.com" in response.json()["error"]
    assert team_state(product) == before
    assert mail.outbox == []


@pytest.mark.parametrize(
    ("role", "message"),
    [
        ("owner", "Unknown role 'owner'"),
        ("wizard", "Invite as one of: Administrator, Developer, Support, View-only"),
    ],
)
def test_unknown_or_owner_roles_are_refused(auth_client, product, role, message):
    person("hedy@example.com")
    response = auth_client.post(
        f"/v1/products/{product.id}/team", {"username": "hedy@example.com", "role": role}
    )
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Invitation.objects.exists()


def test_members_and_invitees_are_not_invited_twice(auth_client, product):
    member(product, "hedy@example.com", Role.DEVELOPER)
    person("linus@example.com")
    assert (
        auth_client.post(f"/v1/products/{product.id}/team", {"username": "linus@example.com"}).status_code
        == 200
    )
    again = auth_client.post(f"/v1/products/{product.id}/team", {"username": "linus@example.com"})
    assert (again.status_code, again.json()["error"]) == (409, "linus@example.com has already been invited.")
    on_team = auth_client.post(f"/v1/products/{product.id}/team", {"username": "hedy@example.com"})
    assert (on_team.status_code, on_team.json()["error"]) == (
        409,
        "hedy@example.com is already on this product's team.",
    )
    assert Invitation.objects.count() == 1


def test_the_free_plan_allows_five_people_counting_invitations(auth_client, product):
    member(product, "a@example.com", Role.DEVELOPER)
    member(product, "b@example.com", Role.VIEWER)
    for email in ("c@example.com", "d@example.com"):
        person(email)
        assert auth_client.post(f"/v1/products/{product.id}/team", {"username": email}).status_code == 200
    person("e@example.com")
    before = team_state(product)
    response = auth_client.post(f"/v1/products/{product.id}/team", {"username": "e@example.com"})
    assert response.status_code == 400
    assert f"The free plan allows {FREE_TEAM_MEMBER_LIMIT} team members" in response.json()["error"]
    assert team_state(product) == before


@pytest.mark.parametrize(
    ("role", "status"), [("administrator", 200), ("developer", 403), ("support", 403), ("viewer", 403)]
)
def test_only_managers_invite(product, role, status):
    actor = member(product, "actor@example.com", Role(role))
    person("hedy@example.com")
    response = client_for(actor).post(f"/v1/products/{product.id}/team", {"username": "hedy@example.com"})
    assert response.status_code == status
    if status == 403:
        assert response.json()["error"] == "Your role does not allow team manage."
        assert not Invitation.objects.exists()


def test_another_team_cannot_see_or_change_the_team(other_user, product):
    before = team_state(product)
    client = client_for(other_user)
    person("hedy@example.com")
    for response in (
        client.get(f"/v1/products/{product.id}/team"),
        client.post(f"/v1/products/{product.slug}/team", {"username": "hedy@example.com"}),
        client.delete(f"/v1/products/{product.id}/team/ada@example.com"),
    ):
        assert response.status_code == 404
        assert (
            response.json()["error"] == f"Product {response.request['PATH_INFO'].split('/')[3]!r} not found."
        )
    assert team_state(product) == before


def test_anonymous_team_requests_need_a_token(api_client, product):
    assert api_client.get(f"/v1/products/{product.id}/team").status_code == 400


# --- Listing ------------------------------------------------------------------------------------------------
def test_every_member_lists_the_team_owner_first_with_pending_invitations(
    product, django_assert_max_num_queries
):
    viewer = member(product, "zed@example.com", Role.VIEWER)
    member(product, "bob@example.com", Role.DEVELOPER)
    person("pending@example.com")
    client_for(product.owner).post(
        f"/v1/products/{product.id}/team", {"username": "pending@example.com", "role": "support"}
    )
    client = client_for(viewer)
    with django_assert_max_num_queries(8):
        response = client.get(f"/v1/products/{product.id}/team")
    assert response.status_code == 200
    body = response.json()
    assert [(m["username"], m["role"]["id"]) for m in body["team"]] == [
        ("ada@example.com", "owner"),
        ("bob@example.com", "developer"),
        ("zed@example.com", "viewer"),
    ]
    assert [(i["username"], i["role"]["name"], i["invited_by"]) for i in body["invitations"]] == [
        ("pending@example.com", "Support", "ada@example.com")
    ]


# --- Answering ----------------------------------------------------------------------------------------------
def test_the_invitee_accepts_on_the_invitations_page(client, user, product):
    hedy = person("hedy@example.com")
    client_for(user).post(
        f"/v1/products/{product.id}/team", {"username": "hedy@example.com", "role": "developer"}
    )
    client.force_login(hedy)
    page = client.get("/invitations/")
    assert page.status_code == 200
    assert "Greenhouse" in page.content.decode()
    assert "Developer" in page.content.decode()
    invitation = Invitation.objects.get()
    response = client.post(f"/invitations/{invitation.pk}/accept/")
    assert response.status_code == 302
    assert Membership.objects.get(product=product, user=hedy).role == "developer"
    assert not Invitation.objects.exists()
    assert "No invitations waiting" in client.get("/invitations/").content.decode()


def test_the_invitee_declines_and_nothing_joins(client, user, product):
    hedy = person("hedy@example.com")
    client_for(user).post(f"/v1/products/{product.id}/team", {"username": "hedy@example.com"})
    client.force_login(hedy)
    invitation = Invitation.objects.get()
    assert client.post(f"/invitations/{invitation.pk}/decline/").status_code == 302
    assert not Invitation.objects.exists()
    assert not Membership.objects.filter(user=hedy).exists()
    assert AuditEntry.objects.filter(action="team.decline", actor=hedy).exists()


def test_nobody_else_answers_an_invitation(client, user, other_user, product):
    person("hedy@example.com")
    client_for(user).post(f"/v1/products/{product.id}/team", {"username": "hedy@example.com"})
    invitation = Invitation.objects.get()
    client.force_login(other_user)
    assert client.post(f"/invitations/{invitation.pk}/accept/").status_code == 404
    assert client.post(f"/invitations/{invitation.pk}/decline/").status_code == 404
    assert "Greenhouse" not in client.get("/invitations/").content.decode()
    assert Invitation.objects.filter(pk=invitation.pk).exists()


def test_logging_in_with_invitations_waiting_lands_on_them(client, user, product):
    person("hedy@example.com")
    client_for(user).post(f"/v1/products/{product.id}/team", {"username": "hedy@example.com"})
    response = client.post("/login/", {"username": "hedy@example.com", "password": PASSWORD})
    assert (response.status_code, response["Location"]) == (302, "/invitations/")
    asked = client.post("/login/?next=/devices/", {"username": "ada@example.com", "password": PASSWORD})
    assert asked["Location"] == "/devices/"  # a page asked for comes first; Ada has nothing waiting anyway


# --- Removing, cancelling, leaving ------------------------------------------------------------------------
def test_a_manager_removes_a_member_and_cancels_an_invitation(auth_client, product):
    member(product, "hedy@example.com", Role.DEVELOPER)
    person("linus@example.com")
    auth_client.post(f"/v1/products/{product.id}/team", {"username": "linus@example.com"})
    assert auth_client.delete(f"/v1/products/{product.id}/team/hedy@example.com").json() == {"ok": True}
    assert auth_client.delete(f"/v1/products/{product.id}/team/linus@example.com").json() == {"ok": True}
    assert team_state(product) == ([("ada@example.com", "owner")], [])
    assert AuditEntry.objects.filter(action="team.remove").exists()
    assert AuditEntry.objects.filter(action="team.invite_cancel").exists()


def test_the_owner_is_never_removed(product):
    admin = member(product, "admin@example.com", Role.ADMINISTRATOR)
    for client in (client_for(admin), client_for(product.owner)):
        response = client.delete(f"/v1/products/{product.id}/team/ada@example.com")
        assert response.status_code == 403
        assert response.json()["error"] == "The product's owner cannot be removed from its team."
    assert Membership.objects.filter(product=product, role="owner").count() == 1


def test_anyone_but_the_owner_may_leave_and_nobody_else_removes_others(product):
    viewer = member(product, "viewer@example.com", Role.VIEWER)
    developer = member(product, "dev@example.com", Role.DEVELOPER)
    refused = client_for(viewer).delete(f"/v1/products/{product.id}/team/dev@example.com")
    assert (refused.status_code, refused.json()["error"]) == (403, "Your role does not allow team manage.")
    assert client_for(viewer).delete(f"/v1/products/{product.id}/team/viewer@example.com").json() == {
        "ok": True
    }
    assert not Membership.objects.filter(user=viewer).exists()
    assert Membership.objects.filter(user=developer).exists()
    assert AuditEntry.objects.filter(action="team.leave", actor=viewer).exists()


def test_removing_someone_not_on_the_team_is_a_404(auth_client, product):
    person("hedy@example.com")
    response = auth_client.delete(f"/v1/products/{product.id}/team/hedy@example.com")
    assert (response.status_code, response.json()["error"]) == (
        404,
        "hedy@example.com is not on this product's team.",
    )
