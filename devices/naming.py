"""Device names, by Particle's rules: letters, digits, underscores and hyphens, up to 63
characters, unique per owner. New devices get a friendly ``adjective_animal`` name."""

from __future__ import annotations

import re
import secrets

MAX_NAME_LENGTH = 63
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,63}$")

_ADJECTIVES = (
    "amber",
    "brave",
    "calm",
    "clever",
    "cosmic",
    "crimson",
    "dapper",
    "eager",
    "fancy",
    "fuzzy",
    "gentle",
    "golden",
    "happy",
    "jolly",
    "keen",
    "lively",
    "lucky",
    "mellow",
    "nimble",
    "noble",
    "plucky",
    "quick",
    "quiet",
    "rapid",
    "rusty",
    "shiny",
    "silly",
    "snappy",
    "sunny",
    "swift",
    "tidy",
    "velvet",
    "witty",
    "zesty",
)
_ANIMALS = (
    "alpaca",
    "badger",
    "beaver",
    "bison",
    "cobra",
    "coyote",
    "crane",
    "dingo",
    "falcon",
    "ferret",
    "gecko",
    "heron",
    "ibex",
    "jackal",
    "koala",
    "lemur",
    "lynx",
    "marmot",
    "moose",
    "narwhal",
    "ocelot",
    "otter",
    "panda",
    "pelican",
    "quokka",
    "raccoon",
    "salmon",
    "tapir",
    "toucan",
    "turtle",
    "walrus",
    "wombat",
    "yak",
    "zebra",
)


def name_error(name: str) -> str | None:
    """Why ``name`` is not a valid device name, or None."""
    if not name:
        return "A device name cannot be empty."
    if len(name) > MAX_NAME_LENGTH:
        return f"Device names are at most {MAX_NAME_LENGTH} characters; this one has {len(name)}."
    if not NAME_PATTERN.fullmatch(name):
        return "Device names may contain only letters, digits, underscores and hyphens."
    if re.fullmatch(r"[0-9a-fA-F]{24}", name):
        return "A device name cannot look like a device ID."
    return None


def friendly_name() -> str:
    return f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_ANIMALS)}"
