"""The mount table, from mountinfo text only: never statvfs, never df.

A stale NFS mount hangs statvfs in D state (ansible#25046); reading mountinfo does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..sections import Sections


@dataclass(frozen=True)
class Mount:
    mountpoint: str
    fstype: str
    source: str
    options: str = ""

    def to_dict(self) -> dict:
        return {"mountpoint": self.mountpoint, "fstype": self.fstype, "source": self.source}


def _unescape(s: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \040 \011 \012 \134.
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) + 0 and s[i + 1:i + 4].isdigit():
            try:
                out.append(chr(int(s[i + 1:i + 4], 8)))
                i += 4
                continue
            except ValueError:
                pass
        out.append(s[i])
        i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[Mount]:
    """proc(5) mountinfo lines; malformed lines are skipped."""
    mounts = []
    for line in text.splitlines():
        parts = line.split()
        if "-" not in parts:
            continue
        sep = parts.index("-")
        if sep < 6 or len(parts) < sep + 3:
            continue
        mounts.append(Mount(_unescape(parts[4]), parts[sep + 1], _unescape(parts[sep + 2]), parts[5]))
    return mounts


def mount_of(mounts: list[Mount], path: str) -> Mount | None:
    """The mount that holds `path`: the longest mountpoint prefix; the last one wins ties
    (a later mount over the same point hides the earlier one)."""
    best = None
    for m in mounts:
        mp = m.mountpoint.rstrip("/") or "/"
        if path == mp or path.startswith(mp.rstrip("/") + "/") or mp == "/":
            if best is None or len(mp) >= len(best.mountpoint.rstrip("/") or "/"):
                best = m
    return best


# Paths whose filesystem decides ID-mapping support for Sysbox's data.
DATA_PATHS = {"var_lib": "/var/lib", "sysbox": "/var/lib/sysbox", "docker": "/var/lib/docker",
              "containerd": "/var/lib/containerd", "containers": "/var/lib/containers"}


@dataclass
class MountFacts:
    mounts: list[Mount] | None = None
    data: dict[str, Mount] = field(default_factory=dict)
    reason: str | None = None

    def fs_of(self, path: str) -> Mount | None:
        return mount_of(self.mounts, path) if self.mounts else None

    def to_dict(self) -> dict:
        return {"count": len(self.mounts) if self.mounts is not None else None,
                "data": {k: v.to_dict() for k, v in self.data.items()},
                "reason": self.reason}


def read_table(sections: Sections) -> list[Mount] | None:
    """The mountinfo lines as read (a capped table too), None when there is no text: parsed once
    by gather() and handed to every parser that needs it (this one, cgroups, selinux)."""
    text = sections.text("mountinfo")
    return parse_mountinfo(text) if text is not None else None


def parse(sections: Sections, mount_table: list[Mount] | None = None) -> MountFacts:
    s = sections.get("mountinfo")
    if not s.ok:
        return MountFacts(reason=s.why())
    if not s.complete:
        # A capped or cut mountinfo may have lost the very mount that matters (an NFS
        # /var/lib past the cap would leave "/" on ext4): no mount is judged from it.
        return MountFacts(reason=s.why())
    mounts = mount_table if mount_table is not None else parse_mountinfo(s.text or "")
    if not mounts:
        return MountFacts(reason="mountinfo has no readable lines")
    f = MountFacts(mounts=mounts)
    for key, path in DATA_PATHS.items():
        m = mount_of(mounts, path)
        if m:
            f.data[key] = m
    if not s.complete:
        f.reason = s.why()
    return f
