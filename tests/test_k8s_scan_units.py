"""`nodecheck k8s scan` without a cluster: the per-node Job it creates (schema-valid, locked down,
pinned by affinity), the scanner RBAC `nodecheck k8s render --rbac` prints, and its usage errors.
What the API server does with them is tests/test_k8s_scan.py's job (the real control-plane lab)."""

from __future__ import annotations

import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate")

from click.testing import CliRunner  # noqa: E402

from nodecheck.cli import main  # noqa: E402
from nodecheck.commands.k8s import k8s as k8s_group  # noqa: E402
from nodecheck.k8s import rbac as RBAC  # noqa: E402
from nodecheck.k8s import render as R  # noqa: E402
from nodecheck.k8s.scan import NODE_ANNOTATION, RUN_LABEL, ScanOptions, job_for  # noqa: E402

NEWEST = max((v for v in kubernetes_validate.utils.all_versions() if v.startswith("1.")),
             key=lambda v: int(v.split(".")[1]))
LONG_NODE = "ip-10-0-12-34.eu-west-1.compute.internal." + "x" * 200  # 253 characters is legal


def _validate(doc: dict) -> None:
    from kubernetes_validate.utils import validate
    validate(doc, NEWEST, strict=True)


@pytest.mark.parametrize("opts", [ScanOptions(), ScanOptions(keep=True, tolerate_all=False, with_=("dpkg", "kubelet"),
                                                             namespace="pre", image="reg.example/nc:9", timeout=30)])
def test_job_is_valid_and_locked_down(opts):
    job = job_for(LONG_NODE, 12345, "abc123", opts)
    _validate(job)
    meta, spec = job["metadata"], job["spec"]
    assert len(meta["name"]) <= 63  # the Job controller copies it into a label value
    assert meta["namespace"] == opts.namespace and meta["labels"][RUN_LABEL] == "abc123"
    assert meta["annotations"][NODE_ANNOTATION] == LONG_NODE
    assert spec["backoffLimit"] == 0 and spec["parallelism"] == spec["completions"] == 1
    assert spec["activeDeadlineSeconds"] == int(opts.timeout) + 60
    assert ("ttlSecondsAfterFinished" in spec) is (not opts.keep)
    pod = spec["template"]["spec"]
    assert "nodeName" not in pod  # the scheduler must decide, and say why not
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [LONG_NODE]}]}]
    assert pod["tolerations"] == ([{"operator": "Exists"}] if opts.tolerate_all else [])
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == R.APP
    assert pod["restartPolicy"] == "Never"
    (c,) = pod["containers"]
    assert c["image"] == opts.image
    assert c["args"][:4] == ["nodecheck", "collect", "--root", R.HOST] and LONG_NODE in c["args"]
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["privileged"] is False
    host = {v["name"] for v in pod["volumes"] if "hostPath" in v}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert host and all(mounts[h]["readOnly"] is True for h in host)
    assert {m.path for m in R.mounts_for(opts.with_)} == {v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}


def test_rbac_documents_validate_and_grant_only_the_scan_calls():
    docs = RBAC.documents("pre", RBAC.subjects(["alice"], ["ci"], ["tools:runner"]))
    for d in docs:
        _validate(d)
    kinds = [d["kind"] for d in docs]
    assert kinds == ["Namespace", "ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"]
    role, crole = docs[2], docs[3]
    verbs = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
             for v in rule["verbs"]}
    assert verbs == {("batch", "jobs", "create"), ("batch", "jobs", "delete"), ("batch", "jobs", "get"),
                     ("", "pods", "get"), ("", "pods", "list"), ("", "pods/log", "get"), ("", "events", "list")}
    assert crole["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}]
    assert not any("*" in str(rule) for rule in role["rules"] + crole["rules"])
    assert docs[5]["metadata"]["name"].endswith("-pre")
    assert {s["kind"] for s in docs[4]["subjects"]} == {"User", "Group", "ServiceAccount"}
    # The pod's ServiceAccount is bound to nothing.
    for b in docs[4:]:
        assert not any(s.get("name") == R.APP and s["kind"] == "ServiceAccount" for s in b["subjects"])


def test_render_rbac_cli():
    r = CliRunner().invoke(k8s_group, ["render", "--rbac", "-n", "pre", "--group", "sre"])
    assert r.exit_code == 0, r.output
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    assert [d["kind"] for d in docs][-2:] == ["RoleBinding", "ClusterRoleBinding"]
    assert all(d["metadata"].get("namespace", "pre") == "pre" for d in docs)


def test_cluster_rbac_documents_validate_and_name_only_the_cluster_check_calls():
    docs = RBAC.cluster_check_documents("coder", "sysbox-runc", RBAC.subjects(["ci"]))
    for d in docs:
        _validate(d)
    assert [d["kind"] for d in docs] == ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"]
    assert docs[0]["metadata"]["namespace"] == docs[2]["metadata"]["namespace"] == "coder"
    assert docs[0]["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]
    rules = docs[1]["rules"]
    assert {"nonResourceURLs": ["/version"], "verbs": ["get"]} in rules
    rc = next(r for r in rules if r.get("resources") == ["runtimeclasses"])
    assert rc["verbs"] == ["get"] and rc["resourceNames"] == ["sysbox-runc"]
    assert not any("*" in str(r) for r in rules) and docs[3]["metadata"]["name"].endswith("-coder")


@pytest.mark.parametrize("args, says", [
    (["k8s", "render", "--user", "alice"], "go with --rbac"),
    (["k8s", "render", "--rbac", "--cluster-rbac"], "separate"),
    (["k8s", "render", "--cluster-rbac", "--daemonset"], "rights only"),
    (["k8s", "render", "--rbac", "--serviceaccount", "nocolon"], "NAMESPACE:NAME"),
    (["k8s", "render", "--rbac", "--job", "--nodes", "2"], "scanner's rights only"),
    (["k8s", "scan", "--use-daemonset", "ds", "--keep"], "Job mode only"),
    (["k8s", "scan", "--use-daemonset", "ds", "--ignore", "arch"], "Job mode only"),
    (["k8s", "scan", "--timeout", "0"], "--timeout"),
    (["k8s", "scan", "-o", "junit"], "not an output format"),
])
def test_usage_errors_exit_64(args, says, capsys):
    assert main(args) == 64
    assert says in capsys.readouterr().err


def test_missing_kubeconfig_is_a_usage_error(tmp_path, monkeypatch, capsys):
    # As `nodecheck k8s nodes`: a kubeconfig problem is bad input (64), not an API answer (4).
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["k8s", "scan", "--kubeconfig", str(tmp_path / "nope")]) == 64
    assert f"kubeconfig {tmp_path / 'nope'} does not exist" in capsys.readouterr().err
