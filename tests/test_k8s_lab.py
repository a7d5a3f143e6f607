"""The control-plane lab itself (tests/k8slab): it comes up, and its security and controllers are
the real ones: PodSecurity admission, RBAC and the Node authorizer + NodeRestriction, service-account
tokens, and the DaemonSet controller + scheduler computing desiredNumberScheduled and binding pods to
the nodes registered through the API. Also: a second cluster at once does not collide, and a cluster
whose owner is SIGKILLed leaves no process behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.k8slab import cluster as lab  # noqa: E402


def wait_for(fn, timeout=90.0, every=1.0, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"no {what} within {timeout}s (last: {last!r})")


def test_lab_comes_up_with_the_built_version(k8s_cluster):
    v = json.loads(k8s_cluster.kubectl("version", "-o", "json").stdout)
    assert v["serverVersion"]["gitVersion"] == lab.K8S_VERSION
    assert v["clientVersion"]["gitVersion"] == lab.K8S_VERSION
    assert k8s_cluster.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"
    assert k8s_cluster.server.startswith("https://127.0.0.1:")


def test_pod_security_admission_enforces_per_namespace(k8s_cluster):
    c = k8s_cluster
    c.create_namespace("nclab-restricted", {"pod-security.kubernetes.io/enforce": "restricted"})
    c.create_namespace("nclab-privileged", {"pod-security.kubernetes.io/enforce": "privileged"})
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "priv"},
           "spec": {"containers": [{"name": "c", "image": "registry.invalid/x:1", "securityContext": {"privileged": True}}]}}
    try:
        r = c.kubectl("apply", "-n", "nclab-restricted", "-f", "-", input=json.dumps(pod), check=False)
        assert r.returncode != 0 and 'violates PodSecurity "restricted:latest"' in r.stderr
        c.kubectl("apply", "-n", "nclab-privileged", "-f", "-", input=json.dumps(pod))
        got = json.loads(c.kubectl("get", "pod", "priv", "-n", "nclab-privileged", "-o", "json").stdout)
        # The ServiceAccount admission plugin gave it the projected token volume: SA tokens are wired.
        assert any(v["name"].startswith("kube-api-access-") for v in got["spec"]["volumes"])
    finally:
        for ns in ("nclab-restricted", "nclab-privileged"):
            c.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_rbac_and_node_restriction(k8s_cluster):
    c = k8s_cluster
    c.register_node("nclab-node-a")
    c.register_node("nclab-node-b")
    try:
        nobody = c.kubeconfig_for("nclab-nobody")
        assert c.kubectl("auth", "can-i", "list", "nodes", kubeconfig=nobody, check=False).stdout.strip() == "no"
        assert c.kubectl("auth", "can-i", "list", "nodes").stdout.strip() == "yes"  # the admin
        r = c.kubectl("get", "nodes", kubeconfig=nobody, check=False)
        assert r.returncode != 0 and 'User "nclab-nobody" cannot list resource "nodes"' in r.stderr
        # A kubelet identity may read its own Node but NodeRestriction stops it relabelling another one.
        kubelet_a = c.kubeconfig_for("system:node:nclab-node-a", ["system:nodes"])
        assert c.kubectl("get", "node", "nclab-node-a", kubeconfig=kubelet_a).returncode == 0
        r = c.kubectl("label", "node", "nclab-node-b", "x=y", kubeconfig=kubelet_a, check=False)
        assert r.returncode != 0 and "forbidden" in r.stderr
        who = json.loads(c.kubectl("auth", "whoami", "-o", "json", kubeconfig=kubelet_a).stdout)
        assert who["status"]["userInfo"]["username"] == "system:node:nclab-node-a"
        assert "system:nodes" in who["status"]["userInfo"]["groups"]
    finally:
        c.delete_node("nclab-node-a")
        c.delete_node("nclab-node-b")


def test_service_account_tokens_work(k8s_cluster):
    c = k8s_cluster
    c.create_namespace("nclab-sa")
    try:
        c.kubectl("create", "serviceaccount", "robot", "-n", "nclab-sa")
        token = c.kubectl("create", "token", "robot", "-n", "nclab-sa", "--duration=10m").stdout.strip()
        kc = c.kubeconfig_with_token("nclab-robot", token)
        who = json.loads(c.kubectl("auth", "whoami", "-o", "json", kubeconfig=kc).stdout)
        assert who["status"]["userInfo"]["username"] == "system:serviceaccount:nclab-sa:robot"
        # A token we sign ourselves with the cluster's key but already expired is rejected.
        expired = c.kubeconfig_with_token("nclab-robot-expired", c.service_account_token("nclab-sa", "robot", expires_in=-60))
        r = c.kubectl("auth", "whoami", kubeconfig=expired, check=False)
        assert r.returncode != 0 and "Unauthorized" in r.stderr
    finally:
        c.kubectl("delete", "namespace", "nclab-sa", "--wait=false", check=False)


def test_daemonset_desired_number_scheduled_is_computed_by_kubernetes(k8s_cluster):
    c = k8s_cluster
    names = [f"nclab-ds-{i}" for i in range(3)]
    for n in names:
        c.register_node(n, labels={"nclab-ds": "yes"})
    c.register_node("nclab-ds-other")  # not selected
    c.create_namespace("nclab-ds", {"pod-security.kubernetes.io/enforce": "privileged"})
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "probe", "namespace": "nclab-ds"},
          "spec": {"selector": {"matchLabels": {"app": "probe"}},
                   "template": {"metadata": {"labels": {"app": "probe"}},
                                "spec": {"nodeSelector": {"nclab-ds": "yes"},
                                         "containers": [{"name": "c", "image": "registry.invalid/probe:1"}]}}}}
    try:
        c.apply(ds)

        def scheduled():
            d = json.loads(c.kubectl("get", "ds", "probe", "-n", "nclab-ds", "-o", "json").stdout)
            st = d.get("status", {})
            # The controller creates the pods in slow-start batches (1, then 2, ...) and posts the
            # status between them: current may trail desired for a sync or two.
            return st.get("desiredNumberScheduled") == 3 and st.get("currentNumberScheduled") == 3 and d

        d = wait_for(scheduled, what="desiredNumberScheduled == currentNumberScheduled == 3")
        assert d["status"]["desiredNumberScheduled"] == 3  # the 4th node is not selected

        def bound():
            pods = json.loads(c.kubectl("get", "pods", "-n", "nclab-ds", "-o", "json").stdout)["items"]
            return sorted(p["spec"].get("nodeName") or "" for p in pods) == names and pods

        # The scheduler bound one pod to each selected node (nothing runs them: no kubelet).
        wait_for(bound, what="one pod bound per selected node")
    finally:
        c.kubectl("delete", "namespace", "nclab-ds", "--wait=false", check=False)
        for n in names + ["nclab-ds-other"]:
            c.delete_node(n)


def test_registered_nodes_stay_ready_past_the_grace_period(k8s_cluster):
    c = k8s_cluster
    c.register_node("nclab-ready")
    try:
        time.sleep(lab.NODE_GRACE_S + 15)
        n = json.loads(c.kubectl("get", "node", "nclab-ready", "-o", "json").stdout)
        ready = [x for x in n["status"]["conditions"] if x["type"] == "Ready"][0]
        assert ready["status"] == "True", ready
        assert not [t for t in n["spec"].get("taints") or [] if t["key"].startswith("node.kubernetes.io/")]
        lease = json.loads(c.kubectl("get", "lease", "nclab-ready", "-n", "kube-node-lease", "-o", "json").stdout)
        assert lease["spec"]["holderIdentity"] == "nclab-ready"
    finally:
        c.delete_node("nclab-ready")


def test_node_for_an_ssh_lab_host_shares_its_internal_ip(k8s_cluster):
    from tests import lab as fleetlab
    host = fleetlab.LabHost(spec=fleetlab.HostSpec("nclab-host-1", "ubuntu-22.04"), index=0, ip="10.213.7.9",
                            netns="unused", dir=Path("/nonexistent"))
    c = k8s_cluster
    c.register_node_for_host(host)
    try:
        n = json.loads(c.kubectl("get", "node", "nclab-host-1", "-o", "json").stdout)
        assert {"type": "InternalIP", "address": "10.213.7.9"} in n["status"]["addresses"]
        assert n["status"]["nodeInfo"]["kernelVersion"] == fleetlab.PROFILES["ubuntu-22.04"]["osrelease"]
        assert n["status"]["nodeInfo"]["osImage"] == "Ubuntu 22.04.4 LTS"
    finally:
        c.delete_node("nclab-host-1")


def test_restart_apiserver_keeps_state(k8s_cluster):
    c = k8s_cluster
    c.register_node("nclab-restart")
    try:
        c.restart_apiserver()
        assert c.kubectl("get", "node", "nclab-restart").returncode == 0
    finally:
        c.delete_node("nclab-restart")


def test_second_cluster_coexists_and_sigkilled_owner_leaves_nothing(k8s_cluster, tmp_path):
    """A second lab at once (other ports, other dir), then its owner SIGKILLed: the reaper ends it."""
    script = textwrap.dedent(f"""
        import json, sys, time
        sys.path.insert(0, {str(REPO)!r})
        from tests.k8slab.cluster import start_cluster
        c = start_cluster()
        print(json.dumps({{"server": c.server, "workdir": str(c.workdir),
                          "pids": [p.pid for p in c.procs.values()]}}), flush=True)
        time.sleep(600)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        info = json.loads(line)
        assert info["server"] != k8s_cluster.server and len(info["pids"]) == 4
        # Both answer at once.
        kc = Path(info["workdir"]) / "kubeconfigs" / "admin.kubeconfig"
        assert k8s_cluster.kubectl("get", "--raw", "/readyz", kubeconfig=kc).stdout.strip() == "ok"
        assert k8s_cluster.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()

    def all_gone():
        return not [p for p in info["pids"] if os.path.exists(f"/proc/{p}") and
                    "zombie" not in Path(f"/proc/{p}/status").read_text().lower()]

    wait_for(all_gone, timeout=30, every=0.5, what="every component of the killed owner's cluster gone")
    wait_for(lambda: not Path(info["workdir"]).exists(), timeout=30, every=0.5, what="its temp dir removed")
    assert k8s_cluster.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"
