"""Split the probe's output into sections: the raw text every parser starts from.

Pure: text in, `Sections` out. It never raises on bad input; a truncated or garbled
stream yields the sections that were complete plus `problems` saying what was wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HEADER = re.compile(r"^(@@NODECHECK-[A-Za-z0-9_]+@@) PROBE (\d+) root=(.*)$")

@dataclass(frozen=True)
class Section:
    """One probed input. `text` is None unless the read succeeded (status "ok")."""

    name: str
    status: str  # ok, or an errno name (ENOENT, EACCES, ...), ENOTREG, ENOCMD, ...
    text: str | None = None
    detail: str = ""  # the shell's message for OPENERR
    rc: int = 0  # exit code of the read: non-zero means the text may be partial
    truncated: bool = False  # the stream ended inside this section
    capped: bool = False  # the file was longer than the probe's size cap: text is its head

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.text is not None

    @property
    def complete(self) -> bool:
        return self.ok and self.rc == 0 and not self.truncated and not self.capped

    def why(self) -> str:
        """A short reason for a section that is not usable, for 'unknown' findings."""
        if self.truncated:
            return f"{self.name}: output ended early (probe killed or stream cut)"
        if self.capped:
            return f"{self.name}: larger than the probe's size cap (only its head was read)"
        if self.status == "ok" and self.rc:
            return f"{self.name}: read failed part-way (exit {self.rc})"
        if self.status == "ok":
            return f"{self.name}: ok"
        msg = {
            "ENOENT": "does not exist",
            "ENOENT_DANGLING": "is a dangling symlink",
            "EACCES": "permission denied",
            "EPERM": "operation not permitted",
            "ENOTREG": "is not a regular file (not opened)",
            "EISDIR": "is a directory",
            "ENOCMD": "command not installed",
            "ENOGZIP": "gzip not installed",
            "MISSING": "not in the probe output",
        }.get(self.status, self.status)
        return f"{self.name}: {msg}" + (f" ({self.detail})" if self.detail and self.status == "OPENERR" else "")


@dataclass
class Sections:
    """All sections of one probe run, by name, in output order."""

    by_name: dict[str, Section] = field(default_factory=dict)
    root: str = "/"
    version: int = 0
    done: bool = False  # the probe printed its final DONE line
    problems: list[str] = field(default_factory=list)

    def get(self, name: str) -> Section:
        return self.by_name.get(name) or Section(name=name, status="MISSING")

    def text(self, name: str) -> str | None:
        s = self.by_name.get(name)
        return s.text if s and s.ok else None

    def names(self) -> list[str]:
        return list(self.by_name)


# Shells word the same errno differently (dash: "No such file"; busybox and bash:
# "No such file or directory"), so match on the stable part of each message.
_OPEN_ERRORS = (
    ("permission denied", "EACCES"), ("no such file", "ENOENT"), ("not a directory", "ENOTDIR"),
    ("operation not permitted", "EPERM"), ("input/output error", "EIO"), ("stale", "ESTALE"),
    ("too many levels of symbolic links", "ELOOP"), ("is a directory", "EISDIR"),
    ("no such device", "ENODEV"), ("timed out", "ETIMEDOUT"),
)


def _status_from_open_error(detail: str) -> str:
    low = detail.lower()
    for text, name in _OPEN_ERRORS:
        if text in low:
            return name
    return "OPENERR"


def parse(output: str) -> Sections:
    """Parse a probe run's stdout (already decoded, errors replaced)."""
    result = Sections()
    lines = output.split("\n")
    start = next((i for i, l in enumerate(lines) if _HEADER.match(l)), None)
    if start is None:
        result.problems.append("no probe header in the output (not a nodecheck probe, or it never started)")
        return result
    m = _HEADER.match(lines[start])
    boundary, result.version, result.root = m.group(1), int(m.group(2)), m.group(3)
    begin, end, done = boundary + " BEGIN ", boundary + " END ", boundary + " DONE"

    current: tuple[str, str, str] | None = None
    body: list[str] = []
    for line in lines[start + 1:]:
        if current is None:
            if line.startswith(begin):
                parts = line[len(begin):].split(" ", 2)
                name = parts[0]
                status = parts[1] if len(parts) > 1 else "OPENERR"
                detail = parts[2] if len(parts) > 2 else ""
                if status == "OPENERR":
                    status = _status_from_open_error(detail)
                current, body = (name, status, detail), []
            elif line == done:
                result.done = True
            elif line.strip():
                result.problems.append(f"unexpected line outside a section: {line[:80]!r}")
            continue
        if line.startswith(end):
            name, status, detail = current
            parts = line[len(end):].split(" ")
            rc = int(parts[1]) if len(parts) > 1 and parts[1].lstrip("-").isdigit() else 0
            cap = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 0
            # The probe prints one newline between the content and END: the line split
            # consumed it, so joining the body gives back the content exactly.
            text = "\n".join(body)
            # Decoding replaced bad bytes with U+FFFD (3 bytes), so this never under-counts.
            capped = bool(cap) and len(text.encode("utf-8", "replace")) >= cap * 4096
            result.by_name[name] = Section(
                name=name, status=status, text=text if status == "ok" else None,
                detail=detail, rc=rc, capped=capped,
            )
            current = None
        else:
            body.append(line)
    if current is not None:
        name, status, detail = current
        result.by_name[name] = Section(
            name=name, status=status, text="\n".join(body) if status == "ok" else None,
            detail=detail, truncated=True,
        )
        result.problems.append(f"output ended inside section {name!r}")
    if not result.done:
        result.problems.append("probe did not finish (no DONE line): facts from missing sections are unknown")
    return result
