"""Reading products as a user may see them: only the products of the teams they are on."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Case, IntegerField, QuerySet, When

from console.errors import NotFound, PermissionDenied
from console.permissions import PERMISSIONS, Role, require, role_can
from products.models import ApiUser, Invitation, Membership, Product
from products.scopes import scope_actions, scopes_granting


@dataclass(frozen=True)
class ProductAccess:
    """A product and the acting user's role on its team, or, for an API user, the actions its
    scopes grant (``role`` is then None)."""

    product: Product
    role: Role | None
    scope_actions: frozenset[str] | None = None

    @property
    def is_api_user(self) -> bool:
        return self.scope_actions is not None

    def can(self, action: str) -> bool:
        if self.scope_actions is None:
            return role_can(self.role, action)
        PERMISSIONS[action]  # KeyError: an undeclared action is never allowed
        return action in self.scope_actions

    def require(self, action: str) -> None:
        if self.scope_actions is None:
            require(self.role, action)
        elif not self.can(action):
            needed = " or ".join(scopes_granting(action)) or "a scope API users cannot have"
            raise PermissionDenied(
                f"This API user's scopes do not allow {action.replace('.', ' ')}; it needs {needed}."
            )


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
    if membership is not None:
        access = ProductAccess(product=membership.product, role=Role(membership.role))
    else:
        # Only on a miss: API users are few, and their product is the one they were made for.
        api_user = (
            ApiUser.objects.select_related("product").filter(user=user, **lookup).first()
            if user is not None and user.is_authenticated and (in_range or not numeric)
            else None
        )
        if api_user is None:
            raise NotFound(f"Product {text!r} not found.")
        access = ProductAccess(
            product=api_user.product, role=None, scope_actions=scope_actions(api_user.scopes)
        )
    access.require(action)
    return access


def product_ids_for_user(*, user) -> list[int]:
    """The products whose events the user sees (for live streams): their teams', and an API
    user's own product when its scopes allow reading events."""
    product_ids = list(Membership.objects.filter(user=user).values_list("product_id", flat=True))
    if not product_ids:
        api_user = ApiUser.objects.filter(user=user).only("product_id", "scopes").first()
        if api_user is not None and "event.read" in scope_actions(api_user.scopes):
            product_ids.append(api_user.product_id)
    return product_ids


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


def api_users(*, product: Product) -> QuerySet[ApiUser]:
    return ApiUser.objects.filter(product=product).select_related("user", "created_by").order_by("created_at")


def api_user_by_username(*, product: Product, username: str) -> ApiUser | None:
    return (
        ApiUser.objects.filter(product=product, user__email__iexact=username.strip())
        .select_related("user", "product")
        .first()
    )


def invitations_for_user(*, user) -> QuerySet[Invitation]:
    """What waits for the user's answer (shown at login and on the invitations page)."""
    return (
        Invitation.objects.filter(user=user).select_related("product", "invited_by").order_by("-created_at")
    )
