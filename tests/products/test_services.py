"""Products and their teams: creating a product (ids, slugs, validation, the owner), the database
constraints behind them, and reading a product as a team member (who may do what)."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from console.accounts.models import User
from console.errors import ApplicationError, NotFound, PermissionDenied
from console.models import AuditEntry
from console.permissions import Role
from console.platforms import PLATFORMS
from products import services
from products.models import Membership, Product
from products.selectors import product_access, product_ids_for_user, product_list_for_user
from products.services import product_create

pytestmark = pytest.mark.django_db

BORON = PLATFORMS[13]
ARGON = PLATFORMS[12]


def create(user, name: str = "Sensors", platform_id: int = BORON.id, **fields) -> Product:
    return product_create(user=user, name=name, platform_id=platform_id, **fields)


def counts() -> tuple[int, int, int]:
    return Product.objects.count(), Membership.objects.count(), AuditEntry.objects.count()


def member(product: Product, role: Role | str, email: str | None = None) -> User:
    role = Role(role)
    user = User.objects.create_user(email=email or f"{role.value}@example.com", password="x" * 12)
    Membership.objects.create(product=product, user=user, role=role)
    return user


def next_product_id() -> int:
    """The id the database hands the next product, read off its sequence without using it."""
    table = Product._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            [sequence] = cursor.fetchone()
            cursor.execute(f"SELECT last_value, is_called FROM {sequence}")  # noqa: S608 (a sequence name)
            last_value, is_called = cursor.fetchone()
            return last_value + 1 if is_called else last_value
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        row = cursor.fetchone()
        return (row[0] if row else 0) + 1


# --- Ids ------------------------------------------------------------------------------------------------
def test_ids_start_at_1000_and_increase(user):
    products = [create(user, f"Fleet {index}") for index in range(3)]
    ids = [product.id for product in products]
    assert all(product_id >= 1000 for product_id in ids)
    assert ids == sorted(ids)
    assert ids == [ids[0], ids[0] + 1, ids[0] + 2]
    assert [p.id for p in Product.objects.order_by("id")] == ids


def test_the_id_sequence_starts_at_1000_on_this_database(user):
    """The migration moved the sequence past every platform id, on SQLite and PostgreSQL alike:
    without it the first product would be 1 and the check constraint would refuse it."""
    upcoming = next_product_id()
    assert upcoming >= 1000, connection.vendor
    assert create(user).id == upcoming


@pytest.fixture
def _restore_product_ids():
    """Put the product id sequence back the way the migration leaves it (the tables are empty
    after a transactional test, so restarting at 1000 collides with nothing)."""
    yield
    migration = importlib.import_module("products.migrations.0002_product_ids_start_at_1000")
    with connection.schema_editor() as editor:
        migration.start_ids_at_first_product_id(django_apps, editor)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_restore_product_ids")
def test_ids_still_start_at_1000_after_the_database_is_flushed():
    """``manage.py flush`` resets every sequence (SQLite's to 0, PostgreSQL's identity to its
    start value); products must still be numbered from 1000 afterwards."""
    call_command("flush", interactive=False, verbosity=0)
    owner = User.objects.create_user(email="flushed@example.com", password="x" * 12)
    product = create(owner)
    assert product.id >= 1000


# --- Slugs ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Café Déjà Vu", "cafe-deja-vu"),
        ("  Ünïcödé   Sensors!! ", "unicode-sensors"),
        ("--Hello, World!--", "hello-world"),
        ("Tank #3 (north) & co.", "tank-3-north-co"),
        ("2024", "product-2024"),
        ("12 34", "12-34"),  # not only digits: a slug as it is
        ("日本語", "product"),
        ("€ € €", "product"),
        ("x" * 80, "x" * 60),
    ],
)
def test_slugs_from_names(user, name, slug):
    product = create(user, name)
    assert product.slug == slug
    assert product.name == name.strip()
    assert not product.slug.isdigit()


def test_slug_collisions_take_numeric_suffixes(user, other_user):
    first, second, third = (create(owner, "Water Meters") for owner in (user, other_user, user))
    assert [first.slug, second.slug, third.slug] == ["water-meters", "water-meters-2", "water-meters-3"]
    # A name that already ends in a number, and numeric names, collide the same way.
    assert create(user, "Water Meters 2").slug == "water-meters-2-2"
    assert [create(user, "42").slug, create(user, "42").slug] == ["product-42", "product-42-2"]
    assert [create(user, "###").slug, create(user, "***").slug] == ["product", "product-2"]
    assert Product.objects.filter(slug__startswith="water-meters").count() == 4


def test_a_slug_taken_between_choosing_and_saving_takes_the_next(user, monkeypatch):
    """Two creators racing for one slug: the loser's insert fails and it chooses again."""
    create(user, "Racers")
    choose = services._unique_slug
    calls = []

    def stale_first(name):
        calls.append(name)
        return "racers" if len(calls) == 1 else choose(name)

    monkeypatch.setattr(services, "_unique_slug", stale_first)
    product = create(user, "Racers")
    assert (len(calls), product.slug) == (2, "racers-2")
    assert Product.objects.filter(name="Racers").count() == 2
    assert Membership.objects.filter(product=product, role=Role.OWNER).count() == 1


def test_a_slug_that_never_frees_up_is_an_error_and_creates_nothing(user, monkeypatch):
    create(user, "Stuck")
    before = counts()
    monkeypatch.setattr(services, "_unique_slug", lambda name: "stuck")
    with pytest.raises(ApplicationError) as raised:
        create(user, "Stuck")
    assert raised.value.field == "name"
    assert "unique address" in raised.value.message
    assert counts() == before


def test_a_failed_membership_rolls_the_product_back(user, monkeypatch):
    """The product and its owner's membership are written together or not at all."""
    before = counts()

    def refuse(**fields):
        raise IntegrityError("simulated")

    monkeypatch.setattr(Membership.objects, "create", refuse)
    with pytest.raises(IntegrityError):  # not a slug race: raised, not retried
        create(user, "Half made")
    assert counts() == before
    assert not Product.objects.filter(name="Half made").exists()


# --- Validation -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "field", "fragments"),
    [
        ({"name": ""}, "name", ["needs a name"]),
        ({"name": "   "}, "name", ["needs a name"]),
        ({"name": None}, "name", ["needs a name"]),
        ({"name": "n" * 81}, "name", ["at most 80 characters", "this one has 81"]),
        ({"platform_id": 99}, "platform_id", ["Unknown platform id 99", "13 (Boron)", "12 (Argon)"]),
        ({"platform_id": None}, "platform_id", ["Unknown platform id None"]),
        ({"platform_id": 1000}, "platform_id", ["Unknown platform id 1000"]),
        ({"description": "d" * 1001}, "description", ["at most 1000 characters", "this one has 1001"]),
    ],
    ids=["empty", "blank", "none", "long-name", "platform", "no-platform", "product-id", "long-description"],
)
def test_validation_errors_name_the_field_and_create_nothing(user, fields, field, fragments):
    before = counts()
    with pytest.raises(ApplicationError) as raised:
        product_create(**{"user": user, "name": "Sensors", "platform_id": BORON.id, **fields})
    error = raised.value
    assert (type(error), error.status_code, error.field) == (ApplicationError, 400, field)
    for fragment in fragments:
        assert fragment in error.message, error.message
    assert counts() == before


def test_the_longest_name_and_description_are_accepted_and_trimmed(user):
    product = create(user, " " + "n" * 80 + " ", description="\n" + "d" * 1000 + "  ")
    product.refresh_from_db()
    assert (product.name, product.description) == ("n" * 80, "d" * 1000)
    assert product.platform_id == BORON.id


# --- The owner, the audit entry and the defaults ---------------------------------------------------------
def test_the_creator_is_the_single_owner_and_the_creation_is_audited(user):
    product = create(user, "Greenhouse", platform_id=ARGON.id, description="Tomatoes", via="api")
    product.refresh_from_db()
    assert (product.owner, product.platform_id, product.description) == (user, ARGON.id, "Tomatoes")
    assert (product.quarantine_policy, product.event_data_limit) == ("quarantine", 1024)
    assert list(product.memberships.values_list("user_id", "role")) == [(user.pk, "owner")]
    entry = AuditEntry.objects.get(action="product.create")
    assert (entry.actor, entry.target_type, entry.target_id, entry.target_label, entry.via) == (
        user,
        "product",
        str(product.id),
        "Greenhouse",
        "api",
    )


def test_a_second_owner_is_refused_by_the_database(user, other_user):
    product = create(user)
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(product=product, user=other_user, role=Role.OWNER)
    # The creator cannot join twice either, under any role.
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(product=product, user=user, role=Role.VIEWER)
    # Other roles may be many; another product has an owner of its own.
    Membership.objects.create(product=product, user=other_user, role=Role.ADMINISTRATOR)
    create(other_user, "Theirs")
    assert Membership.objects.filter(product=product, role=Role.OWNER).count() == 1
    assert Membership.objects.filter(role=Role.OWNER).count() == 2


def _raw_product(user, **fields) -> Product:
    values = {"slug": "raw", "name": "Raw", "platform_id": BORON.id, "owner": user, **fields}
    return Product.objects.create(**values)


@pytest.mark.parametrize(
    "fields",
    [
        {"id": 999},
        {"id": 13},
        {"event_data_limit": 1023},
        {"event_data_limit": 16385},
        {"event_data_limit": 0},
        {"slug": "1234"},
        {"slug": "0"},
    ],
    ids=["id-999", "platform-id", "limit-1023", "limit-16385", "limit-0", "numeric-slug", "zero-slug"],
)
def test_check_constraints_refuse_bad_rows(user, fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        _raw_product(user, **fields)
    assert not Product.objects.exists()


def test_check_constraints_accept_the_edges(user):
    low = _raw_product(user, id=1000, slug="low", event_data_limit=1024)
    high = _raw_product(user, slug="high", event_data_limit=16384)
    assert (low.id, low.event_data_limit, high.event_data_limit) == (1000, 1024, 16384)
    assert _raw_product(user, slug="product-1234").slug == "product-1234"


# --- Reading a product as a team member ------------------------------------------------------------------
def test_access_by_id_or_slug_case_insensitively(user):
    product = create(user, "Soil Probes")
    for reference in (
        product.id,
        str(product.id),
        f" {product.id} ",
        "soil-probes",
        "SOIL-Probes",
        " soil-probes ",
    ):
        access = product_access(user=user, id_or_slug=reference)
        assert (access.product, access.role) == (product, Role.OWNER), reference


def test_unknown_and_another_teams_products_are_not_found_alike(user, other_user):
    theirs = create(other_user, "Private Fleet")
    messages = {}
    for reference in (theirs.id, "private-fleet", 999_999, "no-such-product"):
        with pytest.raises(NotFound) as raised:
            product_access(user=user, id_or_slug=reference)
        assert raised.value.status_code == 404
        messages[reference] = raised.value.message
    assert messages == {
        theirs.id: f"Product '{theirs.id}' not found.",
        "private-fleet": "Product 'private-fleet' not found.",
        999_999: "Product '999999' not found.",
        "no-such-product": "Product 'no-such-product' not found.",
    }
    # Existence does not leak through the message: another team's id reads like an unknown one.
    assert messages[theirs.id].replace(str(theirs.id), "X") == messages[999_999].replace("999999", "X")


def test_anonymous_has_no_access(user):
    from django.contrib.auth.models import AnonymousUser

    product = create(user)
    for anonymous in (None, AnonymousUser()):
        with pytest.raises(NotFound):
            product_access(user=anonymous, id_or_slug=product.id)


@pytest.mark.parametrize(
    "reference",
    ["²", "١٢٣", "2147483648", "99999999999999999999999", "9" * 5000, "-1", "1.5", "12 34"],
    ids=[
        "superscript",
        "arabic-digits",
        "above-int32",
        "huge",
        "5000-digits",
        "negative",
        "decimal",
        "spaced",
    ],
)
def test_odd_references_are_simply_not_found(user, reference):
    create(user)
    with pytest.raises(NotFound) as raised:
        product_access(user=user, id_or_slug=reference)
    assert raised.value.message == f"Product {reference.strip()!r} not found."


# The expected table, written out here so that a change to console/permissions.py shows up.
OWN, ADM, DEV, SUP, VIEW = (Role.OWNER, Role.ADMINISTRATOR, Role.DEVELOPER, Role.SUPPORT, Role.VIEWER)
ALLOWED = {
    "product.read": {OWN, ADM, DEV, SUP, VIEW},
    "event.read": {OWN, ADM, DEV, SUP, VIEW},
    "event.publish": {OWN, ADM, DEV},
    "device.update": {OWN, ADM, DEV, SUP},
    "customer.manage": {OWN, ADM, SUP},
    "team.manage": {OWN, ADM},
    "product.update": {OWN, ADM},
    "product.delete": {OWN},
    "billing.manage": {OWN},
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(ALLOWED))
def test_each_role_may_do_what_the_table_says(user, role, action):
    product = create(user)
    actor = user if role is Role.OWNER else member(product, role)
    if role in ALLOWED[action]:
        access = product_access(user=actor, id_or_slug=product.slug, action=action)
        assert (access.product, access.role) == (product, role)
        access.require(action)  # and again on the access object
        return
    with pytest.raises(PermissionDenied) as raised:
        product_access(user=actor, id_or_slug=product.id, action=action)
    assert raised.value.status_code == 403
    assert raised.value.message == f"Your role does not allow {action.replace('.', ' ')}."


def test_the_default_action_is_reading_and_an_undeclared_action_is_never_allowed(user):
    product = create(user)
    viewer = member(product, Role.VIEWER)
    assert product_access(user=viewer, id_or_slug=product.id).role is Role.VIEWER
    with pytest.raises(KeyError):
        product_access(user=user, id_or_slug=product.id, action="product.steal")


# --- Listing ----------------------------------------------------------------------------------------------
def test_lists_and_ids_are_the_users_teams_only(user, other_user):
    mine = create(user, "Beta")
    joined = create(other_user, "alpha")
    Membership.objects.create(product=joined, user=user, role=Role.VIEWER)
    theirs = create(other_user, "Gamma")
    third = User.objects.create_user(email="third@example.com", password="x" * 12)

    assert sorted(p.id for p in product_list_for_user(user=user)) == sorted([mine.id, joined.id])
    assert sorted(product_ids_for_user(user=user)) == sorted([mine.id, joined.id])
    assert sorted(product_ids_for_user(user=other_user)) == sorted([joined.id, theirs.id])
    assert product_ids_for_user(user=third) == []
    assert list(product_list_for_user(user=third)) == []
    assert theirs.id not in product_ids_for_user(user=user)


def test_the_list_is_ordered_by_name_then_id(user):
    later = create(user, "Same")
    earlier_name = create(user, "Another")
    again = create(user, "Same")
    assert list(product_list_for_user(user=user)) == [earlier_name, later, again]
