"""cgroup version and controllers, read-only (no temporary cgroup, unlike kubeadm)."""

from __future__ import annotations

from dataclasses import dataclass

from ..sections import Sections
from .mounts import Mount, read_table


@dataclass
class CgroupFacts:
    version: int | None = None  # 2 = unified; 1 = legacy or hybrid
    hybrid: bool = False  # v1 controllers plus a cgroup2 mount (systemd "hybrid")
    controllers: list[str] | None = None
    reason: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def parse(sections: Sections, mount_table: list[Mount] | None = None) -> CgroupFacts:
    """`mount_table` is mounts.read_table(sections), when the caller has it already."""
    f = CgroupFacts()
    mounts = mount_table if mount_table is not None else read_table(sections)
    if mounts is not None:
        at = [m for m in mounts if m.mountpoint == "/sys/fs/cgroup"]
        v1 = [m for m in mounts if m.fstype == "cgroup"]
        v2 = [m for m in mounts if m.fstype == "cgroup2"]
        if at and at[-1].fstype == "cgroup2":
            f.version = 2
        elif v1:
            f.version, f.hybrid = 1, bool(v2)
        elif v2:
            f.version = 2
        else:
            f.reason = "no cgroup filesystem in the mount table"
    ctl = sections.text("/sys/fs/cgroup/cgroup.controllers")
    if ctl is not None and f.version in (2, None):
        f.controllers = ctl.split()
        if f.version is None:
            f.version, f.reason = 2, None
    elif f.version in (1, None):
        table = sections.text("/proc/cgroups")
        if table is not None:
            names = []
            for line in table.splitlines():
                parts = line.split()
                if len(parts) >= 4 and not line.startswith("#") and parts[3] != "0":
                    names.append(parts[0])
            f.controllers = names
    if f.version is None and f.reason is None:
        f.reason = sections.get("mountinfo").why()
    return f
