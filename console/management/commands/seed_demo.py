"""Create the demo account and its demo fleet (idempotent).

The demo fleet is 25 devices owned by the demo account, its Boron devices in a demo product with
a second demo account on the team; their private keys go to
``$QUANTA_VAR_DIR/demo-fleet.jsonl`` for ``manage.py simulate_fleet`` (``make run`` starts it).
The key file is written once and left alone while it matches the devices; if it was lost or no
longer matches (say the database was reset), the devices get new keys and the file is rewritten.
The demo product also gets 24 hours of devices-online history, so its overview has a chart at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from console.accounts.models import User
from console.permissions import Role
from console.platforms import PLATFORMS_BY_SLUG
from devices.imports import device_ids_parse, devices_import
from devices.keys import sign, signature_valid
from devices.models import Device, DeviceOnlineSample
from devices.services import device_key_rotate, devices_provision, online_sample_period_start
from devices.simulator import KeyFileError, load_keys
from firmware.binary import ModuleFunction
from firmware.encoder import build_module
from firmware.models import FirmwareRelease, ProductFirmware
from firmware.releases import firmware_release
from firmware.services import firmware_upload
from products.groups import group_create
from products.models import DeviceGroup, Membership, Product
from products.services import product_create

DEMO_EMAIL = "demo@quanta.local"
DEMO_PASSWORD = "quanta-demo-2026"  # noqa: S105 (documented demo credentials)
DEMO_FLEET_FILE = "demo-fleet.jsonl"

# Platform slug -> the names of its demo devices.
DEMO_FLEET: dict[str, tuple[str, ...]] = {
    "boron": (
        "pump-house",
        "north-field",
        "south-field",
        "water-tower",
        "grain-silo-1",
        "grain-silo-2",
        "weather-mast",
        "cold-store",
        "loading-dock",
        "front-gate",
    ),
    "argon": (
        "greenhouse-east",
        "greenhouse-west",
        "office-lobby",
        "server-room",
        "workshop",
        "kitchen",
        "meeting-room",
        "roof-terrace",
    ),
    "p2": ("lab-bench-1", "lab-bench-2", "freezer-monitor", "air-quality", "front-desk"),
    "tracker": ("delivery-van-1", "delivery-van-2"),
}


def _key_matches(device: Device, private_key: bytes) -> bool:
    return signature_valid(
        bytes(device.public_key), b"demo", base64.b64encode(sign(private_key, b"demo")).decode()
    )


def _key_file_entry(device: Device, private_key: bytes) -> dict:
    return {
        "device_id": device.id,
        "private_key": base64.b64encode(private_key).decode(),
        "platform_id": device.platform_id,
        "serial_number": device.serial_number,
        "iccid": device.iccid or None,
    }


def _write_private(path: Path, lines: list[str]) -> None:
    """Replace ``path`` in one step with a file only its owner can read."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as key_file:
        key_file.writelines(line + "\n" for line in lines)
    os.replace(temporary, path)


def demo_fleet_seed(user: User, key_path: Path) -> tuple[int, int, bool]:
    """Make sure the demo fleet exists and ``key_path`` holds its keys.

    Returns (devices provisioned, keys rotated, whether the key file was written)."""
    names = [name for platform_names in DEMO_FLEET.values() for name in platform_names]
    wanted = {name.lower(): name for name in names}  # device names are unique per owner, any case
    existing = {
        wanted[device.name.lower()]: device
        for device in Device.objects.filter(owner=user)
        if device.name.lower() in wanted
    }
    keys: dict[str, bytes] = {}  # device id -> private key
    provisioned = 0
    with transaction.atomic():
        for slug, platform_names in DEMO_FLEET.items():
            missing = [name for name in platform_names if name not in existing]
            if not missing:
                continue
            for name, item in zip(
                missing,
                devices_provision(platform=PLATFORMS_BY_SLUG[slug], count=len(missing)),
                strict=True,
            ):
                item.device.owner, item.device.name = user, name
                item.device.save(update_fields=["owner", "name", "updated_at"])
                existing[name] = item.device
                keys[item.device.id] = item.keys.private_key
                provisioned += 1
    fleet = [existing[name] for name in names]

    known: dict[str, bytes] = {}
    if key_path.exists():
        try:
            known = {key.device_id: key.private_key for key in load_keys(key_path)}
        except KeyFileError:
            known = {}
    rotated = 0
    for device in fleet:
        if device.id in keys:
            continue
        if device.id in known and _key_matches(device, known[device.id]):
            keys[device.id] = known[device.id]
        else:  # its private key is lost: give it a new pair
            keys[device.id] = device_key_rotate(device=device).private_key
            rotated += 1
    up_to_date = key_path.exists() and not provisioned and not rotated and set(known) == set(keys)
    if not up_to_date:
        key_path.parent.mkdir(parents=True, exist_ok=True)
        _write_private(key_path, [json.dumps(_key_file_entry(d, keys[d.id])) for d in fleet])
    return provisioned, rotated, not up_to_date


DEMO_PRODUCT_NAME = "Farm sensors"
DEMO_TEAMMATE_EMAIL = "teammate@quanta.local"


def demo_product_seed(user: User, password: str) -> Product:
    """The demo product: the Boron part of the demo fleet imported into it, and a second demo
    account on its team as a developer."""
    product = Product.objects.filter(owner=user, name=DEMO_PRODUCT_NAME).first()
    if product is None:
        product = product_create(
            user=user,
            name=DEMO_PRODUCT_NAME,
            platform_id=PLATFORMS_BY_SLUG["boron"].id,
            description="Soil, water and storage sensors around the farm, on LTE.",
            via="cli",
        )
    outside = Device.objects.filter(owner=user, name__in=DEMO_FLEET["boron"], product__isnull=True)
    if outside_ids := list(outside.values_list("id", flat=True)):
        devices_import(actor=user, product=product, parsed=device_ids_parse(outside_ids), via="cli")
    teammate = User.objects.filter(email__iexact=DEMO_TEAMMATE_EMAIL).first()
    if teammate is None:
        teammate = User.objects.create_user(
            email=DEMO_TEAMMATE_EMAIL, password=password, first_name="Team", last_name="Mate"
        )
    Membership.objects.get_or_create(product=product, user=teammate, defaults={"role": Role.DEVELOPER})
    return product


# The demo product's groups: name -> (color, description, device names).
DEMO_GROUPS = {
    "fields": (
        "#16a34a",
        "Soil and weather sensors out in the fields",
        DEMO_FLEET["boron"][:3] + DEMO_FLEET["boron"][6:7],
    ),
    "storage": (
        "#ca8a04",
        "Silos, cold store and the loading dock",
        DEMO_FLEET["boron"][4:6] + DEMO_FLEET["boron"][7:9],
    ),
}
# The demo product's firmware: version -> (title, description). Version 1 is the product default;
# version 2 is released to the "fields" group, so those devices update when the fleet starts.
DEMO_FIRMWARE = {
    1: ("Sensor readings every minute", "Soil moisture, temperature and battery, published every minute."),
    2: ("Faster soil readings", "Reads soil moisture every 10 seconds and sends a summary each minute."),
}


def demo_groups_seed(user: User, product: Product) -> None:
    for name, (color, description, device_names) in DEMO_GROUPS.items():
        group = DeviceGroup.objects.filter(product=product, name=name).first() or group_create(
            actor=user, product=product, name=name, description=description, color=color, via="cli"
        )
        members = Device.objects.filter(product=product, owner=user, name__in=device_names)
        group.devices.add(*members)


def demo_firmware_seed(user: User, product: Product) -> None:
    """Two versions built by the project's encoder; the first released as the product default, the
    second to the fields group. The demo's history says both ran on a device already (the first
    everywhere, the second on the bench), which a release requires."""
    for version, (title, description) in DEMO_FIRMWARE.items():
        if ProductFirmware.objects.filter(product=product, version=version).exists():
            continue
        binary = build_module(
            platform_id=product.platform_id,
            product_id=product.id,
            product_version=version,
            dependencies=[(int(ModuleFunction.SYSTEM_PART), 1, 6101)],  # Device OS 6.1.1
            payload=hashlib.sha256(f"{product.id}:{version}".encode()).digest() * (600 + 200 * version),
        )
        firmware = firmware_upload(
            actor=user,
            product=product,
            data=binary,
            version=version,
            title=title,
            description=description,
            via="cli",
        )
        ProductFirmware.objects.filter(pk=firmware.pk).update(
            first_run_at=timezone.now() - timedelta(days=3 - version)
        )
    if not FirmwareRelease.objects.filter(product=product).exists():
        versions = {
            f.version: f for f in ProductFirmware.objects.filter(product=product, version__in=DEMO_FIRMWARE)
        }
        firmware_release(
            actor=user, product=product, firmware=versions[1], product_default=True, group_names=[], via="cli"
        )
        firmware_release(
            actor=user,
            product=product,
            firmware=versions[2],
            product_default=False,
            group_names=["fields"],
            via="cli",
        )


def demo_key_file_products(key_path: Path, product: Product) -> None:
    """The product's devices report its id and the first demo version at their first handshake."""
    members = set(Device.objects.filter(product=product).values_list("id", flat=True))
    lines = key_path.read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.strip()]
    changed = False
    for entry in entries:
        if entry["device_id"] in members and entry.get("product_id") != product.id:
            entry["product_id"], entry["product_version"] = product.id, min(DEMO_FIRMWARE)
            changed = True
    if changed:
        _write_private(key_path, [json.dumps(entry) for entry in entries])


def _demo_offline(total: int, at: datetime, seed: int) -> int:
    """How many of ``total`` LTE sensors a plausible farm has offline at ``at`` (UTC): now and then
    one drops out for a while, one is off for a battery swap in the afternoon, and a cell tower's
    night maintenance takes a third of them off for a while."""
    hour = random.Random(f"{seed}:{at:%Y%m%d%H}")  # noqa: S311 (demo data, not secrets)
    offline = 0
    for _ in range(2):  # up to two dropouts an hour, each lasting 10 to 35 minutes
        if hour.random() < 0.3:
            begin, length = hour.randrange(0, 60, 5), hour.randrange(10, 40, 5)
            offline += begin <= at.minute < begin + length
    if 13 <= at.hour < 15:
        offline += 1
    if at.hour == 2 and at.minute < 45:
        offline += max(total // 3, 1)
    return min(offline, total)


def demo_online_history_seed(product: Product, *, now: datetime | None = None) -> int:
    """Samples for the 24 hours before now, made up from the product's real device count, so its
    overview's chart has a history on the first run. Only the periods before the product's first
    sample are filled: a re-run adds nothing, and a real gap later is never papered over.

    Returns the number of samples added."""
    now = now or timezone.now()
    step = timedelta(seconds=settings.QUANTA_ONLINE_SAMPLE_SECONDS)
    last = online_sample_period_start(now) - step  # the current period is the sampler's
    first = last - timedelta(hours=24) + step
    earliest = DeviceOnlineSample.objects.filter(product=product).aggregate(first=Min("taken_at"))["first"]
    total = Device.objects.filter(product=product).count()
    samples = []
    at = first
    while at <= last and (earliest is None or at < earliest):
        online = total - _demo_offline(total, at, product.id)
        samples.append(DeviceOnlineSample(product=product, taken_at=at, online=online, total=total))
        at += step
    DeviceOnlineSample.objects.bulk_create(samples, ignore_conflicts=True)
    return len(samples)


class Command(BaseCommand):
    help = "Create the demo account (or reset its password) and its demo fleet of simulated devices."

    def add_arguments(self, parser):
        parser.add_argument("--email", default=DEMO_EMAIL)
        parser.add_argument("--password", default=DEMO_PASSWORD)
        parser.add_argument("--no-fleet", action="store_true", help="skip the demo fleet")

    def handle(self, *args, email: str, password: str, no_fleet: bool, **options):
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = User.objects.create_user(
                email=email, password=password, first_name="Demo", last_name="User"
            )
            created = "Created"
        else:
            user.set_password(password)
            user.is_active = True
            user.save(update_fields=["password", "is_active"])
            created = "Reset"
        self.stdout.write(self.style.SUCCESS(f"{created} the demo account: {email} / {password}"))
        if no_fleet:
            return
        key_path = Path(settings.VAR_DIR) / DEMO_FLEET_FILE
        provisioned, rotated, written = demo_fleet_seed(user, key_path)
        count = sum(len(names) for names in DEMO_FLEET.values())
        changes = [f"{provisioned} provisioned"] if provisioned else []
        if rotated:
            changes.append(f"{rotated} given new keys")
        detail = f" ({', '.join(changes)})" if changes else ""
        verb = "written to" if written else "in"
        self.stdout.write(self.style.SUCCESS(f"Demo fleet: {count} devices{detail}; keys {verb} {key_path}"))
        product = demo_product_seed(user, password)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo product: {product.name} (product {product.id}), with {DEMO_TEAMMATE_EMAIL} / "
                f"{password} on its team as a developer"
            )
        )
        if added := demo_online_history_seed(product):
            self.stdout.write(self.style.SUCCESS(f"Demo product: {added} samples of devices online added"))
        demo_groups_seed(user, product)
        demo_firmware_seed(user, product)
        demo_key_file_products(key_path, product)
        self.stdout.write(
            self.style.SUCCESS(
                "Demo product: groups fields and storage; firmware v1 is the product default and v2 is "
                "released to fields, so those devices update when the fleet starts"
            )
        )
