"""Distribution, parsed by the `distro` library in its root-dir mode.

`distro` reads files, so the probe's copies of os-release and the *-release files are
written to a private temporary root first (pyinfra does the same). Nothing of the
machine running the parser is consulted: `include_lsb` and `include_uname` are off.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field

import distro as _distro

from ..sections import Sections

_FILES_PREFIX = ("/etc/", "/usr/lib/os-release")


@dataclass
class DistroFacts:
    id: str | None = None
    version_id: str | None = None
    name: str | None = None
    codename: str | None = None
    like: list[str] = field(default_factory=list)
    pretty_name: str | None = None
    variant_id: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @property
    def version_tuple(self) -> tuple[int, ...]:
        out = []
        for p in (self.version_id or "").split("."):
            if not p.isdigit():
                break
            out.append(int(p))
        return tuple(out)


def _safe_name(path: str) -> str | None:
    # Only plain names under /etc (or /usr/lib/os-release) may be written to the temp root.
    if path == "/usr/lib/os-release":
        return "usr/lib/os-release"
    if path.startswith("/etc/") and "/" not in path[5:] and path[5:] not in ("", ".", ".."):
        return "etc/" + path[5:]
    return None


MAX_LINES, MAX_LINE = 200, 4096


def _bounded(text: str) -> str:
    """A real os-release / *-release file is a few dozen short lines. `distro` tokenises with
    shlex, which is superlinear on megabytes of junk (1 MiB: 20 s), so only the first
    MAX_LINES lines of at most MAX_LINE characters are handed to it: no real key is dropped,
    and parsing stays bounded whatever the node holds."""
    lines = []
    for line in text.split("\n", MAX_LINES)[:MAX_LINES]:
        if len(line) <= MAX_LINE:
            lines.append(line)
    return "\n".join(lines)


def parse(sections: Sections) -> DistroFacts:
    files = {}
    for name in sections.names():
        rel = _safe_name(name)
        text = sections.text(name)
        if rel and text is not None:
            files[rel] = _bounded(text)
    if not files:
        return DistroFacts(reason=(
            "no os-release or *-release file readable: "
            + "; ".join(sections.get(n).why() for n in ("/etc/os-release", "/usr/lib/os-release"))))
    with tempfile.TemporaryDirectory(prefix="nodecheck-distro-") as root:
        for rel, text in files.items():
            p = os.path.join(root, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w", encoding="utf-8", errors="replace") as fh:
                fh.write(text if text.endswith("\n") else text + "\n")
        try:
            d = _distro.LinuxDistribution(include_lsb=False, include_uname=False,
                                          include_oslevel=False, root_dir=root)
            info = d.info()
            osr = d.os_release_info()
        except Exception as exc:  # noqa: BLE001 - a bad file must give unknown, not a crash
            return DistroFacts(reason=f"distro files unreadable: {exc}")
    facts = DistroFacts(
        id=d.id() or None,
        version_id=osr.get("version_id") or info.get("version") or None,
        name=d.name() or None,
        codename=info.get("codename") or None,
        like=(d.like() or "").split(),
        pretty_name=d.name(pretty=True) or None,
        variant_id=osr.get("variant_id") or None,
    )
    if not facts.id:
        facts.reason = "distribution files present but no ID in them"
    return facts
