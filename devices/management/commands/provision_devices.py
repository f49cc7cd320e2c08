"""The manufacturing step: create devices with key pairs; the private keys go to a file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from console.accounts.models import User
from console.platforms import platform_from_string
from devices.services import devices_provision


class Command(BaseCommand):
    help = "Provision devices: store their public keys, write their private keys to a JSON-lines file."

    def add_arguments(self, parser):
        parser.add_argument(
            "--platform", required=True, help="platform slug or id, e.g. electron, boron, p2, 10"
        )
        parser.add_argument("--count", type=int, default=1)
        parser.add_argument(
            "--out", required=True, help="key file to write (JSON lines, one device per line)"
        )
        parser.add_argument("--owner", help="email of the user who owns the new devices (default: unclaimed)")
        parser.add_argument("--product-id", type=int, help="the product id the devices' firmware reports")
        parser.add_argument("--product-version", type=int, help="the firmware version the devices report")
        parser.add_argument("--append", action="store_true", help="append to an existing key file")

    def handle(self, *args, platform, count, out, owner, product_id, product_version, append, **options):
        try:
            chosen = platform_from_string(platform)
        except ValueError as error:
            raise CommandError(str(error)) from None
        path = Path(out)
        if path.exists() and not append:
            raise CommandError(f"{path} exists; pass --append to add to it, or choose another file.")
        owner_user = None
        if owner:
            owner_user = User.objects.filter(email__iexact=owner).first()
            if owner_user is None:
                raise CommandError(f"No account with the email {owner}.")
        provisioned = devices_provision(platform=chosen, count=count, owner=owner_user)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Private keys: readable by the owner of the file only.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC), 0o600)
        with os.fdopen(descriptor, "a" if append else "w") as key_file:
            for item in provisioned:
                entry = item.key_file_entry()
                if product_id is not None:
                    entry["product_id"] = product_id
                if product_version is not None:
                    entry["product_version"] = product_version
                key_file.write(json.dumps(entry) + "\n")
        self.stdout.write(
            self.style.SUCCESS(
                f"Provisioned {count} {chosen.name} device{'s' if count != 1 else ''}; keys in {path}."
            )
        )
