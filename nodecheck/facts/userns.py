"""User namespaces: the sysctls that allow unprivileged ones, and the kernel option."""

from __future__ import annotations

from dataclasses import dataclass

from ..sections import Sections
from ._common import int_or_none


@dataclass
class UsernsFacts:
    # None with clone_sysctl_exists False: the kernel has no such sysctl (not Debian/Ubuntu),
    # which means unprivileged userns is not restricted by it.
    unprivileged_userns_clone: int | None = None
    clone_sysctl_exists: bool | None = None
    max_user_namespaces: int | None = None
    apparmor_restrict_unprivileged_userns: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def parse(sections: Sections) -> UsernsFacts:
    f = UsernsFacts()
    reasons = []
    s = sections.get("/proc/sys/kernel/unprivileged_userns_clone")
    if s.ok:
        f.clone_sysctl_exists = True
        f.unprivileged_userns_clone = int_or_none(s.text)
    elif s.exists is False:
        f.clone_sysctl_exists = False
    else:
        reasons.append(s.why())
    s = sections.get("/proc/sys/user/max_user_namespaces")
    if s.ok:
        f.max_user_namespaces = int_or_none(s.text)
    else:
        reasons.append(s.why())
    f.apparmor_restrict_unprivileged_userns = int_or_none(
        sections.text("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"))
    f.reason = "; ".join(reasons) or None
    return f
