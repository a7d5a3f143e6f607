"""AppArmor: module state, active LSMs, and the Ubuntu >=25.04 fusermount3 profile.

A missing tool or an unreadable file is unknown, never "AppArmor off" (peers.md §7).

The fusermount3 profile blocks sysbox-fs's FUSE mounts (sysbox#947, #1005) unless one of
these holds, each read from the node's own files:
  * the profile, or the local drop-in it includes, allows mounts on /var/lib/sysboxfs;
  * the profile is in complain mode (`flags=(...complain...)`, whatever other flags it has);
  * the profile is disabled (a file of its name in /etc/apparmor.d/disable/, what
    `aa-disable` creates), so it is not loaded at boot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..sections import Sections
from ._common import first_line, int_or_none

# `include if exists <local/fusermount3>` (apparmor 3+), or the older `#include <local/...>`.
_LOCAL_INCLUDE = re.compile(r"^\s*#?include\s+(?:if\s+exists\s+)?<local/fusermount3>", re.M)
# The profile header's flags: `profile fusermount3 /usr/bin/fusermount3 flags=(a,complain) {`.
_FLAGS = re.compile(r"flags\s*=\s*\(([^)]*)\)")


@dataclass
class ApparmorFacts:
    enabled: bool | None = None  # /sys/module/apparmor/parameters/enabled
    lsms: list[str] | None = None  # /sys/kernel/security/lsm
    securityfs: bool | None = None  # /sys/kernel/security/apparmor exists
    fusermount3_profile: bool | None = None  # /etc/apparmor.d/fusermount3 exists
    fusermount3_allows_sysbox: bool | None = None  # the profile or its drop-in allows /var/lib/sysboxfs
    fusermount3_complain: bool | None = None  # the profile's flags include complain
    fusermount3_includes_local: bool | None = None  # the profile includes local/fusermount3
    fusermount3_local: bool | None = None  # /etc/apparmor.d/local/fusermount3 exists
    fusermount3_disabled: bool | None = None  # /etc/apparmor.d/disable/fusermount3 exists
    restrict_unprivileged_userns: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _code_lines(text: str):
    for line in text.splitlines():
        # `#include` is a directive, not a comment; every other `#` starts one.
        s = line.strip()
        if s.startswith("#include"):
            yield s
            continue
        yield line.split("#", 1)[0].strip()


def rules_allow_sysbox(text: str) -> bool:
    """The workaround of sysbox#947: a mount rule whose target is under /var/lib/sysboxfs."""
    for line in _code_lines(text):
        if line.startswith(("mount", "allow mount")) and "/var/lib/sysboxfs" in line:
            return True
    return False


def profile_complain(text: str) -> bool:
    """Complain mode: `complain` among the header's flags, alone or combined."""
    for line in _code_lines(text):
        m = _FLAGS.search(line)
        if m and "complain" in {f.strip() for f in m.group(1).split(",")}:
            return True
    return False


def includes_local(text: str) -> bool:
    return bool(_LOCAL_INCLUDE.search(text))


# Kept for callers of the old name: the main profile alone allows sysbox (rules or complain).
def profile_allows_sysbox(text: str) -> bool:
    return rules_allow_sysbox(text) or profile_complain(text)


def _exists(sections: Sections, name: str, reasons: list[str]) -> bool | None:
    s = sections.get(name)
    if s.status == "ENOENT_DANGLING":  # a drop-in or disable link to nothing loads nothing
        return False
    if s.exists is None and s.status != "MISSING":  # MISSING: an older probe did not read it
        reasons.append(s.why())
    return s.exists


def parse(sections: Sections) -> ApparmorFacts:
    f = ApparmorFacts()
    reasons = []
    s = sections.get("/sys/module/apparmor/parameters/enabled")
    if s.ok:
        v = (first_line(s.text) or "").upper()
        f.enabled = v.startswith("Y") if v[:1] in ("Y", "N") else None
    elif s.exists is False:
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
    f.securityfs = a.exists
    p = sections.get("/etc/apparmor.d/fusermount3")
    if p.ok:
        text = p.text or ""
        f.fusermount3_profile = True
        f.fusermount3_complain = profile_complain(text)
        f.fusermount3_includes_local = includes_local(text)
        allows = rules_allow_sysbox(text)
        if not allows and f.fusermount3_includes_local:
            loc = sections.get("/etc/apparmor.d/local/fusermount3")
            if loc.ok:
                f.fusermount3_local = True
                allows = rules_allow_sysbox(loc.text or "")
            else:
                f.fusermount3_local = _exists(sections, "/etc/apparmor.d/local/fusermount3", reasons)
                # A drop-in we could not read might hold the rule: unknown, not "blocked".
                allows = False if f.fusermount3_local is False else None
        f.fusermount3_allows_sysbox = allows
        f.fusermount3_disabled = _exists(sections, "/etc/apparmor.d/disable/fusermount3", reasons)
    elif p.exists is False:
        f.fusermount3_profile = False
    else:
        reasons.append(p.why())
    f.restrict_unprivileged_userns = int_or_none(
        sections.text("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"))
    f.reason = "; ".join(reasons) or None
    return f
