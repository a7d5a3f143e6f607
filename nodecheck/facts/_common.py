"""Small helpers shared by the fact parsers."""

from __future__ import annotations

from ..sections import Section, Sections


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


def unreadable(sections: Sections, *names: str) -> str:
    """Why none of the named sections gave usable text, for an unknown fact."""
    return "; ".join(sections.get(n).why() for n in names)


def section_text(s: Section) -> str | None:
    return s.text if s.ok else None
