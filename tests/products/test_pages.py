"""The console's product pages: the list with its New product dialog, a product's overview and
events, and the product context in the sidebar."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from console.accounts.models import User
from console.models import AuditEntry
from console.platforms import PLATFORMS
from devices.models import Device
from devices.services import devices_provision
from products.models import Membership, Product
from products.services import product_create

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
BORON = 13


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def make_product(owner, name: str = "Greenhouse sensors", platform_id: int = BORON, **kwargs) -> Product:
    return product_create(user=owner, name=name, platform_id=platform_id, **kwargs)


def add_devices(product: Product, count: int, online: int = 0) -> list[Device]:
    devices = [
        p.device
        for p in devices_provision(platform=PLATFORMS[product.platform_id], count=count, product=product)
    ]
    Device.objects.filter(pk__in=[d.pk for d in devices[:online]]).update(online=True)
    return devices


def join(product: Product, user, role: str) -> Membership:
    return Membership.objects.create(product=product, user=user, role=role)


def rows(response) -> dict[str, str]:
    """The list's rows: product id → the row's HTML."""
    html = response.content.decode()
    return dict(re.findall(r'<tr data-product-id="(\d+)">(.*?)</tr>', html, flags=re.S))


def sidebar(response) -> str:
    html = response.content.decode()
    return html[html.index('<aside class="sidebar"') : html.index("</aside>")]


# --- The list --------------------------------------------------------------------------------------------
def test_list_requires_sign_in(client):
    response = client.get("/products/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_empty_list_explains_products(signed_in):
    response = signed_in.get("/products/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "No products yet" in html
    assert "fleet of devices of one type" in html
    assert "Product ID is compiled into the firmware" in html
    assert 'data-open-dialog="product-dialog"' in html
    assert '<dialog class="modal product-dialog" id="product-dialog"' in html
    assert "<table" not in html


def test_list_shows_only_the_users_products_with_role_and_device_count(signed_in, user, other_user):
    mine = make_product(user, "Greenhouse sensors", description="North greenhouses")
    add_devices(mine, 3, online=1)
    theirs_shared = make_product(other_user, "Irrigation valves", platform_id=32)
    join(theirs_shared, user, "developer")
    add_devices(theirs_shared, 2)
    not_mine = make_product(other_user, "Secret fleet")
    add_devices(not_mine, 4)

    response = signed_in.get("/products/")

    assert response.status_code == 200
    found = rows(response)
    assert set(found) == {str(mine.id), str(theirs_shared.id)}
    assert "Secret fleet" not in response.content.decode()
    greenhouse = found[str(mine.id)]
    assert f'href="/products/{mine.slug}/"' in greenhouse
    assert "Greenhouse sensors" in greenhouse
    assert "North greenhouses" in greenhouse
    assert f"<code>{mine.id}</code>" in greenhouse
    assert "Boron" in greenhouse
    assert "Owner" in greenhouse
    assert re.search(r"cell-devices[^>]*>3<", greenhouse)
    valves = found[str(theirs_shared.id)]
    assert "Photon 2 / P2" in valves
    assert "Developer" in valves
    assert re.search(r"cell-devices[^>]*>2<", valves)
    assert "2 products" in response.content.decode()


def test_list_orders_products_by_name(signed_in, user):
    for name in ("Zeta", "alpha", "Mu"):
        make_product(user, name)
    html = signed_in.get("/products/").content.decode()
    names = re.findall(r'class="product-name" href="[^"]+">([^<]+)</a>', html)
    assert names == ["alpha", "Mu", "Zeta"]


def test_list_queries_do_not_grow_with_products(signed_in, user, other_user, django_assert_max_num_queries):
    product = make_product(user, "First")
    add_devices(product, 2)
    # The user, then the products with their roles and device counts in one query.
    with django_assert_max_num_queries(2) as few:
        signed_in.get("/products/")
    for index in range(6):
        product = make_product(user if index % 2 else other_user, f"Fleet {index}")
        if index % 2 == 0:
            join(product, user, "viewer")
        add_devices(product, 3, online=1)
    with django_assert_max_num_queries(len(few)) as many:
        response = signed_in.get("/products/")
    assert len(rows(response)) == 7
    assert len(many) == len(few)


# --- Creating a product ------------------------------------------------------------------------------------
def test_create_redirects_to_the_new_product(signed_in, user):
    response = signed_in.post(
        "/products/new/", {"name": "  Greenhouse sensors ", "platform_id": "13", "description": "North"}
    )

    product = Product.objects.get()
    assert (product.name, product.platform_id, product.description, product.owner) == (
        "Greenhouse sensors",
        13,
        "North",
        user,
    )
    assert Membership.objects.get(product=product).role == "owner"
    assert response.status_code == 302
    assert response["Location"] == f"/products/{product.slug}/"
    assert AuditEntry.objects.get(action="product.create").via == "console"

    page = signed_in.get(response["Location"])
    assert f"Created Greenhouse sensors. Its product ID is {product.id}." in page.content.decode()


def test_create_with_htmx_answers_a_redirect(signed_in):
    response = signed_in.post("/products/new/", {"name": "Trackers", "platform_id": "26"}, **HTMX)
    product = Product.objects.get()
    assert response.status_code == 204
    assert response["HX-Redirect"] == f"/products/{product.slug}/"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "", "platform_id": "13"}, "name", "A product needs a name."),
        ({"name": "   ", "platform_id": "13"}, "name", "A product needs a name."),
        (
            {"name": "x" * 81, "platform_id": "13"},
            "name",
            "Product names are at most 80 characters; this one has 81.",
        ),
        (
            {"name": "Fleet", "platform_id": ""},
            "platform_id",
            "Choose the platform the product&#x27;s devices run on.",
        ),
        ({"name": "Fleet", "platform_id": "999"}, "platform_id", "Choose one of the platforms in the list."),
        (
            {"name": "Fleet", "platform_id": "boron"},
            "platform_id",
            "Choose one of the platforms in the list.",
        ),
        (
            {"name": "Fleet", "platform_id": "13", "description": "d" * 1001},
            "description",
            "Descriptions are at most 1000 characters; this one has 1001.",
        ),
    ],
)
def test_create_explains_each_error_in_the_dialog(signed_in, data, field, message):
    response = signed_in.post("/products/new/", data, **HTMX)

    assert response.status_code == 200
    assert response["X-Quanta-Error"] in {"invalid", "bad_request"}
    html = response.content.decode()
    assert html.lstrip().startswith('<form class="form" id="product-form"')
    assert message in html
    error_list = re.search(rf'<ul class="field-errors" id="id_{field}_error">(.*?)</ul>', html, flags=re.S)
    assert error_list, f"no inline error on {field}"
    assert message in error_list.group(1)
    widget = re.search(rf'<(?:input|select|textarea)[^>]*\bid="id_{field}"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in widget
    assert not Product.objects.exists()


def test_create_keeps_what_was_typed(signed_in):
    response = signed_in.post(
        "/products/new/", {"name": "", "platform_id": "26", "description": "Cold chain"}, **HTMX
    )
    html = response.content.decode()
    assert re.search(r'<option value="26" selected>Tracker</option>', html)
    assert "Cold chain</textarea>" in html


def test_create_without_htmx_reopens_the_dialog_with_the_errors(signed_in, user):
    make_product(user, "Existing")
    response = signed_in.post("/products/new/", {"name": "Fleet", "platform_id": ""})

    assert response.status_code == 200
    html = response.content.decode()
    assert (
        'id="product-dialog" aria-labelledby="product-dialog-title" aria-describedby="product-dialog-message" data-open-on-load'
        in html
    )
    assert "Choose the platform the product&#x27;s devices run on." in html
    assert 'value="Fleet"' in html
    assert "Existing" in html  # the list is still there behind the dialog
    assert Product.objects.count() == 1


def test_the_platform_select_lists_every_platform_by_name(signed_in):
    html = signed_in.get("/products/").content.decode()
    select = re.search(r'<select name="platform_id".*?</select>', html, flags=re.S).group(0)
    for platform in PLATFORMS.values():
        assert f'<option value="{platform.id}">{platform.name}</option>' in select.replace("&#x27;", "'")
    assert '<optgroup label="Gen 4">' in select


def test_create_enforces_csrf(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/products/new/", {"name": "Fleet", "platform_id": "13"})
    assert response.status_code == 403
    assert not Product.objects.exists()


def test_create_requires_sign_in(client):
    response = client.post("/products/new/", {"name": "Fleet", "platform_id": "13"})
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert not Product.objects.exists()


# --- A product's overview --------------------------------------------------------------------------------
def test_overview_shows_the_product_its_devices_and_team(signed_in, user, other_user):
    product = make_product(user, "Greenhouse sensors", description="Soil moisture, north side")
    join(product, other_user, "support")
    add_devices(product, 5, online=2)
    add_devices(make_product(user, "Another"), 3, online=3)

    response = signed_in.get(f"/products/{product.id}/")

    assert response.status_code == 200
    html = response.content.decode()
    assert '<h1 class="page-title product-title">Greenhouse sensors</h1>' in html
    assert f'<code class="product-id-value" id="product-id-value">{product.id}</code>' in html
    assert 'data-copy="#product-id-value"' in html
    assert "Boron" in html
    assert "Soil moisture, north side" in html
    assert re.search(r"Your role <span class=\"badge[^\"]*\">Owner</span>", html)
    assert re.search(r"data-device-total>5<", html)
    assert re.search(r"data-device-online>2<", html)
    team = re.findall(
        r'class="product-team-email"[^>]*>([^<]+)<.*?class="badge[^"]*">(\w+)</span>', html, flags=re.S
    )
    assert [(email.strip(), role) for email, role in team] == [
        ("ada@example.com", "Owner"),
        ("grace@example.com", "Support"),
    ]
    # Its recent events: the event log narrowed to this product, without the account-wide export.
    assert f'data-product-id="{product.id}"' in html
    assert "data-event-log" in html
    assert "data-sync-url" not in html
    assert "event-export-button" not in html
    assert "No events from this product yet" in html
    assert f'href="/products/{product.slug}/events/"' in html


def test_overview_counts_in_bounded_queries(signed_in, user, other_user, django_assert_max_num_queries):
    product = make_product(user)
    for index in range(5):
        join(product, User.objects.create_user(email=f"member{index}@example.com", password="x"), "viewer")
    add_devices(product, 6, online=3)
    # The user, the product with the role, the device counts by firmware version, the online
    # samples, the team; the sidebar's product context reuses the product the page looked up.
    with django_assert_max_num_queries(5):
        response = signed_in.get(f"/products/{product.slug}/")
    assert response.status_code == 200


def test_a_viewer_sees_the_overview_with_their_role(client, user, other_user):
    product = make_product(other_user, "Shared fleet")
    join(product, user, "viewer")
    client.force_login(user)
    html = client.get(f"/products/{product.slug}/").content.decode()
    assert re.search(r"Your role <span class=\"badge\">Viewer</span>", html)


def test_id_and_slug_both_name_a_product(signed_in, user):
    product = make_product(user, "Cold-chain Trackers", platform_id=26)
    assert product.slug == "cold-chain-trackers"
    for path in (f"/products/{product.id}/", f"/products/{product.slug}/", "/products/Cold-Chain-Trackers/"):
        response = signed_in.get(path)
        assert response.status_code == 200, path
        assert "Cold-chain Trackers" in response.content.decode()
    for path in (f"/products/{product.id}/events/", f"/products/{product.slug}/events/"):
        assert signed_in.get(path).status_code == 200, path


@pytest.mark.parametrize("suffix", ["", "events/"])
def test_another_teams_product_is_not_found(signed_in, other_user, suffix):
    product = make_product(other_user, "Secret fleet")
    for name in (str(product.id), product.slug):
        response = signed_in.get(f"/products/{name}/{suffix}")
        assert response.status_code == 404
        assert "Secret fleet" not in response.content.decode()


@pytest.mark.parametrize("name", ["999999", "no-such-product", "1"])
@pytest.mark.parametrize("suffix", ["", "events/"])
def test_an_unknown_product_is_not_found(signed_in, name, suffix):
    assert signed_in.get(f"/products/{name}/{suffix}").status_code == 404


def test_a_product_whose_slug_is_new_has_its_overview(signed_in, user):
    assert signed_in.get("/products/new/").status_code == 404
    product = make_product(user, "New")
    assert product.slug == "new"
    response = signed_in.get("/products/new/")
    assert response.status_code == 200
    assert (
        f'<code class="product-id-value" id="product-id-value">{product.id}</code>'
        in response.content.decode()
    )


# --- A product's events ----------------------------------------------------------------------------------
def test_events_page_shows_the_log_for_that_product(signed_in, user):
    product = make_product(user, "Greenhouse sensors")
    response = signed_in.get(f"/products/{product.slug}/events/?q=event:temp")

    assert response.status_code == 200
    html = response.content.decode()
    assert '<h1 class="page-title product-title">Events</h1>' in html
    assert f'data-product-id="{product.id}"' in html
    assert "data-sync-url" in html  # the filter stays in the address bar
    assert 'value="event:temp"' in html
    assert "event-export-button" not in html
    assert 'data-open-dialog="publish-dialog"' not in html
    assert "js/eventlog.js" in html


def test_the_events_page_keeps_the_account_log_unchanged(signed_in):
    html = signed_in.get("/events/").content.decode()
    assert "data-product-id" not in html
    assert "event-export-button" in html


# --- The sidebar --------------------------------------------------------------------------------------------
def test_the_sidebar_has_a_products_entry(signed_in):
    nav = sidebar(signed_in.get("/devices/"))
    labels = re.findall(
        r'<a class="nav-link" href="([^"]+)"[^>]*>\s*<svg.*?<span>([^<]+)</span>', nav, flags=re.S
    )
    main = [label for _, label in labels][:4]
    assert main == ["Home", "Devices", "Products", "Events"]
    assert "data-nav-context" not in nav


def test_the_sidebar_shows_the_product_context_on_product_pages(signed_in, user):
    product = make_product(user, "Greenhouse sensors")

    for path, current in (
        (f"/products/{product.id}/", "Overview"),
        (f"/products/{product.slug}/events/", "Events"),
    ):
        nav = sidebar(signed_in.get(path))
        context = nav[nav.index('data-nav-context="product"') :]
        context = context[: context.index("</nav>")]
        assert 'aria-label="Product: Greenhouse sensors"' in nav
        assert '<p class="nav-context-title" title="Greenhouse sensors">Greenhouse sensors</p>' in context
        assert f'<span class="mono">{product.id}</span>' in context
        assert 'href="/products/">' in context  # back to all products
        links = re.findall(
            r'<a class="nav-link" href="([^"]+)"([^>]*)>.*?<span>([^<]+)</span>', context, flags=re.S
        )
        assert [(href, label) for href, _, label in links] == [
            (f"/products/{product.slug}/", "Overview"),
            (f"/products/{product.slug}/devices/", "Devices"),
            (f"/products/{product.slug}/firmware/", "Firmware"),
            (f"/products/{product.slug}/groups/", "Groups"),
            (f"/products/{product.slug}/events/", "Events"),
            (f"/products/{product.slug}/team/", "Team"),
        ]
        assert [label for _, attrs, label in links if 'aria-current="page"' in attrs] == [current]
        # The main Products entry is marked as the section the page is in.
        assert re.search(r'<a class="nav-link" href="/products/" aria-current="true">', nav)


@pytest.mark.parametrize("path", ["/products/", "/devices/", "/events/", "/"])
def test_the_sidebar_has_no_product_context_elsewhere(signed_in, user, path):
    make_product(user, "Greenhouse sensors")
    nav = sidebar(signed_in.get(path))
    assert "data-nav-context" not in nav
    assert "Greenhouse sensors" not in nav


def test_the_products_entry_is_current_on_the_list(signed_in):
    nav = sidebar(signed_in.get("/products/"))
    assert re.search(r'<a class="nav-link" href="/products/" aria-current="page">', nav)


def test_product_entries_are_left_out_without_a_product(rf, user):
    from console import nav

    request = rf.get("/devices/")
    request.user = user
    assert nav.nav_items(request, nav.Section.PRODUCT) == []
    labels = [item.label for item in nav.nav_items(request, nav.Section.PRODUCT, url_kwargs={"product": "x"})]
    assert labels == ["Overview", "Devices", "Firmware", "Groups", "Events", "Team"]
