"""AppArmor: module state, active LSMs, and the Ubuntu >=25.04 fusermount3 profile.

A missing tool or an unreadable file is unknown, never "AppArmor off" (peers.md §7).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..sections import Sections
from ._common import first_line, int_or_none


@dataclass
class ApparmorFacts:
    enabled: bool | None = None  # /sys/module/apparmor/parameters/enabled
    lsms: list[str] | None = None  # /sys/kernel/security/lsm
    securityfs: bool | None = None  # /sys/kernel/security/apparmor exists
    fusermount3_profile: bool | None = None  # /etc/apparmor.d/fusermount3 exists
    fusermount3_allows_sysbox: bool | None = None  # the profile has the sysboxfs mount rule
    restrict_unprivileged_userns: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def profile_allows_sysbox(text: str) -> bool:
    """The workaround of sysbox#947: a mount rule targeting /var/lib/sysboxfs."""
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith(("mount", "allow mount")) and "/var/lib/sysboxfs" in line:
            return True
        if line.startswith("flags=") and "complain" in line:
            return True
    return "flags=(complain)" in text


def parse(sections: Sections) -> ApparmorFacts:
    f = ApparmorFacts()
    reasons = []
    s = sections.get("/sys/module/apparmor/parameters/enabled")
    if s.ok:
        v = (first_line(s.text) or "").upper()
        f.enabled = v.startswith("Y") if v[:1] in ("Y", "N") else None
    elif s.status == "ENOENT":
        # The module parameter exists whenever AppArmor is built in; no file, no AppArmor.
        f.enabled = False
    else:
        reasons.append(s.why())
    lsm = sections.text("/sys/kernel/security/lsm")
    if lsm is not None:
        f.lsms = [x for x in lsm.strip().split(",") if x]
        if f.enabled is None and "apparmor" in f.lsms:
            f.enabled = True
    a = sections.get("apparmorfs")
    f.securityfs = True if a.status == "ok" else (False if a.status == "ENOENT" else None)
    p = sections.get("/etc/apparmor.d/fusermount3")
    if p.ok:
        f.fusermount3_profile = True
        f.fusermount3_allows_sysbox = profile_allows_sysbox(p.text or "")
    elif p.status == "ENOENT":
        f.fusermount3_profile = False
    else:
        reasons.append(p.why())
    f.restrict_unprivileged_userns = int_or_none(
        sections.text("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"))
    f.reason = "; ".join(reasons) or None
    return f
