"""The Kubernetes side of `nodecheck install`: which Nodes get which labels, and why not.

A pure function of data: the preflight verdicts of the inventory hosts, the Node objects
read from the API server, and one matrix release. No API calls here (the Ansible roles read
the Nodes with kubernetes.core and pass them in), so every decision is unit-tested on
plain dicts and the same plan is shown by `nodecheck install` and applied by the roles.

Per inventory host, in this order:
  1. find its Node: the `k8s_node_name` host variable, else a Node named like the host, else
     the Node whose `kubernetes.io/hostname` label is the host's name, else the Node with the
     host's address (`ansible_host`) as InternalIP. No Node (or two candidates) is an error
     for the whole plan: nothing is applied when the inventory and the cluster disagree.
  2. the preflight verdict: a node is labelled only when its preflight completed and was not
     `fail` (the verdicts in `allow`); fail, unreachable and error are skipped, with why.
  3. when Sysbox is rolled out, refuse the node when its kubelet minor is outside the
     release's installer whitelist or its container runtime is one the installer cannot
     switch (see RUNTIMES), or when the matrix has no installer image for the release.
  4. managed node pools (EKS, GKE, AKS, Karpenter) get a warning: labels set through the API
     are dropped when the pool replaces the node, so the setting for the pool is printed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Iterable, Mapping

LABEL_SYSBOX = ("sysbox-install", "yes")  # what sysbox-deploy-k8s's DaemonSet selects on
LABEL_FUSE = ("smarter-device-manager", "enabled")  # what the FUSE device plugin selects on
# The label sysbox-deploy-k8s sets when Sysbox runs (the RuntimeClass schedules on it).
LABEL_RUNTIME = "sysbox-runtime"

INSTALLER_SCRIPT = "https://github.com/nestybox/sysbox-pkgr/blob/47ab416/k8s/scripts/sysbox-deploy-k8s.sh"
KUBELET_HELPER = "https://github.com/nestybox/sysbox-pkgr/blob/47ab416/k8s/scripts/kubelet-config-helper.sh"

# What the installer does with each `status.nodeInfo.containerRuntimeVersion` scheme.
# get_container_runtime() takes the scheme before ":" and dies on an empty one ("Failed to
# detect K8s node runtime"); with CRI-O already active it installs no CRI-O; otherwise
# kubelet-config-helper.sh switches the kubelet to its CRI-O, and clean_runtime_state()
# handles only a containerd or a dockershim endpoint ("Container runtime not supported").
# dockershim left the kubelet in 1.24, so `docker://` on 1.24+ is cri-dockerd: rejected.
RUNTIMES: dict[str, str | None] = {"containerd": None, "cri-o": None}
DOCKERSHIM_LAST_MINOR = (1, 23)

# Managed node pools (their labels, providerID schemes and the setting to use instead of API
# labels) are data of matrix/kubernetes.yaml `managed_pools` / `cloud_instances`, the same list
# `nodecheck k8s nodes` warns from (nodecheck/k8s/requirements.py): one source.


@dataclass(frozen=True)
class HostInput:
    """One inventory host after the preflight."""

    name: str
    verdict: str  # pass warn unknown fail, or unreachable / error / missing (no preflight result)
    node_name: str | None = None  # the k8s_node_name host variable
    address: str | None = None  # ansible_host
    reason: str = ""  # why a non-passing verdict (failing checks)


@dataclass(frozen=True)
class NodeInfo:
    """What the plan needs from one Node object."""

    name: str
    hostname: str | None
    internal_ips: tuple[str, ...]
    labels: Mapping[str, str]
    provider_id: str | None
    kubelet_version: str | None
    runtime_version: str | None

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> "NodeInfo":
        meta = obj.get("metadata") or {}
        status = obj.get("status") or {}
        info = status.get("nodeInfo") or {}
        labels = dict(meta.get("labels") or {})
        ips = tuple(a.get("address") for a in status.get("addresses") or []
                    if a.get("type") == "InternalIP" and a.get("address"))
        return cls(name=meta.get("name", ""), hostname=labels.get("kubernetes.io/hostname"), internal_ips=ips,
                   labels=labels, provider_id=(obj.get("spec") or {}).get("providerID") or None,
                   kubelet_version=info.get("kubeletVersion") or None,
                   runtime_version=info.get("containerRuntimeVersion") or None)


@dataclass(frozen=True)
class ManagedPool:
    provider: str  # the matrix's provider name: EKS GKE AKS Karpenter, or AWS/GCE/Azure for a bare instance
    pool: str | None
    setting: str  # what to set instead of API labels

    def warning(self, node: str) -> str:
        where = f"{self.provider} node pool {self.pool!r}" if self.pool else f"a cloud instance ({self.provider}) in no managed pool"
        return (f"node {node} is in {where}: labels set through the API are lost when the pool replaces "
                f"the node; set them on the pool instead: {self.setting}")


@dataclass
class NodeAction:
    host: str
    verdict: str
    node: str | None = None
    matched_by: str | None = None
    action: str = "skip"  # label | skip | refuse
    labels: dict[str, str] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class K8sPlan:
    release: str | None
    installer_image: str | None
    installer_image_source: str | None
    sysbox: bool  # the sysbox_k8s role is part of the rollout
    fuse: bool  # the fuse_device_plugin role is part of the rollout
    nodes: list[NodeAction]
    errors: list[str]  # plan-wide: nothing may be applied
    release_why: str = ""  # how the release was chosen (choose_release)

    @property
    def labelled(self) -> dict[str, dict[str, str]]:
        return {a.node: a.labels for a in self.nodes if a.action == "label" and a.node}

    @property
    def cleared(self) -> list[NodeAction]:
        return [a for a in self.nodes if a.action == "label"]

    def node_of(self, host: str) -> str | None:
        return next((a.node for a in self.nodes if a.host == host), None)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["labelled"] = self.labelled
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "K8sPlan":
        """The plan back from the action plugin's result (Ansible variables are JSON); `labelled`
        is derived, never read, so it cannot disagree with the nodes."""
        known = {f.name for f in fields(NodeAction)}
        return cls(release=d.get("release"), installer_image=d.get("installer_image"),
                   installer_image_source=d.get("installer_image_source"), sysbox=bool(d.get("sysbox")),
                   fuse=bool(d.get("fuse")), errors=list(d.get("errors") or []),
                   release_why=str(d.get("release_why") or ""),
                   nodes=[NodeAction(**{k: v for k, v in a.items() if k in known}) for a in d.get("nodes") or []])


def minor_of(version: str | None) -> tuple[int, int] | None:
    """(1, 35) from "v1.35.4", "v1.35.4-eks-1234" or "1.35"; None when it is not a version."""
    if not version:
        return None
    parts = version.strip().lstrip("vV").split(".")
    try:
        return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or "x")
    except (IndexError, ValueError):
        return None


def match_node(host: HostInput, nodes: Iterable[NodeInfo]) -> tuple[NodeInfo | None, str]:
    """(node, how it matched) or (None, why not). Each rule is tried alone, most explicit first."""
    nodes = list(nodes)
    rules = []
    if host.node_name:
        rules.append((f"k8s_node_name {host.node_name}", lambda n: n.name == host.node_name, True))
    rules += [
        ("node name", lambda n: n.name == host.name, False),
        ("kubernetes.io/hostname label", lambda n: n.hostname == host.name, False),
    ]
    if host.address:
        rules.append((f"InternalIP {host.address}", lambda n: host.address in n.internal_ips, False))
    for how, pred, explicit in rules:
        hits = [n for n in nodes if pred(n)]
        if len(hits) == 1:
            return hits[0], how
        if len(hits) > 1:
            return None, f"{len(hits)} Nodes match by {how} ({', '.join(sorted(n.name for n in hits))}); set k8s_node_name"
        if explicit:
            return None, f"no Node named {host.node_name!r} (k8s_node_name)"
    tried = "node name, kubernetes.io/hostname" + (f", InternalIP {host.address}" if host.address else "")
    return None, f"no Node matches (tried {tried}); set k8s_node_name or check the kubeconfig's cluster"


def managed_pool(node: NodeInfo, labels: Mapping[str, str], req=None) -> ManagedPool | None:
    """The managed pool a node belongs to, and how to label the pool instead of the node
    (matrix/kubernetes.yaml; `req`: a loaded nodecheck.k8s.requirements.Requirements)."""
    if req is None:
        from ..k8s import requirements
        req = requirements.load()
    m = req.managed_pool(node.labels, node.provider_id, labels)
    if m is None:
        return None
    return ManagedPool(provider=m.provider, pool=m.pool, setting=m.setting)


def installer_refusal(node: NodeInfo, minors: Iterable[str], eol_minors: Iterable[str] = (),
                      release: str | None = None) -> str | None:
    """Why sysbox-deploy-k8s of this release would reject the node, or None when it accepts it."""
    minors = tuple(minors)
    rel = f"Sysbox {release}'s" if release else "the"
    m = minor_of(node.kubelet_version)
    if m is None:
        return f"kubelet version {node.kubelet_version!r} is not a version: {rel} installer accepts {', '.join(minors)}"
    key = f"{m[0]}.{m[1]}"
    if key not in minors:
        eol = " (an EOL minor for this release)" if key in tuple(eol_minors) else ""
        return (f"kubelet {node.kubelet_version} (Kubernetes {key}{eol}) is outside what {rel} installer accepts "
                f"({', '.join(minors)})")
    scheme = (node.runtime_version or "").split(":", 1)[0].strip()
    if not scheme:
        return "the Node reports no container runtime (status.nodeInfo.containerRuntimeVersion); the installer stops " \
               "with 'Failed to detect K8s node runtime'"
    if scheme == "docker":
        if m > DOCKERSHIM_LAST_MINOR:
            return (f"container runtime {node.runtime_version} on Kubernetes {key} is cri-dockerd: the installer switches "
                    "the kubelet to CRI-O only from containerd or dockershim ('Container runtime not supported')")
        return None
    if scheme not in RUNTIMES:
        return (f"container runtime {node.runtime_version} is not one the installer handles "
                f"({', '.join(sorted(RUNTIMES))}, and docker up to Kubernetes 1.23)")
    return None


def build_plan(hosts: Iterable[HostInput], node_objects: Iterable[Mapping[str, Any]], *,
               release: str | None, k8s_release: Any | None, sysbox: bool = True, fuse: bool = True,
               label_sysbox: bool = True, label_fuse: bool = True,
               allow: Iterable[str] = ("pass", "warn", "unknown"),
               installer_image: str | None = None,
               approved: Mapping[str, Mapping[str, str]] | None = None) -> K8sPlan:
    """The plan for these hosts against these Nodes.

    `k8s_release` is the matrix release's `kubernetes` entry (nodecheck.matrix.Kubernetes or a
    dict with the same keys); `installer_image` overrides its `installer_image`. `approved` is
    the `labelled` map an operator approved (nodecheck install shows the plan, asks, then
    applies): a plan that differs from it is an error, so the apply changes nothing unseen.
    """
    allow = set(allow) - {"fail"}  # a failing node is never labelled, whatever the caller allows
    nodes = [NodeInfo.from_object(o) for o in node_objects]
    spec = _spec(k8s_release)
    image = installer_image or spec.get("installer_image")
    image_source = "sysbox_k8s_installer_image" if installer_image else spec.get("source")
    want: dict[str, str] = {}
    if label_sysbox and sysbox:
        want[LABEL_SYSBOX[0]] = LABEL_SYSBOX[1]
    if label_fuse and fuse:
        want[LABEL_FUSE[0]] = LABEL_FUSE[1]
    plan = K8sPlan(release=release, installer_image=image, installer_image_source=image_source,
                   sysbox=sysbox, fuse=fuse, nodes=[], errors=[])
    seen: dict[str, str] = {}
    for h in hosts:
        a = NodeAction(host=h.name, verdict=h.verdict)
        plan.nodes.append(a)
        node, how = match_node(h, nodes)
        if node is None:
            plan.errors.append(f"{h.name}: {how}")
            a.reasons.append(how)
            continue
        a.node, a.matched_by = node.name, how
        if node.name in seen:
            plan.errors.append(f"{h.name}: Node {node.name} is also matched by host {seen[node.name]}; set k8s_node_name")
            a.reasons.append(f"Node {node.name} is also host {seen[node.name]}")
            continue
        seen[node.name] = h.name
        if h.verdict not in allow:
            a.reasons.append(f"preflight {h.verdict}" + (f": {h.reason}" if h.reason else ""))
            continue
        if sysbox:
            why = None
            if not image:
                why = (f"the matrix has no sysbox-deploy-k8s image for Sysbox {release}"
                       + (f" ({spec['note']})" if spec.get("note") else "")
                       + "; set sysbox_k8s_installer_image to one you have verified")
            else:
                why = installer_refusal(node, spec.get("minors") or (), spec.get("eol_minors") or (), release)
            if why:
                a.action = "refuse"
                a.reasons.append(why)
                continue
        if not want:
            a.reasons.append("no label is enabled")
            continue
        a.action = "label"
        a.labels = dict(want)
        pool = managed_pool(node, want)
        if pool:
            a.warnings.append(pool.warning(node.name))
    if approved:
        names = {n.name for n in nodes}
        gone = sorted(n for n in approved if n not in names)
        for n in gone:
            plan.errors.insert(0, f"Node {n} was in the approved plan but no longer exists")
        now = plan.labelled
        if not gone and {k: dict(v) for k, v in approved.items()} != now:
            plan.errors.append("the plan changed since it was approved: " + _plan_diff(approved, now))
    return plan


def _plan_diff(before: Mapping[str, Mapping[str, str]], after: Mapping[str, Mapping[str, str]]) -> str:
    bits = []
    for n in sorted(set(before) | set(after)):
        b, a = dict(before.get(n) or {}), dict(after.get(n) or {})
        if b != a:
            bits.append(f"{n}: {_labels(b) or 'nothing'} -> {_labels(a) or 'nothing'}")
    return "; ".join(bits)


def _labels(d: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(d.items()))


def api_error_line(msg: Any) -> str:
    """One line from a kubernetes.core / kubernetes-client error: the API Status message when
    there is one ("nodes \"x\" is forbidden: User ..."), else the exception's own first line
    (connection refused, certificate verify failed, Unauthorized)."""
    import json
    import re

    text = str(msg or "")
    dec = json.JSONDecoder()
    # the API's Status body, as sent or once more escaped (a repr inside a repr); raw_decode
    # reads one object from its opening brace and ignores the text around it
    for body in (text, text.encode().decode("unicode_escape", "replace")):
        for m in re.finditer(r'\{\s*"kind"\s*:\s*"Status"', body):
            try:
                doc, _ = dec.raw_decode(body, m.start())
            except ValueError:
                continue
            if isinstance(doc, dict) and doc.get("message"):
                return f"{doc.get('reason') or 'Error'} ({doc.get('code', '?')}): {doc['message']}"
    m = re.search(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)"', text)
    if m:
        return m.group(1).replace('\\"', '"')
    where = re.search(r"host='([^']+)', port=(\d+)", text)
    at = f" ({where.group(1)}:{where.group(2)})" if where else ""
    for pat, say in ((r"CERTIFICATE_VERIFY_FAILED[^'\")]*", None), (r"Connection refused", "connection refused" + at),
                     (r"Unauthorized", "Unauthorized (401): the credentials were rejected (expired or wrong token/cert)")):
        m = re.search(pat, text)
        if m:
            return say or ("TLS: " + m.group(0).strip())
    first = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return first if len(first) <= 400 else first[:399] + "…"


def choose_release(matrix: Any, wanted: str | None) -> tuple[Any, str]:
    """(matrix release, why this one). An explicit release is used as is (and refused later when
    it has no installer image); by default the newest release whose sysbox-deploy-k8s image the
    matrix knows, since one image serves the whole cluster."""
    if wanted:
        return matrix.release(wanted), "chosen"
    for r in reversed(matrix.releases):
        if r.kubernetes.installer_image:
            newer = [str(x.version) for x in matrix.releases if x.version > r.version]
            why = "the newest release with a known sysbox-deploy-k8s image"
            return r, why + (f" ({', '.join(newer)}: image tag not in the matrix)" if newer else "")
    return matrix.newest, "the newest release (no release has a known installer image)"


def _spec(k8s_release: Any | None) -> dict:
    if k8s_release is None:
        return {}
    if isinstance(k8s_release, Mapping):
        return dict(k8s_release)
    return {k: getattr(k8s_release, k, None) for k in ("installer_image", "minors", "eol_minors", "source", "note")}


def host_inputs(hostvars: Mapping[str, Mapping[str, Any]], names: Iterable[str]) -> list[HostInput]:
    """HostInputs from Ansible hostvars (the facts the preflight role sets)."""
    out = []
    for name in names:
        hv = hostvars.get(name) or {}
        verdict = hv.get("nodecheck_verdict") or "missing"
        report = hv.get("nodecheck_report") or {}
        failing = [c.get("id") for c in report.get("checks") or [] if c.get("status") == "fail"]
        reason = ("failing checks: " + ", ".join(str(f) for f in failing)) if failing else ""
        if verdict == "missing":
            reason = "no preflight result (unreachable, or the preflight did not run)"
        out.append(HostInput(name=name, verdict=verdict, node_name=hv.get("k8s_node_name") or None,
                             address=hv.get("ansible_host") or None, reason=reason))
    return out
