"""Device writes: provisioning, claiming, renaming, and what the gateway records."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from console.errors import ApplicationError, Conflict, NotFound, PermissionDenied
from console.platforms import Platform
from console.services import audit_record
from devices import calls, naming
from devices.imports import product_join_at_handshake
from devices.keys import KeyPair, key_pair_generate
from devices.models import ClaimCode, DataUsage, Device, DeviceOnlineSample, GatewayProcess
from products.models import Product

# Particle's wording: particle-cli offers to request a transfer only when the error contains it.
BELONGS_TO_SOMEONE_ELSE = "That belongs to someone else."


# --- Provisioning (the manufacturing step) ------------------------------------------------------------
@dataclass(frozen=True)
class ProvisionedDevice:
    device: Device
    keys: KeyPair

    def key_file_entry(self) -> dict:
        return {
            "device_id": self.device.id,
            "private_key": self.keys.private_key_b64,
            "platform_id": self.device.platform_id,
            "serial_number": self.device.serial_number,
            "iccid": self.device.iccid or None,
        }


def _digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))


def _luhn_complete(partial: str) -> str:
    total = 0
    for index, char in enumerate(reversed(partial)):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    return partial + str((10 - total % 10) % 10)


def _distinct(count: int, draw, taken: set[str]) -> list[str]:
    values: list[str] = []
    seen = set(taken)
    while len(values) < count:
        value = draw()
        if value.lower() not in seen:
            seen.add(value.lower())
            values.append(value)
    return values


def devices_provision(*, platform: Platform, count: int, owner=None, product=None) -> list[ProvisionedDevice]:
    """Create ``count`` devices with fresh key pairs. Only public keys are stored; the caller
    hands the private keys to the devices (or the simulator)."""
    if count < 1 or count > 100_000:
        raise ApplicationError("Provision between 1 and 100000 devices at a time.", field="count")
    # Names are unique per owner and serial numbers unique everywhere: draw until each is free,
    # against this batch and, for the batch's candidates, the database (one query each).
    names_taken = (
        {name.lower() for name in Device.objects.filter(owner=owner).values_list("name", flat=True)}
        if owner
        else set()
    )
    names = _distinct(count, lambda: f"{naming.friendly_name()}_{secrets.token_hex(2)}", names_taken)
    serials = _distinct(count, lambda: f"{platform.serial_prefix}{_digits(10)}", set())
    clashing = set(Device.objects.filter(serial_number__in=serials).values_list("serial_number", flat=True))
    if clashing:
        fresh = iter(
            _distinct(
                len(clashing), lambda: f"{platform.serial_prefix}{_digits(10)}", set(serials) | clashing
            )
        )
        serials = [next(fresh) if serial in clashing else serial for serial in serials]
    provisioned = []
    for name, serial in zip(names, serials, strict=True):
        keys = key_pair_generate()
        device = Device(
            id=secrets.token_hex(12),
            name=name,
            platform_id=platform.id,
            owner=owner,
            product=product,
            public_key=keys.public_key,
            serial_number=serial,
            iccid=_luhn_complete("8901" + _digits(15)) if platform.cellular else "",
            imei=_luhn_complete("35" + _digits(12)) if platform.cellular else "",
        )
        provisioned.append(ProvisionedDevice(device=device, keys=keys))
    with transaction.atomic():
        Device.objects.bulk_create([p.device for p in provisioned], batch_size=1000)
    return provisioned


def device_key_rotate(*, device: Device, actor=None) -> KeyPair:
    keys = key_pair_generate()
    Device.objects.filter(pk=device.pk).update(public_key=keys.public_key, key_rotated_at=timezone.now())
    audit_record(actor=actor, subject_user=device.owner, action="device.key_rotate", target=device, via="cli")
    return keys


# --- Claiming -------------------------------------------------------------------------------------------
def _unique_name_for(owner, wanted: str) -> str:
    """``wanted`` if the owner has no device by that name, else a friendly name that is free."""
    taken = set(Device.objects.filter(owner=owner).values_list("name", flat=True))
    taken_lower = {name.lower() for name in taken}
    if wanted and wanted.lower() not in taken_lower and naming.name_error(wanted) is None:
        return wanted
    while True:
        candidate = naming.friendly_name()
        if candidate not in taken_lower:
            return candidate


@transaction.atomic
def device_claim(*, user, device_id: str, ip_address: str | None = None, via: str = "api") -> Device:
    device = Device.objects.select_for_update().filter(id=device_id.lower()).first()
    if device is None:
        raise NotFound(f"No device with ID {device_id} is provisioned on this cloud.", field="id")
    if device.owner_id == user.pk:
        return device
    if device.owner_id is not None:
        raise PermissionDenied(BELONGS_TO_SOMEONE_ELSE)
    device.owner = user
    device.name = _unique_name_for(user, device.name)
    device.save(update_fields=["owner", "name", "updated_at"])
    calls.device_owner_changed_notify(device=device, owner_id=user.pk)
    audit_record(actor=user, action="device.claim", target=device, ip_address=ip_address, via=via)
    return device


@transaction.atomic
def device_unclaim(*, user, device: Device, ip_address: str | None = None, via: str = "api") -> None:
    if device.owner_id != user.pk:
        raise NotFound("Device not found.")
    Device.objects.filter(pk=device.pk).update(owner=None, notes="", updated_at=timezone.now())
    calls.device_owner_changed_notify(device=device, owner_id=None)
    audit_record(actor=user, action="device.unclaim", target=device, ip_address=ip_address, via=via)


def claim_code_create(*, user, iccid: str = "") -> ClaimCode:
    return ClaimCode.objects.create(
        code=secrets.token_urlsafe(47)[:63],
        user=user,
        iccid=iccid[:22],
        expires_at=timezone.now() + timedelta(seconds=settings.QUANTA_CLAIM_CODE_TTL_SECONDS),
    )


def _claim_with_code(device: Device, code: str) -> None:
    """Claim an unowned device for the user behind a valid, unused claim code (during the handshake)."""
    claim = (
        ClaimCode.objects.select_for_update()
        .filter(code=code, used_at__isnull=True, expires_at__gt=timezone.now())
        .select_related("user")
        .first()
    )
    if claim is None or device.owner_id is not None:
        return
    device.owner = claim.user
    device.name = _unique_name_for(claim.user, device.name)
    claim.used_at = timezone.now()
    claim.device = device
    claim.save(update_fields=["used_at", "device"])
    audit_record(
        actor=claim.user, action="device.claim", target=device, metadata={"claim_code": True}, via="device"
    )


# --- Editing ---------------------------------------------------------------------------------------------
def device_rename(*, user, device: Device, name: str, via: str = "api") -> Device:
    name = name.strip()
    if error := naming.name_error(name):
        raise ApplicationError(error, field="name")
    if Device.objects.filter(owner=user, name__iexact=name).exclude(pk=device.pk).exists():
        raise Conflict(f"You already have a device named {name!r}.", field="name")
    old = device.name
    device.name = name
    try:
        with transaction.atomic():
            device.save(update_fields=["name", "updated_at"])
    except IntegrityError:
        raise Conflict(f"You already have a device named {name!r}.", field="name") from None
    audit_record(
        actor=user, action="device.rename", target=device, metadata={"from": old, "to": name}, via=via
    )
    calls.device_renamed_notify(device=device)
    return device


def device_notes_update(*, user, device: Device, notes: str, via: str = "api") -> Device:
    if len(notes) > 1000:
        raise ApplicationError(f"Notes are at most 1000 characters; these have {len(notes)}.", field="notes")
    device.notes = notes
    device.save(update_fields=["notes", "updated_at"])
    audit_record(actor=user, action="device.notes", target=device, via=via)
    return device


def device_firmware_lock_set(*, device: Device, version: int | None) -> Device:
    """Lock the device to a product firmware version, or unlock it with None (firmware checks the
    version exists and records the audit entry)."""
    device.desired_firmware_version = version
    device.save(update_fields=["desired_firmware_version", "updated_at"])
    return device


# --- What the gateway records ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Handshake:
    device_id: str
    session_id: str
    gateway_process: str
    gateway_channel: str
    ip_address: str | None
    platform_id: int | None
    firmware_product_id: int | None
    firmware_version: int | None
    system_version: str
    functions: list[str]
    variables: dict[str, str]
    iccid: str
    claim_code: str


@dataclass(frozen=True)
class HandshakeResult:
    device: Device
    replaced_channel: str  # a previous session's channel, to be told to close
    event_data_limit: int | None = None  # the product's, when it raised Particle's 1024 bytes
    refused: str | None = None  # why the device may not connect (its product denied it)


@transaction.atomic
def device_handshake_record(handshake: Handshake) -> HandshakeResult:
    device = Device.objects.select_for_update().get(id=handshake.device_id)
    replaced = device.gateway_channel if device.online and device.gateway_channel else ""
    # Refused first: a device its product turned away changes nothing (not even a claim code).
    device.firmware_product_id = handshake.firmware_product_id
    if refused := product_join_at_handshake(device):
        return HandshakeResult(device=device, replaced_channel="", refused=refused)
    if handshake.claim_code:
        _claim_with_code(device, handshake.claim_code)
    now = timezone.now()
    device.online = True
    device.last_handshake_at = now
    device.last_heard = now
    device.last_ip_address = handshake.ip_address
    device.firmware_version = handshake.firmware_version
    device.system_firmware_version = handshake.system_version
    device.functions = handshake.functions
    device.variables = handshake.variables
    if handshake.iccid and not device.iccid:
        device.iccid = handshake.iccid
    device.session_id = handshake.session_id
    device.gateway_process = handshake.gateway_process
    device.gateway_channel = handshake.gateway_channel
    device.save()
    data_limit = (
        Product.objects.filter(pk=device.product_id).values_list("event_data_limit", flat=True).first()
        if device.product_id is not None
        else None
    )
    return HandshakeResult(device=device, replaced_channel=replaced, event_data_limit=data_limit)


def device_sessions_end(*, session_ids: list[str]) -> list[str]:
    """Mark offline the devices whose current session is one of these (a device that has
    reconnected since keeps its new session). Returns the sessions that were current."""
    ended: list[str] = []
    for start in range(0, len(session_ids), 500):
        chunk = session_ids[start : start + 500]
        current = list(Device.objects.filter(session_id__in=chunk).values_list("session_id", flat=True))
        if current:
            Device.objects.filter(session_id__in=current).update(
                online=False, session_id="", gateway_process="", gateway_channel="", last_heard=timezone.now()
            )
            ended.extend(current)
    return ended


def device_sessions_held(*, process_id: str) -> dict[str, tuple[str, int | None, int | None, str]]:
    """The sessions the database says this gateway process holds:
    session -> (device, owner, product, device name)."""
    rows = Device.objects.filter(online=True, gateway_process=process_id).values_list(
        "session_id", "id", "owner_id", "product_id", "name"
    )
    return {
        session_id: (device_id, owner_id, product_id, name)
        for session_id, device_id, owner_id, product_id, name in rows
    }


def devices_last_heard_record(*, device_ids: Iterable[str], at: datetime) -> int:
    ids = list(device_ids)
    return Device.objects.filter(id__in=ids).update(last_heard=at) if ids else 0


def data_usage_add(*, usage: dict[str, tuple[int, int]], day: date) -> None:
    """Add bytes in/out per device for ``day`` in one statement (an upsert that increments)."""
    if not usage:
        return
    table = DataUsage._meta.db_table
    existing = set(Device.objects.filter(id__in=list(usage)).values_list("id", flat=True))
    rows = [
        (device_id, day, bytes_in, bytes_out)
        for device_id, (bytes_in, bytes_out) in usage.items()
        if device_id in existing
    ]
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} (device_id, day, bytes_in, bytes_out) VALUES (%s, %s, %s, %s) "  # noqa: S608
            f"ON CONFLICT (device_id, day) DO UPDATE SET bytes_in = {table}.bytes_in + excluded.bytes_in, "
            f"bytes_out = {table}.bytes_out + excluded.bytes_out",
            rows,
        )


def gateway_process_heartbeat(*, process_id: str, hostname: str, pid: int) -> None:
    GatewayProcess.objects.update_or_create(
        id=process_id, defaults={"hostname": hostname, "pid": pid, "heartbeat_at": timezone.now()}
    )


def devices_sweep_stale(*, now: datetime | None = None) -> list[Device]:
    """Devices held by gateway processes that stopped refreshing their row (crashed) go offline.

    Returns them so the caller can publish ``spark/status`` offline."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=2 * settings.QUANTA_DEVICE_HEARTBEAT_SECONDS)
    # A subquery, not a list read beforehand: the UPDATE must see a process that started (and
    # took over a device) a moment ago as live.
    live = GatewayProcess.objects.filter(heartbeat_at__gte=cutoff).values("id")
    stale = list(
        Device.objects.filter(online=True)
        .exclude(gateway_process__in=live)
        .only("id", "owner_id", "product_id")
    )
    if stale:
        ids = [device.pk for device in stale]
        Device.objects.filter(pk__in=ids).exclude(gateway_process__in=live).update(
            online=False, session_id="", gateway_process="", gateway_channel=""
        )
        # A device that reconnected in the meantime was left alone: report only the swept ones.
        still_online = set(Device.objects.filter(pk__in=ids, online=True).values_list("id", flat=True))
        stale = [device for device in stale if device.pk not in still_online]
    GatewayProcess.objects.filter(heartbeat_at__lt=cutoff).delete()
    return stale


# --- Online history (the product overview's chart) ------------------------------------------------------
def online_sample_period_start(at: datetime) -> datetime:
    """The start of the sampling period ``at`` falls in: every sample of one period has the same
    ``taken_at``, so a second run in that period is a conflict and changes nothing."""
    seconds = settings.QUANTA_ONLINE_SAMPLE_SECONDS
    return datetime.fromtimestamp(int(at.timestamp()) // seconds * seconds, tz=UTC)


def online_samples_take(*, now: datetime | None = None) -> int:
    """Record how many devices of every product are online: one grouped aggregate and one bulk
    insert, whatever the fleet's size. Products without devices get a zero sample, so a gap in the
    chart only ever means nothing was sampling. Prunes the samples past retention too.

    Returns the number of products sampled."""
    now = now or timezone.now()
    taken_at = online_sample_period_start(now)
    counts = (
        Product.objects.order_by()
        .annotate(total=Count("devices"), online=Count("devices", filter=Q(devices__online=True)))
        .values_list("id", "online", "total")
    )
    samples = [
        DeviceOnlineSample(product_id=product_id, taken_at=taken_at, online=online, total=total)
        for product_id, online, total in counts
    ]
    DeviceOnlineSample.objects.bulk_create(samples, ignore_conflicts=True)
    retention = timedelta(days=settings.QUANTA_ONLINE_SAMPLE_RETENTION_DAYS)
    DeviceOnlineSample.objects.filter(taken_at__lt=now - retention).delete()
    return len(samples)
