"""nodecheck.install.k8s_plan: pure decisions on plain Node dicts (the lab tests in
tests/test_k8s_roles.py apply them to a real API server)."""

from __future__ import annotations

import pytest

from nodecheck import matrix as nc_matrix
from nodecheck.install import k8s_plan as kp


def node(name, *, ip=None, hostname=None, labels=None, kubelet="v1.35.4", runtime="containerd://2.1.4",
         provider_id=None):
    lab = {"kubernetes.io/hostname": hostname or name, **(labels or {})}
    return {"metadata": {"name": name, "labels": lab},
            "spec": {"providerID": provider_id} if provider_id else {},
            "status": {"addresses": ([{"type": "InternalIP", "address": ip}] if ip else [])
                       + [{"type": "Hostname", "address": name}],
                       "nodeInfo": {"kubeletVersion": kubelet, "containerRuntimeVersion": runtime}}}


M = nc_matrix.load()
R070 = M.release("0.7.0")


def plan(hosts, nodes, **kw):
    kw.setdefault("release", "0.7.0")
    kw.setdefault("k8s_release", R070.kubernetes)
    return kp.build_plan(hosts, nodes, **kw)


def test_matching_order_name_hostname_label_internal_ip_and_explicit():
    nodes = [kp.NodeInfo.from_object(n) for n in (
        node("w1", ip="10.0.0.1"), node("ip-10-0-0-2.ec2.internal", hostname="w2", ip="10.0.0.2"),
        node("gke-x", ip="10.0.0.3"))]
    assert kp.match_node(kp.HostInput("w1", "pass"), nodes)[0].name == "w1"
    n, how = kp.match_node(kp.HostInput("w2", "pass"), nodes)
    assert (n.name, how) == ("ip-10-0-0-2.ec2.internal", "kubernetes.io/hostname label")
    n, how = kp.match_node(kp.HostInput("build-3", "pass", address="10.0.0.3"), nodes)
    assert (n.name, how) == ("gke-x", "InternalIP 10.0.0.3")
    n, how = kp.match_node(kp.HostInput("w1", "pass", node_name="gke-x"), nodes)
    assert n.name == "gke-x" and how.startswith("k8s_node_name")
    # an explicit k8s_node_name that does not exist never falls back to a guess
    n, how = kp.match_node(kp.HostInput("w1", "pass", node_name="nope"), nodes)
    assert n is None and "nope" in how
    n, how = kp.match_node(kp.HostInput("ghost", "pass", address="10.9.9.9"), nodes)
    assert n is None and "10.9.9.9" in how


def test_two_nodes_with_one_internal_ip_is_ambiguous_not_a_guess():
    nodes = [kp.NodeInfo.from_object(node("a", ip="10.0.0.7")), kp.NodeInfo.from_object(node("b", ip="10.0.0.7"))]
    n, how = kp.match_node(kp.HostInput("h", "pass", address="10.0.0.7"), nodes)
    assert n is None and "a, b" in how


def test_only_non_failing_preflights_are_labelled_and_fail_is_never_allowed():
    hosts = [kp.HostInput("p", "pass"), kp.HostInput("w", "warn"), kp.HostInput("u", "unknown"),
             kp.HostInput("f", "fail", reason="failing checks: selinux"), kp.HostInput("x", "unreachable"),
             kp.HostInput("m", "missing")]
    p = plan(hosts, [node(h.name) for h in hosts], allow=["pass", "warn", "unknown", "fail", "unreachable"])
    # the caller may widen allow (here to unreachable), never to fail
    assert set(p.labelled) == {"p", "w", "u", "x"}
    by = {a.host: a for a in p.nodes}
    assert by["f"].action == "skip" and "selinux" in by["f"].reasons[0]
    assert "f" not in p.labelled  # even though the caller put fail in allow
    p = plan(hosts, [node(h.name) for h in hosts])
    assert set(p.labelled) == {"p", "w", "u"}
    assert p.labelled["p"] == {"sysbox-install": "yes", "smarter-device-manager": "enabled"}
    assert not p.errors


def test_host_without_node_is_a_plan_error():
    p = plan([kp.HostInput("a", "pass"), kp.HostInput("ghost", "pass")], [node("a")])
    assert len(p.errors) == 1 and p.errors[0].startswith("ghost: no Node matches")


def test_labels_are_switchable():
    hosts = [kp.HostInput("a", "pass")]
    assert plan(hosts, [node("a")], label_fuse=False).labelled == {"a": {"sysbox-install": "yes"}}
    assert plan(hosts, [node("a")], sysbox=False).labelled == {"a": {"smarter-device-manager": "enabled"}}
    p = plan(hosts, [node("a")], label_fuse=False, label_sysbox=False)
    assert p.labelled == {} and p.nodes[0].reasons == ["no label is enabled"]


@pytest.mark.parametrize("kubelet,runtime,refused,fragment", [
    ("v1.35.4", "containerd://2.1.4", False, None),
    ("v1.32.0-eks-5e0fdde", "cri-o://1.32.2", False, None),
    ("v1.31.7", "containerd://1.7.27", True, "EOL"),
    ("v1.36.0", "containerd://2.1.4", True, "outside"),
    ("v1.35.4", "docker://28.1.1", True, "cri-dockerd"),
    ("v1.35.4", "", True, "no container runtime"),
    ("v1.35.4", "rkt://1.30", True, "not one the installer handles"),
    ("garbage", "containerd://2.1.4", True, "not a version"),
])
def test_installer_refusals_follow_the_release_whitelist_and_runtime(kubelet, runtime, refused, fragment):
    p = plan([kp.HostInput("a", "pass")], [node("a", kubelet=kubelet, runtime=runtime)])
    a = p.nodes[0]
    assert (a.action == "refuse") is refused
    if fragment:
        assert fragment in a.reasons[0]
    # without the Sysbox rollout (FUSE only) the installer's limits do not apply
    assert plan([kp.HostInput("a", "pass")], [node("a", kubelet=kubelet, runtime=runtime)], sysbox=False).nodes[0].action == "label"


def test_dockershim_is_accepted_where_the_kubelet_still_had_it():
    r = M.release("0.5.2")
    p = kp.build_plan([kp.HostInput("a", "pass")], [node("a", kubelet="v1.22.17", runtime="docker://20.10.7")],
                      release="0.5.2", k8s_release=r.kubernetes)
    assert p.nodes[0].action == "label"


def test_release_without_installer_image_refuses_unless_one_is_given():
    r = M.release("0.7.1")
    assert r.kubernetes.installer_image is None  # what the matrix says today; the test depends on it
    p = kp.build_plan([kp.HostInput("a", "pass")], [node("a")], release="0.7.1", k8s_release=r.kubernetes)
    assert p.nodes[0].action == "refuse" and "sysbox_k8s_installer_image" in p.nodes[0].reasons[0]
    p = kp.build_plan([kp.HostInput("a", "pass")], [node("a")], release="0.7.1", k8s_release=r.kubernetes,
                      installer_image="registry.example/sysbox-deploy-k8s@sha256:" + "0" * 64)
    assert p.nodes[0].action == "label" and p.installer_image_source == "sysbox_k8s_installer_image"


def test_default_release_is_the_newest_with_an_installer_image():
    rel, why = kp.choose_release(M, None)
    with_image = [r for r in M.releases if r.kubernetes.installer_image]
    assert rel is with_image[-1]
    newer = [str(r.version) for r in M.releases if r.version > rel.version]
    assert all(v in why for v in newer)
    assert kp.choose_release(M, "0.6.7")[0].version == M.release("0.6.7").version


@pytest.mark.parametrize("labels,provider_id,provider,fragment", [
    ({"eks.amazonaws.com/nodegroup": "ng-1"}, "aws:///us-east-1a/i-0abc", "eks", "aws eks update-nodegroup-config"),
    ({"cloud.google.com/gke-nodepool": "pool-a"}, "gce://proj/us-central1-a/gke-x", "gke", "gcloud container node-pools update pool-a"),
    ({"kubernetes.azure.com/agentpool": "np1"}, "azure:///subscriptions/x", "aks", "az aks nodepool update"),
    ({"karpenter.sh/nodepool": "default"}, None, "karpenter", "spec.template.metadata.labels"),
    ({}, "aws:///us-east-1a/i-0def", "aws", "--node-labels"),
    ({}, None, None, None),
])
def test_managed_pools_warn_per_node_with_the_pool_setting(labels, provider_id, provider, fragment):
    p = plan([kp.HostInput("a", "pass")], [node("a", labels=labels, provider_id=provider_id)])
    a = p.nodes[0]
    assert a.action == "label"
    if provider is None:
        assert a.warnings == []
        return
    assert len(a.warnings) == 1
    w = a.warnings[0]
    assert "node a" in w and "lost when the pool replaces" in w and fragment in w
    assert "sysbox-install=yes" in w.replace(": ", "=") or "sysbox-install: yes" in w


def test_managed_pools_have_one_source_the_matrix(tmp_path):
    """The install plan's warning and `k8s nodes`' remediation print the same setting, taken from
    matrix/kubernetes.yaml, for every pool label the matrix lists; a matrix edit changes both."""
    from nodecheck.k8s import nodes as N
    from nodecheck.k8s import requirements
    req = requirements.load()
    want = dict([kp.LABEL_SYSBOX, kp.LABEL_FUSE])
    for pool in req.managed_pools:
        for key in pool.labels:
            setting = pool.setting("np-7", want)
            a = plan([kp.HostInput("a", "pass")], [node("a", labels={key: "np-7"})]).nodes[0]
            assert a.warnings and a.warnings[0].endswith(setting), (key, a.warnings)
            f = next(f for f in N.node_findings(N.parse_node(node("a", labels={key: "np-7"})), None, req, M.newest)
                     if f.id == "kubernetes.managed-pool")
            assert f.remediation.endswith(setting), (key, f.remediation)
    text = requirements.default_file().read_text().replace("karpenter.sh/nodepool", "example.com/pool")
    alt = tmp_path / "kubernetes.yaml"
    alt.write_text(text)
    custom = requirements.load(str(alt))
    n = kp.NodeInfo.from_object(node("a", labels={"example.com/pool": "p"}))
    assert kp.managed_pool(n, want, req=custom).provider == "Karpenter"
    assert kp.managed_pool(kp.NodeInfo.from_object(node("a", labels={"karpenter.sh/nodepool": "p"})), want,
                           req=custom) is None


def test_one_node_claimed_by_two_hosts_is_an_error():
    p = plan([kp.HostInput("a", "pass", address="10.0.0.1"), kp.HostInput("b", "pass", address="10.0.0.1")],
             [node("n", ip="10.0.0.1")])
    assert any("also matched by host a" in e for e in p.errors)


def test_host_inputs_from_hostvars():
    hv = {"a": {"nodecheck_verdict": "fail", "nodecheck_report": {"checks": [{"id": "selinux", "status": "fail"}]},
                "ansible_host": "10.0.0.5", "k8s_node_name": "n-a"},
          "b": {}}
    a, b = kp.host_inputs(hv, ["a", "b"])
    assert (a.verdict, a.address, a.node_name, a.reason) == ("fail", "10.0.0.5", "n-a", "failing checks: selinux")
    assert b.verdict == "missing" and "no preflight result" in b.reason


def test_minor_of():
    assert kp.minor_of("v1.35.4") == (1, 35)
    assert kp.minor_of("v1.30.2-eks-1552ad0") == (1, 30)
    assert kp.minor_of("1.29") == (1, 29)
    assert kp.minor_of("") is None and kp.minor_of("vX") is None and kp.minor_of(None) is None


def test_approved_plan_guards_the_apply():
    hosts = [kp.HostInput("a", "pass"), kp.HostInput("b", "pass")]
    first = plan(hosts, [node("a"), node("b")])
    assert not plan(hosts, [node("a"), node("b")], approved=first.labelled).errors
    # Node b deleted between the plan shown and the apply: the error names it, first
    p = plan(hosts, [node("a")], approved=first.labelled)
    assert p.errors[0] == "Node b was in the approved plan but no longer exists"
    # b now refused (kubelet upgraded past the whitelist): the plan differs from what was approved
    p = plan(hosts, [node("a"), node("b", kubelet="v1.36.1")], approved=first.labelled)
    assert p.errors == ["the plan changed since it was approved: b: smarter-device-manager=enabled,sysbox-install=yes -> nothing"]


@pytest.mark.parametrize("msg,want", [
    # what kubernetes.core puts in msg for an API Status (the body is a bytes repr)
    ("Failed to patch object: b'{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
     "\"message\":\"nodes \\\"n1\\\" is forbidden: User \\\"reader\\\" cannot patch resource \\\"nodes\\\" in API group "
     "\\\"\\\" at the cluster scope\",\"reason\":\"Forbidden\",\"details\":{\"name\":\"n1\",\"kind\":\"nodes\"},\"code\":403}\\n'",
     'Forbidden (403): nodes "n1" is forbidden: User "reader" cannot patch resource "nodes"'),
    ("Failed to get client due to HTTPSConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: /version "
     "(Caused by NewConnectionError('<urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new "
     "connection: [Errno 111] Connection refused'))", "connection refused"),
    ("(Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
     "unable to get local issuer certificate (_ssl.c:1006)')))", "certificate verify failed"),
    # kubernetes.core's k8s_info: the client exception text, headers dict first, then the body
    ("Exception '403\nReason: Forbidden\nHTTP response headers: HTTPHeaderDict({'Audit-Id': 'x', 'Content-Length': '280'})"
     "\nHTTP response body: {\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
     "\"message\":\"nodes is forbidden: User \\\"sa\\\" cannot list resource \\\"nodes\\\"\",\"reason\":\"Forbidden\","
     "\"details\":{\"kind\":\"nodes\"},\"code\":403}\n\nOriginal traceback: ...' raised while trying to get resource",
     'Forbidden (403): nodes is forbidden: User "sa" cannot list resource "nodes"'),
    ("", "unknown error"),
])
def test_api_error_line(msg, want):
    line = kp.api_error_line(msg)
    assert want in line and "\n" not in line


def _ev(kind, task, host="h1", **res):
    return {"event": kind, "event_data": {"task": task, "host": host, "res": res,
                                          "task_action": res.pop("_action", None)}}


def test_k8s_run_reads_plan_errors_and_changes_from_runner_events():
    from nodecheck.install import k8s_run

    events = [
        _ev("runner_on_ok", "Plan which Nodes get which labels", _action="nodecheck_k8s_plan", plan={"release": "0.7.0"}),
        _ev("runner_on_ok", "Apply sysbox-deploy-k8s and the sysbox-runc RuntimeClass with image x", changed=False),
        _ev("runner_on_ok", "Apply the FUSE device plugin DaemonSet", changed=True),
        _ev("runner_on_ok", "Label the Node n1", host="h1", changed=True),
        _ev("runner_on_failed", "Say why the Node was not labelled", host="h2", msg="Node n2 (host h2) was not labelled: x"),
        _ev("runner_on_failed", "Label the Node n2", host="h2", msg="Failed to patch object: ..."),
    ]
    got_plan = k8s_run.collect_plan(events)
    assert isinstance(got_plan, kp.K8sPlan) and got_plan.release == "0.7.0" and got_plan.nodes == []
    assert k8s_run.run_error(events) is None  # per-host failures are not run-wide
    got = {c.what: c.result for c in k8s_run.summarize(events, check=False)}
    assert got["DaemonSet kube-system/fuse-device-plugin-daemonset"] == "changed"
    assert got["Node labels of host h1"] == "changed" and got["Node labels of host h2"] == "failed"
    assert any(w.startswith("sysbox-deploy-k8s") and r == "unchanged" for w, r in got.items())
    assert {c.result for c in k8s_run.summarize(events[2:4], check=True)} == {"would change"}
    stop = [_ev("runner_on_failed", "Say why the Nodes could not be read",
                msg="cannot read Nodes from the Kubernetes API (kubeconfig k): connection refused; nothing was changed")]
    assert k8s_run.run_error(stop).endswith("nothing was changed")


def test_the_plan_comes_back_from_ansible_as_the_same_typed_plan():
    """The controller reads the plugin's plan as a K8sPlan (the CLI used to pick keys out of the
    JSON); `labelled` is derived from the nodes, so a result whose map disagrees cannot steer it."""
    hosts = [kp.HostInput("p", "pass"), kp.HostInput("f", "fail", reason="selinux"), kp.HostInput("ghost", "pass")]
    p = plan(hosts, [node("p", labels={"cloud.google.com/gke-nodepool": "pool-a"}), node("f")])
    p.release_why = "newest with an installer image"
    d = p.to_dict()
    back = kp.K8sPlan.from_dict(d)
    assert back == p and back.to_dict() == d
    assert [a.host for a in back.cleared] == ["p"] and back.node_of("p") == "p" and back.node_of("nope") is None
    assert back.errors and back.nodes[0].warnings  # the plan-wide error (ghost) and the pool warning survive
    forged = kp.K8sPlan.from_dict({**d, "labelled": {"f": {"sysbox-install": "yes"}}})
    assert forged.labelled == {"p": {"sysbox-install": "yes", "smarter-device-manager": "enabled"}}


def test_the_cli_renders_the_typed_plan():
    from io import StringIO

    from rich.console import Console

    from nodecheck.commands.install_k8s import plan_table

    p = plan([kp.HostInput("p", "pass"), kp.HostInput("f", "fail", reason="failing checks: selinux")],
             [node("p"), node("f")])
    p.release_why = "asked for"
    buf = StringIO()
    plan_table(Console(file=buf, width=200, no_color=True), kp.K8sPlan.from_dict(p.to_dict()))
    out = buf.getvalue()
    assert "Sysbox 0.7.0 (asked for)" in out
    assert "sysbox-install=yes,smarter-device-manager=enabled" in out and "preflight fail: failing checks: selinux" in out
