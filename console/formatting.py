"""Values written for people, shared by every app's pages."""

from __future__ import annotations


def size_text(size: int) -> str:
    """Bytes for people: "812 bytes", "1.5 KB", "12 KB" (as static/js/quanta.js writes them)."""
    value, unit = float(size), "bytes"
    for larger in ("KB", "MB", "GB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    if unit == "bytes":
        return f"{size} byte{'' if size == 1 else 's'}"
    number = round(value) if value >= 10 else round(value, 1)
    return f"{number:g}\u00a0{unit}"
