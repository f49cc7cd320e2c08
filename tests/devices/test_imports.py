"""Importing devices into a product (devices.imports): reading ids, refusing bad files, Particle's
categories, one transaction, set-based queries, and removing (and denying) a device."""

from __future__ import annotations

import secrets

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from console.errors import ApplicationError, NotFound
from console.models import AuditEntry
from console.permissions import Role
from console.platforms import PLATFORMS
from devices import imports
from devices.imports import (
    ParsedIds,
    device_ids_from_file,
    device_ids_parse,
    device_remove_from_product,
    devices_import,
    product_device_get,
)
from devices.models import Device, ProductDenial
from devices.services import devices_provision
from products.models import Membership
from products.services import product_create
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

BORON = PLATFORMS[13]
ARGON = PLATFORMS[12]


def hex_id() -> str:
    return secrets.token_hex(12)


def provision(count: int = 1, *, platform=BORON, owner=None, product=None) -> list[Device]:
    return [p.device for p in devices_provision(platform=platform, count=count, owner=owner, product=product)]


def one(**kwargs) -> Device:
    return provision(1, **kwargs)[0]


def state() -> tuple:
    """Everything an import or a removal may change."""
    return (
        sorted(Device.objects.values_list("id", "product_id", "quarantined", "owner_id")),
        sorted(ProductDenial.objects.values_list("device_id", "product_id")),
        AuditEntry.objects.count(),
    )


@pytest.fixture
def product(user):
    return product_create(user=user, name="Greenhouse", platform_id=BORON.id)


@pytest.fixture
def teammate(product):
    from console.accounts.models import User

    someone = User.objects.create_user(email="hedy@example.com", password=PASSWORD)
    Membership.objects.create(product=product, user=someone, role=Role.VIEWER)
    return someone


# --- Reading ids --------------------------------------------------------------------------------------------
def test_parsing_trims_lowercases_skips_blank_lines_and_drops_repeats_in_first_occurrence_order():
    a, b, c = hex_id(), hex_id(), hex_id()
    parsed = device_ids_parse([f"  {a.upper()}  ", "", "   ", f"{b}\r", f"\t{a}", c, b.upper(), f"{c}\r\n"])
    assert parsed.ids == [a, b, c]
    assert parsed.malformed == []


def test_parsing_keeps_malformed_lines_as_written_once_each():
    a = hex_id()
    parsed = device_ids_parse(
        [" not-a-device ", a, "not-a-device", "NOT-A-DEVICE", a[:-1], a + "0", "g" * 24, "x" * 100]
    )
    assert parsed.ids == [a]
    # Trimmed, case kept, repeats dropped; too short, too long and non-hex are all malformed.
    assert parsed.malformed == ["not-a-device", "NOT-A-DEVICE", a[:-1], a + "0", "g" * 24, "x" * 64]


def test_a_file_with_crlf_a_bom_and_upper_case_reads_like_a_clean_one():
    a, b = hex_id(), hex_id()
    raw = b"\xef\xbb\xbf" + f"{a.upper()}\r\n\r\n  {b}  \r\n{a}\r\n".encode()
    assert device_ids_from_file(raw) == ParsedIds(ids=[a, b], malformed=[])
    assert device_ids_from_file(f"{a}\n{b}".encode()) == ParsedIds(
        ids=[a, b], malformed=[]
    )  # no final newline


def test_a_file_of_only_malformed_lines_is_read_and_they_come_back_invalid(user, product):
    parsed = device_ids_from_file(b"hello\nworld\nhello\n")
    assert parsed == ParsedIds(ids=[], malformed=["hello", "world"])
    assert devices_import(actor=user, product=product, parsed=parsed).invalid == ["hello", "world"]


NO_IDS = "The file holds no device IDs: put one device ID on each line."
NOT_TEXT = "That is not a text file. Upload a .txt file with one device ID per line."
NOT_UTF8 = "That is not a UTF-8 text file. Upload a .txt file with one device ID per line."


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", NO_IDS),
        (b"\xef\xbb\xbf", NO_IDS),
        (b"  \r\n\n\t \n", NO_IDS),
        (b"0123456789abcdef01234567\n\x00\n", NOT_TEXT),
        ("0123456789abcdef01234567\n".encode("utf-16"), NOT_TEXT),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", NOT_TEXT),
        ("0123456789abcdef01234567\ncaf\u00e9\n".encode("latin-1"), NOT_UTF8),
        (b"\xff\xfe\xfd", NOT_UTF8),
    ],
    ids=["empty", "only-a-bom", "whitespace", "nul", "utf-16", "binary", "latin-1", "garbage"],
)
def test_files_that_are_not_lists_of_ids_are_refused_with_a_message(user, product, raw, message):
    before = state()
    with pytest.raises(ApplicationError) as refused:
        device_ids_from_file(raw)
    assert refused.value.message == message
    assert refused.value.field == "file"
    assert state() == before


def test_a_file_over_the_byte_limit_is_refused_and_one_at_the_limit_is_read(settings):
    settings.QUANTA_IMPORT_MAX_BYTES = 50
    settings.QUANTA_IMPORT_MAX_IDS = 2
    a, b = hex_id(), hex_id()
    at_limit = f"{a}\n{b}\n".encode()
    assert len(at_limit) == 50
    assert device_ids_from_file(at_limit).ids == [a, b]
    with pytest.raises(ApplicationError) as refused:
        device_ids_from_file(at_limit + b"\n")
    assert refused.value.message == (
        "The file is 51 bytes; imports take files of at most 50 bytes (2 device IDs). "
        "Split it into several files."
    )
    assert refused.value.field == "file"


def test_an_import_over_the_id_limit_is_refused_and_changes_nothing(settings, user, product):
    settings.QUANTA_IMPORT_MAX_IDS = 3
    devices = provision(3)
    before = state()
    # Three valid ids and one malformed line: four entries.
    parsed = device_ids_from_file("\n".join([*(d.id for d in devices), "typo"]).encode())
    with pytest.raises(ApplicationError) as refused:
        devices_import(actor=user, product=product, parsed=parsed)
    assert refused.value.message == (
        "An import takes at most 3 device IDs; this one has 4. Split it into several imports."
    )
    assert state() == before
    # Repeats count once: the same three ids written twice are within the limit.
    parsed = device_ids_from_file("\n".join([d.id for d in devices] * 2).encode())
    assert len(devices_import(actor=user, product=product, parsed=parsed).updated) == 3


# --- Categories ---------------------------------------------------------------------------------------------
def test_every_category_of_a_mixed_import(user, other_user, teammate, product):
    elsewhere = product_create(user=other_user, name="Orchard", platform_id=BORON.id)
    unowned = one()
    mine = one(owner=user)
    teammates = one(owner=teammate)
    strangers = one(owner=other_user)
    already_in = one(product=product)
    in_another_product = one(product=elsewhere)
    wifi = one(platform=ARGON)
    quarantined = one(product=product)
    Device.objects.filter(pk=quarantined.pk).update(quarantined=True)
    denied = one(product=product)
    device_remove_from_product(actor=user, product=product, device=denied, deny=True)
    assert ProductDenial.objects.filter(device=denied, product=product).exists()
    unknown = hex_id()

    lines = [
        unowned.id,
        mine.id.upper(),
        "not a device",
        teammates.id,
        strangers.id,
        already_in.id,
        unknown,
        in_another_product.id,
        wifi.id,
        quarantined.id,
        denied.id,
        unowned.id,
    ]
    result = devices_import(actor=user, product=product, parsed=device_ids_parse(lines))

    assert result.updated == [unowned.id, mine.id, teammates.id, quarantined.id, denied.id]
    assert result.existing == [already_in.id]
    assert result.nonmember == [strangers.id, in_another_product.id]
    assert result.invalid == ["not a device", unknown, wifi.id]
    assert result.other_platform == [wifi.id]
    assert result.as_api() == {
        "updated": 5,
        "updatedDeviceIds": result.updated,
        "existingDeviceIds": [already_in.id],
        "nonmemberDeviceIds": [strangers.id, in_another_product.id],
        "invalidDeviceIds": ["not a device", unknown, wifi.id],
        "protectedDeviceIds": [],
        "otherPlatformDeviceIds": [wifi.id],
    }

    rows = {d.id: d for d in Device.objects.all()}
    for device in (unowned, mine, teammates, quarantined, denied, already_in):
        assert (rows[device.id].product_id, rows[device.id].quarantined) == (product.id, False)
    # Owners are kept: importing does not claim or unclaim.
    assert (rows[mine.id].owner_id, rows[teammates.id].owner_id, rows[unowned.id].owner_id) == (
        user.id,
        teammate.id,
        None,
    )
    assert (rows[strangers.id].product_id, rows[strangers.id].owner_id) == (None, other_user.id)
    assert rows[in_another_product.id].product_id == elsewhere.id
    assert rows[wifi.id].product_id is None
    assert not ProductDenial.objects.exists()  # importing lifts the denial


def test_importing_the_same_ids_again_reports_them_existing_and_changes_nothing(user, product):
    devices = provision(3)
    parsed = device_ids_parse([d.id for d in devices])
    assert len(devices_import(actor=user, product=product, parsed=parsed).updated) == 3
    before = state()[:2]
    again = devices_import(actor=user, product=product, parsed=parsed)
    assert (again.updated, again.existing) == ([], [d.id for d in devices])
    assert state()[:2] == before


def test_a_denial_by_another_product_is_not_lifted(user, other_user, product):
    elsewhere = product_create(user=other_user, name="Orchard", platform_id=BORON.id)
    device = one(product=elsewhere)
    device_remove_from_product(actor=other_user, product=elsewhere, device=device, deny=True)
    result = devices_import(actor=user, product=product, parsed=device_ids_parse([device.id]))
    assert result.updated == [device.id]
    assert ProductDenial.objects.filter(device=device, product=elsewhere).exists()


def test_the_import_is_audited_with_its_counts(user, other_user, product):
    joining = provision(2)
    theirs = one(owner=other_user)
    devices_import(actor=user, product=product, parsed=device_ids_parse([d.id for d in joining]))
    devices_import(
        actor=user,
        product=product,
        parsed=device_ids_parse([joining[0].id, theirs.id, "typo", hex_id()]),
        via="api",
    )
    first, second = AuditEntry.objects.filter(action="product.devices_import").order_by("id")
    assert (first.actor, first.subject_user, first.target_type, first.target_id, first.target_label) == (
        user,
        user,
        "product",
        str(product.id),
        "Greenhouse",
    )
    assert first.metadata == {"added": 2, "existing": 0, "nonmember": 0, "invalid": 0}
    assert first.via == "console"
    assert second.metadata == {"added": 0, "existing": 1, "nonmember": 1, "invalid": 2}
    assert second.via == "api"


# --- One transaction -----------------------------------------------------------------------------------------
def test_a_failure_after_the_first_chunk_leaves_nothing_changed(monkeypatch, user, product):
    monkeypatch.setattr(imports, "CHUNK", 2)
    devices = provision(5)
    quarantined = one(product=product)
    Device.objects.filter(pk=quarantined.pk).update(quarantined=True)
    denied = one(product=product)
    device_remove_from_product(actor=user, product=product, device=denied, deny=True)
    before = state()

    original = ProductDenial.objects.filter
    calls = []

    def failing_filter(*args, **kwargs):
        calls.append(kwargs)
        if len(calls) == 2:  # the second chunk's denials: the first chunk is already written
            raise RuntimeError("the database went away")
        return original(*args, **kwargs)

    monkeypatch.setattr(ProductDenial.objects, "filter", failing_filter)
    ids = [denied.id, quarantined.id, *(d.id for d in devices)]
    with pytest.raises(RuntimeError, match="went away"):
        devices_import(actor=user, product=product, parsed=device_ids_parse(ids))
    assert len(calls) == 2
    assert state() == before  # the first chunk's devices, quarantine and denial are as they were
    monkeypatch.undo()

    result = devices_import(actor=user, product=product, parsed=device_ids_parse(ids))
    assert result.updated == ids


# --- Set-based -----------------------------------------------------------------------------------------------
def _mixed_ids(product, count: int) -> list[str]:
    """``count`` ids: a fifth unowned devices, a fifth already in, a fifth quarantined, a fifth
    unknown, a fifth of another platform."""
    fifth = count // 5
    unowned = provision(fifth)
    already_in = provision(fifth, product=product)
    quarantined = provision(fifth, product=product)
    Device.objects.filter(pk__in=[d.pk for d in quarantined]).update(quarantined=True)
    wifi = provision(fifth, platform=ARGON)
    unknown = [hex_id() for _ in range(count - 4 * fifth)]
    return [d.id for d in (*unowned, *already_in, *quarantined, *wifi)] + unknown


def test_an_import_takes_the_same_few_queries_for_ten_ids_or_two_thousand(
    user, product, django_assert_max_num_queries
):
    counts = []
    for count in (10, 2000):
        Device.objects.all().delete()
        ids = _mixed_ids(product, count)
        # The team, the devices, then in one transaction (a savepoint here) two UPDATEs, the
        # denials' DELETE and the check of who moved; then the audit entry.
        with django_assert_max_num_queries(9) as queries:
            result = devices_import(actor=user, product=product, parsed=device_ids_parse(ids))
        assert len(result.updated) == 2 * (count // 5)
        assert len(result.existing) == count // 5
        assert len(result.invalid) == 2 * (count // 5)
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_small_chunks_give_the_same_result_in_more_queries(monkeypatch, user, product):
    ids = _mixed_ids(product, 25)

    def rows() -> list[tuple]:
        return sorted(Device.objects.values_list("id", "product_id", "quarantined"))

    snapshot = rows()

    with CaptureQueriesContext(connection) as one_chunk:
        whole = devices_import(actor=user, product=product, parsed=device_ids_parse(ids))
    after_whole = rows()

    # Back to where it started, then again in chunks of 3.
    for device_id, product_id, quarantined in snapshot:
        Device.objects.filter(pk=device_id).update(product_id=product_id, quarantined=quarantined)
    monkeypatch.setattr(imports, "CHUNK", 3)
    with CaptureQueriesContext(connection) as many_chunks:
        chunked = devices_import(actor=user, product=product, parsed=device_ids_parse(ids))

    assert chunked == whole
    assert rows() == after_whole != snapshot
    assert len(many_chunks) > len(one_chunk)
    # Every statement stays within one chunk's worth of ids.
    for query in many_chunks.captured_queries:
        assert sum(device_id in query["sql"] for device_id in ids) <= 3


def test_more_ids_than_one_chunk_holds_on_this_database(user, product):
    """Over one default chunk (5,000) of ids: every IN (...) stays within the database's limits."""
    unowned = provision(30)
    ids = [hex_id() for _ in range(imports.CHUNK + 10)] + [d.id for d in unowned]
    result = devices_import(actor=user, product=product, parsed=device_ids_parse(ids))
    assert result.updated == [d.id for d in unowned]
    assert len(result.invalid) == imports.CHUNK + 10


# --- Getting, removing and denying ---------------------------------------------------------------------------
def test_a_product_device_is_found_by_id_or_name_and_only_in_that_product(user, other_user, product):
    device = one(product=product)
    Device.objects.filter(pk=device.pk).update(name="Fern")
    outside = one(owner=user)
    assert product_device_get(product=product, id_or_name=device.id.upper()) == device
    assert product_device_get(product=product, id_or_name=" fern ") == device
    for missing in (outside.id, outside.name, hex_id(), "nothing"):
        with pytest.raises(NotFound, match="is not in this product"):
            product_device_get(product=product, id_or_name=missing)


def test_removing_a_device_takes_it_out_of_the_product_and_its_quarantine(user, product):
    device = one(owner=user, product=product)
    Device.objects.filter(pk=device.pk).update(quarantined=True)
    device_remove_from_product(actor=user, product=product, device=device)
    device.refresh_from_db()
    assert (device.product_id, device.quarantined, device.owner_id) == (None, False, user.id)
    assert not ProductDenial.objects.exists()
    entry = AuditEntry.objects.get(action="product.device_remove")
    assert (entry.actor, entry.target_type, entry.target_id, entry.metadata, entry.via) == (
        user,
        "device",
        device.id,
        {"product": product.id},
        "console",
    )


def test_removing_with_deny_records_the_denial_once(user, product):
    device = one(product=product)
    device_remove_from_product(actor=user, product=product, device=device, deny=True, via="api")
    device_remove_from_product(actor=user, product=product, device=device, deny=True, via="api")
    device.refresh_from_db()
    assert device.product_id is None
    denial = ProductDenial.objects.get()
    assert (denial.device_id, denial.product_id, denial.denied_by) == (device.id, product.id, user)
    entries = AuditEntry.objects.filter(action="product.device_deny", target_id=device.id)
    assert entries.count() == 2
    assert {(e.via, tuple(e.metadata.items())) for e in entries} == {("api", (("product", product.id),))}
    # An import lets it back in.
    assert devices_import(actor=user, product=product, parsed=device_ids_parse([device.id])).updated == [
        device.id
    ]
    assert not ProductDenial.objects.exists()
