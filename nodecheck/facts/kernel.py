"""Kernel release and architecture."""

from __future__ import annotations

from dataclasses import dataclass

from ..sections import Sections
from ..versions import KernelVersion
from ..vocab import ARCH as _ARCH  # uname -m -> Debian names (the .debs, the matrix): the one map
from ._common import first_line


@dataclass
class KernelFacts:
    release: str | None = None
    version: KernelVersion | None = None
    machine: str | None = None  # as the kernel says it (x86_64, aarch64, ...)
    arch: str | None = None  # Debian naming (amd64, arm64, armhf, ...)
    release_source: str | None = None
    reason: str | None = None  # why release or arch is unknown

    def to_dict(self) -> dict:
        return {
            "release": self.release,
            "version": list(self.version.base) if self.version else None,
            "flavour": self.version.flavour if self.version else None,
            "machine": self.machine, "arch": self.arch,
            "release_source": self.release_source, "reason": self.reason,
        }


def debian_arch(machine: str | None) -> str | None:
    if not machine:
        return None
    return _ARCH.get(machine.strip().lower())


def parse(sections: Sections) -> KernelFacts:
    """Release from the root's own /proc when present (a pod or a fixture tree), else uname."""
    f = KernelFacts()
    reasons = []
    for name in ("/proc/sys/kernel/osrelease", "cmd:uname-r"):
        rel = first_line(sections.text(name))
        if rel and KernelVersion.parse(rel):
            f.release, f.version, f.release_source = rel, KernelVersion.parse(rel), name
            break
        reasons.append(sections.get(name).why() if rel is None else f"{name}: unreadable release {rel[:40]!r}")
    for name in ("/proc/sys/kernel/arch", "cmd:uname-m"):
        m = first_line(sections.text(name))
        if m:
            f.machine, f.arch = m, debian_arch(m) or m
            break
        reasons.append(sections.get(name).why())
    if f.release is None or f.machine is None:
        f.reason = "; ".join(reasons)
    return f
