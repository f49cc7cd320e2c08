"""Which firmware version a product's device should run, and which rule decided it.

The rules, first match wins:

1. a **development** device gets no automatic update (it is flashed by hand);
2. a device **locked** to a version gets that version;
3. a device in groups gets the **highest version released to any of its groups**;
4. otherwise the **product default**, if one is released;
5. otherwise nothing: the device keeps what it runs.

``firmware_target`` is the rule book for one device (the device page's "Why this firmware"); the
same rules as one SQL expression (``firmware.targeting``) count and select devices across a fleet,
and the tests hold the two to each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Rule(StrEnum):
    DEVELOPMENT = "development"
    LOCKED = "locked"
    GROUP = "group"
    PRODUCT_DEFAULT = "product_default"
    NONE = "none"

    @property
    def label(self) -> str:
        return _RULE_LABELS[self]


_RULE_LABELS = {
    Rule.DEVELOPMENT: "Development device",
    Rule.LOCKED: "Locked",
    Rule.GROUP: "Group release",
    Rule.PRODUCT_DEFAULT: "Product default",
    Rule.NONE: "Nothing released",
}


@dataclass(frozen=True)
class Target:
    version: int | None
    rule: Rule
    groups: tuple[str, ...] = ()  # for Rule.GROUP: the groups the version is released to

    def explain(self) -> str:
        """One sentence for people: why the device gets this version."""
        match self.rule:
            case Rule.DEVELOPMENT:
                return "It is a development device: it receives no automatic updates and is flashed by hand."
            case Rule.LOCKED:
                return f"It is locked to version {self.version}, whatever is released."
            case Rule.GROUP:
                names = ", ".join(self.groups)
                which = "its group" if len(self.groups) == 1 else "its groups"
                return f"Version {self.version} is the highest version released to {which} ({names})."
            case Rule.PRODUCT_DEFAULT:
                return f"Version {self.version} is the product default, and none of its groups has a release."
            case _:
                return "No firmware is released to it or to the product, and it is not locked."


def firmware_target(
    *,
    development: bool,
    locked_version: int | None,
    group_releases: Mapping[str, int],
    product_default: int | None,
) -> Target:
    """The version the device should run. ``group_releases`` maps each of the device's groups that
    has a release to the version released to it."""
    if development:
        return Target(None, Rule.DEVELOPMENT)
    if locked_version is not None:
        return Target(locked_version, Rule.LOCKED)
    if group_releases:
        version = max(group_releases.values())
        groups = tuple(sorted(name for name, released in group_releases.items() if released == version))
        return Target(version, Rule.GROUP, groups)
    if product_default is not None:
        return Target(product_default, Rule.PRODUCT_DEFAULT)
    return Target(None, Rule.NONE)


def what_would_change(target: Target) -> str:
    """One sentence for people: what would give the device a different version."""
    match target.rule:
        case Rule.DEVELOPMENT:
            return "Unmark it as a development device to let releases and locks apply again."
        case Rule.LOCKED:
            return "Unlock it to return it to the releases of its groups and the product default."
        case Rule.GROUP:
            return "Releasing a higher version to one of its groups, or locking it, changes its target."
        case Rule.PRODUCT_DEFAULT:
            return "Releasing a version to one of its groups, a new product default, or a lock changes its target."
        case _:
            return "Releasing a version as the product default or to one of its groups, or locking it, gives it one."
