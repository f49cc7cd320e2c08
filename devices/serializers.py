"""Devices as Particle's API shows them (PARTICLE_API.md §2.1)."""

from __future__ import annotations

from rest_framework import serializers

from console.platforms import platform_get
from devices.groups import device_group_names
from devices.models import Device


def device_summary(device: Device) -> dict:
    platform = platform_get(device.platform_id)
    # A device outside any product reports its platform id as its product id (the CLI's
    # `particle list` reads the device type from it).
    product_id = device.product_id if device.product_id is not None else device.platform_id
    return {
        "id": device.id,
        "name": device.name,
        "last_app": None,
        "last_ip_address": device.last_ip_address,
        "last_heard": device.last_heard,
        "last_handshake_at": device.last_handshake_at,
        "product_id": product_id,
        "online": device.online,
        "connected": device.online,
        "platform_id": device.platform_id,
        "platform": platform.name if platform else None,
        "cellular": bool(platform and platform.cellular),
        "notes": device.notes or None,
        "status": "normal",
        "serial_number": device.serial_number,
        "iccid": device.iccid or None,
        "imei": device.imei or None,
        "system_firmware_version": device.system_firmware_version or None,
        "firmware_product_id": device.firmware_product_id,
        "firmware_version": device.firmware_version,
        "development": device.development,
        "owner": device.owner.email if device.owner_id and device.owner else None,
    }


def device_detail(device: Device) -> dict:
    return {
        **device_summary(device),
        "functions": list(device.functions or []),
        # Sorted: PostgreSQL's jsonb does not keep key order, and lists should read the same everywhere.
        "variables": dict(sorted((device.variables or {}).items())),
        "current_build_target": device.system_firmware_version or None,
        "default_build_target": device.system_firmware_version or None,
        "firmware_updates_enabled": True,
        "firmware_updates_forced": False,
        "denied": False,
        "quarantined": False,
        "groups": device_group_names(device),
        "desired_firmware_version": device.desired_firmware_version,
        "targeted_firmware_release_version": None,
    }


class DeviceSummarySerializer(serializers.Serializer):
    """Schema only: responses are built by ``device_summary``."""

    id = serializers.CharField()
    name = serializers.CharField()
    last_app = serializers.CharField(allow_null=True)
    last_ip_address = serializers.IPAddressField(allow_null=True)
    last_heard = serializers.DateTimeField(allow_null=True)
    last_handshake_at = serializers.DateTimeField(allow_null=True)
    product_id = serializers.IntegerField()
    online = serializers.BooleanField()
    connected = serializers.BooleanField()
    platform_id = serializers.IntegerField()
    platform = serializers.CharField(allow_null=True)
    cellular = serializers.BooleanField()
    notes = serializers.CharField(allow_null=True)
    status = serializers.CharField()
    serial_number = serializers.CharField()
    iccid = serializers.CharField(allow_null=True)
    imei = serializers.CharField(allow_null=True)
    system_firmware_version = serializers.CharField(allow_null=True)
    firmware_product_id = serializers.IntegerField(allow_null=True)
    firmware_version = serializers.IntegerField(allow_null=True)
    development = serializers.BooleanField()
    owner = serializers.EmailField(allow_null=True)


class ProductDeviceSummarySerializer(DeviceSummarySerializer):
    """A device in a product's list."""

    quarantined = serializers.BooleanField()
    denied = serializers.BooleanField()
    groups = serializers.ListField(child=serializers.CharField())


class DeviceDetailSerializer(DeviceSummarySerializer):
    functions = serializers.ListField(child=serializers.CharField())
    variables = serializers.DictField(child=serializers.CharField())
    current_build_target = serializers.CharField(allow_null=True)
    default_build_target = serializers.CharField(allow_null=True)
    firmware_updates_enabled = serializers.BooleanField()
    firmware_updates_forced = serializers.BooleanField()
    denied = serializers.BooleanField()
    quarantined = serializers.BooleanField()
    groups = serializers.ListField(child=serializers.CharField())
    desired_firmware_version = serializers.IntegerField(allow_null=True)
    targeted_firmware_release_version = serializers.IntegerField(allow_null=True)
