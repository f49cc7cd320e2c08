"""Build Particle firmware module binaries that ``firmware.binary.parse_module`` and Particle's own
tools accept: for tests, and for simulated devices that need "new firmware".

The output is deterministic: the same arguments give the same bytes.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterable, Sequence

from console.platforms import PLATFORMS
from firmware.binary import (
    CRC_SIZE,
    EXTENSION_HEADER_SIZE,
    GEN2_VECTOR_TABLE_SIZE,
    GEN3_VECTOR_TABLE_SIZE,
    MIN_SUFFIX_SIZE,
    NO_PRODUCT,
    PREFIX_SIZE,
    ExtensionType,
    ModuleFlag,
    ModuleFunction,
)

DEFAULT_START_ADDRESS = 0x000B4000  # a Gen 3 user part (Device OS 3.1 and later)
DEFAULT_MODULE_VERSION = 6  # what user parts of current Device OS releases carry
DEFAULT_PAYLOAD_SIZE = 1024

RawExtension = tuple[int, bytes]  # (type, payload without the 4-byte header)


def build_module(
    *,
    platform_id: int,
    product_id: int = NO_PRODUCT,
    product_version: int = NO_PRODUCT,
    module_function: int = ModuleFunction.USER_PART,
    module_index: int = 1,
    module_version: int = DEFAULT_MODULE_VERSION,
    dependencies: Iterable[tuple[int, int, int]] = (),
    payload: bytes | None = None,
    payload_size: int = DEFAULT_PAYLOAD_SIZE,
    start_address: int = DEFAULT_START_ADDRESS,
    vector_table: bool | int = False,
    extensions: Sequence[RawExtension] = (),
    product_data_extension: bool = False,
    product_fields: bool = True,
    prefix_extensions: Sequence[RawExtension] = (),
) -> bytes:
    """A complete module: ``[vector table][prefix][prefix extensions][payload][suffix][CRC-32]``.

    * ``dependencies``: up to two ``(function, index, version)``, e.g. ``(4, 1, 6200)`` for
      system part 1 of Device OS 6.2.0.
    * ``payload``: the code bytes; when None, ``payload_size`` bytes of a fixed pattern.
    * ``vector_table``: True for the platform's table (0x184 on Gen 2, 0x200 otherwise), or a size
      in bytes; the prefix follows it. ``start_address`` is the address of the first byte either way.
    * ``extensions``: suffix records ``(type, payload)``, placed before the product fields and
      ended with an END record. With ``product_data_extension`` the product fields are a
      PRODUCT_DATA record instead (the P2 layout), which ends the list.
    * ``product_fields=False`` gives the 36-byte suffix of Device OS before 0.4.3 (no product fields).
    * ``prefix_extensions``: records after the prefix (sets flag 0x10; an END record is added).
    """
    deps = list(dependencies)
    if len(deps) > 2:
        raise ValueError(f"A module has room for two dependencies, not {len(deps)}.")
    # Parsers find the prefix by its plausibility: a known function, empty slots all zeros.
    _check_function("module_function", module_function)
    for function, _index, _version in deps:
        _check_function("A dependency's function", function)
    if not product_fields and (extensions or product_data_extension):
        raise ValueError("Suffix extensions need the product fields (a suffix of 40 bytes or more).")
    _check_fields(
        platform_id=(platform_id, 16),
        product_id=(product_id, 16),
        product_version=(product_version, 16),
        module_function=(module_function, 8),
        module_index=(module_index, 8),
        module_version=(module_version, 16),
        start_address=(start_address, 32),
    )
    table = b"\xff" * _vector_table_size(vector_table, platform_id)  # erased flash: never a prefix
    prefix_records = _records([*prefix_extensions, (ExtensionType.END, b"")]) if prefix_extensions else b""
    code = payload if payload is not None else _pattern(payload_size)
    suffix_head = (
        _suffix_head(product_id, product_version, extensions, product_data_extension=product_data_extension)
        if product_fields
        else b""
    )
    suffix_size = len(suffix_head) + MIN_SUFFIX_SIZE
    total = len(table) + PREFIX_SIZE + len(prefix_records) + len(code) + suffix_size + CRC_SIZE
    prefix = _prefix(
        start_address=start_address,
        end_address=start_address + total - CRC_SIZE,  # the end address points at the CRC
        flags=ModuleFlag.PREFIX_EXTENSIONS if prefix_extensions else ModuleFlag.NONE,
        module_version=module_version,
        platform_id=platform_id,
        module_function=module_function,
        module_index=module_index,
        dependencies=deps,
    )
    hashed = b"".join((table, prefix, prefix_records, code, suffix_head, b"\x00\x00"))  # reserved u16
    body = hashed + hashlib.sha256(hashed).digest() + struct.pack("<H", suffix_size)
    module = body + zlib.crc32(body).to_bytes(CRC_SIZE, "big")  # big-endian, unlike everything else
    return module


def _check_fields(**fields: tuple[int, int]) -> None:
    for name, (value, bits) in fields.items():
        if not 0 <= value < 1 << bits:
            raise ValueError(f"{name} must fit in {bits} bits (0 to {(1 << bits) - 1}), not {value}.")


def _check_function(what: str, function: int) -> None:
    if function not in set(ModuleFunction) - {ModuleFunction.NONE}:
        raise ValueError(f"{what} must be a module function from 1 to {max(ModuleFunction)}, not {function}.")


def _vector_table_size(vector_table: bool | int, platform_id: int) -> int:
    if vector_table is True:
        platform = PLATFORMS.get(platform_id)
        return GEN2_VECTOR_TABLE_SIZE if platform and platform.generation == 2 else GEN3_VECTOR_TABLE_SIZE
    size = int(vector_table)
    if size < 0 or size % 4:
        raise ValueError(f"The vector table size must be a non-negative multiple of 4, not {size}.")
    return size


def _pattern(size: int) -> bytes:
    if size < 0:
        raise ValueError(f"payload_size must not be negative, not {size}.")
    return (bytes(range(256)) * (size // 256 + 1))[:size]


def _prefix(
    *,
    start_address: int,
    end_address: int,
    flags: int,
    module_version: int,
    platform_id: int,
    module_function: int,
    module_index: int,
    dependencies: list[tuple[int, int, int]],
) -> bytes:
    slots = [*dependencies, (0, 0, 0), (0, 0, 0)][:2]  # an empty slot is all zeros
    for function, index, version in slots:
        _check_fields(dependency_function=(function, 8), dependency_index=(index, 8))
        _check_fields(dependency_version=(version, 16))
    (function1, index1, version1), (function2, index2, version2) = slots
    return struct.pack(
        "<IIBBHHBBBBHBBH",
        start_address,
        end_address,
        0,  # reserved (the MCU target on some platforms)
        flags,
        module_version,
        platform_id,
        module_function,
        module_index,
        function1,
        index1,
        version1,
        function2,
        index2,
        version2,
    )


def _suffix_head(
    product_id: int,
    product_version: int,
    extensions: Sequence[RawExtension],
    *,
    product_data_extension: bool,
) -> bytes:
    """The suffix before its fixed tail (reserved, SHA-256, size): records, then product fields."""
    product = struct.pack("<HH", product_id, product_version)
    if product_data_extension:
        # The record's last 4 bytes are the product fields, where parsers without extensions look.
        return _records([*extensions, (ExtensionType.PRODUCT_DATA, b"\xff\xff" + product)])
    if extensions:
        return _records([*extensions, (ExtensionType.END, b"")]) + product
    return product


def _records(extensions: Sequence[RawExtension]) -> bytes:
    parts = []
    for type_, payload in extensions:
        length = EXTENSION_HEADER_SIZE + len(payload)
        _check_fields(extension_type=(type_, 16), extension_length=(length, 16))
        parts.append(struct.pack("<HH", type_, length) + payload)
    return b"".join(parts)
