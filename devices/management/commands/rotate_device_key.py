"""Rotate one device's key pair; the new private key is written to a file for the device."""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from devices.models import Device
from devices.services import device_key_rotate


class Command(BaseCommand):
    help = "Give a device a new key pair. Its old key stops working at once."

    def add_arguments(self, parser):
        parser.add_argument("device_id")
        parser.add_argument("--out", required=True, help="file to write the new key to (JSON, one line)")

    def handle(self, *args, device_id, out, **options):
        device = Device.objects.filter(id=device_id.lower()).first()
        if device is None:
            raise CommandError(f"No device with ID {device_id}.")
        path = Path(out)
        if path.exists():
            raise CommandError(f"{path} exists; choose another file.")
        keys = device_key_rotate(device=device)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as key_file:
            key_file.write(
                json.dumps(
                    {
                        "device_id": device.id,
                        "private_key": keys.private_key_b64,
                        "platform_id": device.platform_id,
                    }
                )
                + "\n"
            )
        self.stdout.write(self.style.SUCCESS(f"Rotated the key of {device.id}; new key in {path}."))
