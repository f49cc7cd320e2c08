"""What else hears every published event: apps above the bus attach here (the integrations
matcher), in ``AppConfig.ready()``, instead of the bus importing them."""

from __future__ import annotations

import logging
from collections.abc import Callable

from events.types import Event

logger = logging.getLogger(__name__)

PublishHook = Callable[[Event], None]
_hooks: list[PublishHook] = []


def publish_hook_register(hook: PublishHook) -> None:
    """``hook(event)`` runs in the publishing process for every event, often on the event loop:
    it must not block (match and enqueue a task, nothing more)."""
    if hook not in _hooks:
        _hooks.append(hook)


def publish_hooks_run(event: Event) -> None:
    for hook in _hooks:
        try:
            hook(event)
        except Exception:
            # One broken listener must not stop publishing.
            logger.exception("Publish hook %r failed", hook)
