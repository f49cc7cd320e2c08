"""Read Particle firmware module binaries: the ``module_info_t`` prefix and the suffix at the end.

A module is ``[vector table?][prefix][prefix extensions?][code][suffix][CRC-32]``:

* The 24-byte little-endian prefix sits at offset 0, or after the MCU's interrupt vector table
  (0x184 on Gen 2, 0x200 on Gen 3). Like Particle's binary-version-reader, the preferred offsets
  are tried first, then every 4-byte boundary in the first 8 KiB.
* The suffix is read backwards from the end: CRC-32 (zlib, stored big-endian) over everything
  before it, the suffix size (u16), the SHA-256 of everything before the SHA, a reserved u16, then
  the product version and product ID (u16 each) when the suffix is at least 40 bytes.
* Suffixes over 40 bytes start with extension records, ``[type u16][length u16][payload]``, where
  ``length`` counts the 4-byte header. Flag 0x10 puts records after the prefix as well; those must
  end with an END record.

Malformed structure (no prefix, a suffix that does not fit, an extension record whose length is
below 4 or runs past its area) raises ``BinaryError``: a module whose layout cannot be trusted is
not one to send to devices. An 0xFFFF record type (erased flash) ends a record list quietly, as it
does in binary-version-reader. Product data is read at its fixed place in the suffix, where the
last 4 bytes of a PRODUCT_DATA record also sit; a PRODUCT_DATA record that says otherwise is
listed as it is.

``parse_module(data, verify=False)`` returns the fields of a damaged module for display;
``crc_ok`` and ``sha256_ok`` say what is wrong and ``validate_module`` raises for it.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import NamedTuple

from console.platforms import PLATFORMS

PREFIX_SIZE = 24
MIN_SUFFIX_SIZE = 36  # module_info_suffix_t: reserved u16, SHA-256, suffix size u16
PRODUCT_SUFFIX_SIZE = 40  # with the product ID and version
CRC_SIZE = 4
SHA256_SIZE = 32
MIN_MODULE_SIZE = PREFIX_SIZE + MIN_SUFFIX_SIZE + CRC_SIZE
EXTENSION_HEADER_SIZE = 4
NO_PRODUCT = 0xFFFF  # what a build that is not for a product carries in its product fields

GEN2_VECTOR_TABLE_SIZE = 0x184  # STM32F2
GEN3_VECTOR_TABLE_SIZE = 0x200  # nRF52840
PREFERRED_PREFIX_OFFSETS = (0, GEN3_VECTOR_TABLE_SIZE, GEN2_VECTOR_TABLE_SIZE)
MAX_PREFIX_OFFSET = 8 * 1024  # binary-version-reader gives up beyond this too

# Device OS 4.0.0 removed the PRODUCT_ID() macro: from then on the cloud identifies a product by its
# devices, and builds carry leftovers in the product ID field (the platform ID in P2 and Tracker
# tinker 5.3.1, 0 in Argon tinker 5.4.1 and 6.2.0). Device OS 4.0.0's system module version is 4000,
# and a user part names the system-part version it was built against as a dependency (5301, 5410,
# 6101 in those builds; 1201 and below for the pre-4 product builds), so that is how to tell.
DEVICE_OS_4_SYSTEM_VERSION = 4000


class BinaryError(ValueError):
    """The bytes are not a usable firmware module; the message says why, for a person to read."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModuleFunction(IntEnum):
    NONE = 0
    RESOURCE = 1
    BOOTLOADER = 2
    MONO = 3
    SYSTEM_PART = 4
    USER_PART = 5
    SETTINGS = 6
    NCP = 7
    RADIO_STACK = 8
    ASSET = 9

    @property
    def label(self) -> str:
        return _FUNCTION_LABELS[self]


_FUNCTION_LABELS = {
    ModuleFunction.NONE: "none",
    ModuleFunction.RESOURCE: "resource",
    ModuleFunction.BOOTLOADER: "bootloader",
    ModuleFunction.MONO: "mono",
    ModuleFunction.SYSTEM_PART: "system part",
    ModuleFunction.USER_PART: "user part",
    ModuleFunction.SETTINGS: "settings",
    ModuleFunction.NCP: "NCP",
    ModuleFunction.RADIO_STACK: "radio stack",
    ModuleFunction.ASSET: "asset",
}


class ModuleFlag(IntFlag):
    NONE = 0
    DROP_MODULE_INFO = 0x01
    COMPRESSED = 0x02
    COMBINED = 0x04
    ENCRYPTED = 0x08
    PREFIX_EXTENSIONS = 0x10


KNOWN_FLAGS = 0x1F


class ExtensionType(IntEnum):
    END = 0x0000
    PRODUCT_DATA = 0x0001
    DYNAMIC_LOCATION = 0x0002
    DEPENDENCY = 0x0003
    HASH = 0x0010
    NAME = 0x0011
    ASSET_DEPENDENCY = 0x0012
    SECURITY_MODE = 0x0013
    ASSET_TYPE = 0x0014
    INVALID = 0xFFFF


class Dependency(NamedTuple):
    function: int
    index: int
    version: int


@dataclass(frozen=True)
class Extension:
    type: int
    offset: int  # from the start of the file
    length: int  # the whole record, header included
    payload: bytes = field(repr=False)
    product_id: int | None = None  # PRODUCT_DATA only
    product_version: int | None = None

    @property
    def data(self) -> bytes:
        """The whole record, header included (binary-version-reader's ``data``)."""
        return _EXTENSION_HEADER.pack(self.type, self.length) + self.payload

    @property
    def name(self) -> str:
        try:
            return ExtensionType(self.type).name
        except ValueError:
            return f"0x{self.type:04X}"


@dataclass(frozen=True)
class ModuleInfo:
    size: int
    prefix_offset: int
    prefix_size: int  # 24, plus the prefix extensions
    start_address: int
    end_address: int
    flags: int
    module_version: int
    platform_id: int
    module_function: ModuleFunction
    module_index: int
    dependencies: tuple[Dependency, ...]  # empty slots left out
    prefix_extensions: tuple[Extension, ...]
    suffix_size: int
    product_id: int | None  # None when the suffix has no product fields (before Device OS 0.4.3)
    product_version: int | None
    extensions: tuple[Extension, ...]  # in the suffix
    sha256: str  # hex, as stored
    computed_sha256: str
    stored_crc: int
    computed_crc: int

    @property
    def crc_ok(self) -> bool:
        return self.stored_crc == self.computed_crc

    @property
    def sha256_ok(self) -> bool:
        return self.sha256 == self.computed_sha256

    @property
    def ok(self) -> bool:
        return self.crc_ok and self.sha256_ok

    @property
    def module_function_name(self) -> str:
        return self.module_function.label

    @property
    def is_user_part(self) -> bool:
        return self.module_function == ModuleFunction.USER_PART

    @property
    def carries_product_id(self) -> bool:
        """Whether the product ID field holds a value at all (0 and 0xFFFF are "none")."""
        return self.product_id not in (None, 0, NO_PRODUCT)

    @property
    def system_version(self) -> int | None:
        """The system-part module version this module was built against (5301 for 5.3.1)."""
        versions = [d.version for d in self.dependencies if d.function == ModuleFunction.SYSTEM_PART]
        return max(versions, default=None)


def product_id_is_meaningful(info: ModuleInfo) -> bool:
    """Whether the product ID in the module says which product it was built for."""
    if not info.carries_product_id:
        return False
    system_version = info.system_version
    return system_version is None or system_version < DEVICE_OS_4_SYSTEM_VERSION


def parse_module(data: bytes | bytearray | memoryview, *, verify: bool = True) -> ModuleInfo:
    """Parse a module. With ``verify`` a CRC-32 or SHA-256 mismatch raises ``BinaryError``;
    without it the result carries ``crc_ok``/``sha256_ok`` for display."""
    view = memoryview(data).cast("B")
    size = len(view)
    if size == 0:
        raise BinaryError("The file is empty.")
    if size < MIN_MODULE_SIZE:
        raise BinaryError(f"The file is too short to be a firmware module ({size} bytes).")
    prefix_offset, prefix = _find_prefix(view)
    suffix_size = _suffix_size(view, prefix_offset)
    suffix_start = size - CRC_SIZE - suffix_size
    prefix_extensions: tuple[Extension, ...] = ()
    prefix_end = prefix_offset + PREFIX_SIZE
    if prefix.flags & ModuleFlag.PREFIX_EXTENSIONS:
        prefix_extensions, prefix_end = _prefix_extensions(view, prefix_end, suffix_start)
    product_id, product_version = _product_fields(view, suffix_size)
    stored_crc = int.from_bytes(view[size - CRC_SIZE :], "big")
    sha_start = size - CRC_SIZE - 2 - SHA256_SIZE
    info = ModuleInfo(
        size=size,
        prefix_offset=prefix_offset,
        prefix_size=prefix_end - prefix_offset,
        start_address=prefix.start_address,
        end_address=prefix.end_address,
        flags=prefix.flags,
        module_version=prefix.module_version,
        platform_id=prefix.platform_id,
        module_function=ModuleFunction(prefix.function),
        module_index=prefix.index,
        dependencies=prefix.dependencies(),
        prefix_extensions=prefix_extensions,
        suffix_size=suffix_size,
        product_id=product_id,
        product_version=product_version,
        extensions=_suffix_extensions(view, suffix_start, suffix_size),
        sha256=view[sha_start : sha_start + SHA256_SIZE].hex(),
        computed_sha256=hashlib.sha256(view[:sha_start]).hexdigest(),
        stored_crc=stored_crc,
        computed_crc=zlib.crc32(view[: size - CRC_SIZE]),
    )
    if verify:
        validate_module(info)
    return info


def validate_module(info: ModuleInfo) -> None:
    """Raise ``BinaryError`` when the module's checksums do not match its contents."""
    if not info.crc_ok:
        raise BinaryError(
            f"The CRC-32 does not match: stored 0x{info.stored_crc:08x}, computed "
            f"0x{info.computed_crc:08x}. The file is damaged or incomplete."
        )
    if not info.sha256_ok:
        raise BinaryError("The SHA-256 in the module does not match its contents.")


# --- Prefix -------------------------------------------------------------------------------------------

_PREFIX = struct.Struct("<IIBBHHBBBBHBBH")
_EXTENSION_HEADER = struct.Struct("<HH")
_PRODUCT_FIELDS = struct.Struct("<HH")


class _Prefix(NamedTuple):
    start_address: int
    end_address: int
    reserved: int
    flags: int
    module_version: int
    platform_id: int
    function: int
    index: int
    dep1_function: int
    dep1_index: int
    dep1_version: int
    dep2_function: int
    dep2_index: int
    dep2_version: int

    def raw_dependencies(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        return (
            (self.dep1_function, self.dep1_index, self.dep1_version),
            (self.dep2_function, self.dep2_index, self.dep2_version),
        )

    def dependencies(self) -> tuple[Dependency, ...]:
        return tuple(
            Dependency(ModuleFunction(function), index, version)
            for function, index, version in self.raw_dependencies()
            if function != ModuleFunction.NONE
        )

    @property
    def declared_size(self) -> int:
        return self.end_address - self.start_address + CRC_SIZE  # the end address points at the CRC

    def is_plausible(self) -> bool:
        """The checks every real prefix passes, whatever the file's length."""
        if self.start_address >= self.end_address:
            return False
        if not ModuleFunction.NONE < self.function <= max(ModuleFunction):
            return False
        for function, index, version in self.raw_dependencies():
            if function > max(ModuleFunction):
                return False
            if function == ModuleFunction.NONE and (index or version):
                return False
        return True


_FULL_SCORE = 4


def _score(prefix: _Prefix, size: int) -> int:
    """0 for no prefix; otherwise higher for a closer match, ``_FULL_SCORE`` for a sure one."""
    if not prefix.is_plausible() or prefix.declared_size > size:
        return 0
    return (
        1
        + (prefix.declared_size == size)  # modules are not padded unless combined
        + (prefix.flags & ~KNOWN_FLAGS == 0)
        + (prefix.platform_id in PLATFORMS)
    )


def _candidate_offsets(size: int) -> list[int]:
    last = min(MAX_PREFIX_OFFSET, size - MIN_MODULE_SIZE)
    preferred = [offset for offset in PREFERRED_PREFIX_OFFSETS if offset <= last]
    return preferred + [o for o in range(4, last + 1, 4) if o not in PREFERRED_PREFIX_OFFSETS]


def _find_prefix(view: memoryview) -> tuple[int, _Prefix]:
    size = len(view)
    best_score, best = 0, None
    for offset in _candidate_offsets(size):
        prefix = _Prefix._make(_PREFIX.unpack_from(view, offset))
        score = _score(prefix, size)
        if score == _FULL_SCORE:
            return offset, prefix
        if score > best_score:
            best_score, best = score, (offset, prefix)
    if best is not None:
        return best
    _raise_if_truncated(view)
    raise BinaryError("This is not a Particle firmware module: no module prefix was found.")


def _raise_if_truncated(view: memoryview) -> None:
    """A prefix at a usual place that claims more bytes than the file has means a cut-off upload."""
    size = len(view)
    for offset in PREFERRED_PREFIX_OFFSETS:
        if offset + PREFIX_SIZE > size:
            continue
        prefix = _Prefix._make(_PREFIX.unpack_from(view, offset))
        if prefix.is_plausible() and prefix.declared_size > size:
            raise BinaryError(
                f"The file is shorter than its module prefix says ({size} bytes, expected "
                f"{prefix.declared_size}): it may be truncated."
            )


# --- Suffix -------------------------------------------------------------------------------------------


def _suffix_size(view: memoryview, prefix_offset: int) -> int:
    size = len(view)
    (suffix_size,) = struct.unpack_from("<H", view, size - CRC_SIZE - 2)
    if suffix_size < MIN_SUFFIX_SIZE:
        raise BinaryError(
            f"The suffix size in the module ({suffix_size} bytes) is below the minimum of {MIN_SUFFIX_SIZE}."
        )
    room = size - CRC_SIZE - prefix_offset - PREFIX_SIZE
    if suffix_size > room:
        raise BinaryError(
            f"The suffix size in the module ({suffix_size} bytes) does not fit in the file "
            f"({size} bytes, {room} after the prefix)."
        )
    return suffix_size


def _product_fields(view: memoryview, suffix_size: int) -> tuple[int | None, int | None]:
    if suffix_size < PRODUCT_SUFFIX_SIZE:
        return None, None
    offset = len(view) - CRC_SIZE - PRODUCT_SUFFIX_SIZE
    product_id, product_version = _PRODUCT_FIELDS.unpack_from(view, offset)
    return product_id, product_version


def _suffix_extensions(view: memoryview, start: int, suffix_size: int) -> tuple[Extension, ...]:
    if suffix_size <= PRODUCT_SUFFIX_SIZE:
        return ()
    end = len(view) - CRC_SIZE - MIN_SUFFIX_SIZE  # where the reserved field begins
    extensions: list[Extension] = []
    offset = start
    while offset < end:
        # Without a PRODUCT_DATA record the last 4 bytes are the bare product fields, not a record.
        if offset == end - 4 and not any(e.type == ExtensionType.PRODUCT_DATA for e in extensions):
            break
        extension = _read_extension(view, offset, end, "suffix")
        if extension is None:
            break
        extensions.append(extension)
        offset += extension.length
        if extension.type == ExtensionType.END:
            break
    return tuple(extensions)


def _prefix_extensions(view: memoryview, start: int, end: int) -> tuple[tuple[Extension, ...], int]:
    """The records after the prefix, and the offset just past them."""
    extensions: list[Extension] = []
    offset = start
    while offset < end:
        extension = _read_extension(view, offset, end, "prefix")
        if extension is None:
            break
        extensions.append(extension)
        offset += extension.length
        if extension.type == ExtensionType.END:
            return tuple(extensions), offset
    raise BinaryError("The module's prefix extensions do not end with an END record.")


def _read_extension(view: memoryview, offset: int, end: int, where: str) -> Extension | None:
    """The record at ``offset``, which must end by ``end``; None for erased flash (type 0xFFFF)."""
    if offset + EXTENSION_HEADER_SIZE > end:
        raise BinaryError(f"The {where} extension at byte {offset} is cut off.")
    type_, length = _EXTENSION_HEADER.unpack_from(view, offset)
    if type_ == ExtensionType.INVALID:
        return None
    if length < EXTENSION_HEADER_SIZE or offset + length > end:
        raise BinaryError(f"The {where} extension at byte {offset} has an invalid length ({length}).")
    payload = bytes(view[offset + EXTENSION_HEADER_SIZE : offset + length])
    if type_ != ExtensionType.PRODUCT_DATA:
        return Extension(type=type_, offset=offset, length=length, payload=payload)
    if len(payload) < 6:
        raise BinaryError(f"The PRODUCT_DATA extension at byte {offset} is too short ({length} bytes).")
    # [u16 0xFFFF][u16 product ID][u16 product version], read as binary-version-reader reads it.
    product_id, product_version = _PRODUCT_FIELDS.unpack_from(payload, 2)
    return Extension(type_, offset, length, payload, product_id, product_version)
