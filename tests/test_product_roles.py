"""Walks every product route with each role on the product's team, and with people off it.

A product route is any route whose path names a product (console pages under /products/<product>/,
API routes under /v1/products/<product>/). Every one must be declared in ``NEEDS`` with the
permission action each method needs (console/permissions.py); methods it does not declare must
answer 405. For each route, method and actor, against a product with a real object for every path
parameter:

- nothing answers 500, and every API answer is JSON (a granted event stream is text/event-stream,
  a 204 has no body);
- a role the table allows gets through (200, 201, 204 or 302) and the write does what it asks;
- a role it does not allow gets 403 (API: a JSON error naming the action; console: the 403 page)
  and the product is unchanged;
- another product's owner and someone on no team get 404, and the product is unchanged;
- the product's owner naming another product's object (device, group, member, invitation, API user,
  firmware) under their own product's URL gets 404, and nothing changes.

The products are built once for the module; each test is one (route, method), and its actors run
inside it, each in a savepoint rolled back after its request, so every actor meets the same data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from console.accounts.models import User
from console.accounts.services import access_token_create, access_token_touch
from console.models import AuditEntry
from console.permissions import PERMISSIONS, Role, role_can
from devices.models import Device, ProductDenial
from firmware.models import FirmwareRelease, FirmwareUpdate, ProductFirmware
from products.models import ApiUser, DeviceGroup, Invitation, Membership, Product
from tests.test_routes import ALL_ROUTES, METHODS, Route, _concrete, _victim_group

pytestmark = pytest.mark.django_db

# Markers for what a route needs besides a permission action.
MEMBER = "member"  # anyone on the team
LEAVE = "leave"  # anyone on the team but its owner, who cannot leave their own product

Need = str | tuple[str, ...]  # an action, a marker, or several actions that must all be allowed

# What each product route needs, per method. A method not listed must answer 405. A key may name a
# variant after the method ("put groups"): the same route and method with another body or path,
# which needs another action. REQUESTS says what each variant sends.
NEEDS: dict[str, dict[str, Need]] = {
    # Console pages: products/views.py, products/group_views.py, products/team_views.py
    "products:overview": {"get": "product.read"},
    "products:events": {"get": "event.read"},
    "products:groups": {"get": "device.read"},
    "products:group-create": {"post": "group.manage"},
    "products:group-edit": {"post": "group.manage"},
    "products:group-delete": {"post": "group.manage"},
    "products:team": {"get": "team.read"},
    "products:team-invite": {"get": "team.manage", "post": "team.manage"},
    "products:team-invitation-cancel": {"post": "team.manage"},
    "products:team-member-remove": {"post": "team.manage"},
    "products:team-leave": {"post": LEAVE},
    "products:team-api-user-create": {"get": "team.manage", "post": "team.manage"},
    "products:team-api-user-delete": {"post": "team.manage"},
    # Console pages: firmware/views.py
    "firmware:list": {"get": "firmware.read"},
    "firmware:upload": {"post": "firmware.upload"},
    "firmware:detail": {"get": "firmware.read"},
    "firmware:download": {"get": "firmware.read"},
    "firmware:edit": {"get": "firmware.upload", "post": "firmware.upload"},
    "firmware:delete": {"get": "firmware.upload", "post": "firmware.upload"},
    "firmware:release": {"get": "firmware.release", "post": "firmware.release"},
    "firmware:release-impact": {"get": "firmware.release"},
    "firmware:device-panel": {"get": "device.read"},
    "firmware:device-lock": {"post": "firmware.lock"},
    # Console pages: devices/product_views.py
    "product_devices:list": {"get": "device.read"},
    "product_devices:import": {"post": "device.import"},
    "product_devices:bulk": {
        "post": MEMBER,  # no action chosen: back to the list with a message
        "post groups": "group.manage",
        "post development": "device.update",
    },
    "product_devices:detail": {"get": "device.read"},
    "product_devices:groups": {"post": "group.manage"},
    "product_devices:development": {"post": "device.update"},
    "product_devices:approve": {"post": "device.quarantine"},
    "product_devices:deny": {"post": "device.quarantine"},
    "product_devices:remove": {"post": "device.remove"},
    # API: products/api.py
    "api:product": {"get": "product.read"},
    "api:product-team": {"get": "team.read", "post": "team.manage"},
    "api:product-team-member": {
        "delete": "team.manage",  # another member
        "delete invitation": "team.manage",
        "delete self": LEAVE,
        "delete api-user": "team.manage",
        "put api-user": "team.manage",
    },
    "api:product-groups": {"get": "device.read", "post": "group.manage"},
    "api:product-group": {"get": "device.read", "put": "group.manage", "delete": "group.manage"},
    # API: devices/api_products.py
    "api:product-devices": {
        "get": "device.read",
        "post": "device.import",
        "put groups": "group.manage",
        "put development": "device.update",
    },
    "api:product-device": {
        "get": "device.read",
        "put": "device.update",  # notes
        "put groups": ("device.update", "group.manage"),
        "delete": "device.remove",
    },
    # API: firmware/api.py
    "api:product-firmware-list": {"get": "firmware.read", "post": "firmware.upload"},
    "api:product-firmware": {"get": "firmware.read", "put": "firmware.upload", "delete": "firmware.upload"},
    "api:product-firmware-binary": {"get": "firmware.read"},
    "api:product-firmware-release": {"put": "firmware.release"},
    "api:product-firmware-impact": {"get": "firmware.read"},
    # API: events/api.py
    "api:product-events": {"get": "event.read", "post": "event.publish"},
    "api:product-events-prefix": {"get": "event.read"},
}

# Event streams never end: a granted GET is checked by its status and type, its body never read.
STREAMS = {"api:product-events", "api:product-events-prefix"}
# Routes whose granted GET answers a file.
DOWNLOADS = {"api:product-firmware-binary", "firmware:download"}
# Console routes that answer JSON (the Import dialog's script reads them).
CONSOLE_JSON = {"product_devices:import"}
# Granted writes that change nothing the snapshot sees: a published event is not stored; the bulk
# bar without an action only says to choose one.
STATELESS_WRITES = {("api:product-events", "post"), ("product_devices:bulk", "post")}
GRANTED = {200, 201, 204, 302}


@dataclass(frozen=True)
class Actor:
    label: str
    user: User
    role: Role | None  # on the victim product's team; None for people off it
    session_key: str  # signed in to the console
    token: str  # for the API


Values = dict[str, str]  # a product's objects by name: path parameters, and what bodies name


@dataclass(frozen=True)
class Victim:
    actors: list[Actor]
    values: Values  # the product every actor is tried on
    other_values: Values  # another product's
    # One client of each kind for every request: a new one would load the middleware again.
    console: Client
    api: APIClient


@dataclass(frozen=True)
class Call:
    """What a variant sends: a body (JSON to the API unless ``format`` says otherwise), and path
    parameters that depend on the actor. Both are built from the product's values."""

    body: Callable[[Values], dict] = lambda values: {}
    path: Callable[[Values, User], Values] = lambda values, actor: {}
    format: str = "json"


PLATFORM_ID = 13  # Boron: the platform of both products and of every device here


def _firmware(product_id: str, version: int) -> bytes:
    """An application binary the product accepts as ``version``."""
    from firmware.binary import ModuleFunction
    from firmware.encoder import build_module

    os_dependency = (int(ModuleFunction.SYSTEM_PART), 1, 1201)  # Device OS 1.2.1: PRODUCT_ID counts
    return build_module(
        platform_id=PLATFORM_ID,
        product_id=int(product_id),
        product_version=version,
        dependencies=[os_dependency],
        payload_size=2048,
    )


REQUESTS: dict[tuple[str, str], Call] = {
    ("products:group-create", "post"): Call(lambda v: {"name": "fresh-group", "color": "#0d9488"}),
    ("products:group-edit", "post"): Call(
        lambda v: {"name": v["name"], "description": "edited", "color": "#0d9488"}
    ),
    ("products:team-invite", "post"): Call(lambda v: {"email": v["newcomer"], "role": "viewer"}),
    ("product_devices:import", "post"): Call(
        lambda v: {"file": SimpleUploadedFile("ids.txt", f"{v['spare_device_id']}\n".encode())}
    ),
    ("product_devices:bulk", "post groups"): Call(
        lambda v: {"action": "add_group", "add_group": "fresh-group", "devices": [v["device_id"]]}
    ),
    ("product_devices:bulk", "post development"): Call(
        lambda v: {"action": "development", "devices": [v["device_id"]]}
    ),
    ("products:team-api-user-create", "post"): Call(
        lambda v: {"friendly_name": "Pipeline", "scopes": ["devices:list"]}
    ),
    ("product_devices:groups", "post"): Call(lambda v: {"groups": ["fresh-group"]}),
    ("product_devices:development", "post"): Call(lambda v: {"development": "1"}),
    ("firmware:upload", "post"): Call(
        lambda v: {
            "file": SimpleUploadedFile("firmware.bin", _firmware(v["product"], 2)),
            "version": "2",
            "title": "Second",
        }
    ),
    ("firmware:edit", "post"): Call(lambda v: {"title": "Edited", "description": ""}),
    ("firmware:release", "post"): Call(lambda v: {"product_default": "true"}),
    ("firmware:device-lock", "post"): Call(lambda v: {"version": "1"}),
    ("api:product-team", "post"): Call(lambda v: {"username": v["newcomer"], "role": "viewer"}),
    ("api:product-team-member", "delete invitation"): Call(path=lambda v, actor: {"username": v["invitee"]}),
    ("api:product-team-member", "delete self"): Call(path=lambda v, actor: {"username": actor.email}),
    ("api:product-team-member", "delete api-user"): Call(
        path=lambda v, actor: {"username": v["api_username"]}
    ),
    ("api:product-team-member", "put api-user"): Call(
        lambda v: {"friendly_name": "Renamed"}, path=lambda v, actor: {"username": v["api_username"]}
    ),
    ("api:product-groups", "post"): Call(lambda v: {"name": "fresh-group"}),
    ("api:product-group", "put"): Call(lambda v: {"description": "edited"}),
    ("api:product-devices", "post"): Call(lambda v: {"ids": [v["spare_device_id"]]}),
    ("api:product-devices", "put groups"): Call(
        lambda v: {
            "action": "groups",
            "devices": [v["device_id"]],
            "metadata": {"add": ["fresh-group"]},
        }
    ),
    ("api:product-devices", "put development"): Call(
        lambda v: {
            "action": "development",
            "devices": [v["device_id"]],
            "metadata": {"development": True},
        }
    ),
    ("api:product-device", "put"): Call(lambda v: {"notes": "edited"}),
    ("api:product-device", "put groups"): Call(lambda v: {"groups": ["fresh-group"]}),
    ("api:product-firmware-list", "post"): Call(
        lambda v: {
            "file": SimpleUploadedFile("firmware.bin", _firmware(v["product"], 2)),
            "version": "2",
            "title": "Second",
        },
        format="multipart",
    ),
    ("api:product-firmware", "put"): Call(lambda v: {"title": "Edited"}),
    ("api:product-firmware-release", "put"): Call(
        lambda v: {"version": v["version"], "product_default": True}
    ),
    ("api:product-firmware-impact", "get"): Call(lambda v: {"version": v["version"]}),  # the query
    ("api:product-events", "post"): Call(lambda v: {"name": "temp", "data": "21"}),
}


def _is_product_route(route: Route) -> bool:
    return "<str:product>" in route.pattern or "<product>" in route.pattern


PRODUCT_ROUTES = [route for route in ALL_ROUTES if _is_product_route(route)]


def _parameters(route: Route) -> list[str]:
    return re.findall(r"<(?:\w+:)?(\w+)>", route.pattern)


def _cases() -> list[tuple[Route, str, Need | None]]:
    """(route, method key, need) for every declared route and method; None expects 405."""
    cases = []
    for route in PRODUCT_ROUTES:
        declared = NEEDS.get(route.name)
        if declared is None:
            continue  # test_every_product_route_is_declared fails for it
        for method in METHODS:
            keys = [key for key in declared if key.split()[0] == method]
            cases += [(route, key, declared[key]) for key in keys] or [(route, method, None)]
    return cases


def _actions(need: Need) -> tuple[str, ...]:
    return () if need in (MEMBER, LEAVE) else (need,) if isinstance(need, str) else need


def _allows(need: Need, role: Role | None) -> bool:
    if role is None:
        return False
    if need == MEMBER:
        return True
    if need == LEAVE:
        return role != Role.OWNER
    return all(role_can(role, action) for action in _actions(need))


def _refusal(need: Need, role: Role) -> str:
    """What the 403's message says for a role the need refuses."""
    if need == LEAVE:
        return "owner cannot be removed"
    lacking = next(action for action in _actions(need) if not role_can(role, action))
    return f"does not allow {lacking.replace('.', ' ')}"


# --- the product -------------------------------------------------------------------------------------
def _actor(label: str, user: User, role: Role | None) -> Actor:
    client = Client()
    client.force_login(user)
    issued = access_token_create(user=user, expires_in_seconds=3600)
    # Used once now, so requests within the next minute record no use: they write nothing.
    access_token_touch(access_token=issued.access_token, ip_address="127.0.0.1")
    return Actor(label, user, role, client.cookies[settings.SESSION_COOKIE_NAME].value, issued.token)


def _person(email: str) -> User:
    return User.objects.create_user(email=email, password=None)  # tests sign in without one


def _stocked_product(owner: User, tag: str, *, firmware_version: int) -> Values:
    """A product with an object of every kind its routes name: a device (quarantined) in a group,
    a developer besides the actors, a pending invitation, an API user, a firmware version; and
    someone to invite and a spare device to import. Names and versions differ per product, so
    naming one product's object under the other's URL finds nothing."""
    from console.platforms import PLATFORMS
    from devices.services import devices_provision
    from firmware.services import firmware_upload
    from products.services import api_user_create

    values = _victim_group(owner)
    product = Product.objects.get(pk=values["product"])
    group = f"{tag}-group"
    DeviceGroup.objects.filter(product=product).update(name=group)
    colleague = _person(f"{tag}-colleague@example.com")
    Membership.objects.create(product=product, user=colleague, role=Role.DEVELOPER)
    invitee = _person(f"{tag}-invitee@example.com")
    invitation = Invitation.objects.create(product=product, user=invitee, role=Role.VIEWER, invited_by=owner)
    api_user = api_user_create(
        actor=owner, product=product, friendly_name="Pipeline", scopes=["devices:list"]
    ).api_user
    firmware = firmware_upload(
        actor=owner,
        product=product,
        data=_firmware(values["product"], firmware_version),
        version=firmware_version,
        title="First",
    )
    # Releasing needs a device of the product to have run it.
    ProductFirmware.objects.filter(pk=firmware.pk).update(first_run_at=timezone.now())
    return {
        **values,
        "name": group,
        "invitation_id": str(invitation.pk),
        "invitee": invitee.email,
        "user_id": str(colleague.pk),
        "username": colleague.email,
        "api_user_id": str(api_user.pk),
        "api_username": api_user.user.email,
        "version": str(firmware_version),
        "prefix": "temp",
        "newcomer": _person(f"{tag}-newcomer@example.com").email,
        "spare_device_id": devices_provision(platform=PLATFORMS[PLATFORM_ID], count=1)[0].device.id,
    }


def _victim_build() -> Victim:
    """The victim product with a member of every role; another product and its owner; someone on
    no team."""
    owner = _person("owner@example.com")
    values = _stocked_product(owner, "victim", firmware_version=1)
    actors = [_actor(Role.OWNER.value, owner, Role.OWNER)]
    for role in Role:
        if role != Role.OWNER:
            member = _person(f"{role.value}@example.com")
            Membership.objects.create(product_id=values["product"], user=member, role=role)
            actors.append(_actor(role.value, member, role))
    other = _person("other@example.com")
    other_values = _stocked_product(other, "other", firmware_version=3)
    actors.append(_actor("other product's owner", other, None))
    actors.append(_actor("outsider", _person("outsider@example.com"), None))
    return Victim(actors=actors, values=values, other_values=other_values, console=Client(), api=APIClient())


@pytest.fixture(scope="module")
def victim(django_db_setup, django_db_blocker) -> Iterator[Victim]:
    """Built once, in a transaction rolled back after the module's tests: each test's transaction
    nests in it, and each actor's request in a savepoint of that."""
    with django_db_blocker.unblock(), pytest.MonkeyPatch.context() as patch, transaction.atomic():
        # Every role plus a colleague and an invitation fill more seats than the free plan has.
        patch.setattr("products.services.FREE_TEAM_MEMBER_LIMIT", 100)
        yield _victim_build()
        transaction.set_rollback(True)


# Every table a product route could change (a firmware's bytes never change once stored).
STATE_MODELS = [
    Product,
    Device,
    DeviceGroup,
    Device.groups.through,
    Membership,
    Invitation,
    ApiUser,
    User,
    ProductDenial,
    ProductFirmware,
    FirmwareRelease,
    FirmwareUpdate,
    AuditEntry,
]


def _state() -> list[list[tuple]]:
    """Every row of every table in STATE_MODELS, in every product."""
    state = []
    for model in STATE_MODELS:
        fields = [field.attname for field in model._meta.concrete_fields]  # the primary key first
        state.append(sorted(model.objects.values_list(*fields)))
    return state


WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)


def _wrote(queries: CaptureQueriesContext) -> bool:
    """Whether the request wrote at all: one that did not changed nothing, and needs no snapshot."""
    return any(WRITE.match(query["sql"]) for query in queries.captured_queries)


# --- requests ----------------------------------------------------------------------------------------
def _request(
    victim: Victim, route: Route, key: str, values: Values, actor: Actor, *, path: Values | None = None
) -> HttpResponse:
    """``key``'s request as ``actor``, with the objects in ``values`` (``path`` overrides the path's)."""
    call = REQUESTS.get((route.name, key), Call())
    url = _concrete(route, path or {**values, **call.path(values, actor.user)})
    method, body = key.split()[0], call.body(values)
    if route.is_api:
        victim.api.cookies = SimpleCookie()
        victim.api.credentials(HTTP_AUTHORIZATION=f"Bearer {actor.token}")
        return getattr(victim.api, method)(url, body, format=call.format)
    # Only the actor's session: no messages left in a cookie by an earlier request.
    victim.console.cookies = SimpleCookie({settings.SESSION_COOKIE_NAME: actor.session_key})
    return getattr(victim.console, method)(url, body)


def _is_json(response: HttpResponse) -> bool:
    return "json" in response.get("Content-Type", "")


def _template_names(response: HttpResponse) -> list[str]:
    return [template.name for template in getattr(response, "templates", [])]


def _problems(
    route: Route, key: str, need: Need | None, role: Role | None, response: HttpResponse, changed: bool
) -> list[str]:
    """What is wrong with one actor's answer (nothing, if all is well)."""
    status = response.status_code
    streaming = route.name in STREAMS and key == "get" and status == 200
    download = route.name in DOWNLOADS and key == "get" and status == 200
    if status >= 500:
        return [f"crashed ({status})"]
    problems = []
    empty = status == 204 and not response.content  # No Content has no body to be JSON
    if route.is_api and not _is_json(response) and not (streaming or download or empty):
        problems.append(f"answered {response.get('Content-Type')!r}, not JSON")
    if need is None:
        expected = {405}
    elif _allows(need, role):
        expected = GRANTED
        if streaming and response["Content-Type"] != "text/event-stream":
            problems.append(f"did not stream ({response['Content-Type']!r})")
        if download and response["Content-Type"] != "application/octet-stream":
            problems.append(f"did not download ({response['Content-Type']!r})")
    elif role is not None:
        expected = {403}
        if status == 403 and _is_json(response):
            error = response.json()
            text = error.get("error_description") or error.get("error", "")
            if error.get("ok") is not False or _refusal(need, role) not in text:
                problems.append(f"403 body does not say {_refusal(need, role)!r}: {error}")
        elif status == 403 and "403.html" not in _template_names(response):
            problems.append("403 without the 403 page")
    else:
        expected = {404}
        page = not route.is_api and route.name not in CONSOLE_JSON
        if status == 404 and page and "404.html" not in _template_names(response):
            problems.append("404 without the 404 page")
    if status not in expected:
        problems.append(f"answered {status}, expected {sorted(expected)}")
    writes = key.split()[0] != "get" and (route.name, key) not in STATELESS_WRITES
    if need is not None and _allows(need, role) and writes and status in GRANTED:
        if not changed:
            problems.append("was granted but changed nothing (is its request body right?)")
    elif changed:
        problems.append("changed the product")
    return problems


# --- tests -------------------------------------------------------------------------------------------
def test_every_product_route_is_declared() -> None:
    names = {route.name for route in PRODUCT_ROUTES}
    assert {"products:overview", "api:product-devices", "api:product-events"} <= names
    undeclared = names - set(NEEDS)
    assert not undeclared, f"Declare what these product routes need in NEEDS: {sorted(undeclared)}"
    stale = set(NEEDS) - names
    assert not stale, f"NEEDS lists routes that are not product routes (any more): {sorted(stale)}"
    for name, methods in NEEDS.items():
        for key, need in methods.items():
            assert key.split()[0] in METHODS, f"{name}: {key!r} is not a method"
            for action in _actions(need):
                assert action in PERMISSIONS, f"{name} {key}: unknown action {action!r}"
    assert {key for key in REQUESTS if key[1] not in NEEDS.get(key[0], {})} == set(), "stale REQUESTS"


def test_every_path_parameter_has_a_real_object(victim: Victim) -> None:
    for route in PRODUCT_ROUTES:
        for name in _parameters(route):
            assert name in victim.values, f"{route.name}: the victim product has no object for <{name}>"
            assert name in victim.other_values, f"{route.name}: the other product has no object for <{name}>"


CASES = _cases()


def _case_id(route: Route, key: str) -> str:
    return f"{route.name}-{key.replace(' ', '-')}"


@pytest.mark.parametrize(("route", "key", "need"), CASES, ids=[_case_id(r, k) for r, k, _ in CASES])
def test_product_route(victim: Victim, route: Route, key: str, need: Need | None) -> None:
    before = _state()
    failures = []
    for actor in victim.actors:
        with transaction.atomic():
            try:
                with CaptureQueriesContext(connection) as queries:
                    response = _request(victim, route, key, victim.values, actor)
            except Exception as error:
                error.add_note(f"{key.upper()} {route.pattern} as the {actor.label}")
                raise
            changed = _wrote(queries) and _state() != before
            transaction.set_rollback(True)  # the next actor meets the same product
        problems = _problems(route, key, need, actor.role, response, changed)
        failures += [f"{actor.label}: {problem}" for problem in problems]
    assert not failures, f"{key.upper()} {route.pattern}:\n" + "\n".join(failures)


# Path parameters that name one of a product's objects (not the product, not an event prefix).
OBJECT_PARAMETERS = {
    "device_id",
    "device",
    "name",
    "invitation_id",
    "user_id",
    "username",
    "api_user_id",
    "version",
}
# Variants whose path names the acting user, not an object of the product.
ACTOR_PATHS = {("api:product-team-member", "delete self")}
OBJECT_CASES = [
    (route, key)
    for route, key, need in CASES
    if need is not None
    and (route.name, key) not in ACTOR_PATHS
    and OBJECT_PARAMETERS & set(_parameters(route))
]


@pytest.mark.parametrize(("route", "key"), OBJECT_CASES, ids=[_case_id(r, k) for r, k in OBJECT_CASES])
def test_another_products_objects_are_not_found_through_this_one(
    victim: Victim, route: Route, key: str
) -> None:
    """The owner, who may do everything on their product, names the other product's object."""
    owner = victim.actors[0]
    other = victim.other_values
    call = REQUESTS.get((route.name, key), Call())
    path = {**other, **call.path(other, owner.user), "product": victim.values["product"]}
    before = _state()
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        response = _request(victim, route, key, victim.values, owner, path=path)
        changed = _wrote(queries) and _state() != before
        transaction.set_rollback(True)
    assert response.status_code == 404, (
        f"{key.upper()} {_concrete(route, path)} reached another product's object"
    )
    if route.is_api or route.name in CONSOLE_JSON:
        assert _is_json(response)
    else:
        assert "404.html" in _template_names(response)
    assert not changed, f"{key.upper()} {_concrete(route, path)} changed something"
