"""SELinux, AppArmor's fusermount3 profile, and user namespaces."""

from __future__ import annotations

from . import FAIL, PASS, UNKNOWN, WARN, Ctx, Finding, check
from ._fix import sysctl

_SELINUX_OFF = ("sudo setenforce 0 (now), set SELINUX=disabled in /etc/selinux/config "
                "(or `sudo grubby --update-kernel ALL --args selinux=0`) and reboot")


@check("selinux", per_release=False)
def selinux(ctx: Ctx) -> Finding:
    s = ctx.facts.selinux
    src = ctx.matrix.selinux_source
    cfg = f"; boot config says {s.config_mode}" if s.config_mode and s.config_mode != s.mode else ""
    if s.mode == "disabled":
        return ctx.finding(PASS, f"SELinux is disabled ({s.reason})", source=src)
    if s.mode == "permissive":
        return ctx.finding(WARN, f"SELinux is permissive ({s.reason}){cfg}: Sysbox does not support "
                           "SELinux; permissive mode logs denials but does not block", "Disable it: " + _SELINUX_OFF, src)
    if s.mode == "enforcing":
        return ctx.finding(FAIL, f"SELinux is enforcing ({s.reason}){cfg}: Sysbox and Coder CVMs do not "
                           "support SELinux-enabled hosts", "Disable SELinux: " + _SELINUX_OFF, src)
    return ctx.finding(UNKNOWN, f"SELinux mode unknown: {s.reason}{cfg}",
                       "Run `getenforce` on the node as root, or give the scan read access to /sys/fs/selinux/enforce.", src)


@check("apparmor.fusermount3", per_release=False)
def apparmor_fusermount3(ctx: Ctx) -> Finding:
    """sysbox#947/#1005: Ubuntu 25.04+'s fusermount3 profile blocks sysbox-fs's FUSE mounts.

    Decided by the node's own AppArmor files, which is what breaks or not: the profile, its
    local drop-in (which the stock profile includes), its flags, and the aa-disable marker.
    The matrix rule gives the message, the fix and the source."""
    a = ctx.facts.apparmor
    rule = ctx.matrix.rule("ubuntu-25.04-apparmor-fusermount3")
    prof = "/etc/apparmor.d/fusermount3"
    if a.enabled is False:
        return ctx.finding(PASS, "AppArmor is not enabled: no fusermount3 profile can block sysbox-fs", source=rule.source)
    if a.fusermount3_profile is False:
        return ctx.finding(PASS, f"no {prof} profile", source=rule.source)
    if a.fusermount3_profile is None:
        return ctx.finding(UNKNOWN, f"cannot read {prof}: {a.reason}", rule.fix, rule.source)
    if a.fusermount3_disabled:
        return ctx.finding(PASS, "the fusermount3 AppArmor profile is disabled (/etc/apparmor.d/disable/fusermount3): "
                           "it is not loaded at boot", source=rule.source)
    if a.fusermount3_complain:
        return ctx.finding(PASS, "the fusermount3 AppArmor profile is in complain mode (its flags include complain): "
                           "it logs but does not block sysbox-fs mounts", source=rule.source)
    if a.fusermount3_allows_sysbox:
        where = ("its local drop-in /etc/apparmor.d/local/fusermount3" if a.fusermount3_local else prof)
        return ctx.finding(PASS, f"the fusermount3 AppArmor profile allows /var/lib/sysboxfs mounts ({where})",
                           source=rule.source)
    if a.fusermount3_allows_sysbox is None or a.fusermount3_disabled is None:
        return ctx.finding(UNKNOWN, f"{prof} has no /var/lib/sysboxfs rule and a file that could change that is "
                           f"unreadable ({a.reason})", rule.fix, rule.source)
    if a.enabled is None:
        return ctx.finding(UNKNOWN, "a fusermount3 profile exists but whether AppArmor is enabled is unknown "
                           f"({a.reason})", rule.fix, rule.source)
    fix = rule.fix
    if not a.fusermount3_includes_local:
        fix = (f"{prof} does not include local/fusermount3, so a drop-in is not read: add the line "
               "`include if exists <local/fusermount3>` inside its profile block first. " + fix)
    return ctx.finding(FAIL, rule.message + f" ({prof} and its drop-in have no /var/lib/sysboxfs rule, and the "
                       "profile is enforced)", fix, rule.source)


@check("userns", per_release=False)
def userns(ctx: Ctx) -> Finding:
    u, k = ctx.facts.userns, ctx.facts.kconfig
    src = ctx.matrix.userns.get("source", "")
    if k.get("USER_NS") == "n":
        return ctx.finding(FAIL, f"the kernel is built without user namespaces (CONFIG_USER_NS not set in {k.source})",
                           "Use a kernel with CONFIG_USER_NS=y.", src)
    if u.max_user_namespaces == 0:
        return ctx.finding(FAIL, "user.max_user_namespaces = 0: no user namespaces can be created (CentOS 7's default)",
                           sysctl("user.max_user_namespaces", "15000"), src)
    if u.unprivileged_userns_clone == 0:
        return ctx.finding(WARN, "kernel.unprivileged_userns_clone = 0 (want 1); the sysbox-ce package and the "
                           "K8s installer set it to 1", sysctl("kernel.unprivileged_userns_clone", "1"), src)
    if u.max_user_namespaces is None and k.get("USER_NS") is None:
        return ctx.finding(UNKNOWN, f"cannot tell whether user namespaces are available: {u.reason}; "
                           f"kernel config: {k.reason}", source=src)
    note = ("; kernel.apparmor_restrict_unprivileged_userns = 1 does not affect Sysbox (it runs as root)"
            if u.apparmor_restrict_unprivileged_userns == 1 else "")
    clone = ("kernel.unprivileged_userns_clone = 1" if u.unprivileged_userns_clone == 1 else
             "no unprivileged_userns_clone sysctl (not restricted)" if u.clone_sysctl_exists is False else
             f"unprivileged_userns_clone unknown ({u.reason})")
    return ctx.finding(PASS, f"user namespaces available (max_user_namespaces = {u.max_user_namespaces}, "
                       f"{clone}){note}", source=src)


CHECKS = [selinux, apparmor_fusermount3, userns]
