"""Installed package versions from dpkg's status file and from rpm."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..sections import Sections
from ..versions import DebianVersion


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    arch: str | None
    manager: str  # dpkg | rpm
    held: bool = False

    @property
    def upstream(self) -> str:
        """`5:24.0.7-1~ubuntu.22.04~jammy` -> `24.0.7`; `0:1.6.28-3.1.el9` -> `1.6.28`."""
        v = DebianVersion.parse(self.version)
        if v is None:
            return self.version
        return v.upstream.split("~", 1)[0]

    def to_dict(self) -> dict:
        return {"version": self.version, "upstream": self.upstream, "arch": self.arch,
                "manager": self.manager, "held": self.held}


@dataclass
class PackageFacts:
    manager: str | None = None  # dpkg | rpm | None (unknown or none)
    installed: dict[str, Package] = field(default_factory=dict)
    known: bool = False  # some package database was read completely
    reason: str | None = None

    def get(self, *names: str) -> Package | None:
        for n in names:
            if n in self.installed:
                return self.installed[n]
        return None

    def to_dict(self) -> dict:
        return {"manager": self.manager, "known": self.known, "reason": self.reason,
                "installed": {k: v.to_dict() for k, v in sorted(self.installed.items())}}


def parse_dpkg_status(text: str) -> dict[str, Package]:
    """dpkg status stanzas; only packages whose status says `installed`."""
    out: dict[str, Package] = {}
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if ": " in line and not line.startswith(" "):
                k, v = line.split(": ", 1)
                fields[k] = v.strip()
        name, status, version = fields.get("Package"), fields.get("Status", ""), fields.get("Version")
        words = status.split()
        if not name or not version or len(words) != 3 or words[2] != "installed":
            continue
        out[name] = Package(name, version, fields.get("Architecture"), "dpkg", held=words[0] == "hold")
    return out


def parse_rpm(text: str) -> dict[str, Package]:
    """`name<TAB>epoch:version-release<TAB>arch` lines from the probe's rpm query."""
    out = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or not parts[0] or " " in parts[0]:
            continue
        ver = parts[1].removeprefix("0:")
        out[parts[0]] = Package(parts[0], ver, parts[2], "rpm")
    return out


def parse(sections: Sections) -> PackageFacts:
    f = PackageFacts()
    reasons = []
    d = sections.get("dpkg-status")
    if d.ok:
        f.installed.update(parse_dpkg_status(d.text or ""))
        f.manager, f.known = "dpkg", d.complete
    elif d.status != "ENOENT":
        reasons.append(d.why())
    r = sections.get("rpm")
    if r.ok:
        f.installed.update(parse_rpm(r.text or ""))
        f.manager = f.manager or "rpm"
        f.known = f.known or r.complete
    elif r.status == "ENOCMD":
        reasons.append("an rpm database exists but the rpm command is not available to read it")
    elif r.status not in ("ENOENT", "MISSING"):
        reasons.append(r.why())
    if f.manager is None and not reasons:
        reasons.append("no dpkg or rpm database under the root")
    f.reason = "; ".join(reasons) or None
    return f
