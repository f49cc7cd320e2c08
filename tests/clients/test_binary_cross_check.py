"""``firmware.binary`` and ``firmware.encoder`` against Particle's own module tools.

binary-version-reader 3.1.3 (what particle-cli 3.43.1 uses) reads the binaries our encoder makes,
our parser reads the binaries its test helper makes, and `particle binary inspect` shows what our
parser reads. No server is involved.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from firmware.binary import ExtensionType, ModuleFunction, ModuleInfo, parse_module
from firmware.encoder import build_module
from tests.clients.conftest import CLIENTS_DIR, COMMAND_TIMEOUT, NODE_MODULES, ParticleCLI
from tests.conftest import require_or_skip

pytestmark = pytest.mark.clients

READER_SCRIPT = CLIENTS_DIR / "scripts" / "binary_version_reader.js"
READER_VERSION = "3.1.3"

SYSTEM_PART = ModuleFunction.SYSTEM_PART
ASSET = (ExtensionType.ASSET_DEPENDENCY, b"\x00\x20" + bytes(range(32)) + b"cat.txt")

ENCODED = {
    "argon product": {
        "platform_id": 12,
        "product_id": 1042,
        "product_version": 3,
        "dependencies": [(SYSTEM_PART, 1, 6200)],
    },
    "not a product": {"platform_id": 13, "dependencies": [(SYSTEM_PART, 1, 1213)], "payload_size": 3000},
    "no product fields": {"platform_id": 6, "product_fields": False, "dependencies": [(SYSTEM_PART, 2, 1)]},
    "gen 2 vector table": {
        "platform_id": 10,
        "product_id": 8178,
        "product_version": 13,
        "vector_table": True,
        "start_address": 0x08080000,
        "dependencies": [(SYSTEM_PART, 2, 1201)],
    },
    "gen 3 system part": {
        "platform_id": 26,
        "module_function": SYSTEM_PART,
        "module_index": 1,
        "module_version": 6200,
        "vector_table": True,
        "dependencies": [(ModuleFunction.BOOTLOADER, 0, 2300), (ModuleFunction.RADIO_STACK, 0, 202)],
    },
    "p2 layout": {
        "platform_id": 32,
        "product_id": 1042,
        "product_version": 0xBEEF,
        "extensions": [(ExtensionType.DYNAMIC_LOCATION, bytes(range(12)))],
        "product_data_extension": True,
        "dependencies": [(SYSTEM_PART, 1, 5301)],
    },
    "suffix assets": {"platform_id": 26, "product_id": 1001, "product_version": 2, "extensions": [ASSET]},
    "prefix extensions": {
        "platform_id": 32,
        "product_id": 1042,
        "product_version": 5,
        "prefix_extensions": [ASSET],
    },
    "empty payload": {"platform_id": 12, "product_id": 1042, "product_version": 1, "payload": b""},
}

CREATED = {
    "argon": {
        "productId": 1042,
        "productVersion": 3,
        "platformId": 12,
        "deps": [{"func": 4, "index": 1, "version": 6200}],
    },
    "photon vector table": {
        "productId": 0xFFFF,
        "productVersion": 0xFFFF,
        "platformId": 6,
        "addVectorTable": True,
    },
    "gen 3 vector table, two dependencies": {
        "productId": 5,
        "productVersion": 0xFFFF,
        "platformId": 32,
        "addVectorTable": True,
        "vectorTableSize": 0x200,
        "moduleFunction": 4,
        "moduleIndex": 1,
        "moduleVersion": 6200,
        "moduleStartAddress": 0x085F4000,
        "dataSize": 4096,
        "deps": [{"func": 2, "index": 0, "version": 2300}, {"func": 8, "index": 0, "version": 202}],
    },
    "no data": {
        "productId": 8178,
        "productVersion": 13,
        "platformId": 10,
        "moduleStartAddress": 0x08080000,
        "dataSize": 0,
    },
}


@pytest.fixture(scope="module", autouse=True)
def _reader_installed() -> None:
    require_or_skip(
        (NODE_MODULES / "binary-version-reader").is_dir(),
        "binary-version-reader is not installed: run `npm ci` in tests/clients",
    )


def reader(command: str, payload: list[Any]) -> list[Any]:
    completed = subprocess.run(
        ["node", str(READER_SCRIPT), command],
        cwd=CLIENTS_DIR,
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert completed.returncode == 0, f"node failed:\n{completed.stdout}\n{completed.stderr}"
    return json.loads(completed.stdout)


def assert_agree(ours: ModuleInfo, theirs: dict[str, Any]) -> None:
    """Field by field, in binary-version-reader's terms."""
    assert theirs["version"] == READER_VERSION
    crc, prefix, suffix = theirs["crc"], theirs["prefixInfo"], theirs["suffixInfo"]
    assert crc == {
        "ok": ours.crc_ok,
        "storedCrc": f"{ours.stored_crc:08x}",
        "actualCrc": f"{ours.computed_crc:08x}",
    }
    assert prefix["prefixOffset"] == ours.prefix_offset
    assert prefix["prefixSize"] == ours.prefix_size
    assert prefix["moduleStartAddy"] == f"{ours.start_address:x}"
    assert prefix["moduleEndAddy"] == f"{ours.end_address:x}"
    assert prefix["moduleFlags"] == ours.flags
    assert prefix["platformID"] == ours.platform_id
    assert prefix["moduleFunction"] == ours.module_function
    assert prefix["moduleIndex"] == ours.module_index
    assert prefix["moduleVersion"] == ours.module_version
    slots = [*ours.dependencies, (0, 0, 0), (0, 0, 0)][:2]
    assert [
        (prefix["depModuleFunction"], prefix["depModuleIndex"], prefix["depModuleVersion"]),
        (prefix["dep2ModuleFunction"], prefix["dep2ModuleIndex"], prefix["dep2ModuleVersion"]),
    ] == [tuple(slot) for slot in slots]
    assert suffix["productId"] == (-1 if ours.product_id is None else ours.product_id)
    assert suffix["productVersion"] == (-1 if ours.product_version is None else ours.product_version)
    assert suffix["fwUniqueId"] == ours.sha256
    assert suffix["suffixSize"] == ours.suffix_size
    assert records(suffix.get("extensions", [])) == records(ours.extensions)
    assert records(prefix.get("extensions", [])) == records(ours.prefix_extensions)


def records(extensions: list[Any] | tuple[Any, ...]) -> list[tuple[int, int, int, int | None, int | None]]:
    """(type, offset, length, product id, product version) of each extension, ours or theirs."""
    rows = []
    for extension in extensions:
        if isinstance(extension, dict):
            row = (extension["type"], extension["offset"], extension["length"])
            product = (extension.get("productId"), extension.get("productVersion"))
        else:
            row = (extension.type, extension.offset, extension.length)
            product = (extension.product_id, extension.product_version)
        rows.append((*row, *product))
    return rows


def test_binary_version_reader_reads_our_binaries_as_we_do(tmp_path: Path):
    paths = []
    for number, options in enumerate(ENCODED.values()):
        path = tmp_path / f"encoded-{number}.bin"
        path.write_bytes(build_module(**options))
        paths.append(path)

    results = reader("parse", [str(path) for path in paths])

    for name, path, theirs in zip(ENCODED, paths, results, strict=True):
        ours = parse_module(path.read_bytes())
        assert theirs["crc"]["ok"], name
        assert_agree(ours, theirs)


def test_what_binary_version_reader_reads_matches_what_we_encoded(tmp_path: Path):
    """Not only do both parsers agree: they read back the values the encoder was given."""
    options = ENCODED["gen 2 vector table"]
    path = tmp_path / "electron.bin"
    path.write_bytes(build_module(**options))

    (theirs,) = reader("parse", [str(path)])

    assert theirs["prefixInfo"]["prefixOffset"] == 0x184
    assert theirs["prefixInfo"]["platformID"] == 10
    assert (theirs["suffixInfo"]["productId"], theirs["suffixInfo"]["productVersion"]) == (8178, 13)
    assert theirs["prefixInfo"]["moduleStartAddy"] == "8080000"


def test_we_read_binaries_made_by_binary_version_reader(tmp_path: Path):
    requests = [
        {"path": str(tmp_path / f"created-{n}.bin"), "options": o} for n, o in enumerate(CREATED.values())
    ]
    reader("create", requests)
    results = reader("parse", [request["path"] for request in requests])

    for options, request, theirs in zip(CREATED.values(), requests, results, strict=True):
        ours = parse_module(Path(request["path"]).read_bytes())
        assert_agree(ours, theirs)
        assert ours.ok
        assert ours.platform_id == options["platformId"]
        assert (ours.product_id, ours.product_version) == (options["productId"], options["productVersion"])
        assert ours.prefix_offset == (
            options.get("vectorTableSize", 388) if options.get("addVectorTable") else 0
        )
        assert ours.module_function == options.get("moduleFunction", ModuleFunction.USER_PART)
        deps = [(d["func"], d["index"], d["version"]) for d in options.get("deps", [])]
        assert list(ours.dependencies) == deps


def test_particle_binary_inspect_shows_what_we_read(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    path = tmp_path / "app.bin"
    path.write_bytes(build_module(**ENCODED["p2 layout"]))
    info = parse_module(path.read_bytes())
    cli = ParticleCLI(home, api_url="http://127.0.0.1:9")  # inspect works offline; the URL is unused

    result = cli.run("binary", "inspect", str(path))

    assert result.exit_code == 0, result.output
    assert [line.strip() for line in result.stdout.splitlines()] == [
        "app.bin",
        f"CRC is ok ({info.computed_crc:08x})",
        "Compiled for p2",
        "This is an application module number 1 at version 6",
        f"It has a UUID of {info.sha256}",
        "It is firmware for product id 1042 at version 48879",
        "It depends on a system module number 1 at version 5301",
    ]


def test_particle_binary_inspect_sees_the_damage_we_see(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    data = bytearray(build_module(**ENCODED["argon product"]))
    data[200] ^= 0x01
    path = tmp_path / "damaged.bin"
    path.write_bytes(data)
    info = parse_module(bytes(data), verify=False)
    cli = ParticleCLI(home, api_url="http://127.0.0.1:9")

    result = cli.run("binary", "inspect", str(path))

    assert not info.crc_ok
    expected = f"CRC failed (should be {info.stored_crc:08x} but is {info.computed_crc:08x})"
    assert expected in result.stdout, result.output
