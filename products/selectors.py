"""Reading products as a user may see them: only the products of the teams they are on."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from console.errors import NotFound
from console.permissions import Role, require
from products.models import Membership, Product


@dataclass(frozen=True)
class ProductAccess:
    """A product and the acting user's role on its team."""

    product: Product
    role: Role

    def require(self, action: str) -> None:
        require(self.role, action)


def product_list_for_user(*, user) -> QuerySet[Product]:
    return Product.objects.filter(memberships__user=user).order_by("name", "id")


def product_access(*, user, id_or_slug: str | int, action: str = "product.read") -> ProductAccess:
    """The product by numeric id or slug, if the user is on its team and their role allows
    ``action``. Another team's product is a 404 like an unknown one: its existence never leaks."""
    text = str(id_or_slug).strip()
    lookup = {"product_id": int(text)} if text.isdigit() else {"product__slug": text.lower()}
    membership = (
        Membership.objects.select_related("product").filter(user=user, **lookup).first()
        if user is not None and user.is_authenticated
        else None
    )
    if membership is None:
        raise NotFound(f"Product {text!r} not found.")
    access = ProductAccess(product=membership.product, role=Role(membership.role))
    access.require(action)
    return access


def product_ids_for_user(*, user) -> list[int]:
    """The products whose events and devices the user sees (for live streams)."""
    return list(Membership.objects.filter(user=user).values_list("product_id", flat=True))
