"""Reading products as a user may see them: only the products of the teams they are on."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Case, IntegerField, QuerySet, When

from console.errors import NotFound
from console.permissions import Role, require
from products.models import Invitation, Membership, Product


@dataclass(frozen=True)
class ProductAccess:
    """A product and the acting user's role on its team."""

    product: Product
    role: Role

    def require(self, action: str) -> None:
        require(self.role, action)


MAX_PRODUCT_ID = 2**31 - 1  # the id column is a 32-bit integer


def product_list_for_user(*, user) -> QuerySet[Product]:
    return Product.objects.filter(memberships__user=user).order_by("name", "id")


def product_access(*, user, id_or_slug: str | int, action: str = "product.read") -> ProductAccess:
    """The product by numeric id or slug, if the user is on its team and their role allows
    ``action``. Another team's product is a 404 like an unknown one: its existence never leaks."""
    text = str(id_or_slug).strip()
    # ASCII digits only ("²".isdigit() but int() refuses it), within the id column's range (SQLite
    # cannot even compare a larger number, and int() refuses thousands of digits): an id, or nothing.
    numeric = text.isascii() and text.isdigit()
    in_range = numeric and len(text) <= len(str(MAX_PRODUCT_ID)) and int(text) <= MAX_PRODUCT_ID
    lookup = {"product_id": int(text)} if in_range else {"product__slug": text.lower()}
    membership = (
        Membership.objects.select_related("product").filter(user=user, **lookup).first()
        if user is not None and user.is_authenticated and (in_range or not numeric)
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


def team_members(*, product: Product) -> QuerySet[Membership]:
    """Owner first, then by role and email."""
    order = Case(
        *(When(role=role, then=position) for position, role in enumerate(Role)), output_field=IntegerField()
    )
    return Membership.objects.filter(product=product).select_related("user").order_by(order, "user__email")


def team_invitations(*, product: Product) -> QuerySet[Invitation]:
    return (
        Invitation.objects.filter(product=product).select_related("user", "invited_by").order_by("created_at")
    )


def team_invitation_for(*, product: Product, email: str) -> Invitation | None:
    return (
        Invitation.objects.filter(product=product, user__email__iexact=email)
        .select_related("user", "product")
        .first()
    )


def team_member_user(*, product: Product, email: str):
    membership = (
        Membership.objects.filter(product=product, user__email__iexact=email).select_related("user").first()
    )
    if membership is None:
        raise NotFound(f"{email} is not on this product's team.")
    return membership.user


def invitations_for_user(*, user) -> QuerySet[Invitation]:
    """What waits for the user's answer (shown at login and on the invitations page)."""
    return (
        Invitation.objects.filter(user=user).select_related("product", "invited_by").order_by("-created_at")
    )
