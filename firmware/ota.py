"""Firmware updates over the air: deciding which devices to update, offering the update to their
gateway connection, and recording what happens (devices/ota.py drives the wire protocol).

A device's update is one ``FirmwareUpdate`` row across its attempts. It is offered after a
handshake (or at once for Flash now and intelligent releases), transferred, then counted a success
only when the device comes back reporting the new version. A failed attempt is retried with a
doubling delay up to ``QUANTA_OTA_MAX_ATTEMPTS``, then left failed with its reason.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterable
from datetime import timedelta
from functools import lru_cache

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from console.errors import ApplicationError
from console.platforms import platform_name
from console.services import audit_record
from devices.models import Device
from devices.ota import HandshakeSeen, OtaOffer
from events.services import event_build, event_publish
from firmware.binary import NO_PRODUCT, BinaryError, parse_module
from firmware.models import (
    OPEN_UPDATE_STATES,
    FirmwareBinary,
    FirmwareUpdate,
    ProductFirmware,
    UpdateState,
)
from firmware.targeting import devices_due_an_update

logger = logging.getLogger(__name__)

FLASH_STATUS_EVENT = "spark/flash/status"


def _new_ota_id() -> str:
    return secrets.token_hex(16)


def _flash_status(update: FirmwareUpdate, status: str, *, device: Device | None = None) -> None:
    """Particle's ``spark/flash/status`` event for the device: started, success or failed."""
    device = device or Device.objects.only("id", "owner_id", "product_id", "name").get(pk=update.device_id)
    data = status if status != "failed" or not update.error else f"failed: {update.error}"[:255]
    event_publish(
        event_build(
            name=FLASH_STATUS_EVENT,
            data=data,
            coreid=device.id,
            owner_id=device.owner_id,
            product_id=device.product_id,
            device_name=device.name,
            reserved_name_allowed=True,
        )
    )


def _offer(update: FirmwareUpdate, channel: str) -> None:
    """Tell the gateway connection holding the device to transfer ``update``."""
    offer = OtaOffer(
        update_id=update.pk,
        ota_id=update.ota_id,
        version=update.version,
        size=update.size,
        sha256=update.sha256,
    )
    async_to_sync(get_channel_layer().send)(channel, offer.as_message())


# --- deciding ------------------------------------------------------------------------------------------
def updates_start(device_ids: Iterable[str]) -> int:
    """Offer an update to each of these devices that is online, in a product, and whose target
    (the precedence rules) is a version it does not run. Returns how many offers were made. A batch
    costs a fixed number of queries, whatever its size."""
    ids = list(dict.fromkeys(device_ids))
    if not ids:
        return 0
    due = list(
        devices_due_an_update(
            Device.objects.filter(pk__in=ids, online=True, quarantined=False, product__isnull=False)
        ).values("pk", "product_id", "target_version", "firmware_version", "gateway_channel")
    )
    if not due:
        return 0
    open_updates = {
        update.device_id: update
        for update in FirmwareUpdate.objects.filter(
            device_id__in=[row["pk"] for row in due], state__in=OPEN_UPDATE_STATES
        )
    }
    gave_up = set(
        FirmwareUpdate.objects.filter(
            device_id__in=[row["pk"] for row in due], state=UpdateState.FAILED
        ).values_list("device_id", "version")
    )
    firmware = {
        (f.product_id, f.version): f
        for f in ProductFirmware.objects.filter(
            product_id__in={row["product_id"] for row in due},
            version__in={row["target_version"] for row in due},
        ).only("id", "product_id", "version", "size", "sha256")
    }
    now = timezone.now()
    offers: list[tuple[FirmwareUpdate, str]] = []
    for row in due:
        device_id, target, channel = row["pk"], row["target_version"], row["gateway_channel"]
        update = open_updates.get(device_id)
        if update is not None and update.firmware_id is None:
            continue  # a binary flashed by hand goes first; the release rules apply once it is done
        if update is not None and update.version == target:
            if update.state == UpdateState.TRANSFERRED:
                continue  # it is restarting into the new version; its handshake decides
            if update.state == UpdateState.RETRYING:
                if update.retry_at and update.retry_at > now:
                    continue
                update.ota_id = _new_ota_id()  # a new attempt starts from the beginning
                update.bytes_acked = 0
                update.state = UpdateState.PENDING
                update.save(update_fields=["ota_id", "bytes_acked", "state", "updated_at"])
            offers.append((update, channel))  # pending or interrupted: offer again (it resumes)
            continue
        if update is not None:
            _close(update, UpdateState.CANCELLED, f"its target changed to version {target}")
        if (device_id, target) in gave_up:
            continue  # every attempt at this version failed; a new target or a retry by hand restarts it
        chosen = firmware.get((row["product_id"], target))
        if chosen is None:
            continue  # locked to a version deleted meanwhile
        try:
            with transaction.atomic():
                update = FirmwareUpdate.objects.create(
                    device_id=device_id,
                    product_id=row["product_id"],
                    firmware=chosen,
                    version=target,
                    size=chosen.size,
                    sha256=chosen.sha256,
                    ota_id=_new_ota_id(),
                    from_version=row["firmware_version"],
                )
        except IntegrityError:
            continue  # another worker opened one for this device at the same moment
        offers.append((update, channel))
    for update, channel in offers:
        if channel:
            try:
                _offer(update, channel)
            except ChannelFull:
                # That gateway is behind on its messages: the offer is made again at the device's
                # next handshake; the rest of the batch still goes.
                logger.warning("Channel full: update %s is offered at the device's next handshake", update.pk)
    return len(offers)


def updates_start_for_product(*, product) -> int:
    """Offer updates to every online device of the product whose target changed (intelligent
    releases), in batches."""
    ids = list(
        Device.objects.filter(product=product, online=True, quarantined=False).values_list("pk", flat=True)
    )
    started = 0
    for start in range(0, len(ids), 1000):
        started += updates_start(ids[start : start + 1000])
    return started


def _close(update: FirmwareUpdate, state: UpdateState, error: str = "") -> None:
    update.state = state
    update.error = error[:300]
    update.finished_at = timezone.now()
    update.save(update_fields=["state", "error", "finished_at", "updated_at"])


def _attempt_failed(update: FirmwareUpdate, reason: str) -> None:
    update.attempts += 1
    update.error = reason[:300]
    # A binary flashed by hand is not retried: the developer who sent it sees why and decides.
    if update.firmware_id is None or update.attempts >= settings.QUANTA_OTA_MAX_ATTEMPTS:
        update.state = UpdateState.FAILED
        update.finished_at = timezone.now()
        update.retry_at = None
    else:
        update.state = UpdateState.RETRYING
        delay = settings.QUANTA_OTA_RETRY_SECONDS * 2 ** (update.attempts - 1)
        update.retry_at = timezone.now() + timedelta(seconds=delay)
    update.save(update_fields=["attempts", "error", "state", "finished_at", "retry_at", "updated_at"])
    _flash_status(update, "failed")


# --- flashing by hand (particle flash) -------------------------------------------------------------------
def device_flash(*, actor, device: Device, data: bytes, via: str = "api") -> dict:
    """Send a binary to one device now (or at its next connection), outside the release rules: what
    ``particle flash`` does, for development devices. It replaces the device's open update."""
    try:
        info = parse_module(data)
    except BinaryError as error:
        raise ApplicationError(str(error), field="file") from None
    if not info.is_user_part:
        raise ApplicationError(
            f"This is a {info.module_function_name} module; only applications (user parts) can be flashed here.",
            field="file",
        )
    if info.platform_id != device.platform_id:
        raise ApplicationError(
            f"The binary is built for {platform_name(info.platform_id)} (platform {info.platform_id}); this "
            f"device is a {platform_name(device.platform_id)} (platform {device.platform_id}).",
            field="file",
        )
    version = info.product_version if info.product_version not in (None, NO_PRODUCT) else None
    with transaction.atomic():
        for open_update in FirmwareUpdate.objects.select_for_update().filter(
            device=device, state__in=OPEN_UPDATE_STATES
        ):
            _close(open_update, UpdateState.CANCELLED, "replaced by a binary flashed by hand")
        update = FirmwareUpdate.objects.create(
            device=device,
            product_id=device.product_id,
            binary=bytes(data),
            version=version,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            ota_id=_new_ota_id(),
            from_version=device.firmware_version,
            requested_by=actor,
        )
    audit_record(
        actor=actor,
        action="firmware.flash",
        target=device,
        metadata={"size": len(data), "sha256": update.sha256, "version": version},
        via=via,
    )
    if device.online and device.gateway_channel:
        _offer(update, device.gateway_channel)
        return {"id": device.id, "status": "Update started"}
    return {"id": device.id, "status": "Update queued: the device is offline and updates when it connects"}


# --- what handshakes say --------------------------------------------------------------------------------
def handshakes_observed(handshakes: list[HandshakeSeen]) -> None:
    """The devices hook: complete the updates these handshakes decide, note which versions now run
    on a device, then offer what is due (on the ``ota`` queue)."""
    from firmware.tasks import start_updates

    reported = {h.device_id: h.firmware_version for h in handshakes}
    by_hand: list[FirmwareUpdate] = []
    for update in FirmwareUpdate.objects.filter(device_id__in=list(reported), state__in=OPEN_UPDATE_STATES):
        running = reported[update.device_id]
        # A binary flashed by hand that names no version counts as running once the device is back.
        came_back_on_it = (update.version is not None and running == update.version) or (
            update.version is None and update.state == UpdateState.TRANSFERRED
        )
        if update.firmware_id is None and not came_back_on_it and update.state != UpdateState.TRANSFERRED:
            by_hand.append(update)  # offered before the device went away: offer it again
            continue
        if came_back_on_it:
            update.state = UpdateState.SUCCESS
            update.finished_at = timezone.now()
            update.bytes_acked = update.size
            update.error = ""
            update.save(update_fields=["state", "finished_at", "bytes_acked", "error", "updated_at"])
            _flash_status(update, "success")
        elif update.state == UpdateState.TRANSFERRED:
            shown = f"version {running}" if running is not None else "no product version"
            _attempt_failed(
                update, f"the device came back running {shown} instead of version {update.version}"
            )
    _note_running_versions(handshakes)
    if by_hand:
        channels = dict(
            Device.objects.filter(pk__in=[u.device_id for u in by_hand], online=True).values_list(
                "pk", "gateway_channel"
            )
        )
        for update in by_hand:
            if channels.get(update.device_id):
                _offer(update, channels[update.device_id])
    ids = [h.device_id for h in handshakes if h.product_id is not None]
    if ids:
        start_updates.delay(ids)


def _note_running_versions(handshakes: list[HandshakeSeen]) -> None:
    """Versions reported by a product's device may be released: remember the first time."""
    pairs = {(h.product_id, h.firmware_version) for h in handshakes if h.product_id and h.firmware_version}
    if not pairs:
        return
    condition = Q()
    for product_id, version in pairs:
        condition |= Q(product_id=product_id, version=version)
    ProductFirmware.objects.filter(condition, first_run_at__isnull=True).update(first_run_at=timezone.now())


# --- the sweep ------------------------------------------------------------------------------------------
def updates_sweep() -> None:
    """Fail updates whose device never came back, and offer the retries that are due."""
    now = timezone.now()
    late = now - timedelta(seconds=settings.QUANTA_OTA_RETURN_SECONDS)
    for update in FirmwareUpdate.objects.filter(state=UpdateState.TRANSFERRED, transferred_at__lt=late):
        minutes = settings.QUANTA_OTA_RETURN_SECONDS // 60
        _attempt_failed(update, f"the device did not come back within {minutes} minutes of taking the update")
    due = list(
        FirmwareUpdate.objects.filter(
            state=UpdateState.RETRYING, retry_at__lte=now, device__online=True
        ).values_list("device_id", flat=True)[:5000]
    )
    if due:
        updates_start(due)


# --- the gateway's backend (devices.ota.OtaBackend) -------------------------------------------------------
@lru_cache(maxsize=8)
def _product_binary(firmware_id: int, sha256: str) -> bytes:
    """The bytes of a version, shared by every transfer of it in this process (a fleet updating
    to one version reads it once). Keyed by the hash too, so a new upload is never served stale."""
    return bytes(FirmwareBinary.objects.values_list("data", flat=True).get(firmware_id=firmware_id))


class UpdateBackend:
    def _update(self, offer: OtaOffer) -> FirmwareUpdate | None:
        return FirmwareUpdate.objects.filter(pk=offer.update_id, ota_id=offer.ota_id).first()

    def binary(self, offer: OtaOffer) -> bytes:
        update = FirmwareUpdate.objects.only("firmware_id", "sha256", "binary").get(pk=offer.update_id)
        if update.firmware_id is not None:
            return _product_binary(update.firmware_id, update.sha256)
        return bytes(update.binary or b"")

    def started(self, offer: OtaOffer, offset: int) -> None:
        update = self._update(offer)
        if update is None or update.state not in (UpdateState.PENDING, UpdateState.TRANSFERRING):
            return
        first = update.state == UpdateState.PENDING and offset == 0
        update.state = UpdateState.TRANSFERRING
        update.bytes_acked = offset
        update.started_at = update.started_at or timezone.now()
        update.save(update_fields=["state", "bytes_acked", "started_at", "updated_at"])
        if first:
            _flash_status(update, "started")

    def progress(self, offer: OtaOffer, acked: int) -> None:
        FirmwareUpdate.objects.filter(
            pk=offer.update_id, ota_id=offer.ota_id, state=UpdateState.TRANSFERRING
        ).update(bytes_acked=acked, updated_at=timezone.now())

    def transferred(self, offer: OtaOffer) -> None:
        FirmwareUpdate.objects.filter(
            pk=offer.update_id, ota_id=offer.ota_id, state__in=OPEN_UPDATE_STATES
        ).update(
            state=UpdateState.TRANSFERRED,
            bytes_acked=offer.size,
            transferred_at=timezone.now(),
            updated_at=timezone.now(),
        )

    def failed(self, offer: OtaOffer, reason: str) -> None:
        update = self._update(offer)
        if update is not None and update.state in OPEN_UPDATE_STATES:
            _attempt_failed(update, reason)

    def interrupted(self, offer: OtaOffer, acked: int) -> None:
        FirmwareUpdate.objects.filter(
            pk=offer.update_id, ota_id=offer.ota_id, state=UpdateState.TRANSFERRING
        ).update(bytes_acked=acked, updated_at=timezone.now())
