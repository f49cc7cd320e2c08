"""Creating and changing products and their teams."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from console.errors import ApplicationError
from console.permissions import Role
from console.platforms import PLATFORMS, platform_get
from console.services import audit_record
from products.models import Membership, Product

MAX_NAME_LENGTH = 80


def _slug_base(name: str) -> str:
    base = slugify(name)[:60].strip("-") or "product"
    return f"product-{base}" if base.isdigit() else base


def _unique_slug(name: str) -> str:
    base = _slug_base(name)
    taken = set(Product.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    if base not in taken:
        return base
    suffix = 2
    while f"{base}-{suffix}" in taken:
        suffix += 1
    return f"{base}-{suffix}"


def product_create(
    *, user, name: str, platform_id: int, description: str = "", via: str = "console"
) -> Product:
    """A new product, with its creator as the team's owner."""
    name = (name or "").strip()
    if not name:
        raise ApplicationError("A product needs a name.", field="name")
    if len(name) > MAX_NAME_LENGTH:
        raise ApplicationError(
            f"Product names are at most {MAX_NAME_LENGTH} characters; this one has {len(name)}.", field="name"
        )
    platform = platform_get(platform_id)
    if platform is None:
        known = ", ".join(f"{p.id} ({p.name})" for p in PLATFORMS.values())
        raise ApplicationError(
            f"Unknown platform id {platform_id!r}. Known platforms: {known}.", field="platform_id"
        )
    description = (description or "").strip()
    if len(description) > 1000:
        raise ApplicationError(
            f"Descriptions are at most 1000 characters; this one has {len(description)}.", field="description"
        )
    for _ in range(3):  # two creators racing for one slug: the loser takes the next
        try:
            with transaction.atomic():
                product = Product.objects.create(
                    name=name,
                    slug=_unique_slug(name),
                    description=description,
                    platform_id=platform.id,
                    owner=user,
                )
                Membership.objects.create(product=product, user=user, role=Role.OWNER)
                break
        except IntegrityError:
            continue
    else:
        raise ApplicationError(
            "Could not choose a unique address for this product; try another name.", field="name"
        )
    audit_record(actor=user, action="product.create", target=product, target_label=product.name, via=via)
    return product
