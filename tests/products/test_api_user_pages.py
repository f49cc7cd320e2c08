"""The API users card on a product's Team page: listing for every member, creating (the token shown
once) and deleting for managers, and what a refused request leaves unchanged."""

from __future__ import annotations

import re

import pytest
from oauth2_provider.models import AccessToken

from console.permissions import Role
from products.models import ApiUser, Product
from products.services import api_user_create, product_create
from tests.products.test_team_pages import FORBIDDEN_PAGE, HTMX, client_for, join, person

pytestmark = pytest.mark.django_db


@pytest.fixture
def product(user) -> Product:
    return product_create(user=user, name="Greenhouse", platform_id=13)


def team_url(product: Product, suffix: str = "") -> str:
    return f"/products/{product.slug}/team/{suffix}"


def test_every_member_sees_the_api_users_and_their_scopes(user, product):
    api_user_create(actor=user, product=product, friendly_name="Data pipeline", scopes=["events:get"])
    viewer = join(product, person("viewer@example.com"), Role.VIEWER)

    page = client_for(viewer).get(team_url(product)).content.decode()

    assert "Data pipeline" in page
    assert "events:get" in page
    assert "New API user" not in page  # a viewer cannot create them
    assert "delete-api-user-" not in page


def test_the_empty_state_tells_managers_what_api_users_are_for(user, product):
    page = client_for(user).get(team_url(product)).content.decode()

    assert "No API users." in page
    assert "New API user" in page


def test_creating_shows_the_token_once_in_the_dialog(user, product):
    response = client_for(user).post(
        team_url(product, "api-users/new/"),
        {"friendly_name": "Importer", "scopes": ["devices:import", "devices:list"]},
        **HTMX,
    )

    assert response.status_code == 200
    api_user = ApiUser.objects.get()
    assert api_user.friendly_name == "Importer"
    assert api_user.scopes == ["devices:list", "devices:import"]
    token = re.search(
        r'id="api-user-token-value" type="text" value="([0-9a-f]{40})"', response.content.decode()
    )
    assert token, "the token is shown"
    assert AccessToken.objects.filter(user=api_user.user).count() == 1
    again = client_for(user).get(team_url(product)).content.decode()
    assert token.group(1) not in again  # never shown again
    assert "Importer" in again


def test_without_htmx_the_team_page_shows_the_token(user, product):
    response = client_for(user).post(
        team_url(product, "api-users/new/"), {"friendly_name": "Importer", "scopes": ["devices:list"]}
    )

    assert response.status_code == 200
    assert 'id="api-user-new-token-value"' in response.content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"friendly_name": "", "scopes": ["devices:list"]}, "Give the API user a name"),
        ({"friendly_name": "Importer"}, "Choose at least one scope"),
        ({"friendly_name": "Importer", "scopes": ["root:everything"]}, "Choose scopes from the list"),
    ],
)
def test_bad_input_comes_back_on_the_form_and_creates_nothing(user, product, data, message):
    response = client_for(user).post(team_url(product, "api-users/new/"), data, **HTMX)

    assert response.status_code == 200
    assert response["X-Quanta-Error"] == "invalid"
    assert message in response.content.decode()
    assert not ApiUser.objects.exists()


@pytest.mark.parametrize("role", [Role.DEVELOPER, Role.SUPPORT, Role.VIEWER])
def test_roles_without_team_manage_cannot_create_or_delete(user, product, role):
    existing = api_user_create(actor=user, product=product, friendly_name="Keep", scopes=["devices:list"])
    someone = join(product, person(f"{role}@example.com"), role)
    client = client_for(someone)

    created = client.post(
        team_url(product, "api-users/new/"), {"friendly_name": "X", "scopes": ["devices:list"]}
    )
    deleted = client.post(team_url(product, f"api-users/{existing.api_user.pk}/delete/"))

    assert created.status_code == deleted.status_code == 403
    assert FORBIDDEN_PAGE in created.content.decode()
    assert list(ApiUser.objects.values_list("friendly_name", flat=True)) == ["Keep"]


def test_deleting_removes_the_account_and_its_token(user, product):
    existing = api_user_create(actor=user, product=product, friendly_name="Old", scopes=["devices:list"])

    response = client_for(user).post(team_url(product, f"api-users/{existing.api_user.pk}/delete/"))

    assert response.status_code == 302
    assert not ApiUser.objects.exists()
    assert not AccessToken.objects.filter(user_id=existing.api_user.user_id).exists()


def test_another_products_api_user_is_a_404_through_this_product(user, product):
    elsewhere = product_create(user=user, name="Elsewhere", platform_id=13)
    theirs = api_user_create(actor=user, product=elsewhere, friendly_name="Theirs", scopes=["devices:list"])

    response = client_for(user).post(team_url(product, f"api-users/{theirs.api_user.pk}/delete/"))

    assert response.status_code == 404
    assert ApiUser.objects.filter(pk=theirs.api_user.pk).exists()
