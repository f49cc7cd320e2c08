"""The sidebar's navigation registry.

Each app adds its entries in ``AppConfig.ready()``, so the sidebar shows only what exists. The
products app will add a product context with its own sub-navigation through the same registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from django.http import HttpRequest
from django.urls import reverse


class Section(StrEnum):
    MAIN = "main"
    ACCOUNT = "account"


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    url_name: str
    icon: str
    order: int = 100
    section: Section = Section.MAIN
    # Extra url names (besides ``url_name``) under which the entry shows as active.
    active_for: tuple[str, ...] = ()
    visible: Callable[[HttpRequest], bool] | None = None


@dataclass(frozen=True)
class RenderedNavItem:
    label: str
    url: str
    icon: str
    active: bool
    badge: str | None = None


_registry: dict[str, NavItem] = {}


def nav_register(item: NavItem) -> None:
    """Add (or replace, keyed by ``item.key``) a sidebar entry."""
    _registry[item.key] = item


def nav_items(request: HttpRequest, section: Section) -> list[RenderedNavItem]:
    match = getattr(request, "resolver_match", None)
    current = (
        f"{match.namespace}:{match.url_name}" if match and match.namespace else getattr(match, "url_name", "")
    )
    items = sorted((i for i in _registry.values() if i.section == section), key=lambda i: (i.order, i.label))
    return [
        RenderedNavItem(
            label=item.label,
            url=reverse(item.url_name),
            icon=item.icon,
            active=current == item.url_name or current in item.active_for,
        )
        for item in items
        if item.visible is None or item.visible(request)
    ]
