"""Tenancy: products and their teams."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from console.permissions import Role

# Product ids start above every platform id: a device outside any product reports its platform
# id as its product id, so the two ranges must never meet.
FIRST_PRODUCT_ID = 1000
MIN_EVENT_DATA_LIMIT = 1024
MAX_EVENT_DATA_LIMIT = 16 * 1024


class QuarantinePolicy(models.TextChoices):
    QUARANTINE = "quarantine", "Quarantine unknown devices for approval"
    APPROVE = "approve", "Approve unknown devices automatically"


class Product(models.Model):
    """A fleet of devices of one platform, with a team. Its numeric id is what firmware carries."""

    id = models.AutoField(primary_key=True)
    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=80)
    description = models.TextField(blank=True, max_length=1000)
    platform_id = models.PositiveIntegerField()
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_products"
    )
    quarantine_policy = models.CharField(
        max_length=16, choices=QuarantinePolicy.choices, default=QuarantinePolicy.QUARANTINE
    )
    event_data_limit = models.PositiveIntegerField(default=MIN_EVENT_DATA_LIMIT)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(id__gte=FIRST_PRODUCT_ID), name="product_id_above_platform_ids"
            ),
            models.CheckConstraint(
                condition=Q(
                    event_data_limit__gte=MIN_EVENT_DATA_LIMIT, event_data_limit__lte=MAX_EVENT_DATA_LIMIT
                ),
                name="product_event_data_limit_range",
            ),
            # Digits only would read as an id: every product route accepts either.
            models.CheckConstraint(condition=~Q(slug__regex=r"^[0-9]+$"), name="product_slug_not_numeric"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class Membership(models.Model):
    """A user's role on a product's team. Exactly one owner per product: the creator."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="product_memberships"
    )
    role = models.CharField(max_length=16, choices=[(role.value, role.value.title()) for role in Role])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product", "user"], name="membership_one_per_user"),
            models.UniqueConstraint(
                fields=["product"], condition=Q(role="owner"), name="membership_one_owner"
            ),
        ]
        indexes = [models.Index(fields=["user", "product"], name="membership_user_product")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.role} of {self.product_id}"


class Invitation(models.Model):
    """An invitation to join a product's team, waiting for the invited person to accept or decline.
    Only people with an account are invited; accepting turns it into a Membership."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="invitations")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="product_invitations"
    )
    role = models.CharField(max_length=16, choices=[(role.value, role.value.title()) for role in Role])
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product", "user"], name="invitation_one_per_user"),
            models.CheckConstraint(condition=~Q(role="owner"), name="invitation_not_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} invited to {self.product_id} as {self.role}"


# Device groups: Particle's rule for names, and the colors the console offers.
GROUP_NAME_MAX_LENGTH = 64
GROUP_NAME_REGEX = r"^[a-z0-9_-]{1,64}$"
GROUP_COLOR_REGEX = r"^#[0-9a-f]{6}$"
GROUP_DESCRIPTION_MAX_LENGTH = 500
DEFAULT_GROUP_COLOR = "#0d9488"


class DeviceGroup(models.Model):
    """A named set of a product's devices (``Device.groups``), for filtering and, later, for
    releasing firmware to. Its name is what the API and the CLI use to address it."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=GROUP_NAME_MAX_LENGTH)
    description = models.CharField(max_length=GROUP_DESCRIPTION_MAX_LENGTH, blank=True)
    color = models.CharField(max_length=7, default=DEFAULT_GROUP_COLOR)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product", "name"], name="device_group_name_unique_per_product"),
            models.CheckConstraint(
                condition=Q(name__regex=GROUP_NAME_REGEX), name="device_group_name_format"
            ),
            models.CheckConstraint(
                condition=Q(color__regex=GROUP_COLOR_REGEX), name="device_group_color_hex"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ApiUser(models.Model):
    """A programmatic member of one product's team: an account that never signs in, whose
    never-expiring tokens may do only what its scopes allow (``products.scopes``) on this product.
    Deleting it deletes the account, and with it every token it holds."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="api_users")
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_user")
    friendly_name = models.CharField(max_length=80)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["product", "created_at"], name="api_user_product_created")]

    def __str__(self) -> str:
        return f"{self.friendly_name} (API user of {self.product_id})"
