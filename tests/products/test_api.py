"""/v1/products, /v1/user/products and /v1/products/:product: who may see what, the ProductInfo
shape Particle's clients read, creating products as the CLI does, and refusals that create nothing."""

from __future__ import annotations

import pytest
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from console.accounts.models import User
from console.accounts.services import access_token_create
from console.api.errors import TOKEN_NOT_FOUND
from console.models import AuditEntry
from console.permissions import Role
from console.platforms import PLATFORMS
from products.models import Membership, Product
from products.services import product_create

pytestmark = pytest.mark.django_db

BORON = PLATFORMS[13]
ARGON = PLATFORMS[12]
INFO_FIELDS = {
    "id",
    "platform_id",
    "platform",
    "name",
    "slug",
    "description",
    "user",
    "org",
    "groups",
    "settings",
    "created_at",
}


def client_for(user) -> APIClient:
    client = APIClient()
    token = access_token_create(user=user, expires_in_seconds=3600, client_id="particle").token
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def other_client(other_user) -> APIClient:
    return client_for(other_user)


@pytest.fixture
def product(user) -> Product:
    return product_create(user=user, name="Soil Probes", platform_id=BORON.id, description="In the field")


def counts() -> tuple[int, int, int]:
    return Product.objects.count(), Membership.objects.count(), AuditEntry.objects.count()


def assert_token_not_found(response) -> None:
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "error_description": TOKEN_NOT_FOUND}


def not_found(reference) -> dict:
    message = f"Product {str(reference)!r} not found."
    return {"ok": False, "error": message, "error_description": message}


# --- Authorization ----------------------------------------------------------------------------------------
REQUESTS = [
    ("get", "/v1/products", None),
    ("get", "/v1/user/products", None),
    ("post", "/v1/user/products", {"product": {"name": "Stolen", "platform_id": 13}}),
    ("post", "/v1/products", {"name": "Stolen", "platform_id": 13}),
    ("get", "/v1/products/{id}", None),
    ("get", "/v1/products/{slug}", None),
]
REQUEST_IDS = ["list", "user-list", "create", "create-on-products", "get-by-id", "get-by-slug"]


@pytest.mark.parametrize(("method", "path", "data"), REQUESTS, ids=REQUEST_IDS)
def test_anonymous_is_told_the_token_was_not_found(api_client, product, method, path, data):
    before = counts()
    response = getattr(api_client, method)(path.format(id=product.id, slug=product.slug), data, format="json")
    assert_token_not_found(response)
    assert counts() == before


@pytest.mark.parametrize(("method", "path", "data"), REQUESTS, ids=REQUEST_IDS)
def test_a_bad_token_is_401(api_client, product, method, path, data):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer " + "0" * 40)
    before = counts()
    response = getattr(api_client, method)(path.format(id=product.id, slug=product.slug), data, format="json")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert counts() == before


def test_another_user_lists_none_of_your_products(other_client, product):
    for path in ("/v1/products", "/v1/user/products"):
        response = other_client.get(path)
        assert (response.status_code, response.json()) == (200, {"products": []}), path


def test_another_users_product_is_404_exactly_like_an_unknown_one(other_client, product):
    unknown_id = product.id + 1000
    assert not Product.objects.filter(id=unknown_id).exists()
    by_id = other_client.get(f"/v1/products/{product.id}")
    unknown = other_client.get(f"/v1/products/{unknown_id}")
    assert (by_id.status_code, unknown.status_code) == (404, 404)
    assert by_id.json() == not_found(product.id)
    assert unknown.json() == not_found(unknown_id)
    # The same body but for the reference itself: nothing tells an existing product apart.
    assert str(by_id.json()).replace(str(product.id), "?") == str(unknown.json()).replace(
        str(unknown_id), "?"
    )
    assert by_id["Content-Type"] == unknown["Content-Type"] == "application/json"

    by_slug = other_client.get(f"/v1/products/{product.slug}")
    unknown_slug = other_client.get("/v1/products/no-such-probes")
    assert (by_slug.status_code, by_slug.json()) == (404, not_found(product.slug))
    assert (unknown_slug.status_code, unknown_slug.json()) == (404, not_found("no-such-probes"))


@pytest.mark.parametrize("reference", ["²", "99999999999999999999", "0", "-5"])
def test_odd_references_are_404_not_errors(auth_client, product, reference):
    response = auth_client.get(f"/v1/products/{reference}")
    assert (response.status_code, response.json()) == (404, not_found(reference))


# --- ProductInfo ----------------------------------------------------------------------------------------
def test_get_by_id_and_case_insensitive_slug_in_the_exact_shape(auth_client, user, product):
    for reference in (product.id, product.slug, product.slug.upper()):
        response = auth_client.get(f"/v1/products/{reference}")
        assert response.status_code == 200, reference
        body = response.json()
        assert list(body) == ["product"]
        info = body["product"]
        assert set(info) == INFO_FIELDS
        created_at = info.pop("created_at")
        assert parse_datetime(created_at) == product.created_at
        assert info == {
            "id": product.id,
            "platform_id": 13,
            "platform": "Boron",
            "name": "Soil Probes",
            "slug": "soil-probes",
            "description": "In the field",
            "user": user.email,
            "org": None,
            "groups": [],
            "settings": {"quarantine": True, "event_data_limit": 1024},
        }


def test_the_settings_follow_the_product(auth_client, product):
    Product.objects.filter(pk=product.pk).update(quarantine_policy="approve", event_data_limit=4096)
    settings = auth_client.get(f"/v1/products/{product.id}").json()["product"]["settings"]
    assert settings == {"quarantine": False, "event_data_limit": 4096}


@pytest.mark.parametrize("role", [Role.ADMINISTRATOR, Role.DEVELOPER, Role.SUPPORT, Role.VIEWER])
def test_every_team_member_sees_the_product_with_its_owner(user, other_user, product, role):
    Membership.objects.create(product=product, user=other_user, role=role)
    client = client_for(other_user)
    info = client.get(f"/v1/products/{product.slug}").json()["product"]
    assert (info["id"], info["user"]) == (product.id, user.email)  # "user" is the owner
    assert [p["id"] for p in client.get("/v1/products").json()["products"]] == [product.id]


def test_the_lists_hold_your_teams_products_in_the_same_shape(auth_client, user, other_user, product):
    joined = product_create(user=other_user, name="Attic", platform_id=ARGON.id)
    Membership.objects.create(product=joined, user=user, role=Role.VIEWER)
    product_create(user=other_user, name="Basement", platform_id=ARGON.id)  # not on that team

    for path in ("/v1/products", "/v1/user/products"):
        response = auth_client.get(path)
        assert response.status_code == 200
        body = response.json()
        assert list(body) == ["products"]
        assert [p["name"] for p in body["products"]] == ["Attic", "Soil Probes"], path
        attic, probes = body["products"]
        assert set(attic) == set(probes) == INFO_FIELDS
        assert (attic["id"], attic["platform_id"], attic["platform"], attic["user"]) == (
            joined.id,
            ARGON.id,
            "Argon",
            other_user.email,
        )
        assert probes == auth_client.get(f"/v1/products/{product.id}").json()["product"]


def test_listing_takes_a_bounded_number_of_queries(
    auth_client, user, other_user, django_assert_max_num_queries
):
    auth_client.get("/v1/products")  # the token's first use writes last_used_at once
    counts_by_size = []
    for total in (3, 12):
        while Product.objects.filter(memberships__user=user).count() < total:
            index = Product.objects.count()
            owner = user if index % 2 else other_user
            created = product_create(user=owner, name=f"Fleet {index:02d}", platform_id=BORON.id)
            if owner is other_user:
                Membership.objects.create(product=created, user=user, role=Role.DEVELOPER)
        for path in ("/v1/products", "/v1/user/products"):
            with django_assert_max_num_queries(2) as queries:  # the token, then products with owners
                products = auth_client.get(path).json()["products"]
            assert len(products) == total
            assert {p["user"] for p in products} == {user.email, other_user.email}
            counts_by_size.append(len(queries))
    assert len(set(counts_by_size)) == 1, counts_by_size


# --- Creating ---------------------------------------------------------------------------------------------
def assert_created(response, user, *, name: str, platform, description: str = "") -> Product:
    assert response.status_code == 201, response.content
    body = response.json()
    assert list(body) == ["ok", "product"]
    assert body["ok"] is True
    info = body["product"]
    product = Product.objects.get(id=info["id"])
    assert set(info) == INFO_FIELDS
    assert product.id >= 1000
    assert (info["name"], info["platform_id"], info["platform"], info["description"], info["user"]) == (
        name,
        platform.id,
        platform.name,
        description,
        user.email,
    )
    assert info["slug"] == product.slug
    assert (info["org"], info["groups"], info["settings"]) == (
        None,
        [],
        {"quarantine": True, "event_data_limit": 1024},
    )
    assert parse_datetime(info["created_at"]) == product.created_at
    assert (product.owner, product.name, product.platform_id, product.description) == (
        user,
        name,
        platform.id,
        description,
    )
    assert list(product.memberships.values_list("user_id", "role")) == [(user.pk, "owner")]
    entry = AuditEntry.objects.get(action="product.create", target_id=str(product.id))
    assert (entry.actor, entry.via) == (user, "api")
    return product


def test_create_with_the_clis_nested_body(auth_client, user):
    response = auth_client.post(
        "/v1/user/products",
        {"product": {"name": "Weather Stations", "description": "Rooftops", "platform_id": 12}},
        format="json",
    )
    product = assert_created(response, user, name="Weather Stations", platform=ARGON, description="Rooftops")
    assert product.slug == "weather-stations"
    # The new product is on the creator's lists at once.
    assert [p["id"] for p in auth_client.get("/v1/user/products").json()["products"]] == [product.id]


def test_create_with_a_flat_json_body(auth_client, user):
    response = auth_client.post("/v1/user/products", {"name": "Tanks", "platform_id": 13}, format="json")
    assert_created(response, user, name="Tanks", platform=BORON)


def test_create_with_a_flat_form_body(auth_client, user):
    response = auth_client.post(
        "/v1/user/products", {"name": "Pumps", "platform_id": "13", "description": "x"}
    )
    assert_created(response, user, name="Pumps", platform=BORON, description="x")


def test_creating_the_same_name_twice_gives_two_slugs(auth_client, user):
    first = auth_client.post("/v1/user/products", {"name": "Twins", "platform_id": 13}, format="json")
    second = auth_client.post("/v1/user/products", {"name": "Twins", "platform_id": 13}, format="json")
    assert (first.json()["product"]["slug"], second.json()["product"]["slug"]) == ("twins", "twins-2")
    assert second.json()["product"]["id"] == first.json()["product"]["id"] + 1


def error_fields(body: dict) -> list:
    """The fields a refusal names: ``field`` for a refused value, ``errors`` for a malformed body."""
    return [body["field"]] if "field" in body else [error["field"] for error in body["errors"]]


@pytest.mark.parametrize(
    ("data", "fields", "fragment"),
    [
        ({"platform_id": 13}, ["name"], "required"),
        ({"name": "Tanks"}, ["platform_id"], "required"),
        ({}, ["name", "platform_id"], "required"),
        ({"product": {"platform_id": 13}}, ["product.name"], "required"),
        ({"product": {"name": "Tanks"}}, ["product.platform_id"], "required"),
        ({"name": "Tanks", "platform_id": 99}, ["platform_id"], "Unknown platform id 99"),
        ({"product": {"name": "Tanks", "platform_id": 1000}}, ["platform_id"], "Unknown platform id 1000"),
        ({"name": "Tanks", "platform_id": "boron"}, ["platform_id"], "valid integer"),
        ({"name": "n" * 81, "platform_id": 13}, ["name"], "at most 80 characters; this one has 81"),
        ({"name": "n" * 201, "platform_id": 13}, ["name"], "no more than 200 characters"),
        ({"name": "   ", "platform_id": 13}, ["name"], "blank"),
        ({"name": "Tanks", "platform_id": 13, "description": "d" * 1001}, ["description"], "at most 1000"),
    ],
    ids=[
        "no-name",
        "no-platform",
        "empty",
        "cli-no-name",
        "cli-no-platform",
        "unknown-platform",
        "product-id-as-platform",
        "platform-name",
        "name-81",
        "name-201",
        "blank-name",
        "long-description",
    ],
)
def test_refused_creations_name_the_field_and_create_nothing(auth_client, data, fields, fragment):
    before = counts()
    response = auth_client.post("/v1/user/products", data, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["ok"] is False
    assert body["error"] == body["error_description"]
    assert error_fields(body) == fields
    assert fragment in body["error"], body["error"]
    assert counts() == before


def test_a_refused_platform_lists_the_known_ones(auth_client):
    body = auth_client.post("/v1/user/products", {"name": "Tanks", "platform_id": 7}, format="json").json()
    assert body["field"] == "platform_id"
    for platform in (BORON, ARGON, PLATFORMS[32]):
        assert f"{platform.id} ({platform.name})" in body["error"]


def test_a_creation_belongs_to_the_caller_only(auth_client, other_client, user):
    auth_client.post("/v1/user/products", {"name": "Mine", "platform_id": 13}, format="json")
    assert other_client.get("/v1/user/products").json() == {"products": []}
    assert other_client.get("/v1/products/mine").status_code == 404
    third = User.objects.create_user(email="third@example.com", password="x" * 12)
    assert Membership.objects.filter(user=third).count() == 0
