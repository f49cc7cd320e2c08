"""Team roles as people and Particle's API name them."""

from __future__ import annotations

from console.errors import ApplicationError
from console.permissions import Role

ROLE_NAMES = {
    Role.OWNER: "Owner",
    Role.ADMINISTRATOR: "Administrator",
    Role.DEVELOPER: "Developer",
    Role.SUPPORT: "Support",
    Role.VIEWER: "View-only",
}
INVITABLE_ROLES = (Role.ADMINISTRATOR, Role.DEVELOPER, Role.SUPPORT, Role.VIEWER)
_ALIASES = {
    "admin": Role.ADMINISTRATOR,
    "view-only": Role.VIEWER,
    "view only": Role.VIEWER,
    "view": Role.VIEWER,
}


def role_from_input(value: object, *, default: Role = Role.DEVELOPER) -> Role:
    """A role to invite as, from its id (``viewer``) or Particle's name (``View-only``)."""
    if value is None or value == "":
        return default
    text = str(value).strip().lower()
    role = _ALIASES.get(text) or next((r for r in Role if r.value == text), None)
    if role is None or role not in INVITABLE_ROLES:
        choices = ", ".join(ROLE_NAMES[r] for r in INVITABLE_ROLES)
        raise ApplicationError(f"Unknown role {value!r}. Invite as one of: {choices}.", field="role")
    return role


def role_info(role: str) -> dict:
    return {"id": role, "name": ROLE_NAMES[Role(role)]}
