"""Kernel: minimum release per distro, UID shifting (ID-mapped mounts vs shiftfs vs chown)."""

from __future__ import annotations

from ..versions import KernelVersion
from . import FAIL, PASS, UNKNOWN, WARN, Ctx, Finding, check
from ._fix import install


def _kv(ctx: Ctx) -> KernelVersion | None:
    return ctx.facts.kernel.version


@check("kernel.version", per_release=True)
def version(ctx: Ctx) -> Finding:
    """The release's minimum for this distro (enforced here: the .deb preinst's own check has
    been broken since 2022, sysbox-pkgr b801d25), else the installer's generic minimum."""
    k, d, m = _kv(ctx), ctx.facts.distro, ctx.matrix
    if k is None:
        return ctx.finding(UNKNOWN, f"kernel release unknown: {ctx.facts.kernel.reason}")
    entry = ctx.release.distro(d.id, d.version_id) if d.id else None
    if entry and entry.min_kernel:
        need, src, who = entry.min_kernel, entry.source, f"{d.id} {d.version_id}"
    else:
        t = m.threshold("min-ubuntu" if d.id == "ubuntu" else "min-non-ubuntu")
        need, src = t.kernel, t.source
        who = f"{d.id} {d.version_id or ''} (not listed; installer's generic minimum)" if d.id else \
            "an unknown distro (installer's generic minimum)"
    if k.at_least(need):
        return ctx.finding(PASS, f"kernel {k.release} >= {need}, the minimum for {who} with Sysbox {ctx.rel}",
                           source=src)
    fix = ("Install the HWE kernel: sudo apt-get install -y --install-recommends linux-generic-hwe-18.04, then reboot"
           if d.id == "ubuntu" and d.version_id == "18.04" else
           "Install a backports kernel: sudo apt-get install -y -t buster-backports linux-image-amd64, then reboot"
           if d.id == "debian" and d.version_id == "10" else
           f"Boot a kernel >= {need} (distro kernel update or HWE/backports kernel), then reboot.")
    return ctx.finding(FAIL, f"kernel {k.release} is below {need}, the minimum for {who} with Sysbox {ctx.rel}",
                       fix, src)


def _shiftfs_present(ctx: Ctx) -> bool | None:
    """A shiftfs module on disk, loaded or built in, or CONFIG_SHIFT_FS (Ubuntu builds it)."""
    f = ctx.facts
    if f.modules.shiftfs_available or f.kconfig.get("SHIFT_FS") in ("y", "m"):
        return True
    return False if f.modules.shiftfs_available is False else None


def _shiftfs_fix(ctx: Ctx) -> str:
    d = ctx.facts.distro
    avail = ctx.matrix.shiftfs_available(d.id or "")
    if d.id == "ubuntu":
        return ("Use an Ubuntu server kernel, which ships shiftfs (cloud images do not): "
                "sudo apt-get install -y linux-generic, reboot; or upgrade to a kernel >= 5.12.")
    if avail:
        return ("Build shiftfs with dkms: " + install(ctx.facts, "dkms", "git", "make")
                + " && git clone -b k5.10 https://github.com/toby63/shiftfs-dkms && cd shiftfs-dkms && "
                  "sudo ./update1 && sudo make -f Makefile.dkms && sudo modprobe shiftfs (pick the branch for your kernel); "
                  "or upgrade to a kernel >= 5.12.")
    return "shiftfs is not available for this distro: upgrade to a kernel >= 5.12 (ID-mapped mounts)."


@check("kernel.idmap", per_release=True)
def idmap(ctx: Ctx) -> Finding:
    """How Sysbox will shift UIDs on this kernel: ID-mapped mounts (5.12, bind mounts;
    5.19 with 0.6.1+, the rootfs too), else shiftfs, else chown of the rootfs."""
    k, sh = _kv(ctx), ctx.release.shiftfs
    if k is None:
        return ctx.finding(UNKNOWN, f"kernel release unknown: {ctx.facts.kernel.reason}")
    bind, rootfs = sh.idmapped_bind_mounts_from_kernel, sh.idmapped_rootfs_from_kernel
    if bind is None:
        return ctx.finding(PASS, f"Sysbox {ctx.rel} does not use ID-mapped mounts: UID shifting is "
                           "by shiftfs or Docker userns-remap (see the shiftfs check)", source=sh.source)
    if rootfs and k.at_least(rootfs):
        return ctx.finding(PASS, f"kernel {k.release} >= {rootfs}: ID-mapped mounts for bind mounts and "
                           "the container rootfs (no shiftfs, no rootfs chown)", source=ctx.matrix.threshold("ovfs-on-idmap").source)
    if k.at_least(bind):
        if _shiftfs_present(ctx):
            return ctx.finding(PASS, f"kernel {k.release} >= {bind}: ID-mapped bind mounts; shiftfs "
                               "is available for the rootfs", source=ctx.matrix.threshold("idmap").source)
        later = f" (kernel >= {rootfs} removes it)" if rootfs else " (Sysbox 0.6.1+ on kernel >= 5.19 removes it)"
        return ctx.finding(WARN,
                           f"kernel {k.release} >= {bind}: ID-mapped bind mounts, but without shiftfs Sysbox {ctx.rel} chowns "
                           f"each container's rootfs at start (slower starts, more disk){later}",
                           "Upgrade to a kernel >= 5.19 with Sysbox >= 0.6.1, or install shiftfs. "
                           + (_shiftfs_fix(ctx) if ctx.matrix.shiftfs_available(ctx.facts.distro.id or "") else ""),
                           ctx.matrix.threshold("shiftfs-recommended-below").source)
    present = _shiftfs_present(ctx)
    status = PASS if present else (UNKNOWN if present is None else FAIL)
    return ctx.finding(status,
                       f"kernel {k.release} < {bind}: no ID-mapped mounts; Sysbox depends on shiftfs here "
                       f"(shiftfs {'available' if present else 'not found' if present is False else 'unknown'})",
                       "" if present else _shiftfs_fix(ctx), ctx.matrix.threshold("idmap").source)


@check("shiftfs", per_release=True)
def shiftfs(ctx: Ctx) -> Finding:
    k, sh = _kv(ctx), ctx.release.shiftfs
    present = _shiftfs_present(ctx)
    evidence = ("module " + ", ".join(ctx.facts.modules.shiftfs_files) if ctx.facts.modules.shiftfs_files
                else "CONFIG_SHIFT_FS=" + str(ctx.facts.kconfig.get("SHIFT_FS")) if ctx.facts.kconfig.known
                else ctx.facts.modules.reason or "no evidence")
    if sh.policy == "shiftfs-or-userns-remap":
        remap = bool((ctx.facts.runtimes.docker_daemon_json or {}).get("userns-remap"))
        if present or remap:
            how = "shiftfs" if present else "Docker userns-remap"
            return ctx.finding(PASS, f"Sysbox {ctx.rel} needs shiftfs or Docker userns-remap: {how} found", source=sh.source)
        return ctx.finding(UNKNOWN if present is None else FAIL,
                           f"Sysbox {ctx.rel} needs shiftfs or Docker userns-remap on every kernel; shiftfs: {evidence}",
                           "Use Sysbox >= 0.5.0 on a kernel >= 5.12, or " + _shiftfs_fix(ctx), sh.source)
    if k is None:
        return ctx.finding(UNKNOWN, f"kernel release unknown: {ctx.facts.kernel.reason}", source=sh.source)
    need = sh.required(k.release)
    if not need:
        not_buildable = ctx.matrix.threshold("shiftfs-not-buildable")
        extra = f"; shiftfs cannot be built for kernels >= {not_buildable.kernel}" if k.at_least(not_buildable.kernel) else ""
        return ctx.finding(PASS, f"shiftfs not required on kernel {k.release} (>= {sh.required_below_kernel}){extra}",
                           source=sh.source)
    if present:
        return ctx.finding(PASS, f"shiftfs is required below {sh.required_below_kernel} and present ({evidence})",
                           source=sh.source)
    if present is None:
        return ctx.finding(UNKNOWN, f"shiftfs is required below {sh.required_below_kernel}; cannot tell whether "
                           f"it is installed ({evidence}; kconfig: {ctx.facts.kconfig.reason or 'no SHIFT_FS'})",
                           _shiftfs_fix(ctx), sh.source)
    return ctx.finding(FAIL, f"kernel {k.release} < {sh.required_below_kernel} needs shiftfs and none was found "
                       f"({evidence}): host bind mounts would show nobody:nogroup", _shiftfs_fix(ctx), sh.source)


CHECKS = [version, idmap, shiftfs]
