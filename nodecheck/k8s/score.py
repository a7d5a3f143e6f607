"""A scanned node's report row: its pod's output scored here, or an `unknown` row saying why not.

Job mode: the pod's `nodecheck.snapshot/v1` is re-parsed from its raw probe output and scored
with this process's matrix, target and --ignore (as `nodecheck scan --snapshot` does).
DaemonSet mode: the pod's own report row is taken as it is (it was scored in the pod).
A node with no usable output becomes `pipeline.host_error` with the diagnosed kind and reason.
Every row carries `kubernetes`: the pod, the Job and the run id, so a person can look further.
"""

from __future__ import annotations

from .. import pipeline
from ..report.model import NodeReport
from .podlog import report_node_from_log, snapshot_from_log
from .scan import NodeRun, ScanResult


# The runtimes a Node's nodeInfo names, by the probe's runtime keys.
_NODE_RUNTIMES = {"containerd": "containerd", "cri-o": "crio", "docker": "docker"}


def fill_from_node(facts, nf) -> list[str]:
    """Give the probe's facts what only the Node object knows, where the probe could not read it:
    the running kubelet's version (the probe sees it only in a package database the pod may not
    mount) and the CRI runtime's. A version the probe did read is kept (it names the package the
    installer acts on). Returns the facts filled, for the report."""
    from ..facts.runtimes import Runtime

    filled = []
    src = "node.status.nodeInfo"
    rt = facts.runtimes
    if nf.kubelet_version and not rt.get("kubelet").upstream:
        rt.runtimes["kubelet"] = Runtime(installed=True, version=nf.kubelet_version,
                                         upstream=nf.kubelet_version.lstrip("v"), source=f"{src}.kubeletVersion")
        filled.append("kubelet.version")
    if rt.kubelet_configured is None:
        rt.kubelet_configured = True  # a Node is registered by a kubelet
    key = _NODE_RUNTIMES.get(nf.runtime_scheme or "")
    if key and nf.runtime_version and not rt.get(key).upstream:
        rt.runtimes[key] = Runtime(installed=True, version=nf.runtime_version, upstream=nf.runtime_version,
                                   source=f"{src}.containerRuntimeVersion")
        filled.append(f"runtime.{key}.version")
    return filled


def score_with_node(name: str, raw: str, node_obj: dict | None, *, matrix, target: str | None, ignore,
                    source: str, visible: tuple[str, ...] | None = None) -> NodeReport:
    """The pod's probe output scored here, merged with its Node object (`nodecheck k8s nodes`'s
    facts): the Node fills what the probe could not read, and the Node-only checks (the runtime as
    the Kubernetes installer sees it, managed node pools, a non-Linux node) are scored with the
    probe's for every release. The probe's own GPU check is kept: it sees the PCI devices.
    `visible`: the host paths the pod mounted; the CVM host paths outside them were seen in the
    pod's own filesystem, not the node's (facts.hostpaths.restrict_view)."""
    from .. import sections
    from ..checks import hostpaths as HC
    from ..facts import gather
    from ..facts.hostpaths import restrict_view
    from . import nodes as N
    from . import requirements

    parsed = sections.parse(raw)
    if parsed.version == 0 or node_obj is None:
        return pipeline.score_output(name, raw, matrix=matrix, target=target, ignore=ignore, source=source)
    facts = gather(parsed)
    if visible is not None:
        facts.hostpaths = restrict_view(facts.hostpaths, visible, "the preflight pod")
    nf = N.parse_node(node_obj)
    filled = fill_from_node(facts, nf)
    req = requirements.load()

    def extra(rel):
        return [f for f in N.node_findings(nf, facts, req, rel) if f.id != "gpu.nvidia"]

    row = pipeline.score_facts(name, facts, matrix=matrix, target=target, ignore=ignore, source=source,
                               extra=extra)
    row.facts.update({"kubernetes.runtime": nf.runtime,
                         "kubernetes.internal_ip": nf.internal_ips[0] if nf.internal_ips else None,
                         "kubernetes.provider_id": nf.provider_id})
    # Which rows of the Coder docs' HostPath table the node serves (the storage.hostpaths finding, as data).
    cvm = HC.report(facts.hostpaths, facts.mounts)
    row.facts["cvm.host_paths.served"] = [r["row"] for r in cvm if r["status"] == "pass"]
    row.facts["cvm.host_paths.rows"] = cvm
    row.kubernetes_node = nf.to_dict()
    row.from_node = filled
    return row


def _k8s_meta(run: NodeRun, result: ScanResult, namespace: str) -> dict:
    return {"namespace": namespace, "pod": run.pod_name, "job": run.job, "scan_run": result.run_id,
            "last_state": run.state}


def node_row(run: NodeRun, result: ScanResult, *, namespace: str, daemonset: str | None, matrix,
             target: str | None, ignore=(), visible: tuple[str, ...] | None = None) -> NodeReport:
    source = f"k8s:{namespace}/pod/{run.pod_name}" if run.pod_name else f"k8s:{namespace}"
    row: NodeReport | None = None
    if run.log is not None:
        if daemonset:
            parsed = report_node_from_log(run.log)
            if parsed.doc is not None:
                row = NodeReport.from_dict(parsed.doc)
                # The Kubernetes node name is the key (the pod may call itself by its hostname).
                row.node, row.source = run.node, source
        else:
            parsed = snapshot_from_log(run.log)
            if parsed.doc is not None:
                row = score_with_node(run.node, parsed.doc["probe"]["output"], result.nodes.get(run.node),
                                      matrix=matrix, target=target, ignore=ignore, source=source,
                                      visible=visible)
        if row is None:
            row = pipeline.host_error(run.node, "probe-error", f"pod {run.pod_name}: {parsed.problem}",
                                      stderr_tail=run.log[-2000:], matrix=matrix, target=target, source=source)
    else:
        d = run.diagnosis
        kind, message = (d.kind, d.message) if d else ("not-started", f"no report (last state: {run.state})")
        row = pipeline.host_error(run.node, kind, message, matrix=matrix, target=target, source=source)
    row.kubernetes = _k8s_meta(run, result, namespace)
    return row


def rows(result: ScanResult, *, namespace: str, daemonset: str | None, matrix, target: str | None,
         ignore=(), visible: tuple[str, ...] | None = None) -> list[NodeReport]:
    return [node_row(r, result, namespace=namespace, daemonset=daemonset, matrix=matrix, target=target,
                     ignore=ignore, visible=visible) for r in result.runs]
