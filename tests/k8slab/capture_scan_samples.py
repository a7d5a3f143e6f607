"""Capture real API objects for tests/test_k8s_diagnose.py: each case is a `nodecheck k8s scan --keep`
against the lab's real control plane, after which the pod, the events, the Node and the Job are
dumped exactly as the API server returned them (tests/fixtures/k8s/scan/<case>.json).

    .venv/bin/python tests/k8slab/capture_scan_samples.py [OUTDIR]

The samples are committed so the diagnosis tests run without a cluster; re-run this after a
Kubernetes upgrade of the lab to refresh them (the test checks the version they came from).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))

from tests.k8slab.cluster import K8S_VERSION, start_cluster  # noqa: E402

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "tests" / "fixtures" / "k8s" / "scan"


def _get(c, *args) -> dict:
    return json.loads(c.kubectl(*args, "-o", "json").stdout)


def _scan(c, ns: str, nodes: list[str], *extra: str, timeout: int = 8) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nodecheck.cli", "k8s", "scan", "--kubeconfig",
                             str(c.admin_kubeconfig), "-n", ns, "--timeout", str(timeout), "--keep", "-o", "json",
                             *extra, *nodes], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _dump(c, case: str, ns: str, node: str, report: dict | None) -> None:
    pods = [p for p in _get(c, "get", "pods", "-n", ns)["items"]
            if p["spec"].get("nodeName") == node or node in json.dumps(p["spec"].get("affinity") or {})]
    jobs = [j for j in _get(c, "get", "jobs", "-n", ns)["items"]
            if j["metadata"].get("annotations", {}).get("nodecheck.sysbox.io/node") == node]
    row = next((n for n in (report or {}).get("nodes", []) if n["node"] == node), None)
    doc = {"kubernetes": K8S_VERSION, "case": case, "node_name": node,
           "node": _get(c, "get", "node", node), "pod": pods[-1] if pods else None,
           "job": jobs[-1] if jobs else None, "events": _get(c, "get", "events", "-n", ns)["items"],
           "scan_row_error": (row or {}).get("error")}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{case}.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"{case}: {(row or {}).get('error')}")


def _ns(c, name: str, labels: dict | None = None, sa: bool = True) -> None:
    r = subprocess.run([sys.executable, "-m", "nodecheck.cli", "k8s", "render", "--rbac", "-n", name],
                       cwd=REPO, capture_output=True, text=True, check=True)
    docs = r.stdout if sa else r.stdout.split("---\n")[0]
    c.kubectl("apply", "-f", "-", input=docs)
    if labels:
        c.kubectl("label", "namespace", name, "--overwrite", *[f"{k}={v}" for k, v in labels.items()])


def main() -> None:
    c = start_cluster()
    try:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        c.register_node("sample-ready")
        c.register_node("sample-notready")
        c.kubectl("patch", "node", "sample-notready", "--subresource=status", "--type=merge", "-p", json.dumps(
            {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady",
                                        "message": "container runtime network not ready: NetworkReady=false "
                                                   "reason:NetworkPluginNotReady message:Network plugin returns "
                                                   "error: cni plugin not initialized",
                                        "lastHeartbeatTime": now, "lastTransitionTime": now}]}}))
        c.register_node("sample-tainted", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
        c.register_node("sample-deleted")
        c.register_node("sample-terminating")

        _ns(c, "samples")
        p = _scan(c, "samples", ["sample-ready", "sample-notready"])
        rep = json.loads(p.communicate()[0])
        _dump(c, "bound-not-started", "samples", "sample-ready", rep)
        _dump(c, "node-not-ready", "samples", "sample-notready", rep)

        p = _scan(c, "samples", ["sample-tainted"], "--no-tolerate-taints")
        _dump(c, "taint-not-tolerated", "samples", "sample-tainted", json.loads(p.communicate()[0]))

        # Deleted mid-scan: forced (the pod is gone) and graceful (no kubelet finishes it: Terminating).
        _ns(c, "samples-del")
        p = _scan(c, "samples-del", ["sample-deleted", "sample-terminating"], timeout=20)
        for _ in range(40):
            pods = _get(c, "get", "pods", "-n", "samples-del")["items"]
            if len([x for x in pods if x["spec"].get("nodeName")]) == 2:
                break
            time.sleep(0.5)
        time.sleep(2)
        for x in pods:
            if x["spec"]["nodeName"] == "sample-deleted":
                c.kubectl("delete", "pod", "-n", "samples-del", x["metadata"]["name"], "--force", "--grace-period=0")
            else:
                c.kubectl("delete", "pod", "-n", "samples-del", x["metadata"]["name"], "--wait=false")
        rep = json.loads(p.communicate()[0])
        _dump(c, "pod-deleted", "samples-del", "sample-deleted", rep)
        _dump(c, "pod-terminating", "samples-del", "sample-terminating", rep)

        # The Job cannot create its pod: no ServiceAccount; Pod Security "restricted" enforced.
        _ns(c, "samples-nosa", sa=False)
        p = _scan(c, "samples-nosa", ["sample-ready"])
        _dump(c, "job-no-serviceaccount", "samples-nosa", "sample-ready", json.loads(p.communicate()[0]))
        _ns(c, "samples-restricted", labels={"pod-security.kubernetes.io/enforce": "restricted"})
        p = _scan(c, "samples-restricted", ["sample-ready"])
        _dump(c, "job-podsecurity-restricted", "samples-restricted", "sample-ready", json.loads(p.communicate()[0]))
    finally:
        c.stop()


if __name__ == "__main__":
    main()
