"""Particle's published platform ids (the ``PLATFORM_ID`` compiled into Device OS)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    id: int
    slug: str
    name: str
    generation: int  # 0 when Particle gives none (Linux, Tachyon)
    cellular: bool
    serial_prefix: str

    @property
    def icon(self) -> str:
        return "cell" if self.cellular else "wifi"


PLATFORMS: dict[int, Platform] = {
    p.id: p
    for p in (
        Platform(0, "core", "Core", 1, False, "COR"),
        Platform(6, "photon", "Photon", 2, False, "PHH"),
        Platform(8, "p1", "P1", 2, False, "P1H"),
        Platform(10, "electron", "Electron", 2, True, "E40"),
        Platform(12, "argon", "Argon", 3, False, "ARH"),
        Platform(13, "boron", "Boron", 3, True, "B40"),
        Platform(14, "xenon", "Xenon", 3, False, "XEN"),
        Platform(15, "esomx", "E-SoM-X", 3, True, "ESX"),
        Platform(23, "bsom", "B-SoM", 3, True, "P00"),
        Platform(25, "b5som", "B5-SoM", 3, True, "B5S"),
        Platform(26, "tracker", "Tracker", 3, True, "T40"),
        Platform(28, "trackerm", "Tracker M", 3, True, "TKM"),
        Platform(32, "p2", "Photon 2 / P2", 4, False, "P2H"),
        Platform(35, "msom", "M-SoM", 4, True, "MSM"),
        Platform(37, "electron2", "Electron 2", 3, True, "EL2"),
        Platform(38, "sulu", "Sulu", 4, True, "SUL"),
        Platform(42, "tachyon", "Tachyon", 0, True, "TAC"),
        Platform(43, "linux", "Linux", 0, False, "LNX"),
    )
}
PLATFORMS_BY_SLUG: dict[str, Platform] = {p.slug: p for p in PLATFORMS.values()}
MAX_PLATFORM_ID = max(PLATFORMS)


def platform_get(platform_id: int | None) -> Platform | None:
    return PLATFORMS.get(platform_id) if platform_id is not None else None


def platform_name(platform_id: int | None) -> str:
    platform = platform_get(platform_id)
    return platform.name if platform else f"Platform {platform_id}"


def platform_from_string(value: str) -> Platform:
    """A platform by slug (``electron``), name or numeric id; ``ValueError`` names the choices."""
    text = value.strip().lower()
    if text.isdigit() and int(text) in PLATFORMS:
        return PLATFORMS[int(text)]
    for platform in PLATFORMS.values():
        if text in {platform.slug, platform.name.lower()}:
            return platform
    choices = ", ".join(sorted(PLATFORMS_BY_SLUG))
    raise ValueError(f"Unknown platform {value!r}; choose one of: {choices}.")
