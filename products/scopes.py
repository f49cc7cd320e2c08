"""The scopes an API user may be given, in Particle's ``resource:verb`` form, and the actions of the
permission table (console/permissions.py) each one grants.

Access is decided per action, so scopes that map to the same action travel together: an API user
with ``devices:list`` may also get one device. Reading the product itself needs no scope.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from console.errors import ApplicationError


@dataclass(frozen=True)
class Scope:
    name: str
    label: str
    actions: frozenset[str]


def _scope(name: str, label: str, *actions: str) -> Scope:
    return Scope(name=name, label=label, actions=frozenset(actions))


# Grouped as the console shows them, in that order.
SCOPE_GROUPS: dict[str, tuple[Scope, ...]] = {
    "Devices": (
        _scope("devices:list", "List devices", "device.read"),
        _scope("devices:get", "Get a device", "device.read"),
        _scope(
            "devices:update",
            "Update devices (name, notes, groups, development, firmware lock)",
            "device.update",
            "firmware.lock",
        ),
        _scope("devices:import", "Import devices", "device.import"),
        _scope("devices:remove", "Remove devices", "device.remove"),
        _scope("devices.quarantine:update", "Approve or deny quarantined devices", "device.quarantine"),
        _scope("devices.function:call", "Call functions", "device.call"),
        _scope("devices.variable:get", "Get variables", "device.call"),
    ),
    "Events": (
        _scope("events:get", "Subscribe to events", "event.read"),
        _scope("events:send", "Publish events", "event.publish"),
    ),
    "Firmware": (
        _scope("firmware:list", "List firmware", "firmware.read"),
        _scope("firmware:get", "Get and download firmware", "firmware.read"),
        _scope("firmware:create", "Upload, edit and delete firmware", "firmware.upload"),
        _scope("firmware:release", "Release firmware", "firmware.release"),
    ),
    "Groups": (
        _scope("groups:list", "List groups", "device.read"),
        _scope("groups:update", "Create, edit and delete groups", "group.manage"),
    ),
    "Team": (_scope("teams.users:list", "List the team", "team.read"),),
    "Customers": (
        _scope("customers:list", "List customers", "customer.read"),
        _scope("customers:update", "Create, edit and delete customers", "customer.manage"),
    ),
    "Integrations": (
        _scope("integrations:list", "List integrations", "integration.read"),
        _scope("integrations:update", "Create, edit and delete integrations", "integration.manage"),
    ),
}
SCOPES: dict[str, Scope] = {scope.name: scope for group in SCOPE_GROUPS.values() for scope in group}
# Particle's finer-grained names for what one scope above covers here.
SCOPE_ALIASES = {
    "firmware:update": "firmware:create",
    "firmware:remove": "firmware:create",
    "groups:get": "groups:list",
    "groups:create": "groups:update",
    "groups:remove": "groups:update",
    "customers:get": "customers:list",
    "customers:create": "customers:update",
    "customers:remove": "customers:update",
    "integrations:get": "integrations:list",
    "integrations:create": "integrations:update",
    "integrations:remove": "integrations:update",
}
ALWAYS_ALLOWED = frozenset({"product.read"})


def scopes_clean(values: object) -> list[str]:
    """The scopes asked for, validated, without duplicates, in catalogue order."""
    if isinstance(values, str):
        values = [part for part in values.replace(",", " ").split() if part]
    if not isinstance(values, Iterable) or isinstance(values, dict | bytes):
        raise ApplicationError("scopes must be a list of scope names.", field="scopes")
    asked = [SCOPE_ALIASES.get(name, name) for name in (str(value).strip() for value in values)]
    unknown = sorted({value for value in asked if value not in SCOPES})
    if unknown:
        raise ApplicationError(
            f"Unknown scope{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}. "
            f"Known scopes: {', '.join(SCOPES)}.",
            field="scopes",
        )
    if not asked:
        raise ApplicationError("An API user needs at least one scope.", field="scopes")
    wanted = set(asked)
    return [name for name in SCOPES if name in wanted]


def scope_actions(scopes: Iterable[str]) -> frozenset[str]:
    """The permission-table actions the scopes grant (unknown names grant nothing)."""
    actions = set(ALWAYS_ALLOWED)
    for name in scopes:
        scope = SCOPES.get(name)
        if scope is not None:
            actions |= scope.actions
    return frozenset(actions)


def scopes_granting(action: str) -> list[str]:
    """The scopes that would allow ``action``: named in refusals so the fix is obvious."""
    return [name for name, scope in SCOPES.items() if action in scope.actions]
