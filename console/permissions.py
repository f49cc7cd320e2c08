"""The permission table: which team roles may do each action. Deny by default.

Every product page and route declares the action it needs; ``role_can`` answers from this one
table. An action missing from the table is a programming error and raises, so nothing is allowed
by omission.
"""

from __future__ import annotations

from enum import StrEnum

from console.errors import PermissionDenied


class Role(StrEnum):
    OWNER = "owner"
    ADMINISTRATOR = "administrator"
    DEVELOPER = "developer"
    SUPPORT = "support"
    VIEWER = "viewer"


_ALL = frozenset(Role)
_MANAGERS = frozenset({Role.OWNER, Role.ADMINISTRATOR})
_BUILDERS = _MANAGERS | {Role.DEVELOPER}
_OPERATORS = _BUILDERS | {Role.SUPPORT}

PERMISSIONS: dict[str, frozenset[Role]] = {
    "product.read": _ALL,
    "product.update": _MANAGERS,
    "product.delete": frozenset({Role.OWNER}),
    "device.read": _ALL,
    "device.update": _OPERATORS,
    "device.call": _OPERATORS,
    "device.import": _MANAGERS,
    "device.remove": _MANAGERS,
    "device.quarantine": _MANAGERS,
    "event.read": _ALL,
    "event.publish": _BUILDERS,
    "firmware.read": _ALL,
    "firmware.upload": _BUILDERS,
    "firmware.release": _MANAGERS,
    "firmware.lock": _OPERATORS,
    "group.manage": _BUILDERS,
    "team.read": _ALL,
    "team.manage": _MANAGERS,
    "customer.read": _OPERATORS,
    "customer.manage": _MANAGERS | {Role.SUPPORT},
    "integration.read": _ALL,
    "integration.manage": _BUILDERS,
    "billing.read": _MANAGERS,
    "billing.manage": frozenset({Role.OWNER}),
    "configuration.manage": _MANAGERS,
}


def role_can(role: Role | str | None, action: str) -> bool:
    allowed = PERMISSIONS[action]  # KeyError: an undeclared action is never allowed
    return role is not None and Role(role) in allowed


def require(role: Role | str | None, action: str) -> None:
    if not role_can(role, action):
        raise PermissionDenied(f"Your role does not allow {action.replace('.', ' ')}.")
