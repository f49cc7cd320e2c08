"""Celery tasks on the ``ota`` queue (console/settings.py routes firmware.tasks.* there)."""

from __future__ import annotations

from celery import shared_task

from firmware import ota


@shared_task(acks_late=True)
def start_updates(device_ids: list[str]) -> int:
    """Offer updates to a batch of devices that just shook hands (or were told to flash now)."""
    return ota.updates_start(device_ids)


@shared_task(acks_late=True)
def start_product_updates(product_id: int) -> int:
    """Intelligent releases: offer updates to the product's online devices at once."""
    from products.models import Product

    product = Product.objects.filter(pk=product_id).first()
    return ota.updates_start_for_product(product=product) if product is not None else 0


@shared_task
def sweep_updates() -> None:
    ota.updates_sweep()
