"""`nodecheck k8s cluster`: the Coder CVM cluster requirements, decided by a real API server.

The dry-run admission answer comes from the lab's real kube-apiserver for namespaces enforcing
each Pod Security level; the sidecar check meets a real mutating webhook (an HTTPS server in this
test process that the apiserver calls, injecting an istio-proxy container as Istio's injector does).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import jsonschema
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nodecheck.k8s import client, requirements  # noqa: E402
from nodecheck.k8s import cluster_checks as cc  # noqa: E402
from nodecheck.matrix import load  # noqa: E402

NODECHECK = str(REPO / ".venv" / "bin" / "nodecheck")
CLUSTER_SCHEMA = json.loads((REPO / "nodecheck" / "schemas" / "k8s-cluster.schema.json").read_text())


@pytest.fixture(scope="module")
def matrix():
    return load()


@pytest.fixture(scope="module")
def req():
    return requirements.load()


def by_id(checks) -> dict:
    return {c["id"] if isinstance(c, dict) else c.id: c for c in checks}


# --- pure ------------------------------------------------------------------------------------

@pytest.mark.parametrize("git,status", [("v1.35.4", "pass"), ("v1.17.17", "fail"), ("v1.18.0", "warn"),
                                        ("v1.31.2-eks-7f9249a", "warn"), ("weird", "unknown")])
def test_kubernetes_version(matrix, req, git, status):
    f = cc.kubernetes_version({"gitVersion": git}, req, matrix.release("0.7.1"))
    assert f.status == status, f.message


@pytest.mark.parametrize("caching,auto,want", [
    (False, False, {"/usr/src": True, "/lib/modules": True}),
    (False, True, {"/usr/src": True, "/lib/modules": True}),  # auto-load is N/A without caching
    (True, False, {"/usr/src": True, "/lib/modules": True, "/var/run": True, "/var/lib": False}),
    (True, True, {"/usr/src": False, "/lib/modules": False, "/var/run": True, "/var/lib": False}),
])
def test_cvm_pod_follows_the_docs_table(req, caching, auto, want):
    pod = cc.cvm_pod("ws", req.cvm_row(caching, auto), req)
    c = pod["spec"]["containers"][0]
    assert c["securityContext"] == {"privileged": True}
    assert {m["mountPath"]: m["readOnly"] for m in c["volumeMounts"]} == want
    # Never a hostPath that would be created on the node (an untyped or ...OrCreate one).
    assert {v["hostPath"]["type"] for v in pod["spec"]["volumes"]} == {"Directory"}


def test_find_injectors(req):
    hooks = [{"metadata": {"name": "istio-sidecar-injector"},
              "webhooks": [{"name": "rev.namespace.sidecar-injector.istio.io"}, {"name": "rev.object.sidecar-injector.istio.io"}]},
             {"metadata": {"name": "cert-manager-webhook"}, "webhooks": [{"name": "webhook.cert-manager.io"}]},
             {"metadata": {"name": "linkerd-proxy-injector-webhook-config"},
              "webhooks": [{"name": "linkerd-proxy-injector.linkerd.io"}]}]
    found = cc.find_injectors(hooks, req)
    assert [(i.product, i.configuration) for i in found] == [
        ("Istio", "istio-sidecar-injector"), ("Istio", "istio-sidecar-injector"),
        ("Linkerd", "linkerd-proxy-injector-webhook-config")]
    assert cc.sidecar_injector(found, None, req).status == "warn"
    assert cc.sidecar_injector([], None, req).status == "pass"
    assert cc.sidecar_injector(None, None, req, forbidden="no").status == "unknown"


def rc(handler="sysbox-runc", selector=None):
    return {"metadata": {"name": "sysbox-runc"}, "handler": handler,
            "scheduling": {"nodeSelector": selector if selector is not None else {"sysbox-runtime": "running"}}}


def node(name, **labels):
    return {"metadata": {"name": name, "labels": labels}}


@pytest.mark.parametrize("obj,nodes,status", [
    (None, [], "warn"),
    (rc(handler="runc"), [], "fail"),
    (rc(selector={}), [], "warn"),
    (rc(), [node("a"), node("b", **{"sysbox-runtime": "installing"})], "fail"),
    (rc(), [node("a", **{"sysbox-runtime": "running"})], "pass"),
    (rc(), None, "unknown"),
])
def test_runtime_class(req, obj, nodes, status):
    assert cc.runtime_class(obj, nodes, req).status == status


def test_gpu_nodes(req):
    cloud = {"metadata": {"name": "g1", "labels": {}}, "spec": {"providerID": "azure:///subscriptions/x/vm-1"},
             "status": {"capacity": {"nvidia.com/gpu": "1"}}}
    metal = {"metadata": {"name": "g2", "labels": {}}, "status": {"capacity": {"nvidia.com/gpu": "4"}}}
    assert cc.gpu_nodes([cloud, metal], req).status == "warn" and "g1" in cc.gpu_nodes([cloud, metal], req).message
    assert "cloud VMs" not in cc.gpu_nodes([metal], req).message
    assert cc.gpu_nodes([node("plain")], req).status == "pass"


# --- against the real control plane ----------------------------------------------------------

LEVELS = ("restricted", "baseline", "privileged")


@pytest.fixture(scope="module")
def psa_namespaces(k8s_cluster):
    for level in LEVELS:
        k8s_cluster.create_namespace(f"ncc-{level}", {"pod-security.kubernetes.io/enforce": level,
                                                      "pod-security.kubernetes.io/enforce-version": "latest"})
    yield {level: f"ncc-{level}" for level in LEVELS}
    for level in LEVELS:
        k8s_cluster.kubectl("delete", "namespace", f"ncc-{level}", "--wait=false", check=False)


def cluster_cmd(k8s_cluster, *args, kubeconfig=None):
    r = subprocess.run([NODECHECK, "k8s", "cluster", "--kubeconfig", str(kubeconfig or k8s_cluster.admin_kubeconfig),
                        "--format", "json", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    return r, (json.loads(r.stdout) if r.stdout.strip() else None)


@pytest.mark.parametrize("level", LEVELS)
def test_dry_run_admission_per_pod_security_level(k8s_cluster, psa_namespaces, level):
    ns = psa_namespaces[level]
    r, doc = cluster_cmd(k8s_cluster, "-n", ns)
    assert r.returncode in (0, 1, 2, 3), r.stderr
    jsonschema.validate(doc, CLUSTER_SCHEMA)
    adm = by_id(doc["checks"])["cluster.pod-admission"]
    if level == "privileged":
        assert adm["status"] == "pass", adm
    else:
        # The apiserver's own PodSecurity sentence, for the level the namespace enforces.
        assert adm["status"] == "fail", adm
        assert f'violates PodSecurity "{level}:latest"' in adm["message"]
        # Each level names the CVM pod's violations its own way.
        assert ('privileged (container "cvm-supervisor" must not set securityContext.privileged=true)'
                in adm["message"])
        assert ("hostPath volumes" if level == "baseline" else "restricted volume types") in adm["message"]
        assert r.returncode == 2
    # A dry-run creates nothing.
    pods = json.loads(k8s_cluster.kubectl("get", "pods", "-n", ns, "-o", "json").stdout)["items"]
    assert pods == []
    assert by_id(doc["checks"])["cluster.kubernetes-version"]["status"] == "pass"
    assert doc["kubernetes_version"] == "v1.35.4"


def test_shiftfs_autoload_mounts_are_read_write_in_the_request(k8s_cluster, psa_namespaces):
    r, doc = cluster_cmd(k8s_cluster, "-n", psa_namespaces["baseline"], "--shiftfs-autoload")
    assert doc["cvm_pod"]["host_paths"] == {"/usr/src": "rw", "/lib/modules": "rw", "/var/run": "ro", "/var/lib": "rw"}
    assert "caching on, shiftfs auto-load on" in by_id(doc["checks"])["cluster.pod-admission"]["message"]


def test_missing_namespace_fails(k8s_cluster):
    r, doc = cluster_cmd(k8s_cluster, "-n", "ncc-does-not-exist")
    adm = by_id(doc["checks"])["cluster.pod-admission"]
    assert adm["status"] == "fail" and "does not exist" in adm["message"]


def test_identity_without_pod_create_gets_unknown_not_a_guess(k8s_cluster, psa_namespaces):
    c = k8s_cluster
    c.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "ncc-reader"},
             "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "ncc-reader"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ncc-reader"},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "ncc-reader"}]})
    r, doc = cluster_cmd(c, "-n", psa_namespaces["privileged"], kubeconfig=c.kubeconfig_for("ncc-reader"))
    jsonschema.validate(doc, CLUSTER_SCHEMA)
    checks = by_id(doc["checks"])
    assert checks["cluster.pod-admission"]["status"] == "unknown"
    assert 'cannot create resource "pods"' in checks["cluster.pod-admission"]["message"]
    assert checks["cluster.sidecar-injector"]["status"] == "unknown"
    assert checks["cluster.runtime-class"]["status"] == "unknown"
    assert doc["verdict"] == "unknown" and r.returncode == 3


def _can_i(c, kubeconfig, *args) -> str:
    return c.kubectl("auth", "can-i", *args, kubeconfig=kubeconfig, check=False).stdout.strip()


def test_rendered_cluster_rbac_is_enough_and_nothing_more(k8s_cluster, psa_namespaces):
    """`nodecheck k8s render --cluster-rbac`, applied by an admin, lets `k8s cluster` decide every check it
    decides as cluster-admin, and grants nothing the check does not call (asked of the real authorizer)."""
    c = k8s_cluster
    ns, user = psa_namespaces["privileged"], "ncc-cluster-checker"
    r = subprocess.run([NODECHECK, "k8s", "render", "--cluster-rbac", "--user", user, "-n", ns],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    c.kubectl("apply", "-f", "-", input=r.stdout)
    kc = c.kubeconfig_for(user)
    try:
        r_user, doc_user = cluster_cmd(c, "-n", ns, kubeconfig=kc)
        r_admin, doc_admin = cluster_cmd(c, "-n", ns)
        jsonschema.validate(doc_user, CLUSTER_SCHEMA)
        assert "forbidden" not in (r_user.stderr + r_user.stdout).lower()
        got = {k: (v["status"], v["message"]) for k, v in by_id(doc_user["checks"]).items()}
        want = {k: (v["status"], v["message"]) for k, v in by_id(doc_admin["checks"]).items()}
        assert got == want and "unknown" not in {s for s, _ in got.values()}, got
        assert r_user.returncode == r_admin.returncode
        yes = [("create", "pods", "-n", ns), ("list", "nodes"), ("list", "mutatingwebhookconfigurations"),
               ("get", "runtimeclasses/sysbox-runc"), ("get", "/version")]
        no = [("create", "pods", "-n", "default"), ("delete", "pods", "-n", ns), ("get", "pods", "-n", ns),
              ("get", "secrets", "-n", ns), ("patch", "nodes"), ("get", "nodes"), ("watch", "nodes"),
              ("get", "runtimeclasses/other"), ("create", "runtimeclasses"), ("create", "pods", "--subresource=exec", "-n", ns),
              ("update", "mutatingwebhookconfigurations")]
        assert {a: _can_i(c, kc, *a) for a in yes} == {a: "yes" for a in yes}
        assert {a: _can_i(c, kc, *a) for a in no} == {a: "no" for a in no}
    finally:
        c.kubectl("delete", "-f", "-", input=r.stdout, check=False)


def test_api_server_stopped_is_exit_4(k8s_cluster, psa_namespaces):
    k8s_cluster.stop_apiserver()
    try:
        r, doc = cluster_cmd(k8s_cluster, "-n", psa_namespaces["privileged"])
    finally:
        k8s_cluster.start_apiserver()
    assert r.returncode == 4 and doc is None
    assert r.stderr.strip().count("\n") == 0 and "connection refused" in r.stderr


class _Injector(BaseHTTPRequestHandler):
    """A mutating admission webhook that adds an istio-proxy container, as Istio's injector does."""

    calls: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        req = review["request"]
        type(self).calls.append({"dryRun": req.get("dryRun"), "namespace": req.get("namespace")})
        patch = [{"op": "add", "path": "/spec/containers/-",
                  "value": {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.0"}}]
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "response": {"uid": req["uid"], "allowed": True, "patchType": "JSONPatch",
                                        "patch": base64.b64encode(json.dumps(patch).encode()).decode()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def istio_injector(k8s_cluster):
    c = k8s_cluster
    crt, key = c.serving_cert_for("ncc-webhook", ips=("127.0.0.1",))
    srv = HTTPServer(("127.0.0.1", 0), _Injector)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(crt), str(key))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    c.create_namespace("ncc-istio", {"pod-security.kubernetes.io/enforce": "privileged", "istio-injection": "enabled"})
    c.apply({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "istio-sidecar-injector"},
        "webhooks": [{
            "name": "namespace.sidecar-injector.istio.io",
            "clientConfig": {"url": f"https://127.0.0.1:{srv.server_address[1]}/inject",
                             "caBundle": base64.b64encode(c.ca_file.read_bytes()).decode()},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
            # Only this namespace: other tests' pods never meet the injector.
            "namespaceSelector": {"matchLabels": {"istio-injection": "enabled"}},
            "admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": "Fail", "timeoutSeconds": 10,
        }],
    })
    yield srv
    c.kubectl("delete", "mutatingwebhookconfiguration", "istio-sidecar-injector", check=False)
    c.kubectl("delete", "namespace", "ncc-istio", "--wait=false", check=False)
    srv.shutdown()
    srv.server_close()


def test_sidecar_injector_webhook_is_detected_and_seen_injecting(k8s_cluster, istio_injector):
    _Injector.calls.clear()
    r, doc = cluster_cmd(k8s_cluster, "-n", "ncc-istio")
    sc = by_id(doc["checks"])["cluster.sidecar-injector"]
    assert sc["status"] == "warn", sc
    assert "Istio (MutatingWebhookConfiguration istio-sidecar-injector" in sc["message"]
    assert "injected containers: istio-proxy" in sc["message"]
    # The apiserver really called the webhook, and marked the review as a dry run.
    assert {"dryRun": True, "namespace": "ncc-istio"} in _Injector.calls
    assert by_id(doc["checks"])["cluster.pod-admission"]["status"] == "pass"


def test_runtime_class_from_the_api(k8s_cluster, matrix, req):
    """Against the real API; a RuntimeClass name of its own, so other tests' sysbox-runc is untouched."""
    c = k8s_cluster
    mine = dataclasses.replace(req, runtime_class="ncc-sysbox-runc",
                               runtime_class_selector={"ncc-sysbox-runtime": "running"})
    conn = client.connect(str(c.admin_kubeconfig))
    c.create_namespace("ncc-rc", {"pod-security.kubernetes.io/enforce": "privileged"})

    def status():
        res = cc.run(conn, namespace="ncc-rc", caching=True, shiftfs_autoload=False, matrix=matrix, req=mine)
        return by_id(res.checks)["cluster.runtime-class"]

    assert status().status == "warn"  # not installed yet
    c.apply({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "ncc-sysbox-runc"},
             "handler": "sysbox-runc", "scheduling": {"nodeSelector": {"ncc-sysbox-runtime": "running"}}})
    try:
        f = status()
        assert f.status == "fail" and "no node is" in f.message
        c.register_node("ncc-sysbox-node", labels={"ncc-sysbox-runtime": "running"})
        f = status()
        assert f.status == "pass" and "ncc-sysbox-node" in f.message
    finally:
        c.kubectl("delete", "runtimeclass", "ncc-sysbox-runc", check=False)
        c.delete_node("ncc-sysbox-node")
        c.kubectl("delete", "namespace", "ncc-rc", "--wait=false", check=False)


def test_cluster_table_and_junit_render_the_document():
    import io

    from rich.console import Console

    from nodecheck.report import cluster as render_cluster
    from nodecheck.report.junit import build
    doc = {"server": "https://127.0.0.1:6443", "verdict": "fail", "kubernetes_version": "v1.35.4",
           "workspace_namespace": "ws", "matrix_version": "m", "target": "0.7.1",
           "cvm_pod": {"host_paths": {"/usr/src": "ro", "/var/lib": "rw"}},
           "checks": [{"id": "cluster.pod-admission", "status": "fail", "message": "refused " * 30,
                       "remediation": "label it", "source": ""},
                      {"id": "cluster.gpu", "status": "pass", "message": "no GPU", "remediation": "", "source": ""}]}
    buf = io.StringIO()
    render_cluster.render(doc, Console(file=buf, width=80, no_color=True))
    out = buf.getvalue()
    assert "verdict FAIL" in out and "cluster.pod-admission" in out and "fix: label it" in out
    assert "no GPU" not in out and "1 checks passed" in out
    assert all(not ln.endswith(" ") for ln in out.splitlines())
    xml = build(render_cluster.as_report(doc))
    assert xml.get("failures") == "1" and xml.find("testsuite").get("name") == "cluster"
