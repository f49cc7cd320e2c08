"""Template helpers for the console's design system: icons, timestamps, token hints and device
status."""

from __future__ import annotations

import copy
import datetime as dt

from django import template
from django.conf import settings
from django.templatetags.static import static
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.timesince import timesince

register = template.Library()

DISPLAY_FORMAT = "M j, Y H:i"


@register.simple_tag
def brand() -> str:
    """The product name from settings (``QUANTA_SITE_NAME``).

    Django's auth views put the request's host in a ``site_name`` context variable, which hides
    the shell's own ``site_name``; templates use this tag to name the product instead.
    """
    return getattr(settings, "SITE_NAME", "") or "Quanta"


@register.simple_tag
def page_icon(name: str, class_name: str = ""):
    """A decorative icon from a sprite inlined in the page (``<symbol id="i-NAME">``), for icons a
    single page needs: ``{% page_icon "wifi" %}``."""
    return format_html(
        '<svg class="{}" aria-hidden="true" focusable="false"><use href="#i-{}"></use></svg>',
        f"icon {class_name}".strip(),
        name,
    )


@register.simple_tag
def icon(name: str, class_name: str = "", label: str = ""):
    """An icon from the sprite: ``{% icon "home" %}``, ``{% icon "x" "icon-lg" label="Close" %}``.

    Without a label the icon is decorative and hidden from assistive technology.
    """
    classes = f"icon {class_name}".strip()
    href = f"{static('img/icons.svg')}#{name}"
    if label:
        return format_html(
            '<svg class="{}" role="img" aria-label="{}" focusable="false"><use href="{}"></use></svg>',
            classes,
            label,
            href,
        )
    return format_html(
        '<svg class="{}" aria-hidden="true" focusable="false"><use href="{}"></use></svg>', classes, href
    )


def _localtime(value):
    if isinstance(value, dt.datetime) and timezone.is_aware(value):
        return timezone.localtime(value)
    return value


def _relative(value) -> str:
    if isinstance(value, dt.datetime) and timezone.is_aware(value):
        now = timezone.now()
        if value > now + dt.timedelta(seconds=30):
            return f"in {timesince(now, value)}"
        if value > now - dt.timedelta(minutes=1):
            return "just now"
    return f"{timesince(value)} ago"


@register.simple_tag
def timestamp(value, relative: bool = False, empty: str = "—"):
    """A ``<time>`` element: ``Mar 4, 2026 14:05`` (or ``3 hours ago`` with ``relative=True``).

    The ISO 8601 value goes in both ``datetime`` and ``title``, so hovering shows the exact time.
    Relative times carry ``data-relative`` so a page's script can keep them current.
    """
    if not value:
        return empty
    value = _localtime(value)
    iso = value.isoformat()
    absolute = date_format(value, DISPLAY_FORMAT)
    if relative:
        text = _relative(value)
        return format_html(
            '<time datetime="{}" title="{} · {}" data-relative>{}</time>', iso, absolute, iso, text
        )
    return format_html('<time datetime="{}" title="{}">{}</time>', iso, iso, absolute)


@register.filter
def without_autofocus(bound_field):
    """Render a form field without the ``autofocus`` its widget may carry.

    For forms lower on a page (e.g. the password form under the profile form), where focusing the
    field on load would scroll the page away from its top.
    """
    widget = copy.copy(bound_field.field.widget)
    widget.attrs = {key: value for key, value in widget.attrs.items() if key != "autofocus"}
    return bound_field.as_widget(widget=widget)


@register.filter
def token_hint(value) -> str:
    """The last characters of a token, shown as ``…abcd``."""
    if not value:
        return ""
    return f"\u2026{str(value)[-4:]}"


@register.filter
def initials(user) -> str:
    """One or two letters for an avatar: from the name if set, else from the email."""
    first = (getattr(user, "first_name", "") or "").strip()
    last = (getattr(user, "last_name", "") or "").strip()
    if first or last:
        return ((first[:1] or "") + (last[:1] or "")).upper()
    email = (getattr(user, "email", "") or str(user) or "?").strip()
    return email[:1].upper() or "?"


@register.filter
def message_icon(level_tag: str) -> str:
    """The icon name for a Django messages level tag."""
    tags = (level_tag or "").split()
    if "success" in tags:
        return "check"
    if "error" in tags or "warning" in tags:
        return "alert"
    return "info"


@register.simple_tag
def online_status(online: bool, size: str = ""):
    """An online indicator: a dot and "Online" or "Offline". Pages may update it live through
    ``data-device-status``."""
    state = "online" if online else "offline"
    return format_html(
        '<span class="device-status{}" data-device-status="{}"><span class="device-status-dot" '
        'aria-hidden="true"></span><span class="device-status-label">{}</span></span>',
        f" device-status-{size}" if size else "",
        state,
        state.capitalize(),
    )
