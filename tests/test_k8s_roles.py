"""The Kubernetes roles (k8s_node_labels, fuse_device_plugin, sysbox_k8s) run with plain
ansible-playbook against the real control plane of tests/k8slab (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler built from upstream), and judged by the API server's
own objects: Node labels, DaemonSet status computed by the real DaemonSet controller, the
RuntimeClass as admitted.

The inventory hosts are fixture root trees (tests/fixtures/hosts) preflighted for real by the
preflight role (connection local, nodecheck_preflight_root), registered as Nodes through the
API. Which of them pass is computed by nodecheck's own scoring, never written down here.
There is no kubelet behind the Nodes: DaemonSet pods are created and bound, never run, so the
sysbox-deploy-k8s installer itself does not run (it would need a real node and its image).
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
PLAYBOOKS = REPO / "playbooks"
FIXTURES = REPO / "tests" / "fixtures" / "hosts"
BIN = Path(sys.executable).parent
RELEASE = "0.7.0"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _matrix_release():
    from nodecheck import matrix

    return matrix.load().release(RELEASE)


def verdict_of(profile: str) -> str:
    """What nodecheck's own scoring says about a fixture tree (the same pipeline as the role)."""
    r = subprocess.run([str(BIN / "nodecheck"), "scan", "--root", str(FIXTURES / profile / "root"),
                        "--sysbox", RELEASE, "--format", "json"], capture_output=True, text=True, timeout=120)
    return json.loads(r.stdout)["nodes"][0]["verdict"]


# Fixture trees to draw hosts from; which pass and which fail is decided by the scoring at test
# time (the matrix and the checks evolve), the test only needs some of each.
CANDIDATES = ("ubuntu-24.04", "ubuntu-22.04-arm64", "debian-12", "amzn-2023", "rocky-9-permissive",
              "fedora-40", "ubuntu-25.04", "docker-snap", "nfs-var-lib")


@functools.lru_cache(maxsize=1)
def profiles() -> tuple[list[str], list[str]]:
    """(profiles that do not fail, profiles that fail) for RELEASE, by nodecheck's own verdicts."""
    v = {c: verdict_of(c) for c in CANDIDATES}
    ok = [c for c in CANDIDATES if v[c] != "fail"]
    bad = [c for c in CANDIDATES if v[c] == "fail"]
    assert ok and bad, f"the test needs fixture trees that pass and that fail for {RELEASE}: {v}"
    return ok, bad


def ok_profile(i: int = 0) -> str:
    ok, _ = profiles()
    return ok[i % len(ok)]


def env(**extra) -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "K8S_AUTH_"))}
    e.update(ANSIBLE_CONFIG=str(PLAYBOOKS / "ansible.cfg"), PATH=f"{BIN}:{e.get('PATH', '')}", ANSIBLE_NOCOLOR="1",
             NO_COLOR="1", ANSIBLE_HOME=str(REPO / "tests/.cache/ansible-home"))
    e.update(extra)
    return e


def write_inventory(tmp: Path, hosts: dict[str, dict]) -> Path:
    inv = {"all": {"hosts": {}}}
    for name, h in hosts.items():
        hv = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
              "nodecheck_preflight_root": str(FIXTURES / h["profile"] / "root")}
        if h.get("address"):
            hv["ansible_host"] = h["address"]
        if h.get("k8s_node_name"):
            hv["k8s_node_name"] = h["k8s_node_name"]
        inv["all"]["hosts"][name] = hv
    p = tmp / "inventory.yml"
    p.write_text(yaml.safe_dump(inv))
    return p


def play(playbook: str, inventory: Path, kubeconfig: Path, *args: str, **evars) -> subprocess.CompletedProcess:
    ev = {"nodecheck_sysbox_release": RELEASE, **evars}
    cmd = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(PLAYBOOKS / playbook), "-e", json.dumps(ev), *args]
    return subprocess.run(cmd, cwd=REPO, env=env(K8S_AUTH_KUBECONFIG=str(kubeconfig)), capture_output=True,
                          text=True, timeout=600)


def recap(out: str) -> dict[str, dict[str, int]]:
    res = {}
    for m in re.finditer(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", out, re.M):
        res[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return res


def get(cluster, *args) -> dict:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def exists(cluster, *args) -> bool:
    return cluster.kubectl("get", *args, check=False).returncode == 0


def node_labels(cluster, name: str) -> dict:
    return get(cluster, "node", name)["metadata"].get("labels") or {}


def wait_ds(cluster, name: str, timeout: float = 90.0) -> dict:
    """The DaemonSet once the real controller has observed its current generation."""
    deadline = time.monotonic() + timeout
    while True:
        ds = get(cluster, "daemonset", "-n", "kube-system", name)
        st = ds.get("status") or {}
        if st.get("observedGeneration", 0) >= ds["metadata"]["generation"] and "desiredNumberScheduled" in st:
            return ds
        if time.monotonic() > deadline:
            raise AssertionError(f"DaemonSet {name} status never caught up: {st}")
        time.sleep(1)


def labelled_nodes(cluster, selector: str) -> set[str]:
    return {n["metadata"]["name"] for n in get(cluster, "nodes", "-l", selector)["items"]}


def wait_desired(cluster, name: str, selector: str, timeout: float = 90.0) -> tuple[int, set[str]]:
    """desiredNumberScheduled as the DaemonSet controller computes it, once it equals the number of
    Nodes the selector matches (the controller recounts after each label change), or the last seen."""
    deadline = time.monotonic() + timeout
    while True:
        ds = wait_ds(cluster, name, timeout)
        want = labelled_nodes(cluster, selector)
        got = ds["status"]["desiredNumberScheduled"]
        if got == len(want) or time.monotonic() > deadline:
            return got, want
        time.sleep(1)


def uninstall_leftovers(cluster) -> None:
    for kind, name, ns in (("daemonset", "sysbox-deploy-k8s", "kube-system"), ("daemonset", "sysbox-cleanup-k8s", "kube-system"),
                           ("daemonset", "fuse-device-plugin-daemonset", "kube-system"),
                           ("configmap", "sysbox-operational-attributes", "kube-system"),
                           ("serviceaccount", "sysbox-label-node", "kube-system"),
                           ("clusterrolebinding", "sysbox-label-node-rb", None), ("clusterrole", "sysbox-node-labeler", None),
                           ("runtimeclass", "sysbox-runc", None)):
        cluster.kubectl("delete", kind, name, *(["-n", ns] if ns else []), "--ignore-not-found", check=False)


@pytest.fixture
def lab(k8s_cluster, tmp_path):
    """Unique node names for this test; the Nodes it registers are deleted afterwards."""
    prefix = "k16-" + uuid.uuid4().hex[:6]
    registered: list[str] = []

    def register(name, **kw):
        k8s_cluster.register_node(name, **kw)
        registered.append(name)

    yield k8s_cluster, prefix, register, tmp_path
    for n in registered:
        k8s_cluster.delete_node(n)


def test_rollout_labels_only_passing_nodes_and_the_daemonsets_select_exactly_them(lab):
    cluster, p, register, tmp = lab
    rel = _matrix_release()
    net = f"10.{int(p[-2:], 16) % 200 + 20}.0"
    hosts = {
        f"{p}-pass": {"profile": ok_profile(0)},  # Node of the same name, in an EKS node group
        f"{p}-warn": {"profile": ok_profile(1)},  # Node named differently, found by kubernetes.io/hostname
        f"{p}-byip": {"profile": ok_profile(2), "address": f"{net}.3"},  # found by InternalIP
        f"{p}-fail": {"profile": profiles()[1][0]},  # preflight fail
        f"{p}-old": {"profile": ok_profile(0)},  # does not fail, but its kubelet is outside 0.7.0's installer
    }
    nodes = {f"{p}-pass": f"{p}-pass", f"{p}-warn": f"ip-{net.replace('.', '-')}-2.{p}", f"{p}-byip": f"{p}-node-by-ip",
             f"{p}-fail": f"{p}-fail", f"{p}-old": f"{p}-old"}
    register(nodes[f"{p}-pass"], labels={"eks.amazonaws.com/nodegroup": f"{p}-ng"},
             provider_id="aws:///us-east-1a/i-0123456789abcdef0")
    register(nodes[f"{p}-warn"], labels={"kubernetes.io/hostname": f"{p}-warn"}, internal_ip=f"{net}.2")
    register(nodes[f"{p}-byip"], internal_ip=f"{net}.3")
    register(nodes[f"{p}-fail"], container_runtime="cri-o://1.30.2")
    register(nodes[f"{p}-old"], kubelet_version="v1.31.7")
    inv = write_inventory(tmp, hosts)
    admin = cluster.admin_kubeconfig
    try:
        r = play("k8s.yml", inv, admin)
        out = r.stdout + r.stderr
        assert r.returncode != 0, out  # the failing and the refused host fail; the others go on
        rc = recap(r.stdout)
        # --- labels: exactly the nodes whose preflight did not fail and whose kubelet the installer accepts
        want = {nodes[h] for h in (f"{p}-pass", f"{p}-warn", f"{p}-byip")}
        for h, n in nodes.items():
            labels = node_labels(cluster, n)
            on = labels.get("sysbox-install") == "yes" and labels.get("smarter-device-manager") == "enabled"
            assert on == (n in want), (h, labels)
            assert rc[h]["failed"] == (0 if n in want else 1), (h, rc)
        assert re.search(rf"{p}-old \({p}-old\): refuse: kubelet v1\.31\.7 .*EOL.*nothing was changed on it", out), out
        failing = [c["id"] for c in json.loads(subprocess.run(
            [str(BIN / "nodecheck"), "scan", "--root", str(FIXTURES / hosts[f"{p}-fail"]["profile"] / "root"), "--sysbox",
             RELEASE, "--format", "json"], capture_output=True, text=True).stdout)["nodes"][0]["checks"] if c["status"] == "fail"]
        assert re.search(rf"{p}-fail is fail for Sysbox {RELEASE}.*Failing checks: {re.escape(failing[0])}", out), out
        # the EKS node: a warning naming the node and the node-group setting to use instead
        assert re.search(rf"WARNING: node {p}-pass is in EKS node pool '{p}-ng'.*aws eks update-nodegroup-config", out), out

        # --- the DaemonSets as the API server stored them
        fuse = get(cluster, "daemonset", "-n", "kube-system", "fuse-device-plugin-daemonset")
        spec = fuse["spec"]["template"]["spec"]
        ctr = spec["containers"][0]
        assert spec["nodeSelector"] == {"smarter-device-manager": "enabled"}
        assert ctr["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert ctr["securityContext"]["allowPrivilegeEscalation"] is False
        assert ctr["resources"]["requests"] and not ctr["securityContext"].get("privileged")
        assert spec["volumes"][0]["hostPath"]["path"] == "/var/lib/kubelet/device-plugins"
        sbx = get(cluster, "daemonset", "-n", "kube-system", "sysbox-deploy-k8s")
        assert sbx["spec"]["template"]["spec"]["nodeSelector"] == {"sysbox-install": "yes"}
        assert sbx["spec"]["template"]["spec"]["containers"][0]["image"] == rel.kubernetes.installer_image
        rcls = get(cluster, "runtimeclass", "sysbox-runc")
        assert rcls["handler"] == "sysbox-runc" and rcls["scheduling"]["nodeSelector"] == {"sysbox-runtime": "running"}
        # --- evidence computed by Kubernetes: the DaemonSet controller schedules exactly the labelled nodes
        for ds, sel in (("fuse-device-plugin-daemonset", "smarter-device-manager=enabled"),
                        ("sysbox-deploy-k8s", "sysbox-install=yes")):
            desired, labelled = wait_desired(cluster, ds, sel)
            assert desired == len(labelled) and want <= labelled, (ds, desired, labelled)
            assert not labelled & {nodes[f"{p}-fail"], nodes[f"{p}-old"]}

        # --- idempotence: a second run changes nothing
        r2 = play("k8s.yml", inv, admin)
        rc2 = recap(r2.stdout)
        assert all(v["changed"] == 0 for v in rc2.values()), r2.stdout[-3000:]

        # --- check mode: the diff is shown, nothing is stored
        r3 = play("k8s.yml", inv, admin, "--check", "--diff", fuse_device_plugin_image="registry.example/fuse:v9")
        assert "registry.example/fuse:v9" in r3.stdout, r3.stdout[-3000:]
        after = get(cluster, "daemonset", "-n", "kube-system", "fuse-device-plugin-daemonset")
        assert after["spec"]["template"]["spec"]["containers"][0]["image"] == ctr["image"]
        assert after["metadata"]["generation"] == fuse["metadata"]["generation"]

        # --- uninstall: objects and labels gone, a second uninstall changes nothing
        u = play("k8s-uninstall.yml", inv, admin)
        assert u.returncode == 0, (u.stdout + u.stderr)[-4000:]
        for args in (("daemonset", "-n", "kube-system", "sysbox-deploy-k8s"),
                     ("daemonset", "-n", "kube-system", "fuse-device-plugin-daemonset"),
                     ("runtimeclass", "sysbox-runc"), ("clusterrole", "sysbox-node-labeler"),
                     ("clusterrolebinding", "sysbox-label-node-rb"),
                     ("serviceaccount", "-n", "kube-system", "sysbox-label-node")):
            assert not exists(cluster, *args), args
        for n in nodes.values():
            labels = node_labels(cluster, n)
            assert "sysbox-install" not in labels and "smarter-device-manager" not in labels, (n, labels)
        u2 = play("k8s-uninstall.yml", inv, admin)
        assert u2.returncode == 0 and all(v["changed"] == 0 for v in recap(u2.stdout).values()), u2.stdout[-3000:]
    finally:
        uninstall_leftovers(cluster)


def test_a_host_without_a_node_stops_the_rollout_before_any_change(lab):
    cluster, p, register, tmp = lab
    register(f"{p}-a")
    inv = write_inventory(tmp, {f"{p}-a": {"profile": ok_profile()},
                                f"{p}-ghost": {"profile": ok_profile(), "address": "10.250.250.250"}})
    r = play("k8s.yml", inv, cluster.admin_kubeconfig)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert re.search(rf"{p}-ghost: no Node matches \(tried node name, kubernetes.io/hostname, InternalIP 10.250.250.250\)"
                     r".*nothing was changed", out), out
    assert "sysbox-install" not in node_labels(cluster, f"{p}-a")
    assert all(v["changed"] == 0 for v in recap(r.stdout).values())
    assert not exists(cluster, "daemonset", "-n", "kube-system", "sysbox-deploy-k8s")


def test_rbac_may_read_nodes_but_not_patch_them(lab):
    cluster, p, register, tmp = lab
    register(f"{p}-a")
    user = f"{p}-reader"
    cluster.apply(
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": user},
         "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": user},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": user},
         "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]})
    try:
        kc = cluster.kubeconfig_for(user)
        inv = write_inventory(tmp, {f"{p}-a": {"profile": ok_profile()}})
        # only the labels (the DaemonSets would be refused first, for the same reason)
        r = play("k8s.yml", inv, kc, "--tags", "preflight,k8s_plan,k8s_node_labels")
        out = r.stdout + r.stderr
        assert r.returncode != 0
        assert re.search(rf'Node {p}-a \(host {p}-a\) was not labelled: Forbidden \(403\): nodes "{p}-a" is forbidden: '
                         rf'User "{user}" cannot patch resource "nodes"', out), out
        assert "sysbox-install" not in node_labels(cluster, f"{p}-a")
    finally:
        cluster.kubectl("delete", "clusterrolebinding,clusterrole", user, "--ignore-not-found", check=False)


@pytest.mark.parametrize("fault", ["unreachable", "wrong-ca", "expired-token"])
def test_api_faults_give_one_line_and_change_nothing(lab, fault):
    cluster, p, register, tmp = lab
    register(f"{p}-a")
    if fault == "unreachable":
        from tests.k8slab.cluster import free_port

        kc = cluster.write_kubeconfig(f"{p}-dead", user="admin-dead", auth={}, server=f"https://127.0.0.1:{free_port()}")
        want = "connection refused"
    elif fault == "wrong-ca":
        from tests.k8slab import certs

        other = tmp / "other-ca.crt"
        other.write_bytes(certs.CA.create("not-the-cluster-ca").pem)
        admin = json.loads(Path(cluster.admin_kubeconfig).read_text())
        kc = cluster.write_kubeconfig(f"{p}-wrongca", user=f"{p}-wrongca", auth=admin["users"][0]["user"], ca_file=other)
        want = "certificate verify failed"
    else:
        cluster.kubectl("create", "serviceaccount", "-n", "default", p)
        # an hour past its exp: beyond any clock-skew leeway the authenticator allows
        token = cluster.service_account_token("default", p, expires_in=-3600)
        kc = cluster.kubeconfig_with_token(f"{p}-expired", token)
        want = "Unauthorized (401)"
    try:
        inv = write_inventory(tmp, {f"{p}-a": {"profile": ok_profile()}})
        r = play("k8s.yml", inv, kc)
        out = r.stdout + r.stderr
        assert r.returncode != 0
        line = next((ln for ln in out.splitlines() if "cannot read Nodes from the Kubernetes API" in ln), "")
        assert want in line and line.rstrip().endswith("nothing was changed"), out[-3000:]
        assert "sysbox-install" not in node_labels(cluster, f"{p}-a")
    finally:
        if fault == "expired-token":
            cluster.kubectl("delete", "serviceaccount", "-n", "default", p, "--ignore-not-found", check=False)


def test_a_node_deleted_between_plan_and_apply_stops_the_apply(lab):
    """The plan `nodecheck install` shows is passed to the apply as approved; a Node deleted
    in between stops the apply before anything is applied, naming the Node."""
    cluster, p, register, tmp = lab
    register(f"{p}-a")
    register(f"{p}-b")
    inv = write_inventory(tmp, {f"{p}-a": {"profile": ok_profile()},
                                f"{p}-b": {"profile": ok_profile()}})
    plan = play("k8s.yml", inv, cluster.admin_kubeconfig, "--tags", "preflight,k8s_plan")
    assert plan.returncode == 0, plan.stdout[-3000:]
    for n in (f"{p}-a", f"{p}-b"):  # what the operator is shown and approves
        assert f"{n}: label sysbox-install=yes,smarter-device-manager=enabled" in plan.stdout, plan.stdout[-3000:]
    approved = {f"{p}-a": {"sysbox-install": "yes", "smarter-device-manager": "enabled"},
                f"{p}-b": {"sysbox-install": "yes", "smarter-device-manager": "enabled"}}
    cluster.delete_node(f"{p}-b")
    try:
        r = play("k8s.yml", inv, cluster.admin_kubeconfig, nodecheck_k8s_approved=approved)
        out = r.stdout + r.stderr
        assert r.returncode != 0
        assert f"Node {p}-b was in the approved plan but no longer exists" in out and "nothing was changed" in out, out[-3000:]
        assert "sysbox-install" not in node_labels(cluster, f"{p}-a")
        assert all(v["changed"] == 0 for v in recap(r.stdout).values())
    finally:
        uninstall_leftovers(cluster)


def _keep_excerpt(name: str, text: str) -> None:
    # NODECHECK_README_EXCERPTS=DIR keeps the CLI's output, for the README's workflow excerpts.
    d = os.environ.get("NODECHECK_README_EXCERPTS")
    if d:
        Path(d).mkdir(parents=True, exist_ok=True)
        (Path(d) / f"{name}.txt").write_text(text)


def test_nodecheck_install_takes_the_kubernetes_path_for_kubelet_hosts_then_uninstalls(lab):
    """End to end through the CLI: hosts whose preflight finds a kubelet get the Kubernetes plan
    (labelled / refused and why), the rollout, the summary; --uninstall removes it again."""
    cluster, p, register, tmp = lab
    release = "0.6.7"  # the fixture trees with a kubelet carry 1.30, which 0.6.7's installer accepts
    rel = __import__("nodecheck.matrix", fromlist=["load"]).load().release(release)
    verdicts = {}
    for prof in ("ubuntu-22.04", "gpu-ubuntu-22.04"):
        r = subprocess.run([str(BIN / "nodecheck"), "scan", "--root", str(FIXTURES / prof / "root"), "--sysbox", release,
                            "--format", "json"], capture_output=True, text=True, timeout=120)
        n = json.loads(r.stdout)["nodes"][0]
        verdicts[prof] = n["verdict"]
        assert n["facts"].get("kubelet.version"), prof  # the tree has a kubelet: a Kubernetes node
    assert all(v != "fail" for v in verdicts.values()), verdicts
    register(f"{p}-k1", kubelet_version="v1.30.2")
    register(f"{p}-k2", kubelet_version="v1.30.2", capacity={"nvidia.com/gpu": "1"})
    register(f"{p}-k3", kubelet_version="v1.35.4")  # outside 0.6.7's installer: refused
    inv = write_inventory(tmp, {f"{p}-k1": {"profile": "ubuntu-22.04"}, f"{p}-k2": {"profile": "gpu-ubuntu-22.04"},
                                f"{p}-k3": {"profile": "ubuntu-22.04"}})
    e = env(K8S_AUTH_KUBECONFIG=str(cluster.admin_kubeconfig), COLUMNS="200")
    try:
        r = subprocess.run([str(BIN / "nodecheck"), "install", "-i", str(inv), "--sysbox", release, "--yes",
                            "--private-data-dir", str(tmp / "pdd")], cwd=REPO, env=e, capture_output=True, text=True,
                           timeout=900)
        out = r.stdout + r.stderr
        _keep_excerpt("install", out)
        assert r.returncode == 2, out[-5000:]  # one node refused
        assert "Kubernetes plan" in out and "Kubernetes summary" in out, out[-5000:]
        assert re.search(r"refuse\s.*kubelet v1\.35\.4", out), out[-5000:]
        for n in (f"{p}-k1", f"{p}-k2"):
            assert node_labels(cluster, n).get("sysbox-install") == "yes", n
        assert "sysbox-install" not in node_labels(cluster, f"{p}-k3")
        ds = get(cluster, "daemonset", "-n", "kube-system", "sysbox-deploy-k8s")
        assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == rel.kubernetes.installer_image
        desired, labelled = wait_desired(cluster, "sysbox-deploy-k8s", "sysbox-install=yes")
        assert desired == len(labelled) and {f"{p}-k1", f"{p}-k2"} <= labelled and f"{p}-k3" not in labelled

        u = subprocess.run([str(BIN / "nodecheck"), "install", "-i", str(inv), "--uninstall", "--yes",
                            "--private-data-dir", str(tmp / "pdd")], cwd=REPO, env=e, capture_output=True, text=True,
                           timeout=600)
        _keep_excerpt("uninstall", u.stdout + u.stderr)
        assert u.returncode == 0, (u.stdout + u.stderr)[-5000:]
        assert not exists(cluster, "daemonset", "-n", "kube-system", "sysbox-deploy-k8s")
        assert not exists(cluster, "runtimeclass", "sysbox-runc")
        for n in (f"{p}-k1", f"{p}-k2", f"{p}-k3"):
            assert "sysbox-install" not in node_labels(cluster, n), n
    finally:
        uninstall_leftovers(cluster)


def test_api_server_stopped_between_plan_and_apply_changes_nothing(tmp_path):
    """Its own control plane (this test stops the API server): the plan is made, the API server
    goes away, the apply stops at its first read with one line and nothing applied; back up,
    the same apply goes through."""
    from tests.k8slab.cluster import start_cluster

    cluster = start_cluster()
    try:
        name = "k16-stop-" + uuid.uuid4().hex[:4]
        cluster.register_node(name)
        inv = write_inventory(tmp_path, {name: {"profile": ok_profile()}})
        plan = play("k8s.yml", inv, cluster.admin_kubeconfig, "--tags", "preflight,k8s_plan")
        assert plan.returncode == 0 and f"{name}: label" in plan.stdout, plan.stdout[-3000:]
        approved = {name: {"sysbox-install": "yes", "smarter-device-manager": "enabled"}}
        cluster.stop_apiserver()
        r = play("k8s.yml", inv, cluster.admin_kubeconfig, nodecheck_k8s_approved=approved)
        out = r.stdout + r.stderr
        assert r.returncode != 0
        line = next((ln for ln in out.splitlines() if "cannot read Nodes from the Kubernetes API" in ln), "")
        assert "connection refused" in line and line.rstrip().endswith("nothing was changed"), out[-3000:]
        assert all(v["changed"] == 0 for v in recap(r.stdout).values())
        cluster.start_apiserver()
        assert "sysbox-install" not in node_labels(cluster, name)
        assert not exists(cluster, "daemonset", "-n", "kube-system", "fuse-device-plugin-daemonset")
        r2 = play("k8s.yml", inv, cluster.admin_kubeconfig, nodecheck_k8s_approved=approved)
        assert r2.returncode == 0, (r2.stdout + r2.stderr)[-3000:]
        assert node_labels(cluster, name).get("sysbox-install") == "yes"
    finally:
        cluster.stop()
