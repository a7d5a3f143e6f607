"""Measure `nodecheck k8s scan` of the lab's real kubelet node, and capture the README's workflow excerpts.

    sudo .venv/bin/python tests/k8slab/measure_scan.py [RUNS] [OUTDIR]

Starts the control-plane lab and the real node (tests/k8slab/node.py, as the k8s_real_node fixture
does), applies what an admin runs once (`nodecheck k8s render --rbac` for a scanner identity), then
runs, as that identity: `k8s nodes`, `k8s cluster` (with the rendered cluster-check Role), and RUNS
times `k8s scan` of the real node, each timed from process start to exit (the CLI's own start-up
included: that is what a user waits for). Writes OUTDIR/measure.json and the outputs as text files.
The load average is recorded with each run: this lab shares its CPUs with whatever else runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))

from tests.k8slab.cluster import start_cluster  # noqa: E402
from tests.k8slab.node import start_real_node  # noqa: E402

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
OUT = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("/tmp/nodecheck-k8s-measure")


def _cli(*args: str, timeout: float = 600) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "nodecheck.cli", *args], capture_output=True, text=True,
                       timeout=timeout, env=env, cwd=REPO)
    return r, time.monotonic() - t0


def _save(name: str, r: subprocess.CompletedProcess, wall: float) -> dict:
    (OUT / f"{name}.out").write_text(r.stdout)
    (OUT / f"{name}.err").write_text(r.stderr)
    return {"name": name, "rc": r.returncode, "wall_s": round(wall, 2), "loadavg": os.getloadavg()[0]}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    res: dict = {"machine": {"cpus": os.cpu_count(), "uname": os.uname().release}, "runs": []}
    t0 = time.monotonic()
    cluster = start_cluster()
    res["cluster_start_s"] = round(time.monotonic() - t0, 1)
    node = None
    try:
        t1 = time.monotonic()
        node = start_real_node(cluster, "nodecheck-lab-node")
        res["node_start_s"] = round(time.monotonic() - t1, 1)
        res["node_timings"] = getattr(node, "timings", {})
        ns, user = "coder-prescan", "prescanner"
        r, _ = _cli("k8s", "render", "--rbac", "--user", user, "-n", ns)
        assert r.returncode == 0, r.stderr
        cluster.kubectl("apply", "-f", "-", input=r.stdout)
        kc = str(cluster.kubeconfig_for(user))
        # The workspace namespace Coder would use, and the cluster-check identity (rendered Role).
        cluster.create_namespace("coder-workspaces", labels={"pod-security.kubernetes.io/enforce": "privileged"})
        r, _ = _cli("k8s", "render", "--cluster-rbac", "--user", "cluster-checker", "-n", "coder-workspaces")
        if r.returncode == 0:
            cluster.kubectl("apply", "-f", "-", input=r.stdout)
            ckc = str(cluster.kubeconfig_for("cluster-checker"))
        else:  # an older tree without --cluster-rbac: the admin identity
            ckc = str(cluster.admin_kubeconfig)
        res["runs"].append(_save("k8s-nodes", *_cli("k8s", "nodes", "--kubeconfig", kc, "--format", "table")))
        res["runs"].append(_save("k8s-cluster", *_cli("k8s", "cluster", "--kubeconfig", ckc,
                                                       "-n", "coder-workspaces", "--format", "table")))
        for i in range(RUNS):
            fmt = "table" if i == 0 else "json"
            res["runs"].append(_save(f"k8s-scan-{i}", *_cli("k8s", "scan", "--kubeconfig", kc, "-n", ns,
                                                             "--timeout", "180", "-o", fmt,
                                                             node.name)))
            print(res["runs"][-1], flush=True)
    finally:
        if node is not None:
            node.stop()
        cluster.stop()
        (OUT / "measure.json").write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
