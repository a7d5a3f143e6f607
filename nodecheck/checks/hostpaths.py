"""Which rows of the Coder docs' "HostPath mounts" table this node can serve.

The table (matrix/kubernetes.yaml `cvm_pod.host_paths`, from the CVM docs) says which host paths
the CVM supervisor pod mounts, read-only or read-write, for each Caching / "Auto load shiftfs"
setting. Per path the node must have a directory there (the probe's `hostpaths` section), a
read-write one must not sit on a read-only mount, and /var/lib must not be on NFS ("CVMs do not
currently support NFS as a file system"); those come from the mount table.

Status: pass when every row can be served; warn when some row cannot (the message names the
rows it can serve, so the admin picks the settings); unknown when a row cannot be decided (the
section is missing or unreadable, the mount table is, or a preflight pod could not see a path).
Never fail: Sysbox itself installs either way; the table is the CVM deployment's choice.
An absent path does not block a row: an untyped hostPath (what the docs' table implies) is created
as an empty directory by the kubelet/runtime, so the pod starts, but the workspace sees none of the
node's files there; that is said as a caveat.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..facts import hostpaths as H
from . import PASS, UNKNOWN, WARN, Ctx, Finding, check, worst

# The table and the NFS sentence; the empty-directory behaviour of an untyped hostPath:
# https://github.com/kubernetes/design-proposals-archive/blob/main/storage/volume-hostpath-qualifiers.md
TABLE_SOURCE = "https://coder.com/docs/v1/@v1.32/admin/workspace-management/cvms"


HIDDEN = "hidden"


@dataclass(frozen=True)
class RowVerdict:
    label: str                 # "caching on, shiftfs auto-load off"
    status: str                # pass (served), warn (cannot), unknown, hidden (not visible to a pod)
    blockers: tuple[str, ...]  # why it cannot be served / cannot be decided
    empty: tuple[str, ...]     # absent paths the pod would get as empty directories

    def to_dict(self) -> dict:
        return {"row": self.label, "status": self.status, "blockers": list(self.blockers), "empty": list(self.empty)}


def _is_ro(options: str) -> bool:
    return "ro" in options.split(",")


def _rw_problem(mounts, path: str) -> tuple[str | None, str | None]:
    """(blocker, unknown reason) for writing at `path` per the mount table."""
    if mounts.mounts is None:
        return None, f"mount table unreadable: {mounts.reason}"
    m = mounts.fs_of(path)
    alt = mounts.fs_of("/usr" + path) if path.startswith("/lib/") else None
    if m is None:
        return None, f"{path}: no mount found"
    if alt is not None and alt is not m and _is_ro(alt.options) != _is_ro(m.options):
        # /lib may be a link to usr/lib (merged /usr): which mount holds the path is not in the probe.
        return None, f"{path}: /lib and /usr/lib are on mounts of different write modes"
    if _is_ro(m.options):
        return f"{path} is on a read-only mount ({m.mountpoint})", None
    return None, None


def serve_rows(hp: H.HostPathFacts, mounts, rows) -> list[RowVerdict]:
    """Each table row (requirements.HostPathRow) judged for this node."""
    out = []
    for row in rows:
        blockers, unknown, hidden, empty = [], [], [], []
        for col, mode in row.mounts:
            p = hp.get(col)
            if p.kind is None:
                (hidden if p.hidden else unknown).append(f"{col}: {p.why}")
                continue
            if p.kind in ("notdir", "eloop"):
                what = "not a directory" if p.kind == "notdir" else "a link loop or an unreadable link"
                blockers.append(f"{p.path} is {what}")
                continue
            if p.kind == "absent":
                empty.append(p.path)
            if col == "/var/lib":
                if mounts.mounts is None:
                    unknown.append(f"/var/lib: mount table unreadable: {mounts.reason}")
                else:
                    m = mounts.fs_of("/var/lib")
                    if m is None:
                        unknown.append("/var/lib: no mount found")
                    elif m.fstype.startswith("nfs"):
                        blockers.append(f"/var/lib is on {m.fstype} ({m.source}): CVMs do not support NFS")
            if mode == "rw" and p.kind == "dir":
                blocker, why = _rw_problem(mounts, p.path)
                if blocker:
                    blockers.append(blocker)
                if why:
                    unknown.append(why)
        status = WARN if blockers else UNKNOWN if unknown else HIDDEN if hidden else PASS
        out.append(RowVerdict(row.label(), status, tuple(blockers or unknown or hidden), tuple(empty)))
    return out


def _rows():
    from ..k8s import requirements
    return requirements.load().cvm_rows


@check("storage.hostpaths", per_release=False)
def hostpaths(ctx: Ctx) -> Finding:
    hp = ctx.facts.hostpaths
    if hp.reason and not hp.paths:
        return ctx.finding(UNKNOWN, f"CVM host paths not probed: {hp.reason}",
                           "Re-scan with this nodecheck's probe (it reads /usr/src, /lib/modules/<release>, "
                           "/var/run and /var/lib).")
    verdicts = serve_rows(hp, ctx.facts.mounts, _rows())
    served = [v.label for v in verdicts if v.status == PASS]
    # A row a preflight pod cannot see (it never mounts /var/run or all of /var/lib: other pods'
    # secrets live there) is said in the message, not scored: else every node a `k8s scan` reads
    # would be unknown by design. With no row visible at all the finding is unknown.
    seen = [v.status for v in verdicts if v.status != HIDDEN]
    status = worst(seen) if seen else UNKNOWN
    parts = [f"serves the CVM host-path rows: {'; '.join(served) if served else 'none'}"]
    parts += [f"not {v.label}: {', '.join(v.blockers)}" for v in verdicts if v.status == WARN]
    parts += [f"cannot tell for {v.label}: {', '.join(v.blockers)}" for v in verdicts if v.status == UNKNOWN]
    hidden = [v.label for v in verdicts if v.status == HIDDEN]
    if hidden:
        paths = sorted({p.path for p in hp.paths.values() if p.hidden})
        parts.append(f"cannot tell from the preflight pod (it does not mount {', '.join(paths)}) for: "
                     + "; ".join(hidden))
    empty = sorted({p for v in verdicts for p in v.empty})
    caveat = (f"{', '.join(empty)} absent on the node: the CVM pod would get an empty directory there "
              "(none of the node's files, e.g. no kernel modules or headers)") if empty else ""
    fix = ""
    if status == UNKNOWN and hidden:
        fix = ("Run `nodecheck scan` on the node itself, or `k8s scan --with libmodules` where /lib is not a "
               "link to usr/lib, to see the rest.")
    if status == WARN:
        fix = ("Choose Coder's Caching / Auto load shiftfs settings (Manage > Admin > Infrastructure) for a row "
               "this node serves, or move /var/lib off NFS / remount the path read-write.")
    return ctx.finding(status, "; ".join(parts), fix, TABLE_SOURCE, caveat=caveat)


def report(hp: H.HostPathFacts, mounts) -> list[dict]:
    """The rows as data, for the k8s scan's merged row."""
    return [v.to_dict() for v in serve_rows(hp, mounts, _rows())]


CHECKS = [hostpaths]
