from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce, Lower

from console.platforms import platform_name

DEVICE_ID_LENGTH = 24


def firmware_sort_key() -> Coalesce:
    """The firmware version to sort devices by: -1 for one never reported."""
    return Coalesce(F("firmware_version"), Value(-1), output_field=models.BigIntegerField())


class Device(models.Model):
    """A device: provisioned at manufacture (with its public key), then claimed by a user."""

    id = models.CharField(primary_key=True, max_length=DEVICE_ID_LENGTH)
    name = models.CharField(max_length=63)
    platform_id = models.PositiveSmallIntegerField()
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="devices"
    )
    product = models.ForeignKey(
        "products.Product", null=True, blank=True, on_delete=models.SET_NULL, related_name="devices"
    )
    public_key = models.BinaryField(max_length=32)
    key_rotated_at = models.DateTimeField(null=True, blank=True)
    serial_number = models.CharField(max_length=32, unique=True)
    iccid = models.CharField(max_length=22, blank=True)
    imei = models.CharField(max_length=17, blank=True)
    notes = models.TextField(blank=True)
    development = models.BooleanField(default=False)
    # Joined a product by asking for it at handshake, waiting for the team to approve or deny it.
    quarantined = models.BooleanField(default=False)
    # Locked to this product firmware version whatever is released (firmware/ decides targets).
    desired_firmware_version = models.PositiveIntegerField(null=True, blank=True)
    # The product's groups the device is in (always groups of its current product).
    groups = models.ManyToManyField("products.DeviceGroup", related_name="devices", blank=True)

    # What the device last reported at its handshake.
    online = models.BooleanField(default=False)
    last_heard = models.DateTimeField(null=True, blank=True)
    last_handshake_at = models.DateTimeField(null=True, blank=True)
    last_ip_address = models.GenericIPAddressField(null=True, blank=True)
    # Up to 2^32 - 1, as the protocol allows.
    firmware_product_id = models.PositiveBigIntegerField(null=True, blank=True)
    firmware_version = models.PositiveBigIntegerField(null=True, blank=True)
    system_firmware_version = models.CharField(max_length=32, blank=True)
    functions = models.JSONField(default=list, blank=True)
    variables = models.JSONField(default=dict, blank=True)

    # The live gateway connection, if any: which process holds it and its channel-layer address.
    session_id = models.CharField(max_length=32, blank=True)
    gateway_process = models.CharField(max_length=64, blank=True)
    gateway_channel = models.CharField(max_length=200, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "owner", Lower("name"), name="device_name_unique_per_owner", condition=Q(owner__isnull=False)
            ),
            models.CheckConstraint(condition=Q(id__regex=r"^[0-9a-f]{24}$"), name="device_id_is_24_hex"),
        ]
        indexes = [
            models.Index(fields=["owner", "name"], name="device_owner_name"),
            models.Index(fields=["owner", "-last_heard"], name="device_owner_last_heard"),
            models.Index(fields=["product", "name"], name="device_product_name"),
            models.Index(fields=["product", "-last_heard"], name="device_product_last_heard"),
            # The list's firmware-version sort in index order (devices.selectors): unreported versions
            # as -1, so first ascending and last descending on every database, ties by id.
            models.Index(F("product"), firmware_sort_key(), F("id"), name="device_product_firmware_id"),
            models.Index(fields=["gateway_process"], name="device_gateway_online", condition=Q(online=True)),
        ]

    def __str__(self) -> str:
        return self.name or self.id

    @property
    def platform_name(self) -> str:
        return platform_name(self.platform_id)

    @property
    def cellular(self) -> bool:
        from console.platforms import platform_get

        platform = platform_get(self.platform_id)
        return bool(platform and platform.cellular)


class ProductDenial(models.Model):
    """A device a product's team removed with ``deny``: it may not join that product again (at
    handshake) unless the team imports it."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="denials")
    product = models.ForeignKey("products.Product", on_delete=models.CASCADE, related_name="denials")
    denied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["device", "product"], name="product_denial_once")]

    def __str__(self) -> str:
        return f"{self.device_id} denied by {self.product_id}"


class ClaimCode(models.Model):
    """A one-time code a device presents in its hello to be claimed by the code's user."""

    code = models.CharField(max_length=63, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="claim_codes")
    iccid = models.CharField(max_length=22, blank=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    device = models.ForeignKey(Device, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.code


class DataUsage(models.Model):
    """Bytes a device sent and received through the gateway, per UTC day."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="data_usage")
    day = models.DateField()
    bytes_in = models.BigIntegerField(default=0)
    bytes_out = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["device", "day"], name="data_usage_one_row_per_day")]

    def __str__(self) -> str:
        return f"{self.device_id} {self.day}"


class GatewayProcess(models.Model):
    """A live gateway process; each one refreshes its row, and devices held by a process whose
    row went stale are swept offline."""

    id = models.CharField(primary_key=True, max_length=64)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.id


class DeviceOnlineSample(models.Model):
    """How many of a product's devices were online at one moment, for the product overview's chart.

    ``devices.tasks.sample_online_devices`` takes one per product every
    ``QUANTA_ONLINE_SAMPLE_SECONDS``, at the start of that period (so a second run in the same
    period conflicts and is ignored), and prunes the ones older than
    ``QUANTA_ONLINE_SAMPLE_RETENTION_DAYS``. A period without a sample means nothing was running."""

    product = models.ForeignKey("products.Product", on_delete=models.CASCADE, related_name="online_samples")
    taken_at = models.DateTimeField()
    online = models.PositiveIntegerField()
    total = models.PositiveIntegerField()

    class Meta:
        constraints = [
            # Also the index the chart reads a product's last 24 hours through.
            models.UniqueConstraint(fields=["product", "taken_at"], name="online_sample_one_per_period"),
            models.CheckConstraint(
                condition=Q(online__lte=models.F("total")), name="online_sample_within_total"
            ),
        ]
        indexes = [models.Index(fields=["taken_at"], name="online_sample_taken_at")]  # pruning

    def __str__(self) -> str:
        return f"{self.product_id} {self.taken_at:%Y-%m-%d %H:%M}: {self.online}/{self.total}"
