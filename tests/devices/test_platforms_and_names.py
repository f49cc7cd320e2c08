"""Device names (Particle's rules) and platforms: table-driven."""

from __future__ import annotations

import pytest

from console.platforms import PLATFORMS, PLATFORMS_BY_SLUG, platform_from_string, platform_get, platform_name
from devices import naming


# --- naming.name_error ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "a",
        "kitchen",
        "Kitchen_Light-2",
        "x" * 63,
        "0123456789",
        "_-_",
        "0123456789abcdef0123456",  # 23 hex characters: not an ID
        "0123456789abcdef012345678",  # 25
        "0123456789abcdef0123456g",  # 24, not all hex
    ],
)
def test_valid_names(name):
    assert naming.name_error(name) is None


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "A device name cannot be empty."),
        ("x" * 64, "Device names are at most 63 characters; this one has 64."),
        ("x" * 200, "Device names are at most 63 characters; this one has 200."),
        ("my device", "Device names may contain only letters, digits, underscores and hyphens."),
        ("caf\u00e9", "Device names may contain only letters, digits, underscores and hyphens."),
        ("a.b", "Device names may contain only letters, digits, underscores and hyphens."),
        ("a/b", "Device names may contain only letters, digits, underscores and hyphens."),
        ("kitchen\n", "Device names may contain only letters, digits, underscores and hyphens."),
        ("0123456789abcdef01234567", "A device name cannot look like a device ID."),
        ("0123456789ABCDEF01234567", "A device name cannot look like a device ID."),
    ],
)
def test_invalid_names_say_why(name, message):
    assert naming.name_error(name) == message


def test_friendly_names_are_valid_adjective_animal_names():
    names = {naming.friendly_name() for _ in range(200)}
    assert len(names) > 50
    for name in names:
        adjective, animal = name.split("_")
        assert adjective in naming._ADJECTIVES
        assert animal in naming._ANIMALS
        assert naming.name_error(name) is None


# --- Platforms ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "platform_id"),
    [
        ("electron", 10),
        ("ELECTRON", 10),
        ("  boron ", 13),
        ("13", 13),
        ("0", 0),
        ("Photon 2 / P2", 32),
        ("p2", 32),
        ("E-SoM-X", 15),
        ("esomx", 15),
        ("tracker m", 28),
        ("linux", 43),
    ],
)
def test_platform_from_string(value, platform_id):
    assert platform_from_string(value).id == platform_id


@pytest.mark.parametrize("value", ["", "99", "-1", "photon3", "10.0", "bor"])
def test_unknown_platform_names_the_choices(value):
    with pytest.raises(ValueError, match="choose one of: argon, b5som, boron") as error:
        platform_from_string(value)
    assert repr(value) in str(error.value)


@pytest.mark.parametrize(
    ("platform_id", "name"),
    [(0, "Core"), (6, "Photon"), (10, "Electron"), (13, "Boron"), (32, "Photon 2 / P2"), (99, "Platform 99")],
)
def test_platform_name(platform_id, name):
    assert platform_name(platform_id) == name


def test_platform_name_and_get_of_none():
    assert platform_name(None) == "Platform None"
    assert platform_get(None) is None
    assert platform_get(99) is None


def test_platform_table_is_consistent():
    assert set(PLATFORMS_BY_SLUG) == {p.slug for p in PLATFORMS.values()}
    assert len({p.serial_prefix for p in PLATFORMS.values()}) == len(PLATFORMS)
    for platform_id, platform in PLATFORMS.items():
        assert platform.id == platform_id
        assert platform.icon == ("cell" if platform.cellular else "wifi")
        assert platform_from_string(platform.slug) is platform
        assert platform_from_string(str(platform.id)) is platform
    cellular = {p.slug for p in PLATFORMS.values() if p.cellular}
    assert {"electron", "boron", "bsom", "b5som", "tracker", "msom"} <= cellular
    assert not cellular & {"core", "photon", "p1", "argon", "p2", "linux"}
