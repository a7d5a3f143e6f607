"""`nodecheck k8s nodes`: Node objects -> facts -> verdicts.

The pure parsers are tested on Node JSON in the shapes real clusters return (EKS, GKE, AKS, k3s,
kubeadm); the command is tested end to end against the real control plane of tests/k8slab
(Nodes registered through its API), including the faults: API server stopped, mid-list stop,
wrong CA, expired and invalid tokens, RBAC forbidden.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nodecheck.k8s import client, nodes, requirements  # noqa: E402
from nodecheck.matrix import load  # noqa: E402
from nodecheck.report.model import NodeReport  # noqa: E402

NODECHECK = str(REPO / ".venv" / "bin" / "nodecheck")
SCHEMA = json.loads((REPO / "nodecheck" / "schemas" / "report.schema.json").read_text())


def node_json(name="n1", *, kernel="6.8.0-45-generic", os_image="Ubuntu 24.04.1 LTS", runtime="containerd://2.1.4",
              kubelet="v1.35.4", arch="amd64", labels=None, provider_id=None, capacity=None, os="linux"):
    """A Node as the API returns it (the fields nodecheck reads, in their real formats)."""
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": os,
                                               "kubernetes.io/arch": arch, **(labels or {})}},
        "spec": {"providerID": provider_id} if provider_id else {},
        "status": {
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110", **(capacity or {})},
            "addresses": [{"type": "InternalIP", "address": "10.0.0.7"}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "nodeInfo": {"kernelVersion": kernel, "osImage": os_image, "containerRuntimeVersion": runtime,
                         "kubeletVersion": kubelet, "operatingSystem": os, "architecture": arch,
                         "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": ""},
        },
    }


@pytest.fixture(scope="module")
def matrix():
    return load()


@pytest.fixture(scope="module")
def req():
    return requirements.load()


def score(node_obj: dict, **kw) -> dict:
    """score_node's NodeReport in its JSON form, as the report carries it."""
    got = nodes.score_node(node_obj, **kw)
    assert isinstance(got, NodeReport)
    return got.to_dict()


def by_id(node: dict) -> dict:
    return {c["id"]: c for c in node["checks"]}


# --- pure parsers ----------------------------------------------------------------------------

@pytest.mark.parametrize("image,want", [
    ("Ubuntu 24.04.1 LTS", ("ubuntu", "24.04")),
    ("Ubuntu 22.04.5 LTS", ("ubuntu", "22.04")),  # AKS
    ("Ubuntu 20.04 LTS", ("ubuntu", "20.04")),
    ("Debian GNU/Linux 12 (bookworm)", ("debian", "12")),
    ("Amazon Linux 2", ("amzn", "2")),
    ("Amazon Linux 2023.6.20241212", ("amzn", "2023")),  # EKS AL2023
    ("Bottlerocket OS 1.26.2 (aws-k8s-1.31)", ("bottlerocket", "1.26.2")),
    ("Container-Optimized OS from Google", ("cos", None)),  # GKE default
    ("Rocky Linux 9.4 (Blue Onyx)", ("rocky", "9.4")),
    ("Red Hat Enterprise Linux CoreOS 415.92.202402130021-0 (Plow)", ("rhcos", "415.92.202402130021")),
    ("Flatcar Container Linux by Kinvolk 3815.2.5 (Oklo)", ("flatcar", "3815.2.5")),
    ("Talos (v1.7.6)", ("talos", "1.7.6")),
    ("K3s v1.31.5+k3s1", (None, None)),  # k3s's own image name: not a distribution
    ("", (None, None)),
])
def test_parse_os_image(image, want):
    assert nodes.parse_os_image(image) == want


@pytest.mark.parametrize("text,want", [
    ("containerd://2.1.4", ("containerd", "2.1.4")),
    ("containerd://1.7.23-k3s2", ("containerd", "1.7.23-k3s2")),
    ("cri-o://1.30.2", ("cri-o", "1.30.2")),
    ("docker://24.0.7", ("docker", "24.0.7")),
    ("containerd://v2.0.0", ("containerd", "2.0.0")),
    ("containerd", (None, None)),
    ("", (None, None)),
])
def test_parse_runtime(text, want):
    assert nodes.parse_runtime(text) == want


def test_parse_node_reads_every_field():
    n = node_json("ip-10-0-1-5.ec2.internal", kubelet="v1.31.3-eks-59bf375", os_image="Amazon Linux 2023.6.20241212",
                  kernel="6.1.119-129.201.amzn2023.x86_64", runtime="containerd://1.7.23",
                  labels={"eks.amazonaws.com/nodegroup": "gpu-ng", "node.kubernetes.io/instance-type": "g5.2xlarge"},
                  provider_id="aws:///us-east-1a/i-0a1b2c3d4e5f", capacity={"nvidia.com/gpu": "1"})
    nf = nodes.parse_node(n)
    assert (nf.name, nf.kubelet_version, nf.runtime_scheme, nf.runtime_version) == \
        ("ip-10-0-1-5.ec2.internal", "v1.31.3-eks-59bf375", "containerd", "1.7.23")
    assert (nf.cloud, nf.instance_type, nf.gpu_count, nf.ready, nf.internal_ips) == \
        ("aws", "g5.2xlarge", 1, True, ("10.0.0.7",))


def test_parse_node_tolerates_a_bare_node():
    nf = nodes.parse_node({"metadata": {"name": "x"}})
    assert nf.kernel is None and nf.runtime is None and nf.gpu_count is None and nf.ready is None


def test_parse_node_reports_malformed_fields():
    n = node_json(runtime="containerd", capacity={"nvidia.com/gpu": "lots"})
    nf = nodes.parse_node(n)
    assert nf.gpu_count is None and len(nf.problems) == 2


# --- scoring ---------------------------------------------------------------------------------

def test_probe_only_checks_are_unknown_never_guessed(matrix, req):
    node = score(node_json(), matrix=matrix, req=req)
    checks = by_id(node)
    for cid in ("selinux", "cgroups", "userns", "storage.data-root", "deps.host-tools", "runtime.docker"):
        assert checks[cid]["status"] == "unknown", cid
        assert checks[cid]["message"] == nodes.NEEDS_PROBE
    assert node["verdict"] == "unknown"  # a prescan cannot pass a node on its own
    for cid in ("arch", "distro", "kernel.version", "kubernetes.version", "kubernetes.runtime"):
        assert checks[cid]["status"] == "pass", (cid, checks[cid])
    jsonschema.validate({"schema": "nodecheck.report/v1", "nodecheck_version": "0", "generated_at": "2026-01-01T00:00:00+00:00",
                         "matrix_version": matrix.version, "target": "0.7.1", "verdict": "unknown",
                         "summary": {"pass": 0, "warn": 0, "fail": 0, "unknown": 1}, "nodes": [node]}, SCHEMA)


def test_kernel_below_the_distro_minimum_fails(matrix, req):
    node = score(node_json(kernel="5.15.0-122-generic", os_image="Ubuntu 24.04.1 LTS"), matrix=matrix, req=req)
    assert by_id(node)["kernel.version"]["status"] == "fail"
    assert node["verdict"] == "fail"


def test_old_kernel_leaves_shiftfs_to_the_probe(matrix, req):
    # Below 5.12 Sysbox needs shiftfs; only the probe can see whether the module exists.
    node = score(node_json(kernel="5.10.0-28-amd64", os_image="Debian GNU/Linux 11 (bullseye)"),
                            matrix=matrix, req=req)
    assert by_id(node)["shiftfs"]["status"] == "unknown"
    assert by_id(node)["kernel.version"]["status"] == "pass"


def test_kubelet_outside_the_installer_list_fails(matrix, req):
    node = score(node_json(kubelet="v1.27.16"), matrix=matrix, req=req)
    assert by_id(node)["kubernetes.version"]["status"] == "fail"


def test_unknown_os_image_is_unknown_distro_not_a_guess(matrix, req):
    node = score(node_json(os_image="K3s v1.31.5+k3s1"), matrix=matrix, req=req)
    d = by_id(node)["distro"]
    assert d["status"] == "unknown" and "K3s v1.31.5+k3s1" in d["message"]


def test_k3s_runtime_fails(matrix, req):
    node = score(node_json(runtime="containerd://1.7.23-k3s2", kubelet="v1.31.5+k3s1"), matrix=matrix, req=req)
    rt = by_id(node)["kubernetes.runtime"]
    assert rt["status"] == "fail" and "k3s" in rt["message"]


def test_crio_runtime_passes_with_its_path(matrix, req):
    node = score(node_json(runtime="cri-o://1.30.2"), matrix=matrix, req=req)
    rt = by_id(node)["kubernetes.runtime"]
    assert rt["status"] == "pass" and "CRI-O" in rt["message"]


def test_arm_32_fails_arch(matrix, req):
    node = score(node_json(arch="arm"), matrix=matrix, req=req)
    assert by_id(node)["arch"]["status"] == "fail"


def test_windows_node_fails(matrix, req):
    node = score(node_json(os="windows", kernel="10.0.20348.2700", os_image="Windows Server 2022 Datacenter"),
                            matrix=matrix, req=req)
    assert by_id(node)["kubernetes.os"]["status"] == "fail"


@pytest.mark.parametrize("label,provider", [("eks.amazonaws.com/nodegroup", "EKS"),
                                            ("cloud.google.com/gke-nodepool", "GKE"),
                                            ("kubernetes.azure.com/agentpool", "AKS")])
def test_managed_pool_warns_with_the_pool_setting(matrix, req, label, provider):
    node = score(node_json(labels={label: "pool-a"}), matrix=matrix, req=req)
    mp = by_id(node)["kubernetes.managed-pool"]
    assert mp["status"] == "warn" and provider in mp["message"] and "pool-a" in mp["remediation"]


def test_plain_node_has_no_managed_pool_finding(matrix, req):
    assert "kubernetes.managed-pool" not in by_id(score(node_json(), matrix=matrix, req=req))


def test_gpu_on_a_cloud_vm_warns_bare_metal_only(matrix, req):
    n = node_json(provider_id="gce://proj/us-central1-a/gke-gpu-1", capacity={"nvidia.com/gpu": "2"},
                  labels={"cloud.google.com/gke-nodepool": "gpu"})
    g = by_id(score(n, matrix=matrix, req=req))["gpu.nvidia"]
    assert g["status"] == "warn" and "gce virtual machine" in g["message"] and "bare-metal" in g["message"]


def test_gpu_on_cloud_bare_metal_is_not_called_a_vm(matrix, req):
    n = node_json(provider_id="aws:///us-east-1a/i-0abc", capacity={"nvidia.com/gpu": "8"},
                  labels={"node.kubernetes.io/instance-type": "p4d.metal"})
    g = by_id(score(n, matrix=matrix, req=req))["gpu.nvidia"]
    assert "virtual machine" not in g["message"] and "bare metal (p4d.metal)" in g["message"]


def test_no_gpu_resource_is_unknown_not_no_gpu(matrix, req):
    # Without the NVIDIA device plugin a GPU node has no nvidia.com/gpu: absence proves nothing.
    g = by_id(score(node_json(), matrix=matrix, req=req))["gpu.nvidia"]
    assert g["status"] == "unknown"


def test_not_ruled_out_lists_releases_without_a_fail(matrix, req):
    node = score(node_json(kubelet="v1.29.9", kernel="6.8.0-45-generic"), matrix=matrix, req=req)
    per = node["sysbox"]["verdict_by_release"]
    assert node["sysbox"]["not_ruled_out"] == [v for v, s in per.items() if s != "fail"]
    assert node["sysbox"]["compatible_releases"] == []  # nothing passes without the probe


def test_ignore_demotes_like_scan(matrix, req):
    node = score(node_json(kubelet="v1.27.16"), matrix=matrix, req=req, ignore=("kubernetes.version",))
    kv = by_id(node)["kubernetes.version"]
    assert kv["status"] == "warn" and kv["ignored"] and kv["demoted_from"] == "fail"


# --- client error classification (pure) ------------------------------------------------------

def test_status_errors_name_the_problem():
    e = client.from_status(403, "Forbidden", json.dumps({"message": 'nodes is forbidden: User "x" cannot list '
                                                          'resource "nodes"'}).encode(), "https://h:1", "GET /api/v1/nodes")
    assert e.kind == client.FORBIDDEN and 'User "x" cannot list resource "nodes"' in e.message
    assert client.from_status(401, "Unauthorized", b"{}", "https://h:1", "GET /").kind == client.UNAUTHORIZED


# --- against the real control plane ----------------------------------------------------------

def run_nc(*args, env=None, timeout=120):
    return subprocess.run([NODECHECK, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope="module")
def lab_nodes(k8s_cluster):
    """Nodes in the shapes of real clusters, registered through the lab's API."""
    c = k8s_cluster
    made = {
        "nn-ubuntu-noble": dict(kernel="6.8.0-45-generic", os_image="Ubuntu 24.04.1 LTS"),
        "nn-old-kernel": dict(kernel="5.15.0-122-generic", os_image="Ubuntu 24.04.1 LTS"),
        "nn-eks-gpu": dict(kernel="6.1.119-129.201.amzn2023.x86_64", os_image="Amazon Linux 2023.6.20241212",
                           kubelet_version="v1.35.4-eks-59bf375", container_runtime="containerd://2.1.4",
                           provider_id="aws:///us-east-1a/i-0a1b2c3d4e5f6a7b8",
                           labels={"eks.amazonaws.com/nodegroup": "gpu-ng",
                                   "node.kubernetes.io/instance-type": "g5.2xlarge"},
                           capacity={"nvidia.com/gpu": "1"}),
        "nn-k3s": dict(container_runtime="containerd://1.7.23-k3s2", kubelet_version="v1.31.5+k3s1"),
        "nn-crio": dict(container_runtime="cri-o://1.30.2", kubelet_version="v1.34.2",
                        labels={"cloud.google.com/gke-nodepool": "default-pool"},
                        provider_id="gce://proj/us-central1-a/gke-node-1"),
    }
    for name, kw in made.items():
        c.register_node(name, labels={"nodecheck-test": "nodes", **kw.pop("labels", {})}, **kw)
    yield made
    for name in made:
        c.delete_node(name)


def test_nodes_command_scores_the_lab_nodes(k8s_cluster, lab_nodes, tmp_path):
    junit = tmp_path / "nodes.xml"
    r = run_nc("k8s", "nodes", "--kubeconfig", str(k8s_cluster.admin_kubeconfig), "-l", "nodecheck-test=nodes",
               "--format", "json", "--junit", str(junit))
    assert r.returncode == 2, r.stderr  # nn-old-kernel and nn-k3s fail
    report = json.loads(r.stdout)
    jsonschema.validate(report, SCHEMA)
    got = {n["node"]: n for n in report["nodes"]}
    assert set(got) == set(lab_nodes)
    assert by_id(got["nn-old-kernel"])["kernel.version"]["status"] == "fail"
    assert by_id(got["nn-k3s"])["kubernetes.runtime"]["status"] == "fail"
    assert by_id(got["nn-k3s"])["kubernetes.version"]["status"] == "fail"  # 1.31 left the installer list
    assert got["nn-ubuntu-noble"]["verdict"] == "unknown"
    assert by_id(got["nn-eks-gpu"])["gpu.nvidia"]["status"] == "warn"
    assert by_id(got["nn-eks-gpu"])["kubernetes.managed-pool"]["status"] == "warn"
    assert by_id(got["nn-crio"])["kubernetes.managed-pool"]["message"].startswith("node of GKE pool 'default-pool'")
    # The facts come from the apiserver's own object, not from our input dict.
    assert got["nn-eks-gpu"]["facts"]["kubernetes.provider_id"] == "aws:///us-east-1a/i-0a1b2c3d4e5f6a7b8"
    assert "nn-k3s" in junit.read_text()


def test_nodes_table_is_plain_without_a_tty(k8s_cluster, lab_nodes):
    r = run_nc("k8s", "nodes", "--kubeconfig", str(k8s_cluster.admin_kubeconfig), "-l", "nodecheck-test=nodes",
               "--format", "table")
    assert r.returncode == 2
    assert "\x1b[" not in r.stdout  # no colour when stdout is not a terminal
    rows = {ln.split()[0]: ln.split()[1] for ln in r.stdout.splitlines() if ln.startswith("nn-")}
    js = run_nc("k8s", "nodes", "--kubeconfig", str(k8s_cluster.admin_kubeconfig), "-l", "nodecheck-test=nodes",
                "--format", "json")
    want = {n["node"]: n["verdict"].upper() for n in json.loads(js.stdout)["nodes"]}
    assert rows == want and rows["nn-old-kernel"] == "FAIL", r.stdout
    one = run_nc("k8s", "nodes", "--kubeconfig", str(k8s_cluster.admin_kubeconfig), "--format", "table",
                 "-l", "kubernetes.io/hostname=nn-ubuntu-noble")
    assert "Node nn-ubuntu-noble  verdict UNKNOWN" in one.stdout
    assert "do not rule out: 0.7.1" in one.stdout and "needs the node probe" in one.stdout


def test_node_reader_identity_is_enough(k8s_cluster, lab_nodes):
    """The least-privilege identity: get/list nodes and nothing else."""
    c = k8s_cluster
    c.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "nn-node-reader"},
             "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "nn-node-reader"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "nn-node-reader"},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "nn-reader"}]})
    kc = c.kubeconfig_for("nn-reader")
    r = run_nc("k8s", "nodes", "--kubeconfig", str(kc), "-l", "nodecheck-test=nodes", "--format", "json")
    assert r.returncode == 2, r.stderr
    assert len(json.loads(r.stdout)["nodes"]) == len(lab_nodes)


def test_rbac_forbidden_is_one_line_exit_4(k8s_cluster):
    kc = k8s_cluster.kubeconfig_for("nn-nobody")  # authenticated, no RBAC grant at all
    r = run_nc("k8s", "nodes", "--kubeconfig", str(kc))
    assert r.returncode == 4
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and 'User "nn-nobody" cannot list resource "nodes"' in lines[0], r.stderr


def test_wrong_ca_is_a_tls_error(k8s_cluster, tmp_path):
    from tests.k8slab import certs
    other = tmp_path / "other-ca.crt"
    other.write_bytes(certs.CA.create("not-the-cluster-ca").pem)
    kc = k8s_cluster.write_kubeconfig("nn-wrong-ca", user="admin", ca_file=other, auth={
        "client-certificate": str(k8s_cluster.kubeconfigs / "admin.crt"),
        "client-key": str(k8s_cluster.kubeconfigs / "admin.key")})
    r = run_nc("k8s", "nodes", "--kubeconfig", str(kc))
    assert r.returncode == 4
    assert len(r.stderr.strip().splitlines()) == 1
    assert "certificate verify failed" in r.stderr and k8s_cluster.server in r.stderr


def test_expired_and_invalid_tokens_are_unauthorized(k8s_cluster):
    c = k8s_cluster
    c.kubectl("create", "serviceaccount", "nn-sa", "-n", "default", check=False)
    c.kubectl("create", "clusterrolebinding", "nn-sa-nodes", "--clusterrole=nn-node-reader",
              "--serviceaccount=default:nn-sa", check=False)
    valid = c.kubeconfig_with_token("nn-sa-valid", c.service_account_token("default", "nn-sa"))
    assert run_nc("k8s", "nodes", "--kubeconfig", str(valid), "--format", "json").returncode in (0, 1, 2, 3)
    for name, token in (("nn-sa-expired", c.service_account_token("default", "nn-sa", expires_in=-60)),
                        ("nn-garbage", "not-a-token")):
        r = run_nc("k8s", "nodes", "--kubeconfig", str(c.kubeconfig_with_token(name, token)))
        assert r.returncode == 4, (name, r.stderr)
        assert "401 Unauthorized" in r.stderr and "expired or invalid" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_context_flag_picks_the_context(k8s_cluster, tmp_path):
    """--context like kubectl: a kubeconfig whose current context is broken, the named one works."""
    doc = json.loads(k8s_cluster.admin_kubeconfig.read_text())
    doc["clusters"].append({"name": "dead", "cluster": {"server": "https://127.0.0.1:1",
                                                        "certificate-authority": str(k8s_cluster.ca_file)}})
    doc["contexts"].append({"name": "dead", "context": {"cluster": "dead", "user": doc["users"][0]["name"]}})
    good = doc["current-context"]
    doc["current-context"] = "dead"
    kc = tmp_path / "two-contexts.kubeconfig"
    kc.write_text(json.dumps(doc))
    assert run_nc("k8s", "nodes", "--kubeconfig", str(kc)).returncode == 4
    r = run_nc("k8s", "nodes", "--kubeconfig", str(kc), "--context", good, "--format", "json")
    assert r.returncode in (0, 1, 2, 3), r.stderr
    assert run_nc("k8s", "nodes", "--kubeconfig", str(kc), "--context", "nope").returncode == 64


def test_kubeconfig_env_is_used_like_kubectl(k8s_cluster):
    import os
    env = {**os.environ, "KUBECONFIG": str(k8s_cluster.admin_kubeconfig)}
    r = run_nc("k8s", "nodes", "--format", "json", "-l", "nodecheck-test=none", env=env)
    assert r.returncode == 3 and json.loads(r.stdout)["nodes"] == []
    assert "no nodes match nodecheck-test=none" in r.stderr


def test_api_server_stopped_mid_list_reports_nothing(k8s_cluster):
    """A list cut short by the apiserver stopping is an error, never a shorter cluster."""
    c = k8s_cluster
    names = [f"nn-page-{i}" for i in range(3)]
    for n in names:
        c.register_node(n, labels={"nodecheck-test": "paging"})
    conn = client.connect(str(c.admin_kubeconfig), timeout=10)

    def stop_after_first_page(pages, items):
        if pages == 1:
            c.stop_apiserver()

    try:
        with pytest.raises(client.ApiError) as err:
            client.list_all(conn, "/api/v1/nodes", query={"labelSelector": "nodecheck-test=paging"}, limit=1,
                            on_page=stop_after_first_page)
        assert err.value.kind == client.UNREACHABLE
        assert "after 1 page(s), 1 item(s) read" in err.value.message and "incomplete" in err.value.message
        r = run_nc("k8s", "nodes", "--kubeconfig", str(c.admin_kubeconfig))
        assert r.returncode == 4 and "connection refused" in r.stderr and c.server in r.stderr
    finally:
        c.start_apiserver()
        for n in names:
            c.delete_node(n)


def test_in_cluster_config_when_there_is_no_kubeconfig(k8s_cluster, tmp_path, monkeypatch):
    """As in a pod: no kubeconfig anywhere, KUBERNETES_SERVICE_HOST set, the ServiceAccount's token
    and CA in the mounted files (here at a temp path: the library's fixed /var/run/secrets path is
    redirected, the rest of its loader runs as in a pod). The token is a real SA token."""
    from kubernetes.config import incluster_config

    c = k8s_cluster
    c.kubectl("create", "serviceaccount", "nn-incluster", "-n", "default", check=False)
    c.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "nn-incluster"},
             "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "nn-incluster"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "nn-incluster"},
             "subjects": [{"kind": "ServiceAccount", "name": "nn-incluster", "namespace": "default"}]})
    token = c.kubectl("create", "token", "nn-incluster", "-n", "default").stdout.strip()
    (tmp_path / "token").write_text(token)
    (tmp_path / "ca.crt").write_bytes(c.ca_file.read_bytes())
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(tmp_path / "ca.crt"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", c.server.rsplit(":", 1)[1])
    conn = client.connect()
    assert conn.source == "in-cluster" and conn.context is None
    items = client.list_all(conn, "/api/v1/nodes")
    assert isinstance(items, list)
    with pytest.raises(client.ApiError) as err:
        client.connect(context="x")
    assert err.value.kind == client.CONFIG
