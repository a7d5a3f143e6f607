"""The CLI as a user runs it: real subprocesses, exit codes, formats, snapshots."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).parents[1]
HOSTS = ROOT / "tests/fixtures/hosts"
SCHEMAS = ROOT / "nodecheck/schemas"


def nodecheck(*args, env=None):
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "nodecheck.cli", *args], capture_output=True, text=True, env=e, cwd=ROOT)


def schema(name):
    return json.loads((SCHEMAS / name).read_text())


def test_scan_this_machine_json_validates():
    p = nodecheck("scan", "--format", "json")
    assert p.returncode in (0, 1, 2, 3), p.stderr
    doc = json.loads(p.stdout)
    assert len(p.stdout.strip().splitlines()) == 1  # one line: pods' logs concatenate into JSONL
    jsonschema.validate(doc, schema("report.schema.json"))
    node = doc["nodes"][0]
    assert node["facts"]["kernel.release"] == os.uname().release
    assert p.returncode == {"pass": 0, "warn": 1, "fail": 2, "unknown": 3}[doc["verdict"]]


def test_non_tty_defaults_to_json_and_table_has_no_colour():
    assert json.loads(nodecheck("scan").stdout)["schema"] == "nodecheck.report/v1"
    p = nodecheck("scan", "--root", str(HOSTS / "ubuntu-18.04-4.15/root"), "--format", "table", env={"NO_COLOR": "1"})
    assert "\x1b[" not in p.stdout
    assert "kernel.version" in p.stdout and "fix:" in p.stdout and "recommended: none" in p.stdout


@pytest.mark.parametrize("profile,code", [("ubuntu-24.04", 0), ("debian-12", 1), ("nfs-var-lib", 2), ("amzn-2023", 3)])
def test_exit_codes_follow_the_verdict(profile, code):
    p = nodecheck("scan", "--root", str(HOSTS / profile / "root"), "--format", "json")
    assert p.returncode == code, p.stderr
    assert json.loads(p.stdout)["verdict"] == ["pass", "warn", "fail", "unknown"][code]


@pytest.mark.parametrize("args", [
    ["scan", "--sysbox", "0.6.0"],  # never released
    ["scan", "--root", "/does/not/exist"],
    ["scan", "--snapshot", "/does/not/exist.json"],
    ["scan", "--format", "xml"],
    ["scan", "-o", "xml"],
    ["scan", "--matrix", "/does/not/exist.yaml"],
    ["scan", "--resume"],
    ["scan", "--root", "/tmp", "--snapshot", "x.json"],
    ["nosuchcommand"],
])
def test_usage_errors_exit_64_with_a_message(args):
    p = nodecheck(*args)
    assert p.returncode == 64, (p.returncode, p.stdout, p.stderr)
    assert "Error" in p.stderr and "Traceback" not in p.stderr


def test_collect_then_rescore_snapshot(tmp_path):
    snap = tmp_path / "s.json"
    p = nodecheck("collect", "--root", str(HOSTS / "rocky-9-enforcing/root"), "--output-file", str(snap))
    assert p.returncode == 0, p.stderr
    doc = json.loads(snap.read_text())
    jsonschema.validate(doc, schema("snapshot.schema.json"))
    assert doc["facts"]["distro"]["id"] == "rocky" and doc["facts"]["selinux"]["mode"] == "enforcing"
    r = nodecheck("scan", "--snapshot", str(snap), "--format", "json")
    assert r.returncode == 2
    node = json.loads(r.stdout)["nodes"][0]
    assert node["source"].startswith("snapshot:") and "selinux" in {c["id"] for c in node["checks"] if c["status"] == "fail"}
    # the same snapshot against an older target, and demoting the SELinux failure
    r = nodecheck("scan", "--snapshot", str(snap), "--ignore", "selinux", "--format", "json")
    assert json.loads(r.stdout)["nodes"][0]["verdict"] in ("warn", "unknown")


def test_corrupt_snapshot_is_a_usage_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "nodecheck.snapshot/v1", "node": 3}')
    p = nodecheck("scan", "--snapshot", str(bad))
    assert p.returncode == 64 and "invalid snapshot" in p.stderr


def test_collect_this_machine_validates(tmp_path):
    out = tmp_path / "me.json"
    p = nodecheck("collect", "--output-file", str(out))
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, schema("snapshot.schema.json"))
    assert doc["facts"]["kernel"]["release"] == os.uname().release


def test_custom_matrix_file_is_used(tmp_path):
    import yaml
    data = yaml.safe_load((ROOT / "matrix/sysbox.yaml").read_text())
    data["matrix_version"] = "2099.1.0"
    m = tmp_path / "m.yaml"
    m.write_text(yaml.safe_dump(data))
    p = nodecheck("scan", "--matrix", str(m), "--format", "json")
    assert json.loads(p.stdout)["matrix_version"] == "2099.1.0"


def test_help_documents_exit_codes():
    p = nodecheck("scan", "--help")
    assert p.returncode == 0 and "64 usage error" in p.stdout and "--ignore" in p.stdout


# --- Output flags: -o/--output FORMAT, --output-file PATH (issue 11) ----------------------

@pytest.mark.parametrize("args", [
    ["scan", "-o", "fleet.jsonl"],
    ["scan", "-o", "json.out"],
    ["collect", "-o", "node.json"],
    ["k8s", "render", "-o", "pod.yaml"],
])
def test_old_o_path_spelling_is_a_usage_error_pointing_at_output_file(args, tmp_path):
    p = subprocess.run([sys.executable, "-m", "nodecheck.cli", *args], capture_output=True, text=True,
                       cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 64, (p.stdout, p.stderr)
    assert "is not an output format" in p.stderr and f"--output-file {args[-1]}" in p.stderr
    assert list(tmp_path.iterdir()) == []  # no file was written


def test_o_json_is_a_format_not_a_file(tmp_path):
    p = subprocess.run([sys.executable, "-m", "nodecheck.cli", "scan", "--root", str(HOSTS / "debian-12/root"),
                        "-o", "json"], capture_output=True, text=True, cwd=tmp_path,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert json.loads(p.stdout)["schema"] == "nodecheck.report/v1"
    assert list(tmp_path.iterdir()) == []


def test_o_yaml_and_wide():
    import yaml
    root = str(HOSTS / "debian-12/root")
    doc = yaml.safe_load(nodecheck("scan", "--root", root, "-o", "yaml").stdout)
    jsonschema.validate(doc, schema("report.schema.json"))
    assert doc["verdict"] == "warn"
    wide = nodecheck("scan", "--root", root, "-o", "wide", env={"NO_COLOR": "1"}).stdout
    table = nodecheck("scan", "--root", root, "-o", "table", env={"NO_COLOR": "1"}).stdout
    assert "PASS" in wide and "cgroups" in wide  # every check, passing ones too
    assert "cgroups" not in table


def test_format_alias_still_works_and_conflicts_are_errors():
    root = str(HOSTS / "debian-12/root")
    assert json.loads(nodecheck("scan", "--root", root, "--format", "json").stdout)["verdict"] == "warn"
    p = nodecheck("scan", "--root", root, "--format", "json", "-o", "yaml")
    assert p.returncode == 64 and "disagree" in p.stderr


def test_output_file_for_scan_and_collect(tmp_path):
    import yaml
    out = tmp_path / "nodes.jsonl"
    p = nodecheck("scan", "--root", str(HOSTS / "debian-12/root"), "-o", "json", "--output-file", str(out))
    assert p.returncode == 1
    assert json.loads(out.read_text().splitlines()[0])["verdict"] == "warn"
    snap = tmp_path / "s.yaml"
    p = nodecheck("collect", "--root", str(HOSTS / "debian-12/root"), "-o", "yaml", "--output-file", str(snap))
    assert p.returncode == 0, p.stderr
    jsonschema.validate(yaml.safe_load(snap.read_text()), schema("snapshot.schema.json"))
    assert p.stdout == ""


def test_resume_needs_output_file():
    p = nodecheck("scan", "web1", "--resume")
    assert p.returncode == 64 and "--output-file" in p.stderr


# --- --ignore (issue 11) -----------------------------------------------------------------

def test_ignore_rejects_unknown_check_ids_and_lists_the_valid_ones():
    p = nodecheck("scan", "--root", str(HOSTS / "debian-12/root"), "--ignore", "selinuxx")
    assert p.returncode == 64, p.stderr
    assert "'selinuxx'" in p.stderr and "valid: all," in p.stderr
    for cid in ("selinux", "kernel.version", "storage.data-root", "known-issue.kernel-6.5-needs-0.6.4"):
        assert cid in p.stderr


def test_ignore_all_and_comma_lists_are_accepted():
    root = str(HOSTS / "nfs-var-lib/root")
    assert nodecheck("scan", "--root", root, "-o", "json").returncode == 2
    p = nodecheck("scan", "--root", root, "-o", "json", "--ignore", "all")
    assert p.returncode == 1, p.stderr
    node = json.loads(p.stdout)["nodes"][0]
    demoted = [c for c in node["checks"] if c.get("ignored")]
    assert demoted and all(c["status"] == "warn" and c["demoted_from"] in ("fail", "unknown") for c in demoted)
    ids = ",".join(c["id"] for c in demoted)
    assert nodecheck("scan", "--root", root, "-o", "json", "--ignore", ids).returncode == 1


def test_ignore_demotes_unknown_so_a_gate_is_not_stuck():
    # amzn-2023's verdict is unknown; ignoring exactly the unknown checks lets the gate proceed (warn).
    root = str(HOSTS / "amzn-2023/root")
    p = nodecheck("scan", "--root", root, "-o", "json")
    assert p.returncode == 3
    unknown = [c["id"] for c in json.loads(p.stdout)["nodes"][0]["checks"] if c["status"] == "unknown"]
    assert unknown
    p = nodecheck("scan", "--root", root, "-o", "json", *[a for u in unknown for a in ("--ignore", u)])
    doc = json.loads(p.stdout)
    jsonschema.validate(doc, schema("report.schema.json"))
    byid = {c["id"]: c for c in doc["nodes"][0]["checks"]}
    assert all(byid[u]["status"] == "warn" and byid[u]["demoted_from"] == "unknown" for u in unknown)
    assert p.returncode in (1, 2)  # warn, or a real fail the user did not ignore


# --- Small conventions (issue 11) --------------------------------------------------------

def test_collect_help_has_no_verdict_exit_codes():
    out = nodecheck("collect", "--help").stdout
    assert "worst verdict" not in out and "snapshot written" in out and "64 usage error" in out


def test_k8s_render_job_and_daemonset_together_is_a_usage_error():
    p = nodecheck("k8s", "render", "--job", "--daemonset", "--nodes", "2")
    assert p.returncode == 64 and "alternatives" in p.stderr
    assert nodecheck("k8s", "render", "--job", "--nodes", "2").returncode == 0


def test_matrix_diff_exit_codes(tmp_path):
    import yaml
    data = yaml.safe_load((ROOT / "matrix/sysbox.yaml").read_text())
    data["matrix_version"] = "2099.1.0"
    b = tmp_path / "b.yaml"
    b.write_text(yaml.safe_dump(data))
    a = str(ROOT / "matrix/sysbox.yaml")
    assert nodecheck("matrix", "diff", a, a).returncode == 0
    assert nodecheck("matrix", "diff", a, str(b)).returncode == 1
    assert nodecheck("matrix", "diff", a, str(tmp_path / "none.yaml")).returncode == 64


def test_k8s_render_json_is_a_list_of_the_same_objects():
    import yaml
    docs = list(yaml.safe_load_all(nodecheck("k8s", "render").stdout))
    lst = json.loads(nodecheck("k8s", "render", "-o", "json").stdout)
    assert lst["kind"] == "List" and lst["items"] == docs
