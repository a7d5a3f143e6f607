"""SELinux: runtime mode, boot-config mode and the kernel command line.

The runtime mode is read from the `enforce` file's contents, not from whether selinuxfs
is writable (it is read-only inside pods). EACCES is "unknown (permission denied)",
never "disabled" (k8s-device-plugin#325, ansible#16612).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..sections import Sections
from ._common import first_line
from .mounts import Mount, read_table

ENFORCING, PERMISSIVE, DISABLED, UNKNOWN = "enforcing", "permissive", "disabled", "unknown"


@dataclass
class SelinuxFacts:
    mode: str = UNKNOWN  # runtime: enforcing | permissive | disabled | unknown
    config_mode: str | None = None  # /etc/selinux/config SELINUX=
    config_type: str | None = None  # SELINUXTYPE=
    cmdline: str | None = None  # "selinux=0" or "enforcing=0" when the kernel line overrides
    reason: str | None = None  # why mode is what it is (always set for unknown)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def parse_config(text: str) -> tuple[str | None, str | None]:
    mode = typ = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#"):
            continue
        m = re.match(r"^SELINUX\s*=\s*(\w+)", line)
        if m:
            mode = m.group(1).lower()
        m = re.match(r"^SELINUXTYPE\s*=\s*(\S+)", line)
        if m:
            typ = m.group(1)
    return mode, typ


def parse(sections: Sections, mount_table: list[Mount] | None = None) -> SelinuxFacts:
    f = SelinuxFacts()
    cfg = sections.text("/etc/selinux/config")
    if cfg is not None:
        f.config_mode, f.config_type = parse_config(cfg)
    cmdline = sections.text("/proc/cmdline") or ""
    words = cmdline.split()
    if "selinux=0" in words:
        f.cmdline = "selinux=0"
    elif "enforcing=0" in words:
        f.cmdline = "enforcing=0"

    for name in ("/sys/fs/selinux/enforce", "/selinux/enforce"):
        s = sections.get(name)
        if s.ok:
            v = first_line(s.text)
            if v == "1":
                f.mode, f.reason = ENFORCING, f"{name} = 1"
            elif v == "0":
                f.mode, f.reason = PERMISSIVE, f"{name} = 0"
            else:
                f.mode, f.reason = UNKNOWN, f"{name}: unexpected content {str(v)[:20]!r}"
            return f
        if s.status not in ("ENOENT", "MISSING", "ENOENT_DANGLING"):
            f.mode, f.reason = UNKNOWN, s.why()
            return f

    # No enforce file. Disabled only if we can show selinuxfs is not there at all.
    fs = sections.text("/proc/filesystems")
    mounts = mount_table if mount_table is not None else read_table(sections)
    mounted = None if mounts is None else any(m.fstype == "selinuxfs" for m in mounts)
    if fs is not None and "selinuxfs" not in fs.split():
        f.mode, f.reason = DISABLED, "kernel has no selinuxfs (not built in or disabled at boot)"
    elif mounted is False:
        f.mode, f.reason = DISABLED, "selinuxfs is not mounted and no enforce file exists"
    elif mounted:
        f.mode, f.reason = UNKNOWN, "selinuxfs is mounted but its enforce file is not visible under the root"
    elif fs is not None and f.cmdline == "selinux=0":
        f.mode, f.reason = DISABLED, "selinux=0 on the kernel command line"
    elif fs is not None and f.config_mode == "disabled":
        f.mode, f.reason = DISABLED, "no enforce file and SELINUX=disabled in /etc/selinux/config"
    else:
        f.mode = UNKNOWN
        f.reason = ("no enforce file, but selinuxfs is available and the mount table is unreadable ("
                    + sections.get("mountinfo").why() + ")")
    return f
