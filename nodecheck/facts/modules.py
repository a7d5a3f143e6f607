"""Kernel modules: loaded (/proc/modules), built in (modules.builtin), shiftfs on disk."""

from __future__ import annotations

from dataclasses import dataclass

from ..sections import Sections


@dataclass
class ModuleFacts:
    loaded: set[str] | None = None
    builtin: set[str] | None = None
    shiftfs_files: list[str] | None = None  # shiftfs.ko* under /lib/modules/<release>
    reason: str | None = None

    def is_loaded(self, name: str) -> bool | None:
        if self.loaded is None:
            return None
        return name.replace("-", "_") in self.loaded

    def is_builtin(self, name: str) -> bool | None:
        if self.builtin is None:
            return None
        return name.replace("-", "_") in self.builtin

    @property
    def shiftfs_available(self) -> bool | None:
        """A shiftfs module is on disk, loaded or built in."""
        if self.shiftfs_files:
            return True
        if self.is_loaded("shiftfs") or self.is_builtin("shiftfs"):
            return True
        if self.shiftfs_files is None:
            return None
        return False

    def to_dict(self) -> dict:
        return {
            "loaded": sorted(self.loaded) if self.loaded is not None else None,
            "builtin_count": len(self.builtin) if self.builtin is not None else None,
            "shiftfs_files": self.shiftfs_files,
            "shiftfs_available": self.shiftfs_available,
            "reason": self.reason,
        }


def parse_proc_modules(text: str) -> set[str]:
    """`name size refcount deps state addr` lines: the names."""
    return {line.split()[0] for line in text.splitlines() if line.strip()}


def parse_builtin(text: str) -> set[str]:
    """`kernel/fs/overlayfs/overlay.ko` lines: module names with - normalised to _."""
    out = set()
    for line in text.splitlines():
        base = line.strip().rsplit("/", 1)[-1]
        if base.endswith(".ko"):
            out.add(base[:-3].replace("-", "_"))
    return out


def parse(sections: Sections) -> ModuleFacts:
    f = ModuleFacts()
    reasons = []
    # Only a complete list says what is not there: a capped or part-read one (a 600 MB
    # modules.builtin, a read error) would make a built-in module look absent.
    s = sections.get("/proc/modules")
    if s.complete:
        f.loaded = parse_proc_modules(s.text or "")
    else:
        reasons.append(s.why())
    s = sections.get("modules.builtin")
    if s.complete:
        f.builtin = parse_builtin(s.text or "")
    else:
        reasons.append(s.why())
    s = sections.get("shiftfs.ko")
    if s.ok:
        found = [l.strip() for l in (s.text or "").splitlines() if l.strip()]
        # A listing cut short (a directory find could not read, the cap) proves what it lists,
        # never that nothing else is there.
        if found or s.complete:
            f.shiftfs_files = found
        if not s.complete:
            reasons.append(s.why())
    elif s.exists is False:
        f.shiftfs_files = []  # no module directory: certainly no shiftfs module file
        reasons.append("module directory for the running kernel does not exist")
    else:
        reasons.append(s.why())
    f.reason = "; ".join(reasons) or None
    return f
