"""`nodecheck k8s scan`'s rows without a cluster (issue 13: one typed row from pod log to report):
each row is a NodeReport, whether a Job pod's snapshot was scored here, a DaemonSet pod's own
report row was taken, or no pod reported; and the JSON a row becomes is the report schema's.
The pod logs are real `nodecheck collect` / `nodecheck scan` output of a fixture tree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from nodecheck import pipeline
from nodecheck.k8s.diagnose import Diagnosis
from nodecheck.k8s.scan import NodeRun, ScanResult
from nodecheck.k8s.score import node_row, rows
from nodecheck.matrix import load
from nodecheck.report.model import NodeReport

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO / "tests/fixtures/hosts/ubuntu-24.04/root"
SCHEMA = json.loads((REPO / "nodecheck/schemas/report.schema.json").read_text())
NODE_OBJ = {"metadata": {"name": "n1", "labels": {}},
            "status": {"nodeInfo": {"kernelVersion": "6.8.0-45-generic", "osImage": "Ubuntu 24.04.1 LTS",
                                    "architecture": "amd64", "operatingSystem": "linux",
                                    "kubeletVersion": "v1.31.4", "containerRuntimeVersion": "containerd://1.7.24"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def _cli(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "nodecheck.cli", *args], capture_output=True, text=True, timeout=120,
                       cwd=REPO)
    assert r.returncode in (0, 1, 2, 3), r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def matrix():
    return load()


def _pod(name: str) -> dict:
    return {"metadata": {"name": name}, "status": {"phase": "Succeeded"}}


def _valid(report_doc: dict) -> None:
    jsonschema.validate(report_doc, SCHEMA)


def test_a_job_pods_snapshot_is_scored_here_and_merged_with_its_node(matrix):
    log = "some stderr line\n" + _cli("collect", "--root", str(ROOT), "--node", "n1")
    run = NodeRun("n1", job="nc-1", pod=_pod("nc-1-abc"), log=log, done=True, state="Succeeded")
    result = ScanResult(runs=[run], nodes={"n1": NODE_OBJ}, run_id="r1")
    row = node_row(run, result, namespace="pre", daemonset=None, matrix=matrix, target=None)
    assert isinstance(row, NodeReport) and row.error is None and row.checks
    assert row.node == "n1" and row.source == "k8s:pre/pod/nc-1-abc"
    assert row.kubernetes == {"namespace": "pre", "pod": "nc-1-abc", "job": "nc-1", "scan_run": "r1",
                              "last_state": "Succeeded"}
    assert row.kubernetes_node["name"] == "n1" and row.facts["kubernetes.runtime"] == "containerd://1.7.24"
    assert isinstance(row.from_node, list)
    # The probe part is what `scan --root` says of the same tree (the Node adds findings, not changes).
    alone = pipeline.score_output("n1", _cli("collect", "--root", str(ROOT), "--node", "n1"), matrix=matrix)
    probe_ids = {f.id for f in alone.checks}
    assert probe_ids <= {f.id for f in row.checks}
    _valid(pipeline.build_report([row], matrix=matrix))


def test_a_daemonset_pods_row_is_taken_as_the_model_under_the_node_name(matrix):
    log = _cli("scan", "--root", str(ROOT), "-o", "json")
    pod_row = json.loads(log)["nodes"][0]
    run = NodeRun("n1", pod=_pod("ds-xyz"), log=log, done=True, state="Running")
    row = node_row(run, ScanResult(runs=[run], nodes={}), namespace="pre", daemonset="nodecheck", matrix=matrix,
                   target=None)
    assert isinstance(row, NodeReport)
    assert row.node == "n1" and row.source == "k8s:pre/pod/ds-xyz"
    got = row.to_dict()
    for key in ("verdict", "checks", "sysbox", "methods", "facts", "error"):
        assert got[key] == pod_row[key], key


@pytest.mark.parametrize("run, kind", [
    (NodeRun("n1", log="not a document\n", pod=_pod("p")), "probe-error"),
    (NodeRun("n1", diagnosis=Diagnosis("unschedulable", "0/1 nodes are available: 1 node(s) had untolerated taint")),
     "unschedulable"),
    (NodeRun("n1", state="Pending"), "not-started"),
])
def test_a_node_without_a_report_is_an_unknown_row_with_the_reason(matrix, run, kind):
    (row,) = rows(ScanResult(runs=[run], nodes={}), namespace="pre", daemonset=None, matrix=matrix, target=None)
    assert isinstance(row, NodeReport)
    assert row.verdict == "unknown" and row.checks == [] and row.error.kind == kind
    assert row.kubernetes["namespace"] == "pre"
    _valid(pipeline.build_report([row], matrix=matrix))
