"""API users: programmatic team members created with a friendly name and scopes, whose token may do
what the scopes allow on their product and nothing else."""

from __future__ import annotations

import pytest
from oauth2_provider.models import AccessToken
from rest_framework.test import APIClient

from console.accounts.models import User
from console.models import AuditEntry
from console.permissions import PERMISSIONS, Role
from devices.models import Device
from products.limits import API_USER_LIMIT
from products.models import ApiUser, DeviceGroup, Membership
from products.scopes import SCOPES, scope_actions, scopes_clean
from products.services import api_user_create, product_create
from tests.products.test_team import client_for, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def product(user):
    return product_create(user=user, name="Greenhouse", platform_id=13)


def token_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def create(auth_client, product, **body):
    return auth_client.post(f"/v1/products/{product.id}/team", body, format="json")


# --- the scope catalogue (pure) --------------------------------------------------------------------------
def test_every_scope_grants_declared_actions_only():
    for scope in SCOPES.values():
        assert scope.actions, scope.name
        assert scope.actions <= set(PERMISSIONS), scope.name


def test_scopes_are_cleaned_to_catalogue_order_without_duplicates():
    assert scopes_clean(["events:get", "devices:list", "events:get"]) == ["devices:list", "events:get"]
    assert scopes_clean("devices:list, events:get") == ["devices:list", "events:get"]


def test_particles_finer_scope_names_are_accepted_as_the_scope_that_covers_them():
    assert scopes_clean(["firmware:update", "groups:create"]) == ["firmware:create", "groups:update"]


@pytest.mark.parametrize(
    ("scopes", "message"),
    [
        ([], "at least one scope"),
        (["devices:fly"], "Unknown scope: devices:fly"),
        (["a", "b"], "Unknown scopes: a, b"),
        ({"devices:list": True}, "must be a list"),
        (7, "must be a list"),
    ],
)
def test_bad_scopes_are_refused_with_the_reason(scopes, message):
    from console.errors import ApplicationError

    with pytest.raises(ApplicationError, match=message):
        scopes_clean(scopes)


def test_reading_the_product_needs_no_scope():
    assert scope_actions([]) == {"product.read"}
    assert "device.read" in scope_actions(["groups:list"])


# --- creating --------------------------------------------------------------------------------------------
def test_the_owner_creates_an_api_user_and_gets_its_token_once(auth_client, product, user):
    response = create(
        auth_client, product, friendly_name="Data pipeline", scopes=["devices:list", "events:get"]
    )

    assert response.status_code == 200, response.content
    created = response.json()["created"]
    assert created["is_programmatic"] is True
    assert created["friendly_name"] == "Data pipeline"
    assert created["scopes"] == ["devices:list", "events:get"]
    assert created["username"].startswith("data-pipeline+")
    assert created["username"].endswith("@api-users.invalid")
    [token] = [entry["token"] for entry in created["tokens"]]
    assert len(token) == 40
    account = User.objects.get(email=created["username"])
    assert not account.has_usable_password()
    assert AccessToken.objects.get(user=account).expires.year >= 2100  # never expires in practice
    entry = AuditEntry.objects.get(action="team.api_user_create")
    assert entry.actor == user
    assert entry.metadata["scopes"] == ["devices:list", "events:get"]
    assert token not in str(entry.metadata)


def test_the_team_lists_api_users_as_programmatic(auth_client, product):
    create(auth_client, product, friendly_name="Pipeline", scopes=["devices:list"])

    team = auth_client.get(f"/v1/products/{product.id}/team").json()["team"]

    humans = [entry for entry in team if not entry.get("is_programmatic")]
    [robot] = [entry for entry in team if entry.get("is_programmatic")]
    assert [entry["role"]["id"] for entry in humans] == ["owner"]
    assert robot["friendly_name"] == "Pipeline"
    assert robot["scopes"] == ["devices:list"]
    assert "tokens" not in robot


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"friendly_name": "", "scopes": ["devices:list"]}, "friendly_name", "needs a friendly_name"),
        ({"friendly_name": "x" * 81, "scopes": ["devices:list"]}, "friendly_name", "at most 80"),
        ({"friendly_name": "Pipeline", "scopes": []}, "scopes", "at least one scope"),
        ({"friendly_name": "Pipeline"}, "scopes", "at least one scope"),
        ({"friendly_name": "Pipeline", "scopes": ["devices:fly"]}, "scopes", "Unknown scope"),
        ({"friendly_name": "Pipeline", "scopes": "team:manage"}, "scopes", "Unknown scope"),
        ({}, "username", "friendly_name and scopes"),
    ],
)
def test_bad_api_user_requests_are_refused_and_create_nothing(auth_client, product, body, field, message):
    accounts = User.objects.count()

    response = create(auth_client, product, **body)

    assert response.status_code == 400, response.content
    assert message in str(response.json())
    assert User.objects.count() == accounts
    assert not ApiUser.objects.exists()


def test_the_number_of_api_users_is_bounded(user, product, auth_client):
    for number in range(API_USER_LIMIT):
        api_user_create(actor=user, product=product, friendly_name=f"bot {number}", scopes=["devices:list"])

    response = create(auth_client, product, friendly_name="one more", scopes=["devices:list"])

    assert response.status_code == 400
    assert f"at most {API_USER_LIMIT} API users" in response.json()["error_description"]
    assert ApiUser.objects.count() == API_USER_LIMIT


@pytest.mark.parametrize("role", [Role.DEVELOPER, Role.SUPPORT, Role.VIEWER])
def test_roles_without_team_manage_cannot_create_api_users(product, role):
    someone = member(product, f"{role}@example.com", role)

    response = create(client_for(someone), product, friendly_name="Pipeline", scopes=["devices:list"])

    assert response.status_code == 403
    assert not ApiUser.objects.exists()


def test_an_administrator_may_create_api_users(product):
    admin = member(product, "admin@example.com", Role.ADMINISTRATOR)

    response = create(client_for(admin), product, friendly_name="Pipeline", scopes=["devices:list"])

    assert response.status_code == 200


def test_another_products_owner_gets_404_and_nothing_is_created(product, other_user):
    response = create(client_for(other_user), product, friendly_name="Pipeline", scopes=["devices:list"])

    assert response.status_code == 404
    assert not ApiUser.objects.exists()


# --- what the token may do ------------------------------------------------------------------------------
@pytest.fixture
def pipeline(user, product):
    return api_user_create(actor=user, product=product, friendly_name="Pipeline", scopes=["devices:list"])


def test_the_token_does_what_its_scopes_allow(product, pipeline):
    client = token_client(pipeline.token)

    assert client.get(f"/v1/products/{product.id}").status_code == 200
    assert client.get(f"/v1/products/{product.slug}/devices").status_code == 200


def test_the_token_is_refused_what_its_scopes_do_not_allow_with_the_scope_to_add(product, pipeline):
    client = token_client(pipeline.token)

    response = client.post(f"/v1/products/{product.id}/groups", {"name": "field"}, format="json")

    assert response.status_code == 403
    assert "groups:update" in response.json()["error_description"]
    assert not DeviceGroup.objects.exists()
    assert client.get(f"/v1/products/{product.id}/team").status_code == 403


def test_an_api_user_cannot_manage_the_team_whatever_its_scopes(user, product):
    everything = api_user_create(actor=user, product=product, friendly_name="All", scopes=list(SCOPES))
    client = token_client(everything.token)

    assert create(client, product, friendly_name="Child", scopes=["devices:list"]).status_code == 403
    response = client.delete(f"/v1/products/{product.id}/team/{user.email}")
    assert response.status_code == 403
    assert Membership.objects.filter(user=user, product=product).exists()
    assert ApiUser.objects.count() == 1


def test_the_token_sees_no_other_product(user, pipeline):
    elsewhere = product_create(user=user, name="Elsewhere", platform_id=13)

    response = token_client(pipeline.token).get(f"/v1/products/{elsewhere.id}/devices")

    assert response.status_code == 404


def test_an_api_user_cannot_create_products(pipeline):
    response = token_client(pipeline.token).post(
        "/v1/user/products", {"product": {"name": "Mine", "platform_id": 13}}, format="json"
    )

    assert response.status_code == 403
    assert "cannot create products" in response.json()["error_description"]


def test_an_api_user_cannot_be_invited_to_a_team(auth_client, user, pipeline):
    elsewhere = product_create(user=user, name="Elsewhere", platform_id=13)

    response = auth_client.post(
        f"/v1/products/{elsewhere.id}/team", {"username": pipeline.api_user.user.email}, format="json"
    )

    assert response.status_code == 400
    assert "is an API user" in response.json()["error_description"]


def test_an_api_user_with_events_get_streams_its_products_events(product, user):
    from products.selectors import product_ids_for_user

    reader = api_user_create(actor=user, product=product, friendly_name="Reader", scopes=["events:get"])
    lister = api_user_create(actor=user, product=product, friendly_name="Lister", scopes=["devices:list"])

    assert product_ids_for_user(user=reader.api_user.user) == [product.id]
    assert product_ids_for_user(user=lister.api_user.user) == []


# --- editing and deleting -------------------------------------------------------------------------------
def test_scopes_are_replaced_and_take_effect_on_the_next_request(auth_client, product, pipeline):
    username = pipeline.api_user.user.email
    client = token_client(pipeline.token)
    assert client.get(f"/v1/products/{product.id}/team").status_code == 403

    response = auth_client.put(
        f"/v1/products/{product.id}/team/{username}",
        {"scopes": ["teams.users:list"], "friendly_name": "Auditor"},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["updated"]["scopes"] == ["teams.users:list"]
    assert response.json()["updated"]["friendly_name"] == "Auditor"
    assert client.get(f"/v1/products/{product.id}/team").status_code == 200
    assert client.get(f"/v1/products/{product.id}/devices").status_code == 403


def test_editing_a_person_through_the_api_user_route_is_a_404(auth_client, product, user):
    response = auth_client.put(f"/v1/products/{product.id}/team/{user.email}", {"scopes": []}, format="json")

    assert response.status_code == 404


def test_bad_edits_change_nothing(auth_client, product, pipeline):
    username = pipeline.api_user.user.email
    for body in ({}, {"scopes": ["nope"]}, {"friendly_name": ""}):
        response = auth_client.put(f"/v1/products/{product.id}/team/{username}", body, format="json")
        assert response.status_code == 400, body
    pipeline.api_user.refresh_from_db()
    assert pipeline.api_user.scopes == ["devices:list"]
    assert pipeline.api_user.friendly_name == "Pipeline"


def test_deleting_an_api_user_stops_its_token_at_once(auth_client, product, pipeline):
    username = pipeline.api_user.user.email

    response = auth_client.delete(f"/v1/products/{product.id}/team/{username}")

    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert not User.objects.filter(email=username).exists()
    assert not AccessToken.objects.filter(user__email=username).exists()
    assert token_client(pipeline.token).get(f"/v1/products/{product.id}/devices").status_code in {400, 401}
    assert AuditEntry.objects.filter(action="team.api_user_create").exists()  # the record stays
    assert AuditEntry.objects.get(action="team.api_user_delete").metadata["username"] == username


def test_a_viewer_cannot_delete_an_api_user(product, pipeline):
    viewer = member(product, "viewer@example.com", Role.VIEWER)

    response = client_for(viewer).delete(f"/v1/products/{product.id}/team/{pipeline.api_user.user.email}")

    assert response.status_code == 403
    assert ApiUser.objects.count() == 1


def test_an_api_user_owns_no_devices_and_sees_none_of_its_creators(user, pipeline):
    from console.platforms import PLATFORMS
    from devices.services import devices_provision

    devices_provision(platform=PLATFORMS[13], count=1, owner=user)

    response = token_client(pipeline.token).get("/v1/devices")

    assert response.status_code == 200
    assert response.json() == []
    assert Device.objects.filter(owner=pipeline.api_user.user).count() == 0
