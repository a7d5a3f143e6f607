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

    @property
    def exists(self) -> bool | None:
        """The presence of the input, three-valued: True when it was read (even in part), False
        only when the node said it does not exist (ENOENT), None for anything else (denied, not
        a regular file, not in the output, a dangling link): "could not tell" is never "absent"."""
        if self.ok:
            return True
        return False if self.status == "ENOENT" else None

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
            "EDUP": "appears twice in the probe output (not trusted)",
        }.get(self.status, self.status)
        return f"{self.name}: {msg}" + (f" ({self.detail})" if self.detail and self.status == "OPENERR" else "")


@dataclass
class Sections:
    """All sections of one probe run, by name, in output order."""

    by_name: dict[str, Section] = field(default_factory=dict)
    root: str = "/"
    boundary: str = ""  # the header's boundary; a caller that generated the nonce compares it
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


def _header_offsets(output: str) -> list[int]:
    """Where the lines that are probe headers start: every line that starts with the marker is
    matched, as in a line-by-line scan, but the lines are found with find()."""
    out: list[int] = []
    at = 0 if output.startswith("@@NODECHECK-") else None
    search = 0
    while True:
        if at is None:
            f = output.find("\n@@NODECHECK-", search)
            if f < 0:
                return out
            at = f + 1
        nl = output.find("\n", at)
        if _HEADER.match(output[at:nl if nl >= 0 else len(output)]):
            out.append(at)
        if nl < 0:
            return out
        search, at = nl, None


def parse(output: str) -> Sections:
    """Parse a probe run's stdout (already decoded, errors replaced).

    Lines are walked by offset and a section's body is taken with one find() of the END line
    (the body runs to the first line that starts with it): the same result as splitting every
    line, at a fraction of the cost for a 10k-line kernel config (issue 15)."""
    result = Sections()
    headers = _header_offsets(output)
    if not headers:
        result.problems.append("no probe header in the output (not a nodecheck probe, or it never started)")
        return result
    if len(headers) > 1:
        # One run prints one header. A second one is output forged around the probe (a forced
        # command, ~/.ssh/rc, a crafted file): trusting either could let the forgery override
        # the real sections, so the run is unreadable (probe-error, unknown), never scored.
        result.problems.append(f"{len(headers)} probe headers in the output (expected one): output not trusted")
        return result
    start = headers[0]
    n = len(output)
    pos = output.find("\n", start)
    pos = n + 1 if pos < 0 else pos + 1  # where the line after the header starts (n: an empty last line)
    m = _HEADER.match(output[start:pos - 1])
    boundary, result.version, result.root = m.group(1), int(m.group(2)), m.group(3)
    result.boundary = boundary
    begin, end, done = boundary + " BEGIN ", boundary + " END ", boundary + " DONE"

    current: tuple[str, str, str] | None = None
    body = ""
    stray = 0
    while pos <= n:
        eol = output.find("\n", pos)
        eol = n if eol < 0 else eol
        line = output[pos:eol]
        pos = eol + 1
        if current is None:
            if line.startswith(begin):
                rest = line[len(begin):]
                if rest.endswith(" ok"):
                    # A read section: the name is everything before the status, spaces included,
                    # so a file called "os-release ok x" cannot pose as section "os-release".
                    parts = [rest[:-3], "ok"]
                else:
                    parts = rest.split(" ", 2)
                name = parts[0]
                status = parts[1] if len(parts) > 1 else "OPENERR"
                detail = parts[2] if len(parts) > 2 else ""
                if status == "OPENERR":
                    status = _status_from_open_error(detail)
                current = (name, status, detail)
                # The body: every line up to the first that starts with END (or the end of output).
                k = output.find("\n" + end, eol) if eol < n else -1
                body = output[eol + 1:k] if k >= 0 else output[eol + 1:]
                pos = k + 1 if k >= 0 else n + 1
            elif line == done:
                result.done = True
            elif line.strip():
                # Counted, not listed without end: 20 MB of junk must not become 20 MB of problems.
                stray += 1
                if stray <= 20:
                    result.problems.append(f"unexpected line outside a section: {line[:80]!r}")
            continue
        if line.startswith(end):
            name, status, detail = current
            # `END <name> <rc> <cap>`: the numbers are the last two fields (a name may hold spaces);
            # more than 6 digits is no exit code or cap, and int() of 5000 digits is slow.
            parts = line[len(end):].rsplit(" ", 2)
            rc = 0 if len(parts) < 3 or not parts[-2].lstrip("-").isdigit() else (
                int(parts[-2]) if len(parts[-2]) < 7 else 1)  # absurd: treat the read as failed
            # A cap written `N+` means the probe cut the input of a filter (grep, awk, sed) there:
            # the text is what the head of the file gave, whatever its length.
            cap_s = parts[-1] if len(parts) > 2 else ""
            cut = cap_s.endswith("+")
            cap_s = cap_s.removesuffix("+")
            cap = int(cap_s) if cap_s.isdigit() and len(cap_s) < 7 else 0
            # The probe prints one newline between the content and END: the body stops before
            # it, so it is the content exactly.
            text = body
            # Decoding replaced bad bytes with U+FFFD (3 bytes), so this never under-counts.
            capped = cut or (bool(cap) and len(text.encode("utf-8", "replace")) >= cap * 4096)
            if name in result.by_name:
                # The probe reads each input once: a second section of the same name is forged
                # or garbled, and neither copy can be trusted.
                result.problems.append(f"section {name[:80]!r} appears twice: not trusted")
                result.by_name[name] = Section(name=name, status="EDUP")
            else:
                result.by_name[name] = Section(
                    name=name, status=status, text=text if status == "ok" else None,
                    detail=detail, rc=rc, capped=capped,
                )
            current = None
    if stray > 20:
        result.problems.append(f"... and {stray - 20} more unexpected lines outside sections")
    if current is not None:
        name, status, detail = current
        result.by_name[name] = Section(
            name=name, status=status, text=body if status == "ok" else None,
            detail=detail, truncated=True,
        )
        result.problems.append(f"output ended inside section {name!r}")
    if not result.done:
        result.problems.append("probe did not finish (no DONE line): facts from missing sections are unknown")
    return result
