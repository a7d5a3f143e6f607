"""Where Sysbox and the container engine keep data: it must be a filesystem that can be
ID-mapped and that sysbox-mgr accepts (read from mountinfo only, never statvfs)."""

from __future__ import annotations

from . import FAIL, PASS, UNKNOWN, WARN, Ctx, Finding, worst, check


def _judge(ctx: Ctx, path: str, fstype: str) -> tuple[str, str, str]:
    """(status, reason, source) for data at `path` on `fstype`."""
    dr = ctx.matrix.data_root
    kernel = ctx.facts.kernel.release
    for entry in dr.get("forbidden", []):
        if fstype in entry["fs_types"]:
            return FAIL, entry["reason"], entry["source"]
    bad = ctx.matrix.no_idmap_fs(fstype, kernel)
    if bad:
        return FAIL, bad.reason, bad.source
    if fstype in dr["recommended"]["fs_types"]:
        return PASS, "recommended by the Sysbox docs", dr["recommended"]["source"]
    for entry in dr.get("caution", []):
        if fstype in entry["fs_types"]:
            return WARN, entry["reason"], entry["source"]
    # Older matrix files (before 2026.12.0) may still carry the unsourced `assumed_ok` list.
    if fstype in dr.get("assumed_ok", {}).get("fs_types", []):
        return PASS, "a local block filesystem (assumed fine: " + dr["assumed_ok"].get("note", "").split(";")[0] + ")", dr["assumed_ok"]["source"]
    return WARN, f"not a filesystem the Sysbox docs name ({', '.join(dr['recommended']['fs_types'])})", dr["recommended"]["source"]


@check("storage.data-root", per_release=False)
def data_root(ctx: Ctx) -> Finding:
    m = ctx.facts.mounts
    if m.mounts is None:
        return ctx.finding(UNKNOWN, f"mount table unreadable: {m.reason}",
                           "Scan as root (a pod cannot read the host's /proc/1/mountinfo) or check `findmnt -T /var/lib/sysbox`.")
    paths = [ctx.matrix.data_root.get("path", "/var/lib/sysbox")]
    docker = ctx.facts.runtimes.get("docker")
    if docker.installed:
        paths.append((ctx.facts.runtimes.docker_daemon_json or {}).get("data-root") or "/var/lib/docker")
    if ctx.facts.runtimes.get("crio").installed or ctx.facts.runtimes.get("kubelet").installed:
        paths.append("/var/lib/containers")
    results = []
    for p in paths:
        mnt = m.fs_of(p)
        if mnt is None:
            results.append((UNKNOWN, f"{p}: no mount found", ""))
            continue
        status, reason, src = _judge(ctx, p, mnt.fstype)
        results.append((status, f"{p} is on {mnt.fstype} ({mnt.source} at {mnt.mountpoint}): {reason.rstrip('.')}", src))
    status = worst(r[0] for r in results)
    bad = [r for r in results if r[0] == status] if status != PASS else results
    fix = ("Put /var/lib/sysbox (and the engine's data root) on a local ext4 or btrfs filesystem, the ones the "
           "Sysbox docs name; NFS, FUSE, overlayfs and tmpfs cannot be ID-mapped.") if status in (FAIL, WARN) else ""
    return ctx.finding(status, "; ".join(r[1] for r in bad), fix, bad[0][2])


CHECKS = [data_root]
