"""A product's Team page: the members and pending invitations every member sees; inviting,
cancelling and removing for managers; leaving for everyone but the owner; each with who may do it,
and what a refused request leaves unchanged."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from console.accounts.models import User
from console.models import AuditEntry
from console.permissions import PERMISSIONS, Role, role_can
from products.forms import ROLE_DESCRIPTIONS
from products.limits import FREE_TEAM_MEMBER_LIMIT
from products.models import Invitation, Membership, Product
from products.services import product_create
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
MANAGERS = {Role.OWNER, Role.ADMINISTRATOR}
FORBIDDEN_PAGE = "You cannot open this page"


def person(email: str, **names) -> User:
    return User.objects.create_user(email=email, password=PASSWORD, **names)


def join(product: Product, someone: User, role: Role) -> User:
    Membership.objects.create(product=product, user=someone, role=role)
    return someone


def invite(product: Product, someone: User, role: Role, invited_by: User | None = None) -> Invitation:
    return Invitation.objects.create(product=product, user=someone, role=role, invited_by=invited_by)


def team_state(product: Product) -> tuple:
    return (
        sorted(Membership.objects.filter(product=product).values_list("user__email", "role")),
        sorted(Invitation.objects.filter(product=product).values_list("user__email", "role")),
        AuditEntry.objects.count(),
    )


def client_for(someone: User) -> Client:
    client = Client()
    client.force_login(someone)
    return client


@pytest.fixture
def product(user) -> Product:
    return product_create(user=user, name="Greenhouse", platform_id=13)


@pytest.fixture
def team(product, user) -> dict:
    """Ada owns the product; a developer to remove, a pending invitation to cancel, and someone
    with an account to invite."""
    return {
        "owner": user,
        "target": join(product, person("target@example.com"), Role.DEVELOPER),
        "invitation": invite(product, person("invited@example.com"), Role.VIEWER, invited_by=user),
        "newcomer": person("newcomer@example.com"),
    }


def actor_with(role: Role, product: Product, owner: User) -> User:
    return owner if role == Role.OWNER else join(product, person(f"{role.value}@example.com"), role)


def team_url(product: Product, rest: str = "") -> str:
    return f"/products/{product.slug}/team/{rest}"


def html_of(response) -> str:
    return response.content.decode()


def row(html: str, kind: str, email: str) -> str:
    match = re.search(rf'<tr data-{kind}="{re.escape(email)}">(.*?)</tr>', html, flags=re.S)
    assert match, f"no {kind} row for {email}"
    return match.group(1)


# --- Reading the team ---------------------------------------------------------------------------------------
def test_the_team_page_lists_members_owner_first_and_pending_invitations(client, user, product):
    user.first_name, user.last_name = "Ada", "Lovelace"
    user.save()
    join(product, person("zed@example.com"), Role.VIEWER)
    join(product, person("bea@example.com", first_name="Bea"), Role.ADMINISTRATOR)
    invite(product, person("hedy@example.com"), Role.SUPPORT, invited_by=user)
    client.force_login(user)

    response = client.get(team_url(product))

    assert response.status_code == 200
    html = html_of(response)
    assert "<title>Team · Greenhouse" in html
    members = re.findall(r'<tr data-member="([^"]+)">', html)
    assert members == ["ada@example.com", "bea@example.com", "zed@example.com"]
    owner_row = row(html, "member", "ada@example.com")
    assert '<span class="avatar" aria-hidden="true">AL</span>' in owner_row
    assert "(you)" in owner_row
    assert "Ada Lovelace" in owner_row
    assert '<span class="badge badge-accent">Owner</span>' in owner_row
    assert "<time datetime=" in owner_row
    assert "(you)" not in row(html, "member", "bea@example.com")
    assert ">Administrator</span>" in row(html, "member", "bea@example.com")
    assert ">View-only</span>" in row(html, "member", "zed@example.com")
    pending = row(html, "invitation", "hedy@example.com")
    assert ">Support</span>" in pending
    assert "ada@example.com" in pending  # invited by
    assert "data-relative" in pending  # when
    assert "4 of 5 seats used" in html
    assert "3 members and 1 pending invitation." in html


def test_the_api_and_the_page_show_the_same_team(user, product, auth_client):
    join(product, person("bea@example.com"), Role.DEVELOPER)
    invite(product, person("hedy@example.com"), Role.VIEWER, invited_by=user)
    api = auth_client.get(f"/v1/products/{product.id}/team").json()
    html = html_of(client_for(user).get(team_url(product)))

    assert re.findall(r'<tr data-member="([^"]+)">', html) == [m["username"] for m in api["team"]]
    assert re.findall(r'<tr data-invitation="([^"]+)">', html) == [i["username"] for i in api["invitations"]]


@pytest.mark.parametrize("role", list(Role))
def test_every_member_sees_the_team_and_only_managers_the_controls(role, user, product, team):
    actor = actor_with(role, product, user)
    response = client_for(actor).get(team_url(product))

    assert response.status_code == 200
    html = html_of(response)
    assert "target@example.com" in html
    assert "invited@example.com" in html
    assert "seats used" in html
    manages = role in MANAGERS
    assert ("Invite team member" in html) is manages
    assert ('id="team-invite-dialog"' in html) is manages
    assert (f'data-open-dialog="remove-member-{team["target"].pk}"' in html) is manages
    assert (f'data-open-dialog="cancel-invitation-{team["invitation"].pk}"' in html) is manages
    assert (f'action="{team_url(product, "leave/")}"' in html) is (role != Role.OWNER)
    assert ("so you cannot leave its team" in html) is (role == Role.OWNER)
    # Nobody is offered removing the owner, or themselves.
    assert f'data-open-dialog="remove-member-{user.pk}"' not in html
    assert f'data-open-dialog="remove-member-{actor.pk}"' not in html


def test_another_teams_product_is_a_404(other_user, product, team):
    response = client_for(other_user).get(team_url(product))
    assert response.status_code == 404
    assert "target@example.com" not in html_of(response)


def test_the_team_page_needs_sign_in(client, product):
    response = client.get(team_url(product))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_team_page_takes_the_product_id_too(client, user, product):
    client.force_login(user)
    assert client.get(f"/products/{product.id}/team/").status_code == 200


def test_the_sidebar_and_the_overview_lead_to_the_team(client, user, product):
    client.force_login(user)
    html = html_of(client.get(team_url(product)))
    nav = html[html.index('data-nav-context="product"') :]
    nav = nav[: nav.index("</nav>")]
    assert re.search(rf'<a class="nav-link" href="{team_url(product)}" aria-current="page">', nav)
    assert "<span>Team</span>" in nav

    overview = html_of(client.get(f"/products/{product.slug}/"))
    assert f'href="{team_url(product)}"' in overview


# --- Every role and every action ---------------------------------------------------------------------------
def _invite(client, product, team):
    return client.post(
        team_url(product, "invite/"), {"email": "newcomer@example.com", "role": "developer"}, **HTMX
    )


def _cancel(client, product, team):
    return client.post(team_url(product, f"invitations/{team['invitation'].pk}/cancel/"))


def _remove(client, product, team):
    return client.post(team_url(product, f"members/{team['target'].pk}/remove/"))


def _leave(client, product, team):
    return client.post(team_url(product, "leave/"))


ACTIONS = {"invite": _invite, "cancel": _cancel, "remove": _remove, "leave": _leave}


def _allowed(role: Role, action: str) -> bool:
    if action == "leave":
        return role != Role.OWNER
    return role in MANAGERS


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("role", list(Role))
def test_each_role_may_or_may_not_do_each_action(role, action, user, product, team):
    actor = actor_with(role, product, user)
    before = team_state(product)

    response = ACTIONS[action](client_for(actor), product, team)

    if not _allowed(role, action):
        assert response.status_code == 403
        assert FORBIDDEN_PAGE in html_of(response)
        assert team_state(product) == before
        return
    team_after = team_state(product)
    assert team_after != before
    if action == "invite":
        assert response.status_code == 204
        assert response["HX-Redirect"] == team_url(product)
        assert Invitation.objects.filter(product=product, user=team["newcomer"]).exists()
    elif action == "cancel":
        assert (response.status_code, response["Location"]) == (302, team_url(product))
        assert not Invitation.objects.filter(pk=team["invitation"].pk).exists()
    elif action == "remove":
        assert (response.status_code, response["Location"]) == (302, team_url(product))
        assert not Membership.objects.filter(product=product, user=team["target"]).exists()
    else:
        assert (response.status_code, response["Location"]) == (302, "/products/")
        assert not Membership.objects.filter(product=product, user=actor).exists()


@pytest.mark.parametrize("action", list(ACTIONS))
def test_someone_off_the_team_gets_a_404_for_each_action(action, other_user, product, team):
    before = team_state(product)
    response = ACTIONS[action](client_for(other_user), product, team)
    assert response.status_code == 404
    assert team_state(product) == before


@pytest.mark.parametrize("action", list(ACTIONS))
def test_each_action_needs_sign_in(action, client, product, team):
    before = team_state(product)
    response = ACTIONS[action](client, product, team)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert team_state(product) == before


@pytest.mark.parametrize("action", list(ACTIONS))
def test_each_action_enforces_csrf(action, user, product, team):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user if action != "leave" else team["target"])
    before = team_state(product)
    response = ACTIONS[action](client, product, team)
    assert response.status_code == 403
    assert team_state(product) == before


@pytest.mark.parametrize(
    "path", ["invitations/1/cancel/", "members/1/remove/", "leave/"], ids=["cancel", "remove", "leave"]
)
def test_changes_are_posts_only(client, user, product, path):
    client.force_login(user)
    assert client.get(team_url(product, path)).status_code == 405


def test_a_get_of_the_invite_address_shows_the_team_page(client, user, product):
    client.force_login(user)
    response = client.get(team_url(product, "invite/"))
    assert (response.status_code, response["Location"]) == (302, team_url(product))


# --- Inviting -------------------------------------------------------------------------------------------------
def test_inviting_emails_the_invitee_and_lists_the_invitation(
    client, user, product, team, django_capture_on_commit_callbacks
):
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            team_url(product, "invite/"), {"email": " Newcomer@Example.com ", "role": "viewer"}, **HTMX
        )

    assert response.status_code == 204
    assert response["HX-Redirect"] == team_url(product)
    invitation = Invitation.objects.get(product=product, user=team["newcomer"])
    assert (invitation.role, invitation.invited_by) == (Role.VIEWER, user)
    assert not Membership.objects.filter(product=product, user=team["newcomer"]).exists()
    [message] = mail.outbox
    assert message.to == ["newcomer@example.com"]
    assert "Greenhouse" in message.subject
    assert "/invitations/" in message.body
    assert AuditEntry.objects.filter(
        action="team.invite", subject_user=team["newcomer"], via="console"
    ).exists()

    page = html_of(client.get(response["HX-Redirect"]))
    assert "Invited newcomer@example.com as View-only." in page
    assert ">View-only</span>" in row(page, "invitation", "newcomer@example.com")


def test_inviting_without_htmx_redirects_to_the_team(client, user, product, team):
    client.force_login(user)
    response = client.post(team_url(product, "invite/"), {"email": "newcomer@example.com", "role": "support"})
    assert (response.status_code, response["Location"]) == (302, team_url(product))
    assert Invitation.objects.get(product=product, user=team["newcomer"]).role == Role.SUPPORT


def _fill_the_team(product, owner) -> None:
    """Take every free seat: members, and the last one with an invitation."""
    used = (
        Membership.objects.filter(product=product).count()
        + Invitation.objects.filter(product=product).count()
    )
    for index in range(FREE_TEAM_MEMBER_LIMIT - used - 1):
        join(product, person(f"member{index}@example.com"), Role.VIEWER)
    invite(product, person("last-seat@example.com"), Role.VIEWER, invited_by=owner)


INVITE_ERRORS = [
    pytest.param(
        {"email": "nobody@example.com", "role": "developer"},
        "email",
        "No account uses nobody@example.com. Ask them to sign up first, then invite them.",
        "bad_request",
        id="no-account",
    ),
    pytest.param(
        {"email": "invited@example.com", "role": "developer"},
        "email",
        "invited@example.com has already been invited.",
        "conflict",
        id="already-invited",
    ),
    pytest.param(
        {"email": "target@example.com", "role": "developer"},
        "email",
        "target@example.com is already on this product&#x27;s team.",
        "conflict",
        id="already-a-member",
    ),
    pytest.param(
        {"email": "ada@example.com", "role": "developer"},
        "email",
        "ada@example.com is already on this product&#x27;s team.",
        "conflict",
        id="yourself",
    ),
    pytest.param(
        {"email": "", "role": "developer"},
        "email",
        "Enter the email address of the person to invite.",
        "invalid",
        id="no-email",
    ),
    pytest.param(
        {"email": "not-an-address", "role": "developer"},
        "email",
        "Enter an email address, like name@example.com.",
        "invalid",
        id="not-an-email",
    ),
    pytest.param(
        {"email": "newcomer@example.com"},
        "role",
        "Choose the role to invite them as.",
        "invalid",
        id="no-role",
    ),
    pytest.param(
        {"email": "newcomer@example.com", "role": "owner"},
        "role",
        "Choose one of the roles in the list.",
        "invalid",
        id="owner-role",
    ),
    pytest.param(
        {"email": "newcomer@example.com", "role": "wizard"},
        "role",
        "Choose one of the roles in the list.",
        "invalid",
        id="unknown-role",
    ),
]


@pytest.mark.parametrize(("data", "field", "message", "error"), INVITE_ERRORS)
def test_each_invite_error_is_shown_under_its_field(client, user, product, team, data, field, message, error):
    client.force_login(user)
    before = team_state(product)

    response = client.post(team_url(product, "invite/"), data, **HTMX)

    assert response.status_code == 200
    assert response["X-Quanta-Error"] == error
    html = html_of(response)
    assert html.lstrip().startswith('<form class="form" id="team-invite-form"')
    errors = re.search(rf'<ul class="field-errors" id="id_{field}_error">(.*?)</ul>', html, flags=re.S)
    assert errors, f"no inline error under {field}"
    assert message in errors.group(1)
    assert html.count('class="field-errors"') == 1
    invalid = re.findall(r'<input[^>]*aria-invalid="true"[^>]*>', html)
    assert invalid
    assert all(f'name="{field}"' in widget for widget in invalid)
    assert team_state(product) == before
    assert mail.outbox == []


def test_the_free_plan_limit_is_explained_in_the_dialog(client, user, product, team):
    _fill_the_team(product, user)
    client.force_login(user)
    before = team_state(product)

    response = client.post(
        team_url(product, "invite/"), {"email": "newcomer@example.com", "role": "viewer"}, **HTMX
    )

    html = html_of(response)
    errors = re.search(r'<ul class="field-errors" id="id_email_error">(.*?)</ul>', html, flags=re.S).group(1)
    assert (
        "The free plan allows 5 team members, counting pending invitations. "
        "Remove a member or cancel an invitation first." in errors
    )
    assert team_state(product) == before


def test_a_refused_invite_keeps_what_was_typed(client, user, product, team):
    client.force_login(user)
    html = html_of(
        client.post(team_url(product, "invite/"), {"email": "nobody@example.com", "role": "support"}, **HTMX)
    )
    assert 'value="nobody@example.com"' in html
    assert re.search(r'<input type="radio" name="role" value="support" id="id_role_2" checked', html)
    assert not re.search(r'value="developer"[^>]*checked', html)


def test_a_refused_invite_without_htmx_reopens_the_dialog(client, user, product, team):
    client.force_login(user)
    response = client.post(team_url(product, "invite/"), {"email": "nobody@example.com", "role": "viewer"})

    assert response.status_code == 200
    html = html_of(response)
    assert re.search(
        r'<dialog class="modal team-invite-dialog" id="team-invite-dialog"[^>]*data-open-on-load', html
    )
    assert "No account uses nobody@example.com." in html
    assert "target@example.com" in html  # the team is still there behind the dialog


def test_the_invite_dialog_offers_each_invitable_role_with_what_it_may_do(client, user, product):
    client.force_login(user)
    html = html_of(client.get(team_url(product)))
    dialog = html[html.index('<dialog class="modal team-invite-dialog"') :]
    dialog = dialog[: dialog.index("</dialog>")]
    assert 'action="/products/greenhouse/team/invite/"' in dialog
    assert '<input type="email" name="email"' in dialog
    names = re.findall(r'<span class="team-role-option-name">([^<]+)</span>', dialog)
    assert names == ["Administrator", "Developer", "Support", "View-only"]
    for description in ROLE_DESCRIPTIONS.values():
        assert description in dialog
    assert re.search(r'value="developer" id="id_role_1" checked', dialog)  # the API's default too
    assert 'value="owner"' not in dialog


def test_the_role_descriptions_agree_with_the_permission_table():
    claims = {
        Role.ADMINISTRATOR: (
            ["team.manage", "product.update", "device.import", "firmware.release"],
            ["product.delete", "billing.manage"],
        ),
        Role.DEVELOPER: (
            ["firmware.upload", "event.publish", "device.call", "group.manage", "integration.manage"],
            ["firmware.release", "team.manage"],
        ),
        Role.SUPPORT: (
            ["customer.manage", "device.update", "device.call", "firmware.lock"],
            ["firmware.upload"],
        ),
        Role.VIEWER: (
            ["device.read", "event.read", "firmware.read", "team.read"],
            [action for action in PERMISSIONS if not action.endswith(".read")],
        ),
    }
    assert set(claims) == set(ROLE_DESCRIPTIONS)
    for role, (may, may_not) in claims.items():
        assert all(role_can(role, action) for action in may), role
        assert not any(role_can(role, action) for action in may_not), role


# --- Seats ----------------------------------------------------------------------------------------------------
def test_the_seats_line_counts_members_and_invitations(client, user, product, team):
    client.force_login(user)
    html = html_of(client.get(team_url(product)))
    assert "3 of 5 seats used" in html
    assert "2 members and 1 pending invitation." in html
    assert html.count('class="team-seat team-seat-member"') == 2
    assert html.count('class="team-seat team-seat-invited"') == 1
    assert html.count('class="team-seat team-seat-free"') == 2
    button = re.search(r'<button[^>]*data-open-dialog="team-invite-dialog"[^>]*>', html).group(0)
    assert "disabled" not in button
    assert "Every seat is taken" not in html


def test_a_full_team_disables_invite_and_says_why(client, user, product, team):
    _fill_the_team(product, user)
    client.force_login(user)
    html = html_of(client.get(team_url(product)))

    assert f"{FREE_TEAM_MEMBER_LIMIT} of {FREE_TEAM_MEMBER_LIMIT} seats used" in html
    button = re.search(r'<button[^>]*data-open-dialog="team-invite-dialog"[^>]*>', html).group(0)
    assert " disabled" in button
    assert 'aria-describedby="team-seats-full"' in button
    assert re.search(
        r'id="team-seats-full">.*Every seat is taken. Remove a member or cancel an invitation to invite someone else.',
        html,
    )
    assert 'class="team-seat team-seat-free"' not in html


def test_a_viewer_sees_the_seats_without_the_managers_note(user, product, team):
    _fill_the_team(product, user)
    viewer = Membership.objects.filter(product=product, role=Role.VIEWER).first().user
    html = html_of(client_for(viewer).get(team_url(product)))
    assert "5 of 5 seats used" in html
    assert "Every seat is taken" not in html


# --- Cancelling, removing, leaving ----------------------------------------------------------------------------
def test_cancelling_an_invitation_asks_first_then_frees_the_seat(client, user, product, team):
    client.force_login(user)
    invitation = team["invitation"]
    html = html_of(client.get(team_url(product)))
    dialog = html[html.index(f'<dialog class="modal" id="cancel-invitation-{invitation.pk}"') :]
    dialog = dialog[: dialog.index("</dialog>")]
    assert "Cancel this invitation?" in dialog
    assert "invited@example.com" in dialog
    assert "They can no longer accept it" in dialog
    assert f'action="{team_url(product, f"invitations/{invitation.pk}/cancel/")}"' in dialog
    assert "Keep invitation" in dialog

    response = client.post(team_url(product, f"invitations/{invitation.pk}/cancel/"))

    assert (response.status_code, response["Location"]) == (302, team_url(product))
    assert not Invitation.objects.filter(pk=invitation.pk).exists()
    assert AuditEntry.objects.filter(action="team.invite_cancel", subject_user=invitation.user).exists()
    page = html_of(client.get(team_url(product)))
    assert "Cancelled the invitation to invited@example.com." in page
    assert "No invitations waiting for an answer." in page
    assert "2 of 5 seats used" in page


def test_an_invitation_of_another_product_is_a_404(client, user, product, team):
    elsewhere = product_create(user=user, name="Orchard", platform_id=13)
    theirs = invite(elsewhere, person("orchard@example.com"), Role.VIEWER)
    client.force_login(user)
    response = client.post(team_url(product, f"invitations/{theirs.pk}/cancel/"))
    assert response.status_code == 404
    assert Invitation.objects.filter(pk=theirs.pk).exists()
    assert client.post(team_url(product, "invitations/999999/cancel/")).status_code == 404


def test_removing_a_member_asks_first_then_removes_them(client, user, product, team):
    client.force_login(user)
    target = team["target"]
    html = html_of(client.get(team_url(product)))
    dialog = html[html.index(f'<dialog class="modal" id="remove-member-{target.pk}"') :]
    dialog = dialog[: dialog.index("</dialog>")]
    assert "Remove this member from the team?" in dialog
    assert "target@example.com" in dialog
    assert "They lose access to the devices, events and firmware of Greenhouse at once." in dialog
    assert ">Remove member</button>" in dialog

    response = client.post(team_url(product, f"members/{target.pk}/remove/"))

    assert (response.status_code, response["Location"]) == (302, team_url(product))
    assert not Membership.objects.filter(product=product, user=target).exists()
    assert AuditEntry.objects.filter(action="team.remove", subject_user=target, via="console").exists()
    page = html_of(client.get(team_url(product)))
    assert "Removed target@example.com from the team." in page
    assert 'data-member="target@example.com"' not in page
    assert client_for(target).get(team_url(product)).status_code == 404


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMINISTRATOR])
def test_the_owner_is_never_removed(role, user, product, team):
    actor = actor_with(role, product, user)
    before = team_state(product)
    response = client_for(actor).post(team_url(product, f"members/{user.pk}/remove/"))
    assert response.status_code == 403
    assert FORBIDDEN_PAGE in html_of(response)
    assert team_state(product) == before


def test_removing_someone_off_the_team_is_a_404(client, user, product, team):
    client.force_login(user)
    before = team_state(product)
    assert client.post(team_url(product, f"members/{team['newcomer'].pk}/remove/")).status_code == 404
    assert client.post(team_url(product, "members/999999/remove/")).status_code == 404
    assert team_state(product) == before


def test_an_administrator_removing_themselves_leaves(user, product, team):
    admin = actor_with(Role.ADMINISTRATOR, product, user)
    response = client_for(admin).post(team_url(product, f"members/{admin.pk}/remove/"))
    assert (response.status_code, response["Location"]) == (302, "/products/")
    assert not Membership.objects.filter(product=product, user=admin).exists()


def test_leaving_asks_first_then_goes_to_the_products_list(user, product, team):
    client = client_for(team["target"])
    html = html_of(client.get(team_url(product)))
    dialog = html[html.index('<dialog class="modal" id="leave-team-dialog"') :]
    dialog = dialog[: dialog.index("</dialog>")]
    assert "Leave the team?" in dialog
    assert "To come back, a manager has to invite you again." in dialog
    assert f'action="{team_url(product, "leave/")}"' in dialog

    response = client.post(team_url(product, "leave/"))

    assert (response.status_code, response["Location"]) == (302, "/products/")
    assert not Membership.objects.filter(product=product, user=team["target"]).exists()
    assert AuditEntry.objects.filter(action="team.leave", subject_user=team["target"]).exists()
    products = html_of(client.get("/products/"))
    assert "You left the Greenhouse team." in products
    assert f'data-product-id="{product.id}"' not in products
    assert client.get(team_url(product)).status_code == 404


def test_the_owner_cannot_leave(client, user, product, team):
    client.force_login(user)
    html = html_of(client.get(team_url(product)))
    assert "You own Greenhouse, so you cannot leave its team" in html
    assert 'id="leave-team-dialog"' not in html
    before = team_state(product)
    response = client.post(team_url(product, "leave/"))
    assert response.status_code == 403
    assert team_state(product) == before
