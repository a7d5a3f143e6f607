"""The typed report (nodecheck/report/model.py): the one classifier of a probe run, the JSON
Schema against the model's fields, and the renderers over the model, not over guessed dict keys."""

from __future__ import annotations

import dataclasses
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from rich.console import Console

from nodecheck import pipeline
from nodecheck.checks import Finding
from nodecheck.fleet import HostResult, Target
from nodecheck.matrix import load
from nodecheck.report import junit, model, nfd, table
from nodecheck.transport import local
from nodecheck.transport import ProbeRun

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden"
SCHEMA = json.loads((REPO / "nodecheck" / "schemas" / "report.schema.json").read_text())
HOSTS = REPO / "tests" / "fixtures" / "hosts"


@pytest.fixture(scope="module")
def matrix():
    return load()


@pytest.fixture(scope="module")
def rocky():
    """A real probe run of a fixture tree whose selinux check fails (enforcing)."""
    run = local.run(str(HOSTS / "rocky-9-enforcing" / "root"))
    assert run.exit_status == 0, run.stderr
    return run


# -- JUnit: an ignored check is <skipped>, never a passing warn --------------------------------

def test_junit_ignored_fail_is_skipped_not_a_passing_warn(matrix, rocky):
    node = pipeline.score_run("r", rocky, matrix=matrix, ignore=["selinux"])
    sel = next(c for c in node.checks if c.id == "selinux")
    assert sel.ignored and sel.demoted_from == "fail" and sel.status == "warn"
    root = junit.build(pipeline.build([node], matrix=matrix).to_dict())  # the JSON form callers pass today
    case = next(c for c in root.iter("testcase") if c.get("name") == "selinux")
    skipped = case.find("skipped")
    assert skipped is not None, ET.tostring(case, encoding="unicode")
    assert "was fail" in skipped.get("message") and "--ignore" in skipped.get("message")
    assert case.find("system-out") is None  # not rendered as a WARN that passes
    assert root.get("skipped") == "1" and root.find("testsuite").get("skipped") == "1"


def test_junit_ignored_unknown_is_skipped_with_its_origin():
    f = Finding("runtime.docker", "warn", "cannot tell", ignored=True, demoted_from="unknown")
    node = model.NodeReport("n", None, "warn", [f], model.ReleaseAdvice("0.7.1"))
    root = junit.build(model.Report("v", "t", "m", "0.7.1", [node]))
    sk = root.find("testsuite/testcase/skipped")
    assert sk is not None and "was unknown" in sk.get("message")
    assert (root.get("errors"), root.get("failures")) == ("0", "0")


# -- score_run: one classifier for every transport ----------------------------------------------

def test_score_run_ok_equals_scoring_the_output(matrix, rocky):
    typed = pipeline.score_run("r", rocky, matrix=matrix, source="root:x")
    assert isinstance(typed, model.NodeReport) and typed.error is None
    assert typed.to_dict() == pipeline.node_from_output("r", rocky.stdout, matrix=matrix, source="root:x")


@pytest.mark.parametrize("run,kind,says", [
    (ProbeRun("PROBE 1\n", "slow", None, status="timeout", message="probe did not finish within 5s"),
     "timeout", "within 5s"),
    (ProbeRun("", "sh: 1: not found", 127), "probe-error", "exited with status 127"),
])
def test_score_run_local_failures(matrix, run, kind, says):
    node = pipeline.score_run("h", run, matrix=matrix)
    assert node.verdict == "unknown" and node.checks == [] and node.error.kind == kind
    assert says in node.error.message


def test_score_run_refuses_output_under_a_foreign_boundary(matrix, rocky):
    forged = ProbeRun(rocky.stdout, "", 0, boundary="@@NODECHECK-0000000000000000@@")
    node = pipeline.score_run("h", forged, matrix=matrix)
    assert node.error.kind == "probe-error" and "boundary" in node.error.message


def test_score_run_takes_the_ssh_transports_classification(matrix, rocky):
    t = Target("web1", "10.0.0.1")
    node = pipeline.score_run("web1", HostResult.error(t, "host-key-mismatch", "key changed",
                                                       stderr="WARNING"), matrix=matrix)
    assert node.error == model.HostError("host-key-mismatch", "key changed", "WARNING")
    ok = pipeline.score_run("web1", HostResult(target=t, stdout=rocky.stdout, exit_status=0), matrix=matrix)
    assert ok.error is None and ok.verdict == "fail"


def test_host_error_kind_is_checked(matrix):
    with pytest.raises(ValueError):
        pipeline.host_error("h", "exploded", "?", matrix=matrix)


# -- the schema and the model describe the same fields ------------------------------------------

def _props(ref: str) -> set[str]:
    d = SCHEMA
    for part in ref.split("/"):
        d = d[part]
    return set(d["properties"])


def _fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


# What the schema names that is not a model field, and why (nothing else may differ).
NOT_IN_MODEL = {"matrix_version"}  # on JSON Lines lines only, added by `scan --output-file` for --resume


def test_schema_and_model_name_the_same_fields():
    node = SCHEMA["$defs"]["node"]
    assert _props("$defs/node") - NOT_IN_MODEL == _fields(model.NodeReport)
    assert set(node["properties"]["checks"]["items"]["properties"]) == _fields(Finding)
    assert set(node["properties"]["sysbox"]["properties"]) == _fields(model.ReleaseAdvice)
    err = next(o for o in node["properties"]["error"]["oneOf"] if o.get("type") == "object")
    assert set(err["properties"]) == _fields(model.HostError)
    assert set(SCHEMA["$defs"]["method"]["properties"]) == _fields(model.Method)
    assert set(SCHEMA["properties"]) == _fields(model.Report) | {"verdict", "summary"}
    assert set(err["properties"]["kind"]["enum"]) == set(pipeline.ERROR_KINDS)


GOLDENS = sorted(GOLDEN.glob("*.json"))


@pytest.mark.parametrize("path", GOLDENS, ids=[p.stem for p in GOLDENS])
def test_golden_is_the_models_json_and_valid(path):
    doc = json.loads(path.read_text())
    jsonschema.validate(doc, SCHEMA)
    # the model carries every field the report emits: through it and back loses nothing
    assert model.Report.from_dict(doc).to_dict() == doc
    # and every key the report emits is one the schema names
    for n in doc["nodes"]:
        assert set(n) <= _props("$defs/node")
        assert set(n["sysbox"]) <= set(SCHEMA["$defs"]["node"]["properties"]["sysbox"]["properties"])
        for c in n["checks"]:
            assert set(c) <= set(SCHEMA["$defs"]["node"]["properties"]["checks"]["items"]["properties"])


def test_k8s_row_fields_round_trip():
    row = {"node": "w1", "source": "k8s:ns/pod/p", "verdict": "unknown", "checks": [],
           "sysbox": {"target": "0.7.1", "compatible_releases": [], "recommended": None,
                      "verdict_by_release": {"0.7.1": "unknown"}, "not_ruled_out": ["0.7.1"]},
           "methods": {}, "facts": {}, "error": {"kind": "pod-failed", "message": "OOMKilled", "stderr_tail": ""},
           "kubernetes_node": {"name": "w1"},
           "from_node": ["kubelet.version"],
           "kubernetes": {"namespace": "ns", "pod": "p", "job": None, "scan_run": "r", "last_state": "done"}}
    jsonschema.validate({"schema": "nodecheck.report/v1", "nodecheck_version": "x",
                         "generated_at": "2026-01-01T00:00:00+00:00", "matrix_version": "m", "target": "0.7.1",
                         "verdict": "unknown", "summary": {"pass": 0, "warn": 0, "fail": 0, "unknown": 1},
                         "nodes": [row]}, SCHEMA)
    assert model.NodeReport.from_dict(row).to_dict() == row


# -- renderers take the model and its JSON form alike -------------------------------------------

def test_renderers_give_the_same_output_for_the_model_and_its_json(matrix, rocky):
    node = pipeline.score_run("r", rocky, matrix=matrix, ignore=["selinux"])
    rep = pipeline.build([node], matrix=matrix)
    doc = rep.to_dict()

    def tbl(r):
        buf = io.StringIO()
        table.render(r, Console(file=buf, width=100, color_system=None), verbose=True)
        return buf.getvalue()

    assert tbl(rep) == tbl(doc) and "demoted to warn by --ignore" in tbl(rep)
    assert ET.tostring(junit.build(rep)) == ET.tostring(junit.build(doc))
    assert nfd.features_file(node) == nfd.features_file(doc["nodes"][0])


def test_build_report_keeps_dict_rows_and_computes_verdict_from_the_model(matrix):
    rows = [{"node": "a", "verdict": "pass", "checks": [], "sysbox": {}, "error": None, "extra": 1},
            pipeline.host_error("b", "timeout", "slow", matrix=matrix)]
    doc = pipeline.build_report(rows, matrix=matrix)
    assert doc["nodes"][0]["extra"] == 1  # a caller's own keys are not dropped
    assert doc["verdict"] == "unknown" and doc["summary"] == {"pass": 1, "warn": 0, "fail": 0, "unknown": 1}


def test_snapshot_scores_through_the_pipeline(matrix, rocky):
    from nodecheck import snapshot

    doc = snapshot.build("r", rocky.stdout, source="root:x")
    typed = snapshot.score(doc, matrix=matrix, ignore=["selinux"], source="snapshot:f")
    assert typed.to_dict() == pipeline.node_from_output("r", rocky.stdout, matrix=matrix, ignore=["selinux"],
                                                        source="snapshot:f")
