"""The pod log -> document parsers of `nodecheck k8s scan`, on real output: a `nodecheck collect`
and a `nodecheck scan --format json` of this machine, as the pod prints them, then damaged the ways a
log can be (stderr interleaved, cut short, two documents, a hostile node's forged document)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nodecheck.k8s.podlog import report_node_from_log, snapshot_from_log


def _run(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "nodecheck.cli", *args], capture_output=True, text=True, timeout=120)
    assert r.returncode in (0, 1, 2, 3), r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def collect_out() -> str:
    return _run("collect", "--root", "/", "--node", "podlog-test")


@pytest.fixture(scope="module")
def scan_out() -> str:
    return _run("scan", "--root", "/", "--format", "json")


def test_snapshot_found_in_a_clean_log(collect_out):
    p = snapshot_from_log(collect_out)
    assert p.problem == "" and p.doc is not None
    assert p.doc["node"] == "podlog-test"
    assert p.doc["probe"]["output"] == json.loads(collect_out)["probe"]["output"]


def test_snapshot_found_between_stderr_lines(collect_out):
    # kubelet logs interleave stderr; collect prints its warning after the document.
    log = "W: something on stderr {not json\n" + collect_out + "nodecheck: probe exited 1; snapshot written\n"
    p = snapshot_from_log(log)
    assert p.doc is not None, p.problem


def test_truncated_snapshot_is_a_problem_not_a_guess(collect_out):
    p = snapshot_from_log(collect_out[: len(collect_out) // 2])
    assert p.doc is None
    assert "no nodecheck.snapshot/v1 document" in p.problem


def test_empty_log():
    assert snapshot_from_log("").problem == "the pod's log is empty"
    assert snapshot_from_log("\n  \n").doc is None


def test_two_snapshots_are_refused(collect_out):
    p = snapshot_from_log(collect_out + collect_out)
    assert p.doc is None and "2 nodecheck.snapshot/v1 documents" in p.problem


def test_forged_snapshot_fails_the_schema(collect_out):
    doc = json.loads(collect_out)
    doc["probe"]["output"] = 42  # a hostile node's pod can print anything
    p = snapshot_from_log(json.dumps(doc) + "\n")
    assert p.doc is None and "invalid at probe/output" in p.problem


def test_report_of_the_daemonset_pod(scan_out):
    p = report_node_from_log(scan_out)
    assert p.doc is not None, p.problem
    assert p.doc["verdict"] in ("pass", "warn", "fail", "unknown")
    assert p.doc == json.loads(scan_out)["nodes"][0]


def test_report_with_two_nodes_is_refused(scan_out):
    doc = json.loads(scan_out)
    doc["nodes"] = doc["nodes"] * 2
    doc["summary"][doc["nodes"][0]["verdict"]] += 1
    p = report_node_from_log(json.dumps(doc) + "\n")
    assert p.doc is None and "describes 2 nodes" in p.problem


def test_a_snapshot_is_not_a_report(collect_out):
    assert report_node_from_log(collect_out).doc is None
