"""The sidebar's navigation registry.

Each app adds its entries in ``AppConfig.ready()``, so the sidebar shows only what exists.

An object with pages of its own (a product) registers a *context*: on pages whose URL carries the
context's keyword argument (``/products/<product>/...``), the sidebar names the object and lists
the entries of the context's section, whose url names take that same keyword argument. The
context hangs off the main entry that declares it (``NavItem.context``), so the shell's
``nav_main`` carries it to the template without anything else to wire.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse


class Section(StrEnum):
    MAIN = "main"
    ACCOUNT = "account"
    PRODUCT = "product"  # a product's pages; its entries take the product's id or slug


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    url_name: str
    icon: str
    order: int = 100
    section: Section = Section.MAIN
    # Extra url names (besides ``url_name``) under which the entry shows as active; "ns:*" stands
    # for every url name of a namespace.
    active_for: tuple[str, ...] = ()
    visible: Callable[[HttpRequest], bool] | None = None
    # The key of a registered NavContext this entry leads into (e.g. Products → one product).
    context: str | None = None


@dataclass(frozen=True)
class NavHeader:
    """What a context shows about its object, as its ``header`` callable found it."""

    title: str
    url_value: str  # the object's canonical value for the keyword argument in its entries' URLs
    detail: str = ""  # e.g. the product's id
    detail_icon: str = ""
    detail_label: str = ""  # names the detail for assistive technology ("Product ID")


@dataclass(frozen=True)
class NavContext:
    """An object's sub-navigation, shown on pages whose URL names the object.

    ``header`` looks the object up for the request; it answers None when the user may not see it,
    and then no context shows.
    """

    key: str
    label: str  # what the object is: "Product"
    kwarg: str  # the URL keyword argument that names the object
    section: Section  # its entries
    header: Callable[[HttpRequest, str], NavHeader | None]
    back_label: str = ""
    back_url_name: str = ""


@dataclass(frozen=True)
class RenderedNavItem:
    label: str
    url: str
    icon: str
    active: bool
    badge: str | None = None
    context: RenderedNavContext | None = None


@dataclass(frozen=True)
class RenderedNavContext:
    key: str
    label: str
    title: str
    detail: str
    detail_icon: str
    detail_label: str
    back_label: str
    back_url: str
    items: list[RenderedNavItem] = field(default_factory=list)


_registry: dict[str, NavItem] = {}
_contexts: dict[str, NavContext] = {}


def nav_register(item: NavItem) -> None:
    """Add (or replace, keyed by ``item.key``) a sidebar entry."""
    _registry[item.key] = item


def nav_context_register(context: NavContext) -> None:
    """Add (or replace, keyed by ``context.key``) an object context for the sidebar."""
    _contexts[context.key] = context


def _current(request: HttpRequest) -> tuple[str, str, dict]:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "", "", {}
    name = f"{match.namespace}:{match.url_name}" if match.namespace else (match.url_name or "")
    return name, match.namespace or "", dict(match.kwargs)


def _is_active(item: NavItem, current: str, namespace: str) -> bool:
    if not current:
        return False
    return current == item.url_name or any(
        current == name or (name.endswith(":*") and namespace == name[:-2]) for name in item.active_for
    )


def _rendered_context(request: HttpRequest, key: str, kwargs: dict) -> RenderedNavContext | None:
    context = _contexts.get(key)
    if context is None or context.kwarg not in kwargs:
        return None
    header = context.header(request, str(kwargs[context.kwarg]))
    if header is None:
        return None
    return RenderedNavContext(
        key=context.key,
        label=context.label,
        title=header.title,
        detail=header.detail,
        detail_icon=header.detail_icon,
        detail_label=header.detail_label,
        back_label=context.back_label,
        back_url=reverse(context.back_url_name) if context.back_url_name else "",
        items=nav_items(request, context.section, url_kwargs={context.kwarg: header.url_value}),
    )


def nav_items(
    request: HttpRequest, section: Section, *, url_kwargs: dict[str, str] | None = None
) -> list[RenderedNavItem]:
    """The section's visible entries for this request. ``url_kwargs`` fill the entries' URLs (a
    context's object); an entry whose URL cannot be built from them is left out."""
    current, namespace, kwargs = _current(request)
    items = sorted((i for i in _registry.values() if i.section == section), key=lambda i: (i.order, i.label))
    rendered = []
    for item in items:
        if item.visible is not None and not item.visible(request):
            continue
        try:
            url = reverse(item.url_name, kwargs=url_kwargs or None)
        except NoReverseMatch:
            continue
        context = _rendered_context(request, item.context, kwargs) if item.context else None
        rendered.append(
            RenderedNavItem(
                label=item.label,
                url=url,
                icon=item.icon,
                active=_is_active(item, current, namespace) or context is not None,
                context=context,
            )
        )
    return rendered
