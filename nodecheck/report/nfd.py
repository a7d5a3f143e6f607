"""Node Feature Discovery local feature file (`features.d`) from one `nodecheck.report/v1` node.

NFD's worker reads `key=value` lines from files in
/etc/kubernetes/node-feature-discovery/features.d/ and nfd-master turns them into node labels,
so the verdict reaches the Node without nodecheck ever writing to the Kubernetes API.

Names use the prefix `nodecheck.sysbox.io/`: a DNS subdomain of its own, so NFD does not
auto-prefix it with `feature.node.kubernetes.io/` and it cannot collide with NFD's built-in
labels or the GPU Operator's; it says what the label is about (Sysbox readiness, by nodecheck).
NFD must be told to allow it (`-extra-label-ns=nodecheck.sysbox.io` or `extraLabelNs`).
Every key and value is valid as a label (values are sanitised, never dropped silently: an
unrepresentable value is omitted and listed in a comment). The file stays below NFD's 64 KiB cap.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from .model import NodeReport, as_node

PREFIX = "nodecheck.sysbox.io/"
MAX_BYTES = 64 * 1024 - 1  # NFD rejects feature files of 64 KiB and more

_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

# label name -> fact key in NodeReport.facts
FACTS = {
    "kernel.release": "kernel.release",
    "arch": "arch",
    "distro.id": "distro.id",
    "distro.version_id": "distro.version_id",
    "selinux.mode": "selinux.mode",
}


def valid_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    return bool(_NAME.fullmatch(name)) and (not prefix or (len(prefix) <= 253 and bool(_PREFIX.fullmatch(prefix))))


def valid_value(value: str) -> bool:
    return len(value) <= 63 and bool(_VALUE.fullmatch(value))


def label_value(raw) -> str | None:
    """A label-safe form of a value: bools lowercased, invalid characters -> '_', at most 63
    characters, trimmed to start and end alphanumerically. None when nothing is left."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        raw = "true" if raw else "false"
    s = re.sub(r"[^A-Za-z0-9_.-]", "_", str(raw))[:63]
    s = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", s)
    return s if s and valid_value(s) else None


def _rfc3339(t: datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def features_file(node: "NodeReport | dict", expires: datetime | None = None) -> str:
    """The features.d file text for one report node (a NodeReport or its JSON form).

    `expires`: NFD drops the features after this time (`# +expiry-time=`), so a node that is
    not rescanned loses stale labels.
    """
    node = as_node(node)
    lines = [f"# nodecheck Sysbox preflight for node {label_value(node.node) or 'unknown'}"]
    if expires is not None:
        lines.append(f"# +expiry-time={_rfc3339(expires)}")
    skipped = []

    def add(name: str, raw) -> None:
        key = PREFIX + name
        val = label_value(raw)
        if not valid_key(key):
            skipped.append(name)
            return
        if val is None:
            if raw is not None:
                skipped.append(name)
            return
        lines.append(f"{key}={val}")

    add("verdict", node.verdict or "unknown")
    add("sysbox.recommended", node.sysbox.recommended)
    add("sysbox.target", node.sysbox.target)
    for name, fact in FACTS.items():
        add(name, node.facts.get(fact))
    # One label per check that did not pass, so a rule can select e.g. checks failing `selinux`.
    for check in node.checks:
        cid, status = check.id, check.status
        if cid and status and status != "pass":
            add(f"check.{cid}", status)
    if skipped:
        # Names come from the report: never let one break out of the comment line.
        safe = sorted({re.sub(r"[^A-Za-z0-9_.-]", "?", n)[:80] for n in skipped})
        lines.append("# not representable as labels: " + ", ".join(safe)[:200])
    text = "\n".join(lines) + "\n"
    while len(text.encode()) > MAX_BYTES:  # keep verdict and facts; drop per-check lines from the end
        checks = [i for i, ln in enumerate(lines) if ln.startswith(PREFIX + "check.")]
        if not checks:
            raise ValueError("feature file over 64 KiB without per-check lines")
        del lines[checks[-1]]
        text = "\n".join(lines) + "\n"
    return text
