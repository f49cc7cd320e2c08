"""Fields of a product's device that a higher app owns, changed through
``PUT /v1/products/:p/devices/:id`` (firmware registers ``desired_firmware_version`` and ``flash``).

devices offers the registry and firmware fills it at app ready, so devices never imports firmware
(docs/architecture.md). A handler checks its own input, runs inside the request's transaction, and
answers the fields it adds to the response.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ProductDeviceField:
    fields: tuple[str, ...]  # the request keys it handles; the first one must be present to apply
    action: str  # what the role (or API user's scopes) must allow
    apply: Callable[..., dict]  # (*, actor, product, device, data, via) -> response fields


_registry: list[ProductDeviceField] = []


def product_device_field_register(handler: ProductDeviceField) -> None:
    if all(existing.fields != handler.fields for existing in _registry):
        _registry.append(handler)


def product_device_fields_in(data: Mapping) -> list[ProductDeviceField]:
    """The registered handlers this request body asks for."""
    return [handler for handler in _registry if handler.fields[0] in data]


def product_device_field_names() -> list[str]:
    return [name for handler in _registry for name in handler.fields]


@dataclass(frozen=True)
class ProductDevicePanel:
    """A card a higher app adds to a product device's page (firmware: "Why this firmware" and the
    device's update). ``context(request=, access=, device=)`` returns the template's context."""

    key: str
    template: str
    context: Callable[..., dict]


_panels: list[ProductDevicePanel] = []


def product_device_panel_register(panel: ProductDevicePanel) -> None:
    if all(existing.key != panel.key for existing in _panels):
        _panels.append(panel)


def product_device_panels(*, request, access, device) -> list[dict]:
    """The registered panels, rendered context and all, for the device page's template."""
    return [
        {"template": panel.template, **panel.context(request=request, access=access, device=device)}
        for panel in _panels
    ]
