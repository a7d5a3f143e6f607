"""A scanned node's report row: its pod's output scored here, or an `unknown` row saying why not.

Job mode: the pod's `nodecheck.snapshot/v1` is re-parsed from its raw probe output and scored
with this process's matrix, target and --ignore (as `nodecheck scan --snapshot` does).
DaemonSet mode: the pod's own report row is taken as it is (it was scored in the pod).
A node with no usable output becomes `pipeline.error_node` with the diagnosed kind and reason.
Every row carries `kubernetes`: the pod, the Job and the run id, so a person can look further.
"""

from __future__ import annotations

from .. import pipeline
from .podlog import report_node_from_log, snapshot_from_log
from .scan import NodeRun, ScanResult


def _k8s_meta(run: NodeRun, result: ScanResult, namespace: str) -> dict:
    return {"namespace": namespace, "pod": run.pod_name, "job": run.job, "scan_run": result.run_id,
            "last_state": run.state}


def node_row(run: NodeRun, result: ScanResult, *, namespace: str, daemonset: str | None, matrix,
             target: str | None, ignore=()) -> dict:
    source = f"k8s:{namespace}/pod/{run.pod_name}" if run.pod_name else f"k8s:{namespace}"
    row: dict | None = None
    if run.log is not None:
        if daemonset:
            parsed = report_node_from_log(run.log)
            if parsed.doc is not None:
                row = dict(parsed.doc)
                # The Kubernetes node name is the key (the pod may call itself by its hostname).
                row["node"], row["source"] = run.node, source
        else:
            parsed = snapshot_from_log(run.log)
            if parsed.doc is not None:
                row = pipeline.node_from_output(run.node, parsed.doc["probe"]["output"], matrix=matrix,
                                                target=target, ignore=ignore, source=source)
        if row is None:
            row = pipeline.error_node(run.node, "probe-error", f"pod {run.pod_name}: {parsed.problem}",
                                      stderr_tail=run.log[-2000:], matrix=matrix, target=target, source=source)
    else:
        d = run.diagnosis
        kind, message = (d.kind, d.message) if d else ("not-started", f"no report (last state: {run.state})")
        row = pipeline.error_node(run.node, kind, message, matrix=matrix, target=target, source=source)
    row["kubernetes"] = _k8s_meta(run, result, namespace)
    return row


def rows(result: ScanResult, *, namespace: str, daemonset: str | None, matrix, target: str | None,
         ignore=()) -> list[dict]:
    return [node_row(r, result, namespace=namespace, daemonset=daemonset, matrix=matrix, target=target,
                     ignore=ignore) for r in result.runs]
