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

    # parse() keeps the config's text and leaves `options` unset: scoring reads three options of
    # ~10k, and building the whole dict was most of a node's controller CPU (issue 15). The
    # first read of `options` (to_dict, a snapshot, equality) builds it from the text.
    def __getattr__(self, name: str):
        if name == "options" and "_text" in self.__dict__:
            self.options = parse_config(self.__dict__["_text"])
            return self.options
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def known(self) -> bool:
        return self.source is not None

    def get(self, name: str) -> str | None:
        """'y', 'm', 'n' (not set), or None when the config is unknown."""
        name = name.removeprefix("CONFIG_")
        if not self.known:
            return None
        d = self.__dict__
        if "options" in d:
            v = d["options"].get(name)
        else:  # checks ask per release: each option is looked up in the text once
            seen = d.setdefault("_seen", {})
            v = seen[name] if name in seen else seen.setdefault(name, config_value(d["_text"], name))
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


def _plain(text: str) -> bool:
    """Text where the whole-text scan gives what the per-line loop gives: ASCII, only \\n line
    ends, no line with leading whitespace and none with trailing whitespace."""
    return (text.isascii() and not any(c in text for c in _ODD) and text[:1] not in (" ", "\t")
            and "\n " not in text and "\n\t" not in text)


def parse_config(text: str) -> dict[str, str]:
    """`CONFIG_X=y` lines into {X: y}; quotes kept as written; anything else ignored."""
    if _plain(text):
        pairs = _LINES.findall(text)
        if not any(v.endswith((" ", "\t")) for _, v in pairs):
            return dict(pairs)
    out = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


_NAME = re.compile(r"[A-Za-z0-9_]+")
_ANY = re.compile(r"^[ \t]*CONFIG_[A-Za-z0-9_]+=", re.M)


def _scannable(text: str) -> bool:
    """ASCII with \\n as the only line end splitlines() knows: the per-line loop's lines are
    then the \\n-separated ones and strip() removes only spaces and tabs, so one option can be
    looked up alone (two C-speed scans; a whole-text check for stray whitespace would cost
    as much as the lookups it saves)."""
    return text.isascii() and not any(c in text for c in _ODD)


def config_value(text: str, name: str) -> str | None:
    """parse_config(text).get(name) for a text _scannable() accepts, without building the
    dict: the last line that is `CONFIG_<name>=value` once stripped (a later line overrides,
    as in the dict), its value stripped as the loop strips the line."""
    if not _NAME.fullmatch(name):
        return None  # no such key can come out of the line pattern
    key = "CONFIG_" + name + "="
    at = len(text)
    while True:
        at = text.rfind(key, 0, at)
        if at < 0:
            return None
        bol = text.rfind("\n", 0, at) + 1
        if not text[bol:at].strip(" \t"):  # only indentation before the key: this line is one
            end = text.find("\n", at)
            return text[at + len(key):end if end >= 0 else len(text)].rstrip(" \t")


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
            text = s.text or ""
            lazy = _scannable(text)
            # For such a text, a line that is a CONFIG_ line once stripped makes the dict non-empty.
            if not (_ANY.search(text) if lazy else parse_config(text)):
                f.reason = f"{path}: no CONFIG_ lines (empty or not a kernel config)"
                continue
            f.source, f.reason = path, None
            if lazy:  # `options` is built from the text on first read (see KconfigFacts)
                f.__dict__["_text"] = text
                del f.__dict__["options"]
            else:
                f.options = parse_config(text)
            return f
    if f.reason is None:
        f.reason = ("no kernel config found (looked in " + ", ".join(f.searched) + ")"
                    if f.searched else "the probe did not look for a kernel config")
    return f
