"""The preflight pod on a real kubelet node (tests/k8slab/node.py) joined to the control-plane lab.

Real here: kube-apiserver with the built-in PodSecurity admission, Node authorizer and NodeRestriction;
kubelet v1.35 from the same module; containerd, runc and CNI from Debian; the pod's image built from the
project's Dockerfile (tests/k8slab/images.py) and imported into containerd (there is no registry). The pod
is the Job `nodecheck k8s render --job` prints, and its report comes back through the API (pods/log: the
apiserver calls the kubelet, whose serving cert it verifies against the cluster CA).

Not real: nothing in the pod's path. The FUSE device plugin is not deployed: no source for it is available
through the Go module proxy here (see README, "The real node").
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))

from nodecheck import sections as S  # noqa: E402
from test_pod_sandbox import (  # noqa: E402 - the sandbox test's access-rule model, reused as is
    components_present, compare, expected_differences, pod_from_manifest)

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(1800)]
ORDER = ["pass", "warn", "unknown", "fail"]


def _render(ns: str, *extra: str) -> list[dict]:
    """What `nodecheck k8s render` prints (JSON List), exactly as a user gets it."""
    with_ = [a for c in components_present() for a in ("--with", c)]
    r = subprocess.run([sys.executable, "-m", "nodecheck.cli", "k8s", "render", "-n", ns, "-o", "json",
                        *with_, *extra], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["items"]


def _pin_to(docs: list[dict], node: str) -> list[dict]:
    # The lab's control plane is shared with tests that register API-only nodes (nothing runs their pods):
    # the Job's pod must land on the real node. Only this selector is added to the rendered manifest.
    for d in docs:
        if d["kind"] in ("Job", "DaemonSet"):
            d["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": node}
    return docs


def _ns(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def _apply(cluster, docs: list[dict]) -> subprocess.CompletedProcess:
    return cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}),
                           check=False)


def _violations(message: str) -> set[str]:
    """The controls PodSecurity names in a denial or warning: `violates PodSecurity "level:latest": a (..), b (..)`."""
    m = re.search(r'PodSecurity "[a-z]+:[^"]*": (.*)', message)
    assert m, message
    text, depth, cur, out = m.group(1), 0, "", set()
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            out.add(cur.strip())
            cur = ""
        elif depth == 0:
            cur += ch
    if cur.strip():
        out.add(cur.strip())
    return out


def _claimed_exceptions() -> set[str]:
    """The controls deploy/README.md's "Pod Security Standards: the exceptions" table lists."""
    text = (REPO / "deploy" / "README.md").read_text()
    section = text.split("## Pod Security Standards: the exceptions", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| ") and not ln.startswith("| Control")]
    return {ln.split("|")[1].split("(")[0].strip() for ln in rows}


def _run_job(cluster, node, ns: str, docs: list[dict], timeout: float = 600) -> tuple[str, dict, float]:
    """Apply, wait for completion, return (the scan container's log via the API, pod, seconds from the pod's
    creation to the report being readable)."""
    r = _apply(cluster, docs)
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + timeout
    pod = None
    while time.monotonic() < deadline:
        pods = json.loads(cluster.kubectl("get", "pods", "-n", ns, "-l", "app.kubernetes.io/name=nodecheck",
                                          "-o", "json").stdout)["items"]
        pod = pods[0] if pods else None
        if pod and pod["status"].get("phase") in ("Succeeded", "Failed"):
            break
        time.sleep(1)
    assert pod, f"no pod was created in {ns}: {cluster.kubectl('get', 'events', '-n', ns).stdout}"
    name = pod["metadata"]["name"]
    assert pod["status"].get("phase") == "Succeeded", (
        f"pod {name}: {json.dumps(pod['status'])[:3000]}\n"
        f"{cluster.kubectl('get', 'events', '-n', ns).stdout}\nkubelet: {node.log_tail('kubelet')}")
    log = cluster.kubectl("logs", "-n", ns, name, "-c", "scan").stdout
    created = time.mktime(time.strptime(pod["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    return log, pod, time.time() - created


def _direct(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nodecheck.cli", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


# -- the node itself -------------------------------------------------------------------------------------


def test_node_is_a_real_kubelet(k8s_real_node, k8s_cluster):
    node = k8s_real_node.node_object()
    info = node["status"]["nodeInfo"]
    # What the kubelet reported about this machine, not what a test wrote into the API.
    assert info["kernelVersion"] == os.uname().release
    assert info["kubeletVersion"] == "v1.35.4"
    ctd = subprocess.run(["containerd", "--version"], capture_output=True, text=True).stdout.split()
    # The CRI reports the upstream version; Debian's binary says e.g. 1.6.20~ds1.
    assert info["containerRuntimeVersion"] == f"containerd://{re.split('[~+-]', ctd[2])[0]}", (info, ctd)
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == k8s_real_node.node_ip, addresses
    assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == k8s_real_node.kubelet_port
    images = {n for img in node["status"].get("images", []) for n in img.get("names", [])}
    assert any(n.startswith("docker.io/library/nodecheck:") for n in images), images
    print(f"\nreal node timings: {json.dumps(k8s_real_node.timings)}")


def test_node_identity_is_restricted(k8s_real_node, k8s_cluster):
    """The kubelet's own credential is a node identity: NodeRestriction lets it change its own Node only."""
    kc = k8s_real_node.kubeconfig
    other = f"nc-other-{secrets.token_hex(3)}"
    k8s_cluster.register_node(other)
    try:
        r = k8s_cluster.kubectl("label", "node", other, "x=y", kubeconfig=kc, check=False)
        assert r.returncode != 0 and "forbidden" in r.stderr.lower(), r.stderr
        r = k8s_cluster.kubectl("label", "node", k8s_real_node.name, "node-restriction.kubernetes.io/x=y",
                                kubeconfig=kc, check=False)
        assert r.returncode != 0 and "forbidden" in r.stderr.lower(), r.stderr
        r = k8s_cluster.kubectl("get", "secrets", "-A", kubeconfig=kc, check=False)
        assert r.returncode != 0 and "forbidden" in r.stderr.lower(), r.stderr
    finally:
        k8s_cluster.delete_node(other)


# -- Pod Security admission ---------------------------------------------------------------------------


def test_pod_security_admits_claimed_level_and_rejects_stricter(k8s_real_node, k8s_cluster):
    """deploy/README.md: the namespace is `enforce: privileged` (warn/audit restricted) and the only
    deviations from restricted are the hostPath controls. The real admission plugin must agree: the
    rendered namespace admits the pod with warnings naming exactly those controls; a namespace enforcing
    baseline or restricted rejects it, and for nothing else."""
    claimed = _claimed_exceptions()
    assert claimed == {"HostPath volumes", "Volume types"}, claimed  # the README table as parsed
    # PodSecurity's own names for those two controls (pod-security-admission/policy).
    psa_names = {"hostPath volumes", "restricted volume types"}

    ns = _ns("nc-psa")
    docs = _render(ns, "--job", "--nodes", "1")
    (ns_doc,) = [d for d in docs if d["kind"] == "Namespace"]
    labels = ns_doc["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    (job,) = [d for d in docs if d["kind"] == "Job"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "psa-probe", "namespace": ns},
           "spec": {**job["spec"]["template"]["spec"], "nodeSelector": {"kubernetes.io/hostname": "nowhere"}}}
    try:
        r = _apply(k8s_cluster, [d for d in docs if d["kind"] in ("Namespace", "ServiceAccount")])
        assert r.returncode == 0, r.stderr
        # Server-side dry run: real admission, nothing scheduled.
        r = k8s_cluster.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False)
        assert r.returncode == 0, r.stderr
        warned = _violations(r.stderr)
        # Measured on the real admission: at restricted, the volume-type check reports the hostPaths
        # ("restricted volume types") and the baseline hostPath check is not repeated.
        assert warned == {"restricted volume types"}, r.stderr
        seen = set(warned)
        for level, expect in (("baseline", {"hostPath volumes"}), ("restricted", {"restricted volume types"})):
            strict = _ns(f"nc-psa-{level}")
            k8s_cluster.create_namespace(strict, {"pod-security.kubernetes.io/enforce": level})
            try:
                # The pod's own ServiceAccount, so that only PodSecurity can refuse it.
                (sa,) = [json.loads(json.dumps(d)) for d in docs if d["kind"] == "ServiceAccount"]
                sa["metadata"]["namespace"] = strict
                assert _apply(k8s_cluster, [sa]).returncode == 0
                p = json.loads(json.dumps(pod))
                p["metadata"]["namespace"] = strict
                r = k8s_cluster.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(p), check=False)
                assert r.returncode != 0 and "forbidden" in r.stderr, f"{level} admitted the pod: {r.stdout}"
                assert _violations(r.stderr) == expect, r.stderr
                seen |= expect
            finally:
                k8s_cluster.kubectl("delete", "namespace", strict, "--wait=false", check=False)
    finally:
        k8s_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    # Every deviation the admission found is one the README lists, and every one it lists was found.
    assert seen == psa_names, seen


# -- the report ----------------------------------------------------------------------------------------


def test_pod_report_equals_direct_scan(k8s_real_node, k8s_cluster):
    """The Job's one JSON line (through the API) vs `nodecheck scan --root /` on this machine: the same
    node facts, the same checks; a check may differ only by turning unknown, and only when the access
    rules (test_pod_sandbox's model of the manifest's mounts, UID and capabilities) predict hidden inputs."""
    ns = _ns("nc-scan")
    docs = _pin_to(_render(ns, "--job", "--nodes", "1"), k8s_real_node.name)
    direct = _direct("scan", "--root", "/", "--format", "json")
    assert direct.returncode in (0, 1, 2, 3), direct.stderr[-2000:]
    try:
        log, pod, report_s = _run_job(k8s_cluster, k8s_real_node, ns, docs)
    finally:
        k8s_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    print(f"\npod created -> report readable through the API: {report_s:.1f}s")
    # The pod really ran under the manifest's context (the kubelet's own record of it).
    (st,) = pod["status"]["containerStatuses"]
    assert st["state"]["terminated"]["exitCode"] == 0
    lines = log.strip().splitlines()
    assert len(lines) == 1, log[-2000:]
    a = json.loads(direct.stdout)["nodes"][0]
    b = json.loads(lines[0])["nodes"][0]
    for fact in ("kernel.release", "arch", "distro.id", "distro.version", "cgroups.version"):
        assert b["facts"].get(fact) == a["facts"].get(fact), fact
    checks_a = {c["id"]: c["status"] for c in a["checks"]}
    checks_b = {c["id"]: c["status"] for c in b["checks"]}
    assert set(checks_a) == set(checks_b)
    changed = {k: (checks_a[k], checks_b[k]) for k in checks_a if checks_a[k] != checks_b[k]}
    assert all(v[1] == "unknown" for v in changed.values()), changed
    sandbox_pod = pod_from_manifest(_render(ns, "--daemonset"))
    direct_sections = S.parse(json.loads(_direct("collect", "--root", "/").stdout)["probe"]["output"])
    hidden = expected_differences(direct_sections, sandbox_pod)
    if not hidden:
        assert not changed and a["verdict"] == b["verdict"]
    expect = a["verdict"]
    if changed and ORDER.index("unknown") > ORDER.index(expect):
        expect = "unknown"
    assert b["verdict"] == expect, (a["verdict"], b["verdict"], changed)


def test_pod_probe_sections_match_access_rules(k8s_real_node, k8s_cluster):
    """Section by section: the same pod spec running `nodecheck collect --root /host` (the image's own
    nodecheck) against a direct root collect; every difference must be one the access rules predict."""
    ns = _ns("nc-collect")
    docs = _pin_to(_render(ns, "--job", "--nodes", "1"), k8s_real_node.name)
    for d in docs:
        if d["kind"] == "Job":
            (c,) = d["spec"]["template"]["spec"]["containers"]
            # The container's command is the rendered `sh -c '"$@" ...'` wrapper; only the args change.
            c["args"] = ["nodecheck", "collect", "--root", "/host"]
    direct = S.parse(json.loads(_direct("collect", "--root", "/").stdout)["probe"]["output"])
    try:
        log, _pod, _ = _run_job(k8s_cluster, k8s_real_node, ns, docs)
    finally:
        k8s_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    in_pod = S.parse(json.loads(log)["probe"]["output"])
    sandbox_pod = pod_from_manifest(_render(ns, "--daemonset"))
    problems = compare(direct, in_pod, sandbox_pod)
    # /proc/cgroups' num_cgroups column is a live counter (this very pod added cgroups between the two
    # runs); the subsystems, hierarchy ids and enabled flags must still agree.
    def _cgroups(sec):
        return [(r[0], r[1], r[3]) for r in (ln.split() for ln in (sec.text or "").splitlines()) if len(r) >= 4]
    if "/proc/cgroups: content differs" in problems and \
            _cgroups(direct.get("/proc/cgroups")) == _cgroups(in_pod.get("/proc/cgroups")):
        problems.remove("/proc/cgroups: content differs")
    assert not problems, "\n".join(problems)


# -- the lab's own configuration (no root needed) ------------------------------------------------------


def test_node_config_stays_in_its_own_dirs(tmp_path):
    """Every path containerd and the kubelet are given that they write to lies under the node's dir, so the
    lab cannot touch a system containerd, /var/lib/kubelet or /var/log/pods (only read-only binaries and
    the host's resolv.conf are outside)."""
    import tomllib

    from tests.k8slab import node as N

    d = tmp_path / "n"
    cfg = tomllib.loads(N.containerd_config(d, "registry.k8s.io/pause:3.10.1"))
    cri = cfg["plugins"]["io.containerd.grpc.v1.cri"]
    runc = cri["containerd"]["runtimes"]["runc"]["options"]
    written = [cfg["root"], cfg["state"], cfg["grpc"]["address"], cfg["ttrpc"]["address"], runc["Root"],
               cri["cni"]["conf_dir"]]
    assert all(p.startswith(f"{d}/") for p in written), written
    assert runc["SystemdCgroup"] is False and "io.containerd.internal.v1.opt" in cfg["disabled_plugins"]
    kc = N.kubelet_config(d=d, socket=d / "s.sock", ca_file=d / "ca.crt", tls=(d / "t.crt", d / "t.key"),
                          node_ip="10.200.0.1", port=1, healthz_port=2, cgroup_root="/x", cgroup_v1=True)
    assert kc["podLogsDir"].startswith(f"{d}/") and kc["containerRuntimeEndpoint"] == f"unix://{d}/s.sock"
    assert kc["cgroupDriver"] == "cgroupfs" and kc["failCgroupV1"] is False
    assert kc["authentication"]["anonymous"]["enabled"] is False and kc["authorization"]["mode"] == "Webhook"
    assert "failCgroupV1" not in N.kubelet_config(
        d=d, socket=d / "s", ca_file=d / "c", tls=(d / "a", d / "b"), node_ip="10.200.0.1", port=1,
        healthz_port=2, cgroup_root="/x", cgroup_v1=False)
    net = json.loads(N.cni_conflist("nclabc", "10.201.3.0/24", d / "ipam"))
    assert net["plugins"][0]["ipam"]["dataDir"].startswith(f"{d}/") and net["plugins"][0]["ipMasq"] is False
