"""Small helpers shared by the fact parsers."""

from __future__ import annotations

def first_line(text: str | None) -> str | None:
    if text is None:
        return None
    line = text.strip().split("\n", 1)[0].strip()
    return line or None


def int_or_none(text: str | None) -> int | None:
    line = first_line(text)
    try:
        return int(line) if line is not None else None
    except ValueError:
        return None
