"""Firmware module binaries: encoder round trips, every way a file can be rejected, real binaries.

The real binaries are Particle's own test files (from particle-cli and binary-version-reader). They
are not in the repository: set ``QUANTA_FIRMWARE_FIXTURES`` to the directory that holds them.
"""

from __future__ import annotations

import contextlib
import os
import random
import struct
import zlib
from pathlib import Path
from typing import NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.platforms import PLATFORMS
from firmware.binary import (
    DEVICE_OS_4_SYSTEM_VERSION,
    GEN2_VECTOR_TABLE_SIZE,
    GEN3_VECTOR_TABLE_SIZE,
    NO_PRODUCT,
    BinaryError,
    ExtensionType,
    ModuleFlag,
    ModuleFunction,
    parse_module,
    product_id_is_meaningful,
    validate_module,
)
from firmware.encoder import DEFAULT_START_ADDRESS, build_module

FIXTURES_VARIABLE = "QUANTA_FIRMWARE_FIXTURES"

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
functions = st.sampled_from([f for f in ModuleFunction if f != ModuleFunction.NONE])
dependencies = st.lists(st.tuples(functions, u8, u16), max_size=2)
known_platforms = st.sampled_from(sorted(PLATFORMS))


def with_crc(data: bytes) -> bytes:
    """``data`` with its CRC-32 recomputed, so a test reaches the check after the CRC."""
    return data[:-4] + zlib.crc32(data[:-4]).to_bytes(4, "big")


def patched(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


def flipped(data: bytes, offset: int) -> bytes:
    return patched(data, offset, bytes([data[offset] ^ 0x01]))


def rejection(data: bytes, **options) -> str:
    with pytest.raises(BinaryError) as caught:
        parse_module(data, **options)
    return caught.value.message


# --- Round trips -----------------------------------------------------------------------------------


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    platform_id=known_platforms | u16,
    product_id=u16,
    product_version=u16,
    function=functions,
    index=u8,
    module_version=u16,
    deps=dependencies,
    payload_size=st.integers(0, 4096),
    vector_table=st.sampled_from([False, True, GEN2_VECTOR_TABLE_SIZE, GEN3_VECTOR_TABLE_SIZE]),
    product_data_extension=st.booleans(),
)
def test_what_is_encoded_parses_back(
    platform_id,
    product_id,
    product_version,
    function,
    index,
    module_version,
    deps,
    payload_size,
    vector_table,
    product_data_extension,
):
    data = build_module(
        platform_id=platform_id,
        product_id=product_id,
        product_version=product_version,
        module_function=function,
        module_index=index,
        module_version=module_version,
        dependencies=deps,
        payload_size=payload_size,
        vector_table=vector_table,
        product_data_extension=product_data_extension,
    )

    info = parse_module(data)

    assert info.size == len(data)
    assert info.crc_ok
    assert info.sha256_ok
    assert info.platform_id == platform_id
    assert info.module_function == function
    assert info.module_function_name == function.label
    assert info.module_index == index
    assert info.module_version == module_version
    assert info.dependencies == tuple(deps)
    assert info.product_id == product_id
    assert info.product_version == product_version
    assert info.flags == 0
    assert info.start_address == DEFAULT_START_ADDRESS
    assert info.end_address == DEFAULT_START_ADDRESS + len(data) - 4
    expected_offset = {False: 0, GEN2_VECTOR_TABLE_SIZE: 0x184, GEN3_VECTOR_TABLE_SIZE: 0x200}.get(
        vector_table, 0x184 if platform_id in (6, 8, 10) else 0x200
    )
    assert info.prefix_offset == expected_offset
    assert info.prefix_size == 24
    if product_data_extension:
        assert info.suffix_size == 46
        (record,) = info.extensions
        assert (record.name, record.length) == ("PRODUCT_DATA", 10)
        assert (record.product_id, record.product_version) == (product_id, product_version)
    else:
        assert (info.suffix_size, info.extensions) == (40, ())
    assert info.stored_crc == int.from_bytes(data[-4:], "big")


@given(payload=st.binary(max_size=3000), platform_id=known_platforms, product_id=u16)
def test_any_payload_round_trips(payload, platform_id, product_id):
    info = parse_module(build_module(platform_id=platform_id, product_id=product_id, payload=payload))

    assert (info.platform_id, info.product_id, info.size) == (platform_id, product_id, len(payload) + 68)


def test_the_encoder_is_deterministic():
    options = {"platform_id": 13, "product_id": 1042, "product_version": 7, "dependencies": [(4, 1, 6200)]}

    assert build_module(**options) == build_module(**options)
    assert build_module(**options) != build_module(**{**options, "product_version": 8})


def test_bytearray_and_memoryview_are_read_too():
    data = build_module(platform_id=12, product_id=1042)

    assert parse_module(bytearray(data)) == parse_module(memoryview(data)) == parse_module(data)


def test_the_layout_is_the_one_particle_documents():
    data = build_module(platform_id=12, product_id=0x1234, product_version=0x0056, payload=b"code")

    assert len(data) == 24 + 4 + 40 + 4
    assert struct.unpack_from("<HH", data, len(data) - 44) == (0x1234, 0x0056)
    assert struct.unpack_from("<H", data, len(data) - 6) == (40,)
    assert data[-4:] == zlib.crc32(data[:-4]).to_bytes(4, "big")  # big-endian, unlike the rest


def test_a_suffix_without_product_fields():
    info = parse_module(build_module(platform_id=6, product_fields=False))

    assert (info.suffix_size, info.product_id, info.product_version) == (36, None, None)
    assert not info.carries_product_id


def test_suffix_extensions_end_with_an_end_record_before_the_product_fields():
    name = (ExtensionType.NAME, b"tinker")
    info = parse_module(build_module(platform_id=26, product_id=1001, product_version=3, extensions=[name]))

    assert [(e.name, e.length, e.payload) for e in info.extensions] == [
        ("NAME", 10, b"tinker"),
        ("END", 4, b""),
    ]
    assert info.suffix_size == 36 + 10 + 4 + 4
    assert (info.product_id, info.product_version) == (1001, 3)


def test_the_p2_layout_ends_with_a_product_data_record():
    location = (ExtensionType.DYNAMIC_LOCATION, bytes(12))
    data = build_module(
        platform_id=32, product_id=1001, product_version=9, extensions=[location], product_data_extension=True
    )

    info = parse_module(data)

    assert [(e.name, e.length) for e in info.extensions] == [("DYNAMIC_LOCATION", 16), ("PRODUCT_DATA", 10)]
    assert info.suffix_size == 62  # as in Particle's P2 builds
    assert (info.product_id, info.product_version) == (1001, 9)
    assert info.extensions[0].offset == len(data) - 4 - 62


def test_unknown_extension_types_are_listed_by_number():
    info = parse_module(build_module(platform_id=12, extensions=[(0x0042, b"\x01\x02")]))

    assert [(e.type, e.name, e.length) for e in info.extensions] == [(0x42, "0x0042", 6), (0, "END", 4)]
    assert info.extensions[0].data == b"\x42\x00\x06\x00\x01\x02"


def test_prefix_extensions():
    asset = (ExtensionType.ASSET_DEPENDENCY, b"\x00\x20" + bytes(32) + b"cat.txt")
    info = parse_module(build_module(platform_id=32, prefix_extensions=[asset]))

    assert info.flags == ModuleFlag.PREFIX_EXTENSIONS
    assert [(e.name, e.offset, e.length) for e in info.prefix_extensions] == [
        ("ASSET_DEPENDENCY", 24, 45),
        ("END", 69, 4),
    ]
    assert info.prefix_size == 24 + 45 + 4


def test_a_prefix_at_an_unusual_offset_is_found_by_scanning():
    info = parse_module(build_module(platform_id=12, vector_table=0x100, payload_size=2048))

    assert info.prefix_offset == 0x100


def test_a_platform_it_does_not_know_is_still_read():
    info = parse_module(build_module(platform_id=999, product_id=5))

    assert (info.platform_id, info.product_id, info.prefix_offset) == (999, 5, 0)


# --- Product IDs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "carries", "meaningful"),
    [
        ({"product_fields": False}, False, False),
        ({"product_id": NO_PRODUCT}, False, False),
        ({"product_id": 0}, False, False),
        ({"product_id": 1042}, True, True),
        ({"product_id": 1042, "dependencies": [(4, 2, 1201)]}, True, True),
        ({"product_id": 1042, "dependencies": [(4, 1, DEVICE_OS_4_SYSTEM_VERSION - 1)]}, True, True),
        ({"product_id": 1042, "dependencies": [(4, 1, DEVICE_OS_4_SYSTEM_VERSION)]}, True, False),
        ({"product_id": 32, "dependencies": [(4, 1, 5301)]}, True, False),
        ({"product_id": 1042, "dependencies": [(2, 0, 9000)]}, True, True),  # a bootloader is not Device OS
    ],
)
def test_whether_the_product_id_means_anything(options, carries, meaningful):
    info = parse_module(build_module(platform_id=12, **options))

    assert info.carries_product_id is carries
    assert product_id_is_meaningful(info) is meaningful


def test_system_version_is_the_system_part_dependency():
    info = parse_module(build_module(platform_id=12, dependencies=[(2, 0, 2000), (4, 1, 6200)]))

    assert info.system_version == 6200
    assert parse_module(build_module(platform_id=12)).system_version is None


def test_user_part_and_function_names():
    assert parse_module(build_module(platform_id=12)).is_user_part
    system_part = parse_module(build_module(platform_id=12, module_function=ModuleFunction.SYSTEM_PART))
    assert not system_part.is_user_part
    assert [f.label for f in ModuleFunction] == [
        "none",
        "resource",
        "bootloader",
        "mono",
        "system part",
        "user part",
        "settings",
        "NCP",
        "radio stack",
        "asset",
    ]


# --- Rejections ------------------------------------------------------------------------------------

MODULE = build_module(platform_id=12, product_id=1042, product_version=3, dependencies=[(4, 1, 6200)])


def test_an_empty_file():
    assert rejection(b"") == "The file is empty."


@pytest.mark.parametrize("size", [1, 12, 63])
def test_a_file_too_short(size):
    assert rejection(MODULE[:size]) == f"The file is too short to be a firmware module ({size} bytes)."


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes(seed):
    noise = random.Random(seed).randbytes(4096)

    assert rejection(noise) == "This is not a Particle firmware module: no module prefix was found."


def test_a_file_of_one_repeated_byte():
    assert "no module prefix was found" in rejection(b"\xff" * 2048)
    assert "no module prefix was found" in rejection(bytes(2048))


def test_a_truncated_module():
    message = rejection(MODULE[:-100])

    assert message == (
        f"The file is shorter than its module prefix says ({len(MODULE) - 100} bytes, expected "
        f"{len(MODULE)}): it may be truncated."
    )


def test_a_flipped_crc_byte():
    data = flipped(MODULE, len(MODULE) - 1)

    message = rejection(data)

    stored, computed = int.from_bytes(data[-4:], "big"), zlib.crc32(MODULE[:-4])
    assert message == (
        f"The CRC-32 does not match: stored 0x{stored:08x}, computed 0x{computed:08x}. "
        "The file is damaged or incomplete."
    )
    info = parse_module(data, verify=False)
    assert (info.crc_ok, info.sha256_ok, info.computed_crc) == (False, True, computed)


def test_a_flipped_payload_byte_fails_the_crc():
    data = flipped(MODULE, 500)

    assert rejection(data).startswith("The CRC-32 does not match: stored 0x")
    info = parse_module(data, verify=False)
    assert (info.crc_ok, info.sha256_ok, info.ok) == (False, False, False)
    assert (info.platform_id, info.product_id) == (12, 1042)  # still readable for display
    with pytest.raises(BinaryError, match="CRC-32"):
        validate_module(info)


def test_a_valid_crc_over_a_wrong_sha256():
    data = with_crc(flipped(MODULE, len(MODULE) - 20))

    assert rejection(data) == "The SHA-256 in the module does not match its contents."
    info = parse_module(data, verify=False)
    assert (info.crc_ok, info.sha256_ok) == (True, False)
    assert info.sha256 != info.computed_sha256


@pytest.mark.parametrize("suffix_size", [len(MODULE) - 4 - 24 + 1, 0xFFFF])
def test_a_suffix_size_larger_than_the_file(suffix_size):
    data = with_crc(patched(MODULE, len(MODULE) - 6, struct.pack("<H", suffix_size)))

    assert rejection(data) == (
        f"The suffix size in the module ({suffix_size} bytes) does not fit in the file "
        f"({len(MODULE)} bytes, {len(MODULE) - 28} after the prefix)."
    )


def test_a_suffix_size_below_the_minimum():
    data = with_crc(patched(MODULE, len(MODULE) - 6, struct.pack("<H", 20)))

    assert rejection(data) == "The suffix size in the module (20 bytes) is below the minimum of 36."


EXTENDED = build_module(platform_id=26, extensions=[(ExtensionType.NAME, b"tinker")])
FIRST_RECORD = len(EXTENDED) - 4 - (36 + 10 + 4 + 4)


@pytest.mark.parametrize("length", [0, 2, 0x7FFF])
def test_a_suffix_extension_with_a_bad_length(length):
    data = with_crc(patched(EXTENDED, FIRST_RECORD + 2, struct.pack("<H", length)))

    assert rejection(data, verify=False) == (
        f"The suffix extension at byte {FIRST_RECORD} has an invalid length ({length})."
    )


def test_erased_flash_ends_the_extension_list():
    data = patched(EXTENDED, FIRST_RECORD, b"\xff\xff")

    assert parse_module(data, verify=False).extensions == ()


def test_a_product_data_record_too_short():
    data = build_module(platform_id=32, extensions=[(ExtensionType.PRODUCT_DATA, b"\x01\x00")])

    assert (
        rejection(data) == f"The PRODUCT_DATA extension at byte {len(data) - 4 - 50} is too short (6 bytes)."
    )


def test_prefix_extensions_without_an_end_record():
    data = build_module(platform_id=32, prefix_extensions=[(ExtensionType.NAME, b"app")])
    end_record = 24 + 7
    assert struct.unpack_from("<HH", data, end_record) == (ExtensionType.END, 4)

    assert rejection(patched(data, end_record, b"\xff\xff"), verify=False) == (
        "The module's prefix extensions do not end with an END record."
    )


@settings(max_examples=200)
@given(offset=st.integers(0, len(MODULE) - 1), value=u8)
def test_any_one_byte_change_is_rejected(offset, value):
    data = patched(MODULE, offset, bytes([value]))
    if data == MODULE:
        return
    with pytest.raises(BinaryError):  # a CRC-32 catches every one-byte change, if nothing else does
        parse_module(data)


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise_anything_else(data):
    with contextlib.suppress(BinaryError):
        parse_module(data, verify=False)


# --- The encoder refuses what no parser would read -------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"platform_id": 0x10000}, "platform_id must fit in 16 bits"),
        ({"platform_id": 12, "product_id": -1}, "product_id must fit in 16 bits"),
        ({"platform_id": 12, "module_function": 0}, "module_function must be a module function"),
        ({"platform_id": 12, "module_function": 10}, "module_function must be a module function"),
        ({"platform_id": 12, "dependencies": [(4, 1, 1)] * 3}, "room for two dependencies"),
        ({"platform_id": 12, "dependencies": [(0, 1, 1)]}, "A dependency's function"),
        ({"platform_id": 12, "dependencies": [(4, 1, 0x10000)]}, "dependency_version must fit"),
        ({"platform_id": 12, "vector_table": 0x185}, "multiple of 4"),
        ({"platform_id": 12, "payload_size": -1}, "must not be negative"),
        ({"platform_id": 12, "product_fields": False, "extensions": [(0x11, b"x")]}, "need the product"),
    ],
)
def test_the_encoder_rejects_values_that_do_not_fit(options, message):
    with pytest.raises(ValueError, match=message):
        build_module(**options)


# --- Real binaries ---------------------------------------------------------------------------------


class Expected(NamedTuple):
    size: int
    platform_id: int
    function: ModuleFunction
    index: int
    module_version: int
    dependencies: tuple[tuple[int, int, int], ...]
    suffix_size: int
    product_id: int | None
    product_version: int | None
    stored_crc: int
    extensions: tuple[str, ...] = ()
    meaningful: bool = False


USER = ModuleFunction.USER_PART
FIXTURES = {
    "040_user-part.bin": Expected(4752, 6, USER, 1, 2, ((4, 2, 1),), 36, None, None, 0xB138F375),
    "043_user-part.bin": Expected(2460, 6, USER, 1, 2, ((4, 2, 3),), 40, 0xFFFF, 0xFFFF, 0x21AB214A),
    "080_user-part-xenon.bin": Expected(3312, 14, USER, 1, 5, ((4, 1, 312),), 40, 0xFFFF, 0xFFFF, 0xAD33492B),
    "cli_product_firmware.bin": Expected(
        19884, 10, USER, 1, 6, ((4, 2, 1201),), 40, 8178, 13, 0xE309C618, meaningful=True
    ),
    "cli_electron_tinker.bin": Expected(
        5776, 10, USER, 1, 3, ((4, 2, 10),), 40, 10, 2, 0xB3934494, meaningful=True
    ),
    "cli_photon_tinker.bin": Expected(3952, 6, USER, 1, 2, ((4, 2, 1),), 36, None, None, 0xBA4F59AB),
    "cli_p1_tinker.bin": Expected(4740, 8, USER, 1, 2, ((4, 2, 3),), 40, 0xFFFF, 0xFFFF, 0x61972E4D),
    "cli_boron_blank.bin": Expected(7240, 13, USER, 1, 6, ((4, 1, 1213),), 40, 0xFFFF, 0xFFFF, 0x4D02D94F),
    "cli_argon_stroby.bin": Expected(8012, 12, USER, 1, 6, ((4, 1, 1213),), 40, 0xFFFF, 0xFFFF, 0xDA140931),
    "cli_argon-tinker-620.bin": Expected(11214, 12, USER, 2, 6, ((4, 1, 6101),), 40, 0, 0, 0x49A9E91B),
    "cli_tinker_argon_541.bin": Expected(3822, 12, USER, 2, 6, ((4, 1, 5410),), 40, 0, 0, 0xEE7239D2),
    "cli_app-with-assets.bin": Expected(
        7171,
        12,
        USER,
        2,
        6,
        ((4, 1, 4006),),
        183,
        12,
        3,
        0x7FA30408,
        ("ASSET_DEPENDENCY", "ASSET_DEPENDENCY", "ASSET_DEPENDENCY", "END"),
    ),
    "p2-user-part.bin": Expected(
        8192,
        32,
        USER,
        1,
        6,
        ((4, 1, 5001),),
        62,
        32,
        0xBEEF,
        0x0E3D4F63,
        ("DYNAMIC_LOCATION", "PRODUCT_DATA"),
    ),
    "p2-user-part-prefix-extensions.bin": Expected(
        49264, 32, USER, 1, 6, ((4, 1, 5300),), 62, 32, 4, 0x53A6DF7B, ("DYNAMIC_LOCATION", "PRODUCT_DATA")
    ),
    "p2-tinker@5.3.1.bin": Expected(
        49152, 32, USER, 1, 6, ((4, 1, 5301),), 62, 32, 4, 0xD1209425, ("DYNAMIC_LOCATION", "PRODUCT_DATA")
    ),
    "tracker-tinker@5.3.1.bin": Expected(6874, 26, USER, 2, 6, ((4, 1, 5301),), 40, 26, 3, 0xA2B1005E),
    "tracker-user-part-extensions.bin": Expected(
        7024,
        26,
        USER,
        2,
        6,
        ((4, 1, 5301),),
        190,
        26,
        3,
        0xBB3D2C74,
        ("ASSET_DEPENDENCY", "ASSET_DEPENDENCY", "ASSET_DEPENDENCY", "END"),
    ),
}


@pytest.fixture(scope="module")
def fixtures_dir() -> Path:
    value = os.environ.get(FIXTURES_VARIABLE)
    if not value:
        pytest.skip(
            f"{FIXTURES_VARIABLE} is not set: point it at a directory of real Particle module binaries"
        )
    return Path(value)


def read_fixture(directory: Path, name: str) -> bytes:
    path = directory / name
    assert path.is_file(), f"{FIXTURES_VARIABLE} names {directory}, which has no {name}"
    return path.read_bytes()


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_real_binaries(fixtures_dir, name):
    expected = FIXTURES[name]

    info = parse_module(read_fixture(fixtures_dir, name))

    assert info.ok
    assert info.size == expected.size
    assert info.platform_id == expected.platform_id
    assert (info.module_function, info.module_index) == (expected.function, expected.index)
    assert info.module_version == expected.module_version
    assert info.dependencies == expected.dependencies
    assert info.suffix_size == expected.suffix_size
    assert (info.product_id, info.product_version) == (expected.product_id, expected.product_version)
    assert info.stored_crc == expected.stored_crc
    assert tuple(e.name for e in info.extensions) == expected.extensions
    assert product_id_is_meaningful(info) is expected.meaningful
    assert info.end_address - info.start_address + 4 == info.size


def test_device_os_4_and_later_builds_are_told_by_their_system_dependency(fixtures_dir):
    """The rule behind ``product_id_is_meaningful``: Device OS >= 4 builds depend on a system part
    of version 4000 or more, and carry leftovers (the platform ID, or 0) in the product ID field."""
    for name in FIXTURES:
        info = parse_module(read_fixture(fixtures_dir, name))
        if info.system_version >= DEVICE_OS_4_SYSTEM_VERSION:
            assert info.product_id in (info.platform_id, 0), name
            assert not product_id_is_meaningful(info), name


def test_a_real_product_data_record_and_its_fixed_place_agree(fixtures_dir):
    info = parse_module(read_fixture(fixtures_dir, "p2-user-part.bin"))

    record = info.extensions[-1]
    assert (record.product_id, record.product_version) == (32, 0xBEEF)
    assert record.offset + record.length == info.size - 40


def test_real_prefix_extensions(fixtures_dir):
    info = parse_module(read_fixture(fixtures_dir, "p2-user-part-prefix-extensions.bin"))

    assert info.flags == ModuleFlag.PREFIX_EXTENSIONS
    assert [(e.name, e.offset, e.length) for e in info.prefix_extensions] == [
        ("ASSET_DEPENDENCY", 24, 58),
        ("ASSET_DEPENDENCY", 82, 49),
        ("END", 131, 5),
    ]
    assert info.prefix_size == 136
    assert b"103_system-part1.bin" in info.prefix_extensions[0].payload


def test_a_real_file_that_is_not_a_module(fixtures_dir):
    data = read_fixture(fixtures_dir, "unknown.bin")

    assert zlib.crc32(data[:-4]).to_bytes(4, "big") == data[-4:]  # a valid CRC is not enough
    assert rejection(data) == "This is not a Particle firmware module: no module prefix was found."


def test_a_damaged_real_binary(fixtures_dir):
    data = read_fixture(fixtures_dir, "cli_product_firmware.bin")

    assert rejection(flipped(data, 4000)).startswith("The CRC-32 does not match")
    assert "it may be truncated" in rejection(data[: len(data) // 2])
