"""Why a node's preflight pod gave no report (nodecheck/k8s/diagnose.py), a pure function of API objects.

Real samples: tests/fixtures/k8s/scan/*.json are the pod, events, Node and Job exactly as the lab's
real kube-apiserver returned them after a `nodecheck k8s scan --keep` of each case
(tests/k8slab/capture_scan_samples.py). States only a real kubelet writes (OOMKilled, Evicted,
ErrImagePull) cannot come from this lab's kubelet-less nodes: those few cases are built below from
the exact strings the upstream kubelet writes, cited, and marked as such.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from nodecheck.k8s.diagnose import (NOT_STARTED, POD_DELETED, POD_FAILED, TIMEOUT, UNSCHEDULABLE, diagnose,
                                    events_about, node_not_ready)

SAMPLES = Path(__file__).parent / "fixtures" / "k8s" / "scan"


def _sample(case: str) -> dict:
    path = SAMPLES / f"{case}.json"
    if not path.exists():
        pytest.fail(f"{path} missing: run tests/k8slab/capture_scan_samples.py")
    return json.loads(path.read_text())


def _unnamed(text: str) -> str:
    return re.sub(r"(nodecheck-[0-9a-f]{6}-[0-9]+-)[a-z0-9]{5}", r"\1XXXXX", text)


def _diag(s: dict, **over):
    kw = dict(node_name=s["node_name"], pod=s["pod"], events=s["events"], node=s["node"], job=s["job"])
    kw.update(over)
    return diagnose(**kw)


# (case, kind, every fragment the message must hold)
CASES = [
    ("bound-not-started", NOT_STARTED, ["bound to sample-ready", "its kubelet had not started it"]),
    ("node-not-ready", NOT_STARTED, ["bound to sample-notready", "Ready=False (KubeletNotReady: container runtime "
                                     "network not ready"]),
    ("taint-not-tolerated", UNSCHEDULABLE, ["Unschedulable", "untolerated taint",
                                            "has taints the pod does not tolerate: dedicated=gpu:NoSchedule"]),
    ("pod-terminating", POD_DELETED, ["is being deleted (since"]),
    ("job-no-serviceaccount", NOT_STARTED, ["created no pod: FailedCreate", 'serviceaccount "nodecheck" not found']),
    ("job-podsecurity-restricted", NOT_STARTED, ["created no pod: FailedCreate", 'violates PodSecurity "restricted',
                                                 'restricted volume type "hostPath"']),
]


@pytest.mark.parametrize("case, kind, fragments", CASES, ids=[c[0] for c in CASES])
def test_real_samples(case, kind, fragments):
    s = _sample(case)
    d = _diag(s)
    assert d.kind == kind, d
    for f in fragments:
        assert f in d.message, (f, d.message)
    # The scan's own row, recorded when the sample was captured, said the same.
    # (Modulo generated pod names: the Job controller kept retrying, with new names, after the scan.)
    assert s["scan_row_error"]["kind"] == kind and _unnamed(s["scan_row_error"]["message"]) == _unnamed(d.message)
    assert s["kubernetes"].startswith("v1.")


def test_deleted_pod_uses_what_the_scan_saw():
    s = _sample("pod-deleted")
    assert s["pod"] is None  # force-deleted: the API has no pod any more
    seen = _sample("bound-not-started")["pod"]  # a pod as last listed before it went away
    d = _diag(s, pod_seen=seen)
    assert d.kind == POD_DELETED and f"pod {seen['metadata']['name']} was deleted before it reported" in d.message
    assert s["scan_row_error"]["kind"] == POD_DELETED
    # Without the scan's memory of it there is no pod to name: never invented.
    d2 = _diag(s, pod_seen=None)
    assert d2.kind != POD_DELETED


def test_events_are_matched_by_uid_not_by_name():
    s = _sample("taint-not-tolerated")
    mine = events_about(s["pod"], s["events"], "Pod")
    assert mine and all(e["involvedObject"]["uid"] == s["pod"]["metadata"]["uid"] for e in mine)
    other = copy.deepcopy(s["pod"])
    other["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"  # a same-named pod of an earlier run
    assert events_about(other, s["events"], "Pod") == []


def test_not_ready_reads_the_condition():
    assert node_not_ready(_sample("bound-not-started")["node"]) is None
    assert node_not_ready(_sample("node-not-ready")["node"]).startswith("Ready=False (KubeletNotReady")
    gone = copy.deepcopy(_sample("bound-not-started")["node"])
    gone["status"]["conditions"] = []
    assert "no Ready condition" in node_not_ready(gone)


def test_node_gone_is_said():
    s = _sample("bound-not-started")
    d = _diag(s, node=None)
    assert d.kind == NOT_STARTED and "no longer exists" in d.message


# --- kubelet-written states, from the upstream strings (no kubelet-less lab node can produce them) ---

def _kubelet_pod(phase: str, **status) -> dict:
    pod = copy.deepcopy(_sample("bound-not-started")["pod"])
    pod["status"].update({"phase": phase, **status})
    return pod


def test_evicted():
    # pkg/kubelet/eviction/helpers.go (v1.35.4): Reason = "Evicted", nodeLowMessageFmt
    # "The node was low on resource: %v. "; the pod's phase becomes Failed.
    pod = _kubelet_pod("Failed", reason="Evicted", message="The node was low on resource: memory. ")
    d = diagnose(node_name="n", pod=pod, events=[], node=None)
    assert d.kind == POD_FAILED and "Evicted: The node was low on resource: memory." in d.message


def test_oom_killed():
    # The CRI reports a memory-cgroup kill as terminated reason "OOMKilled" (exit 137 = SIGKILL).
    pod = _kubelet_pod("Failed", containerStatuses=[{"name": "scan", "state": {"terminated": {
        "reason": "OOMKilled", "exitCode": 137}}}])
    d = diagnose(node_name="n", pod=pod, events=[], node=None)
    assert d.kind == POD_FAILED and "container scan OOMKilled (exit 137)" in d.message
    assert "memory limit" in d.message


def test_image_pull_error():
    # pkg/kubelet/images/types.go: ErrImagePull / ImagePullBackOff as the container's waiting reason.
    pod = _kubelet_pod("Pending", containerStatuses=[{"name": "scan", "state": {"waiting": {
        "reason": "ImagePullBackOff", "message": 'Back-off pulling image "nodecheck:0.1.0"'}}}])
    d = diagnose(node_name="n", pod=pod, events=[], node=_sample("bound-not-started")["node"])
    assert d.kind == NOT_STARTED and "waiting: ImagePullBackOff: Back-off pulling image" in d.message


def test_running_at_the_deadline_is_a_timeout():
    pod = _kubelet_pod("Running")
    d = diagnose(node_name="n", pod=pod, events=[], node=None, timeout_s=30)
    assert d.kind == TIMEOUT and "(30s)" in d.message


def test_untolerated_taints_follow_the_api_rule():
    from nodecheck.k8s.diagnose import untolerated_taints
    node = {"spec": {"taints": [{"key": "a", "value": "1", "effect": "NoSchedule"},
                                {"key": "b", "effect": "NoExecute"},
                                {"key": "c", "effect": "PreferNoSchedule"}]}}

    def pod(*tols):
        return {"spec": {"tolerations": list(tols)}}
    assert untolerated_taints(pod(), node) == ["a=1:NoSchedule", "b:NoExecute"]  # Prefer* never blocks
    assert untolerated_taints(pod({"operator": "Exists"}), node) == []
    assert untolerated_taints(pod({"key": "a", "operator": "Equal", "value": "2"}), node) == ["a=1:NoSchedule", "b:NoExecute"]
    assert untolerated_taints(pod({"key": "a", "operator": "Exists", "effect": "NoExecute"}), node) == \
        ["a=1:NoSchedule", "b:NoExecute"]
    assert untolerated_taints(pod({"key": "a", "value": "1"}, {"key": "b", "operator": "Exists"}), node) == []
