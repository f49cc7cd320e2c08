"""Device services: provisioning, keys, claiming, names, what the gateway records, metering and
the stale-session sweep."""

from __future__ import annotations

import base64
import re
import threading
from datetime import date, timedelta
from unittest import mock

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from console.errors import ApplicationError, Conflict, NotFound, PermissionDenied
from console.models import AuditEntry
from console.platforms import PLATFORMS
from devices import services
from devices.keys import sign, signature_valid
from devices.models import ClaimCode, DataUsage, Device, GatewayProcess
from products.services import product_create

pytestmark = pytest.mark.django_db

BORON = PLATFORMS[13]
ARGON = PLATFORMS[12]


def luhn_valid(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def verifies(public_key: bytes, private_key: bytes) -> bool:
    message = b"a nonce from the gateway, 32 by."
    return signature_valid(public_key, message, base64.b64encode(sign(private_key, message)).decode())


def handshake(device: Device, **fields) -> services.HandshakeResult:
    values = {
        "device_id": device.id,
        "session_id": "s" * 32,
        "gateway_process": "host:1:abc",
        "gateway_channel": "specific.one",
        "ip_address": "192.0.2.1",
        "platform_id": device.platform_id,
        "firmware_product_id": None,
        "firmware_version": None,
        "system_version": "",
        "functions": [],
        "variables": {},
        "iccid": "",
        "claim_code": "",
        **fields,
    }
    return services.device_handshake_record(services.Handshake(**values))


# --- Provisioning -----------------------------------------------------------------------------------------
def test_provisioning_creates_devices_with_unique_ids_serials_and_only_public_keys(user):
    product = product_create(user=user, name="Greenhouse", platform_id=BORON.id)
    provisioned = services.devices_provision(platform=BORON, count=25, owner=user, product=product)
    assert len(provisioned) == 25
    rows = {d.id: d for d in Device.objects.all()}
    assert set(rows) == {p.device.id for p in provisioned}
    assert all(re.fullmatch(r"[0-9a-f]{24}", device_id) for device_id in rows)
    serials = [d.serial_number for d in rows.values()]
    assert len(set(serials)) == 25
    assert all(re.fullmatch(r"B40\d{10}", serial) for serial in serials)
    for entry in provisioned:
        stored = rows[entry.device.id]
        assert (stored.owner, stored.product_id, stored.platform_id) == (user, product.id, BORON.id)
        assert bytes(stored.public_key) == entry.keys.public_key
        assert len(entry.keys.private_key) == 32
        assert entry.keys.private_key not in bytes(stored.public_key)
        assert verifies(bytes(stored.public_key), entry.keys.private_key)
        assert naming_valid(stored.name)
        key_file = entry.key_file_entry()
        assert key_file["device_id"] == stored.id
        assert base64.b64decode(key_file["private_key"]) == entry.keys.private_key


def naming_valid(name: str) -> bool:
    from devices.naming import name_error

    return name_error(name) is None


def test_another_devices_key_does_not_verify(db):
    first, second = services.devices_provision(platform=BORON, count=2)
    assert not verifies(bytes(first.device.public_key), second.keys.private_key)


def test_cellular_devices_get_luhn_valid_iccid_and_imei(db):
    for entry in services.devices_provision(platform=BORON, count=20):
        device = entry.device
        assert re.fullmatch(r"8901\d{16}", device.iccid), device.iccid
        assert re.fullmatch(r"35\d{13}", device.imei), device.imei
        assert luhn_valid(device.iccid), device.iccid
        assert luhn_valid(device.imei), device.imei
        assert entry.key_file_entry()["iccid"] == device.iccid
    for entry in services.devices_provision(platform=ARGON, count=3):
        assert (entry.device.iccid, entry.device.imei) == ("", "")
        assert entry.key_file_entry()["iccid"] is None


def test_luhn_completion_matches_known_numbers():
    assert services._luhn_complete("7992739871") == "79927398713"
    assert services._luhn_complete("35145120840121") == "351451208401216"


@pytest.mark.parametrize("count", [0, -1, 100_001])
def test_provisioning_refuses_a_count_out_of_range(db, count):
    with pytest.raises(ApplicationError, match="between 1 and 100000") as refused:
        services.devices_provision(platform=BORON, count=count)
    assert refused.value.field == "count"
    assert not Device.objects.exists()


def test_key_rotation_retires_the_old_key(user):
    [entry] = services.devices_provision(platform=BORON, count=1, owner=user)
    keys = services.device_key_rotate(device=entry.device, actor=user)
    device = Device.objects.get(pk=entry.device.pk)
    assert bytes(device.public_key) == keys.public_key
    assert not verifies(bytes(device.public_key), entry.keys.private_key)
    assert verifies(bytes(device.public_key), keys.private_key)
    assert device.key_rotated_at is not None
    assert AuditEntry.objects.filter(action="device.key_rotate", target_id=device.id).count() == 1


# --- Claiming ----------------------------------------------------------------------------------------------
def test_claim_an_unowned_device(user):
    [entry] = services.devices_provision(platform=BORON, count=1)
    device = services.device_claim(user=user, device_id=entry.device.id.upper(), ip_address="192.0.2.5")
    assert device.owner == user
    assert Device.objects.get(pk=device.pk).owner == user
    audit = AuditEntry.objects.get(action="device.claim")
    assert (audit.actor, audit.target_id, audit.ip_address) == (user, device.id, "192.0.2.5")


def test_claiming_someone_elses_device_is_refused(user, other_user):
    [entry] = services.devices_provision(platform=BORON, count=1, owner=other_user)
    with pytest.raises(PermissionDenied, match="belongs to someone else"):
        services.device_claim(user=user, device_id=entry.device.id)
    assert Device.objects.get(pk=entry.device.pk).owner == other_user


def test_claiming_your_own_device_again_changes_nothing(user):
    [entry] = services.devices_provision(platform=BORON, count=1, owner=user)
    assert services.device_claim(user=user, device_id=entry.device.id).owner == user
    assert not AuditEntry.objects.exists()


def test_claiming_an_unknown_device(user):
    with pytest.raises(NotFound, match="No device with ID"):
        services.device_claim(user=user, device_id="0" * 24)


def test_a_claimed_device_whose_name_you_use_gets_another(user):
    [mine] = services.devices_provision(platform=BORON, count=1, owner=user)
    [new] = services.devices_provision(platform=BORON, count=1)
    Device.objects.filter(pk=mine.device.pk).update(name="Garage")
    Device.objects.filter(pk=new.device.pk).update(name="garage")
    claimed = services.device_claim(user=user, device_id=new.device.id)
    assert claimed.name.lower() != "garage"
    assert naming_valid(claimed.name)


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_of_one_device_have_one_winner(user, other_user):
    [entry] = services.devices_provision(platform=BORON, count=1)
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def claim(claimant) -> None:
        try:
            barrier.wait(timeout=5)
            outcomes[claimant.email] = services.device_claim(
                user=claimant, device_id=entry.device.id
            ).owner_id
        except Exception as error:  # noqa: BLE001 (the outcome is what the test checks)
            outcomes[claimant.email] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(claimant,)) for claimant in (user, other_user)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    winners = [email for email, outcome in outcomes.items() if isinstance(outcome, int)]
    losers = [outcome for outcome in outcomes.values() if not isinstance(outcome, int)]
    assert len(winners) == 1, outcomes
    assert len(losers) == 1
    assert isinstance(losers[0], PermissionDenied), losers
    owner = Device.objects.select_related("owner").get(pk=entry.device.pk).owner
    assert owner.email == winners[0]
    assert AuditEntry.objects.filter(action="device.claim").count() == 1


def test_unclaim(user, other_user):
    [entry] = services.devices_provision(platform=BORON, count=1, owner=user)
    Device.objects.filter(pk=entry.device.pk).update(notes="private")
    with pytest.raises(NotFound):
        services.device_unclaim(user=other_user, device=entry.device)
    assert Device.objects.get(pk=entry.device.pk).owner == user
    services.device_unclaim(user=user, device=entry.device)
    device = Device.objects.get(pk=entry.device.pk)
    assert (device.owner, device.notes) == (None, "")


# --- Names --------------------------------------------------------------------------------------------------
def test_names_are_unique_per_owner_ignoring_case_in_the_database(user, other_user):
    a, b, c, d, e = (p.device for p in services.devices_provision(platform=BORON, count=5))
    Device.objects.filter(pk=a.pk).update(owner=user, name="Garage")
    Device.objects.filter(pk=b.pk).update(owner=other_user, name="garage")  # another owner: fine
    Device.objects.filter(pk__in=[d.pk, e.pk]).update(name="garage")  # unowned: fine
    with pytest.raises(IntegrityError), transaction.atomic():
        Device.objects.filter(pk=c.pk).update(owner=user, name="GARAGE")
    assert Device.objects.get(pk=c.pk).owner is None


def test_rename_checks_then_relies_on_the_constraint(user):
    first, second = (p.device for p in services.devices_provision(platform=BORON, count=2, owner=user))
    services.device_rename(user=user, device=first, name="Garage")
    with pytest.raises(Conflict, match="You already have a device named 'garage'"):
        services.device_rename(user=user, device=second, name="garage")
    # A concurrent rename can pass the check; the database constraint still refuses it.
    with (
        mock.patch("django.db.models.query.QuerySet.exists", return_value=False),
        pytest.raises(Conflict, match="You already have a device named 'GARAGE'") as refused,
    ):
        services.device_rename(user=user, device=second, name="GARAGE")
    assert refused.value.field == "name"
    assert Device.objects.get(pk=second.pk).name != "GARAGE"
    # Renaming to its own name in another case is not a conflict.
    assert services.device_rename(user=user, device=first, name="  GARAGE ").name == "GARAGE"


def test_rename_validates(user):
    [entry] = services.devices_provision(platform=BORON, count=1, owner=user)
    with pytest.raises(ApplicationError, match="cannot look like a device ID"):
        services.device_rename(user=user, device=entry.device, name="ABCDEF0123456789abcdef01")


# --- What the gateway records ---------------------------------------------------------------------------------
def test_handshake_records_the_session_and_reports_the_replaced_one(user):
    [entry] = services.devices_provision(platform=BORON, count=1, owner=user)
    first = handshake(entry.device, functions=["led"], variables={"t": "int"}, firmware_version=3)
    assert first.replaced_channel == ""
    device = Device.objects.get(pk=entry.device.pk)
    assert (device.online, device.functions, device.variables, device.firmware_version) == (
        True,
        ["led"],
        {"t": "int"},
        3,
    )
    second = handshake(entry.device, session_id="t" * 32, gateway_channel="specific.two")
    assert second.replaced_channel == "specific.one"

    # Only the current session's end takes the device offline.
    assert services.device_sessions_end(session_ids=["s" * 32]) == []
    assert Device.objects.get(pk=entry.device.pk).online is True
    assert services.device_sessions_end(session_ids=["t" * 32]) == ["t" * 32]
    device = Device.objects.get(pk=entry.device.pk)
    assert (device.online, device.session_id, device.gateway_channel) == (False, "", "")


def claim_code(user, *, expires_in: timedelta = timedelta(hours=1), used: bool = False) -> ClaimCode:
    code = services.claim_code_create(user=user)
    ClaimCode.objects.filter(pk=code.pk).update(
        expires_at=timezone.now() + expires_in, used_at=timezone.now() if used else None
    )
    return code


def test_a_valid_claim_code_in_the_handshake_claims_the_device(user):
    [entry] = services.devices_provision(platform=BORON, count=1)
    code = claim_code(user)
    result = handshake(entry.device, claim_code=code.code)
    assert result.device.owner_id == user.pk
    assert Device.objects.get(pk=entry.device.pk).owner == user
    code.refresh_from_db()
    assert code.used_at is not None
    assert code.device_id == entry.device.id
    audit = AuditEntry.objects.get(action="device.claim")
    assert (audit.actor, audit.via, audit.metadata) == (user, "device", {"claim_code": True})


@pytest.mark.parametrize("state", ["expired", "used", "unknown"])
def test_an_expired_used_or_unknown_claim_code_claims_nothing(user, state):
    [entry] = services.devices_provision(platform=BORON, count=1)
    code = (
        claim_code(user, expires_in=timedelta(seconds=-1))
        if state == "expired"
        else claim_code(user, used=True)
        if state == "used"
        else None
    )
    result = handshake(entry.device, claim_code=code.code if code else "no-such-code")
    assert result.device.owner_id is None
    assert Device.objects.get(pk=entry.device.pk).owner is None
    assert Device.objects.get(pk=entry.device.pk).online is True  # the handshake itself succeeds
    assert not AuditEntry.objects.filter(action="device.claim").exists()


def test_a_claim_code_does_not_take_someone_elses_device(user, other_user):
    [entry] = services.devices_provision(platform=BORON, count=1, owner=other_user)
    code = claim_code(user)
    handshake(entry.device, claim_code=code.code)
    assert Device.objects.get(pk=entry.device.pk).owner == other_user
    code.refresh_from_db()
    assert code.used_at is None  # still good for the device it was meant for


def test_last_heard_is_one_update_and_nothing_for_no_devices(user, django_assert_num_queries):
    devices = [p.device for p in services.devices_provision(platform=BORON, count=3, owner=user)]
    at = timezone.now()
    with django_assert_num_queries(1):
        assert services.devices_last_heard_record(device_ids={d.id for d in devices[:2]}, at=at) == 2
    with django_assert_num_queries(0):
        assert services.devices_last_heard_record(device_ids=set(), at=at) == 0
    assert [d.last_heard for d in Device.objects.order_by("id")].count(at) == 2


# --- Metering -------------------------------------------------------------------------------------------------
def test_data_usage_add_upserts_and_increments(user, django_assert_num_queries):
    first, second = (p.device for p in services.devices_provision(platform=BORON, count=2, owner=user))
    today, yesterday = date(2026, 3, 2), date(2026, 3, 1)
    services.data_usage_add(usage={first.id: (100, 10), second.id: (5, 0)}, day=today)
    services.data_usage_add(usage={first.id: (1, 2), "0" * 24: (9, 9)}, day=today)  # unknown: ignored
    services.data_usage_add(usage={first.id: (7, 7)}, day=yesterday)
    rows = {(u.device_id, u.day): (u.bytes_in, u.bytes_out) for u in DataUsage.objects.all()}
    assert rows == {
        (first.id, today): (101, 12),
        (second.id, today): (5, 0),
        (first.id, yesterday): (7, 7),
    }
    with django_assert_num_queries(0):
        services.data_usage_add(usage={}, day=today)


# --- Gateway processes and the stale sweep -----------------------------------------------------------------
def test_sweep_takes_devices_of_stale_processes_offline(user, settings):
    settings.QUANTA_DEVICE_HEARTBEAT_SECONDS = 30
    now = timezone.now()
    GatewayProcess.objects.create(id="dead", hostname="h", pid=1, heartbeat_at=now - timedelta(seconds=61))
    GatewayProcess.objects.create(id="slow", hostname="h", pid=2, heartbeat_at=now - timedelta(seconds=59))
    dead, slow, orphan, offline = (
        p.device for p in services.devices_provision(platform=BORON, count=4, owner=user)
    )
    Device.objects.filter(pk=dead.pk).update(online=True, gateway_process="dead", session_id="a")
    Device.objects.filter(pk=slow.pk).update(online=True, gateway_process="slow", session_id="b")
    Device.objects.filter(pk=orphan.pk).update(online=True, gateway_process="never-registered")

    swept = services.devices_sweep_stale(now=now)
    assert {d.id for d in swept} == {dead.id, orphan.id}
    assert {d.id: d.owner_id for d in swept} == {dead.id: user.pk, orphan.id: user.pk}
    online = dict(Device.objects.values_list("id", "online"))
    assert online == {dead.id: False, slow.id: True, orphan.id: False, offline.id: False}
    assert Device.objects.get(pk=dead.pk).session_id == ""
    assert list(GatewayProcess.objects.values_list("id", flat=True)) == ["slow"]
    assert services.devices_sweep_stale(now=now) == []

    # With no live process at all, every device still marked online is stale.
    assert [d.id for d in services.devices_sweep_stale(now=now + timedelta(seconds=2))] == [slow.id]
    assert not Device.objects.filter(online=True).exists()


def test_claiming_or_unclaiming_a_connected_device_tells_its_connection(
    user, django_capture_on_commit_callbacks
):
    connected, offline = (p.device for p in services.devices_provision(platform=BORON, count=2))
    Device.objects.filter(pk=connected.pk).update(online=True, gateway_channel="specific.x")
    with (
        mock.patch("devices.calls.get_channel_layer") as layer,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        layer.return_value.send = mock.AsyncMock()
        services.device_claim(user=user, device_id=offline.id)
        assert callbacks == []  # not connected: nobody to tell
        device = services.device_claim(user=user, device_id=connected.id)
        services.device_unclaim(user=user, device=device)
    assert [c.args for c in layer.return_value.send.await_args_list] == [
        ("specific.x", {"type": "device.owner", "owner_id": user.pk}),
        ("specific.x", {"type": "device.owner", "owner_id": None}),
    ]
