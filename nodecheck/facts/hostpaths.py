"""The host paths Coder's CVM supervisor pod mounts, as the probe found them (section `hostpaths`).

The probe prints one line per path, resolved inside the root: `dir|notdir|absent|eloop <path>`, for
/usr/src, /lib/modules/<release> (the running kernel's modules, not the whole directory), /var/run
and /var/lib. Whether a path's filesystem is NFS or mounted read-only is the mount table's business
(facts/mounts.py); this parser only says what the probe saw, keyed by the docs' table column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..sections import Sections

# The docs' table columns ("HostPath mounts"), in their order.
COLUMNS = ("/usr/src", "/lib/modules", "/var/run", "/var/lib")
KINDS = ("dir", "notdir", "absent", "eloop")


@dataclass(frozen=True)
class HostPath:
    column: str        # the table column: /lib/modules
    path: str          # what was looked at: /lib/modules/6.1.0-18-amd64
    kind: str | None   # dir notdir absent eloop; None: not known (not seen, or not visible)
    why: str = ""      # why kind is None
    hidden: bool = False  # not visible by design (a preflight pod that does not mount it), not unreadable

    def to_dict(self) -> dict:
        d = {"path": self.path, "kind": self.kind}
        if self.why:
            d["why"] = self.why
        return d


@dataclass
class HostPathFacts:
    paths: dict[str, HostPath] = field(default_factory=dict)  # by column
    reason: str | None = None  # the whole section could not be read

    def get(self, column: str) -> HostPath:
        return self.paths.get(column) or HostPath(column, column, None, self.reason or "not in the probe output")

    def to_dict(self) -> dict:
        return {"paths": {c: p.to_dict() for c, p in self.paths.items()}, "reason": self.reason}


def _column(path: str) -> str | None:
    if path in COLUMNS:
        return path
    if path.startswith("/lib/modules/") and "/" not in path[len("/lib/modules/"):]:
        return "/lib/modules"
    return None


def parse_text(text: str) -> dict[str, HostPath]:
    """The section's lines by column; unknown kinds and paths outside the table are skipped
    (a newer probe may add some), and a repeated column keeps its first line."""
    out: dict[str, HostPath] = {}
    for line in text.splitlines():
        kind, _, path = line.strip().partition(" ")
        col = _column(path.strip())
        if kind in KINDS and col and col not in out:
            out[col] = HostPath(col, path.strip(), kind)
    return out


def parse(sections: Sections) -> HostPathFacts:
    s = sections.get("hostpaths")
    if not s.ok or not s.complete:
        return HostPathFacts(reason=s.why())
    paths = parse_text(s.text or "")
    if not paths:
        return HostPathFacts(reason="hostpaths section has no readable lines")
    return HostPathFacts(paths=paths)


def restrict_view(facts: HostPathFacts, visible: tuple[str, ...], who: str) -> HostPathFacts:
    """What a partial view of the host can tell (`visible`: the host paths a preflight pod mounts,
    each a typed hostPath the kubelet checked exists). A path at or under a visible one was seen
    on the host. A path *above* a visible one is a directory on the host (the kubelet found its
    descendant: /var/lib from a mounted /var/lib/dpkg), whatever the pod's own filesystem shows.
    Any other path was looked at in the pod's own filesystem: unknown, marked hidden (by design,
    not a read failure); `who` names the view in the reason."""
    def under(path: str, top: str) -> bool:
        return path == top or path.startswith(top.rstrip("/") + "/")

    out = {}
    for col, hp in facts.paths.items():
        if any(under(hp.path, v) for v in visible):
            out[col] = hp
        elif any(under(v, hp.path) for v in visible):
            out[col] = HostPath(col, hp.path, "dir")
        else:
            out[col] = HostPath(col, hp.path, None, f"{hp.path} is not mounted into {who}", hidden=True)
    return HostPathFacts(paths=out, reason=facts.reason)
