"""Kernel build configuration: tri-state per option, and unknown when no config was found.

"Config not found" is unknown, never "absent": kubeadm and check-config.sh users lost
days to tools that conflated the two (peers.md §1, §2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..sections import Sections

_LINE = re.compile(r"^CONFIG_([A-Za-z0-9_]+)=(.*)$")

BUILTIN, MODULE, ABSENT = "y", "m", "n"


@dataclass
class KconfigFacts:
    source: str | None = None  # the path the config came from
    options: dict[str, str] = field(default_factory=dict)
    searched: list[str] = field(default_factory=list)
    reason: str | None = None  # set when no config was readable: every option is unknown

    @property
    def known(self) -> bool:
        return self.source is not None

    def get(self, name: str) -> str | None:
        """'y', 'm', 'n' (not set), or None when the config is unknown."""
        name = name.removeprefix("CONFIG_")
        if not self.known:
            return None
        v = self.options.get(name)
        if v is None or v == "n":
            return ABSENT
        if v == "m":
            return MODULE
        return BUILTIN  # y, or a value for non-bool options

    def to_dict(self) -> dict:
        return {"source": self.source, "searched": self.searched, "reason": self.reason,
                "options": self.options}


# A whole-text scan for the common case (ASCII, lines without surrounding whitespace, only \n
# line ends), where it gives exactly what the per-line loop gives at a third of the cost: a
# config is ~10k lines, the biggest part of a node's controller CPU (issue 15).
_LINES = re.compile(r"^CONFIG_([A-Za-z0-9_]+)=(.*)$", re.M)
_ODD = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f")  # line ends splitlines() knows


def parse_config(text: str) -> dict[str, str]:
    """`CONFIG_X=y` lines into {X: y}; quotes kept as written; anything else ignored."""
    if text.isascii() and not any(c in text for c in _ODD) and text[:1] not in (" ", "\t") \
            and "\n " not in text and "\n\t" not in text:
        pairs = _LINES.findall(text)
        if not any(v.endswith((" ", "\t")) for _, v in pairs):
            return dict(pairs)
    out = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def parse(sections: Sections) -> KconfigFacts:
    f = KconfigFacts()
    for name in sections.names():
        if not name.startswith("kconfig:"):
            continue
        s = sections.get(name)
        path = name[len("kconfig:"):]
        f.searched.append(path)
        if s.ok:
            if not s.complete:
                # Partial configs would make missing options look absent (a capped one, a gzip
                # bomb cut at the cap, a read that failed part-way).
                f.reason = s.why()
                continue
            opts = parse_config(s.text or "")
            if not opts:
                f.reason = f"{path}: no CONFIG_ lines (empty or not a kernel config)"
                continue
            f.source, f.options, f.reason = path, opts, None
            return f
    if f.reason is None:
        f.reason = ("no kernel config found (looked in " + ", ".join(f.searched) + ")"
                    if f.searched else "the probe did not look for a kernel config")
    return f
