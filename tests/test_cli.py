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
    ["scan", "--format", "yaml"],
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
    p = nodecheck("collect", "--root", str(HOSTS / "rocky-9-enforcing/root"), "-o", str(snap))
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
    p = nodecheck("collect", "-o", str(out))
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
