"""Walks every registered URL route with each actor, so routes added later are covered.

For every route and method: nothing answers 500; everything under /v1 and /oauth answers JSON;
anonymous callers get the API's "token not found" (or 401/404/405) and the console's login
redirect, except for the routes listed as public below. Another user poking at a victim's objects
gets 404 and changes nothing. Product roles join the actor list when products arrive.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from oauth2_provider.models import AccessToken

from console.accounts.services import access_token_create
from console.models import AuditEntry
from devices.models import Device
from firmware.models import FirmwareRelease, ProductFirmware
from products.models import ApiUser, DeviceGroup, Product

pytestmark = pytest.mark.django_db

METHODS = ["get", "post", "put", "delete"]

# Routes anyone may call, and why. A new public route must be added here deliberately.
PUBLIC_ROUTES = {
    "oauth-token": "logging in",
    "api:schema": "the OpenAPI schema is public documentation",
    "api:users": "creating an account",
    "api:access-token-detail": "a token in the path authorizes its own revocation",
    "accounts:login": "signing in",
    "accounts:logout": "signing out",
    "accounts:signup": "creating an account",
    "accounts:password-reset": "recovering an account",
    "accounts:password-reset-done": "recovering an account",
    "accounts:password-reset-confirm": "recovering an account",
    "accounts:password-reset-complete": "recovering an account",
    "console:mailbox": "dev mailbox, DEBUG only, needed while signed out to read reset emails",
    "console:mailbox-message": "dev mailbox, DEBUG only",
    "console:mailbox-html": "dev mailbox, DEBUG only",
}


@dataclass(frozen=True)
class Route:
    name: str
    pattern: str  # e.g. "v1/access_tokens/<str:token>"

    @property
    def is_api(self) -> bool:
        return self.pattern.startswith(("v1/", "oauth/"))


def _walk(patterns, prefix: str = "", namespace: str = "") -> Iterator[Route]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            ns = (
                f"{namespace}:{entry.namespace}"
                if namespace and entry.namespace
                else entry.namespace or namespace
            )
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace else entry.name
            yield Route(name=name or str(entry.pattern), pattern=prefix + str(entry.pattern))


ALL_ROUTES = list(_walk(get_resolver().url_patterns))

# Sample values per parameter; routes whose parameters name a victim's object get it from
# VICTIM_OBJECTS so the other-user check hits something real.
_SAMPLE_BY_CONVERTER = {
    "int": "999999",
    "str": "nonexistent",
    "slug": "nonexistent",
    "uuid": "00000000-0000-0000-0000-000000000000",
    "path": "nonexistent",
}


def _concrete(route: Route, values: dict[str, str] | None = None) -> str:
    values = values or {}
    if route.pattern.startswith("^") or route.pattern.endswith("$"):  # regex catch-alls
        return "/v1/no-such-route"

    def fill(match: re.Match) -> str:
        converter, name = match.group(1) or "str", match.group(2)
        return values.get(name, _SAMPLE_BY_CONVERTER.get(converter, "x"))

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", fill, route.pattern)


def _victim_token(victim) -> dict[str, str]:
    issued = access_token_create(user=victim, expires_in_seconds=3600)
    return {"pk": str(issued.access_token.pk), "token": "0" * 40}


def _victim_device(victim) -> dict[str, str]:
    from console.platforms import PLATFORMS
    from devices.services import devices_provision

    device_id = devices_provision(platform=PLATFORMS[13], count=1, owner=victim)[0].device.id
    return {"device_id": device_id, "device": device_id}


def _victim_product(victim) -> dict[str, str]:
    from products.services import product_create

    product = product_create(user=victim, name="Victim fleet", platform_id=13)
    return {"product": str(product.id)}


def _victim_team(victim) -> dict[str, str]:
    """The victim's product with a pending invitation and a member besides its owner."""
    from console.accounts.models import User
    from products.models import Invitation, Membership

    values = _victim_product(victim)
    colleague = User.objects.create_user(email="colleague@example.com", password="x-unused-9")
    invitee = User.objects.create_user(email="invitee@example.com", password="x-unused-9")
    Membership.objects.create(product_id=values["product"], user=colleague, role="developer")
    invitation = Invitation.objects.create(product_id=values["product"], user=invitee, role="viewer")
    return {**values, "invitation_id": str(invitation.pk), "user_id": str(colleague.pk)}


def _victim_product_device(victim) -> dict[str, str]:
    from console.platforms import PLATFORMS
    from devices.services import devices_provision
    from products.services import product_create

    product = product_create(user=victim, name="Victim devices", platform_id=13)
    device = devices_provision(platform=PLATFORMS[13], count=1, owner=victim, product=product)[0].device
    Device.objects.filter(pk=device.pk).update(quarantined=True)  # every action would change it
    return {"product": str(product.id), "device_id": device.id}


def _victim_group(victim) -> dict[str, str]:
    """The victim's product with a device in a group."""
    from devices.groups import devices_groups_add

    values = _victim_product_device(victim)
    product = Product.objects.get(pk=values["product"])
    devices_groups_add(
        actor=victim, product=product, device_ids=[values["device_id"]], names=["victim-group"]
    )
    return {**values, "device": values["device_id"], "name": "victim-group"}


def _victim_api_user(victim) -> dict[str, str]:
    from products.services import api_user_create

    values = _victim_product(victim)
    product = Product.objects.get(pk=values["product"])
    created = api_user_create(
        actor=victim, product=product, friendly_name="Victim bot", scopes=["devices:list"]
    )
    return {**values, "api_user_id": str(created.api_user.pk), "username": created.api_user.user.email}


def _victim_firmware(victim) -> dict[str, str]:
    """The victim's product with version 1 uploaded, run by its device and released as the default."""
    from firmware.binary import ModuleFunction
    from firmware.encoder import build_module
    from firmware.releases import firmware_release
    from firmware.services import firmware_upload

    values = _victim_product_device(victim)
    product = Product.objects.get(pk=values["product"])
    data = build_module(
        platform_id=13,
        product_id=product.id,
        product_version=1,
        dependencies=[(int(ModuleFunction.SYSTEM_PART), 1, 1201)],
    )
    firmware = firmware_upload(actor=victim, product=product, data=data, version=1, title="Victim build")
    Device.objects.filter(pk=values["device_id"]).update(firmware_version=1)
    firmware_release(actor=victim, product=product, firmware=firmware, product_default=True, group_names=[])
    return {**values, "version": "1"}


VICTIM_OBJECTS: dict[str, Callable] = {
    **{f"products:{name}": _victim_api_user for name in ("team-api-user-create", "team-api-user-delete")},
    **{f"api:{name}": _victim_api_user for name in ("product-team", "product-team-member")},
    "accounts:token-revoke": _victim_token,
    **{
        f"firmware:{name}": _victim_firmware
        for name in (
            "list",
            "upload",
            "detail",
            "download",
            "edit",
            "delete",
            "release",
            "release-impact",
            "device-panel",
            "device-lock",
        )
    },
    **{f"products:{name}": _victim_product for name in ("overview", "events")},
    **{f"product_devices:{name}": _victim_product for name in ("list", "import")},
    "product_devices:bulk": _victim_group,
    **{f"product_devices:{name}": _victim_group for name in ("detail", "groups", "development")},
    **{
        f"api:{name}": _victim_firmware
        for name in (
            "product-firmware-list",
            "product-firmware",
            "product-firmware-binary",
            "product-firmware-release",
            "product-firmware-impact",
        )
    },
    **{
        f"products:{name}": _victim_group for name in ("groups", "group-create", "group-edit", "group-delete")
    },
    **{
        f"api:{name}": _victim_group
        for name in ("product-groups", "product-group", "product-devices", "product-device")
    },
    **{f"product_devices:{name}": _victim_product_device for name in ("approve", "deny", "remove")},
    **{
        f"products:{name}": _victim_team
        for name in ("team", "team-invite", "team-invitation-cancel", "team-member-remove", "team-leave")
    },
    **{
        f"devices:{name}": _victim_device
        for name in ("detail", "rename", "notes", "unclaim", "call", "variable", "ping", "signal")
    },
    **{
        f"api:{name}": _victim_device
        for name in ("device", "device-ping", "device-member", "device-events", "device-events-prefix")
    },
}

# Streams of the caller's own events: another user gets their own (empty) stream, never the victim's.
OWN_EVENT_STREAMS = {"api:devices-events", "api:devices-events-prefix", "api:events-prefix"}


def _victim_state(victim) -> tuple:
    victim.refresh_from_db()
    return (
        sorted(AccessToken.objects.filter(user=victim).values_list("id", "expires")),
        (victim.email, victim.first_name, victim.last_name, victim.password, victim.is_active),
        AuditEntry.objects.filter(subject_user=victim).count(),
        sorted(
            Device.objects.filter(owner=victim).values_list("id", "name", "notes", "online", "development")
        ),
        sorted(DeviceGroup.objects.filter(product__owner=victim).values_list("name", "description", "color")),
        sorted(
            ApiUser.objects.filter(product__owner=victim).values_list(
                "user__email", "friendly_name", "scopes"
            )
        ),
        sorted(
            Device.groups.through.objects.filter(devicegroup__product__owner=victim).values_list(
                "device_id", "devicegroup_id"
            )
        ),
        sorted(
            ProductFirmware.objects.filter(product__owner=victim).values_list(
                "version", "title", "description"
            )
        ),
        sorted(
            FirmwareRelease.objects.filter(product__owner=victim).values_list(
                "firmware__version", "group_id", "intelligent"
            )
        ),
    )


def _is_json(response) -> bool:
    return "json" in response.get("Content-Type", "")


def test_every_route_is_walked():
    names = {route.name for route in ALL_ROUTES}
    assert "oauth-token" in names
    assert "api:user" in names
    assert "console:home" in names
    stale = set(PUBLIC_ROUTES) - names
    assert not stale, f"PUBLIC_ROUTES lists routes that no longer exist: {stale}"


@pytest.mark.parametrize("route", ALL_ROUTES, ids=lambda r: r.name)
@pytest.mark.parametrize("method", METHODS)
def test_anonymous(client, route, method, settings):
    settings.DEBUG = True  # the dev mailbox routes exist; they must still not leak anything
    response = getattr(client, method)(_concrete(route))

    assert response.status_code < 500, f"{method.upper()} {route.pattern} crashed"
    if route.is_api:
        assert _is_json(response), f"{route.pattern} answered non-JSON"
        if route.name not in PUBLIC_ROUTES:
            assert response.status_code in {400, 401, 404, 405}
            if response.status_code == 400:
                assert response.json()["error_description"] == "The access token was not found"
    elif route.name not in PUBLIC_ROUTES:
        assert response.status_code in {302, 405}, f"{route.pattern} is open to anonymous users"
        if response.status_code == 302:
            assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("route", ALL_ROUTES, ids=lambda r: r.name)
@pytest.mark.parametrize("method", METHODS)
def test_other_user_cannot_touch_victim_objects(client, api_client, route, method, user, other_user):
    values = VICTIM_OBJECTS[route.name](user) if route.name in VICTIM_OBJECTS else {}
    before = _victim_state(user)
    if route.is_api:
        token = access_token_create(user=other_user, expires_in_seconds=3600).token
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        response = getattr(api_client, method)(_concrete(route, values))
        if method == "get" and route.name in OWN_EVENT_STREAMS:
            # (not read: it never ends)
            assert response["Content-Type"] == "text/event-stream", f"{route.pattern} did not stream"
        else:
            assert _is_json(response), f"{route.pattern} answered non-JSON"
    else:
        client.force_login(other_user)
        response = getattr(client, method)(_concrete(route, values))

    assert response.status_code < 500, f"{method.upper()} {route.pattern} crashed"
    if values:
        assert response.status_code in {404, 405}, f"{route.pattern} let another user reach a victim's object"
    assert _victim_state(user) == before, f"{method.upper()} {route.pattern} changed another user's data"
