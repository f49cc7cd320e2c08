"""A product's firmware: the uploaded versions, their binaries, and where each is released."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

# PRODUCT_VERSION is a 16-bit field in the module suffix; 0xFFFF means "not a product build".
MAX_FIRMWARE_VERSION = 0xFFFE
TITLE_MAX_LENGTH = 128
DESCRIPTION_MAX_LENGTH = 2000


class ProductFirmware(models.Model):
    """One uploaded version of a product's application firmware, validated at upload: its module
    matches the product's platform, carries this version, and its checksums hold."""

    product = models.ForeignKey("products.Product", on_delete=models.CASCADE, related_name="firmware")
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    description = models.TextField(blank=True, max_length=DESCRIPTION_MAX_LENGTH)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    platform_id = models.PositiveIntegerField()
    # What the parser read (firmware.binary.ModuleInfo as JSON), shown on the firmware's page.
    module = models.JSONField(default=dict)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # When a device of the product first reported running it: releasing needs this.
    first_run_at = models.DateTimeField(null=True, blank=True)
    # When it was first released: released firmware is kept, never deleted.
    first_released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["product", "version"], name="firmware_version_unique_per_product"
            ),
            models.CheckConstraint(
                condition=Q(version__gte=1, version__lte=MAX_FIRMWARE_VERSION), name="firmware_version_range"
            ),
        ]

    def __str__(self) -> str:
        return f"v{self.version} of {self.product_id}"


class FirmwareBinary(models.Model):
    """The bytes, in a table of their own so lists never load them. Kept in the database: an
    upload is then all or nothing, and every process (web, OTA workers, gateways) reads the same
    bytes without a shared volume; user parts are at most a few MiB."""

    firmware = models.OneToOneField(
        ProductFirmware, on_delete=models.CASCADE, primary_key=True, related_name="binary"
    )
    data = models.BinaryField()

    def __str__(self) -> str:
        return f"binary of {self.firmware_id}"


class FirmwareRelease(models.Model):
    """Where a version is released: the product default (no group), or one group. A product has
    at most one default, and a group at most one released version."""

    product = models.ForeignKey("products.Product", on_delete=models.CASCADE, related_name="releases")
    firmware = models.ForeignKey(ProductFirmware, on_delete=models.CASCADE, related_name="releases")
    group = models.ForeignKey(
        "products.DeviceGroup", null=True, blank=True, on_delete=models.CASCADE, related_name="releases"
    )
    intelligent = models.BooleanField(default=False)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    released_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["product"], condition=Q(group__isnull=True), name="firmware_release_one_default"
            ),
            models.UniqueConstraint(
                fields=["group"], condition=Q(group__isnull=False), name="firmware_release_one_per_group"
            ),
        ]
        indexes = [models.Index(fields=["product", "firmware"], name="firmware_release_product")]

    def __str__(self) -> str:
        where = f"group {self.group_id}" if self.group_id else "product default"
        return f"{self.firmware_id} released to {where}"


class UpdateState(models.TextChoices):
    PENDING = "pending", "Pending"  # offered to the device, waiting for it to say it is ready
    TRANSFERRING = "transferring", "Transferring"
    TRANSFERRED = "transferred", "Restarting"  # verified by the device; waiting for it to come back
    RETRYING = "retrying", "Retrying"  # an attempt failed; another one is due at retry_at
    SUCCESS = "success", "Updated"  # it came back running the new version
    FAILED = "failed", "Failed"  # every attempt failed
    CANCELLED = "cancelled", "Cancelled"  # its target changed before it finished


OPEN_UPDATE_STATES = (
    UpdateState.PENDING,
    UpdateState.TRANSFERRING,
    UpdateState.TRANSFERRED,
    UpdateState.RETRYING,
)


class FirmwareUpdate(models.Model):
    """One device's update to one version, across its attempts: what the device page shows live
    and what a release counts as "N of M updated". A device has at most one open update."""

    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="firmware_updates")
    product = models.ForeignKey(
        "products.Product", null=True, blank=True, on_delete=models.CASCADE, related_name="firmware_updates"
    )
    # The product firmware it installs; None for a binary flashed by hand to a development device.
    firmware = models.ForeignKey(
        ProductFirmware, null=True, blank=True, on_delete=models.SET_NULL, related_name="updates"
    )
    binary = models.BinaryField(null=True, blank=True)  # only for a binary flashed by hand
    version = models.PositiveIntegerField(null=True, blank=True)  # what the device reports after it
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    ota_id = models.CharField(max_length=32, unique=True)  # the current attempt's transfer id
    state = models.CharField(max_length=16, choices=UpdateState.choices, default=UpdateState.PENDING)
    bytes_acked = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)  # failed attempts so far
    error = models.CharField(max_length=300, blank=True)
    from_version = models.PositiveIntegerField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    transferred_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["device"], condition=Q(state__in=OPEN_UPDATE_STATES), name="firmware_update_one_open"
            ),
        ]
        indexes = [
            models.Index(fields=["device", "-created_at"], name="firmware_update_device_recent"),
            models.Index(fields=["product", "version", "state"], name="firmware_update_release"),
            models.Index(fields=["state", "retry_at"], name="firmware_update_due"),
        ]

    def __str__(self) -> str:
        return f"{self.device_id} to v{self.version}: {self.state}"

    @property
    def percent(self) -> int:
        return min(100, self.bytes_acked * 100 // self.size) if self.size else 0
