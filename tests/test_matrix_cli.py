"""`nodecheck matrix list|show|validate|diff` through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from nodecheck import exitcodes
from nodecheck import matrix as mx
from nodecheck.cli import cli, main

DATA = Path(__file__).resolve().parents[1] / "matrix" / "sysbox.yaml"


def test_matrix_group_is_registered():
    assert "matrix" in cli.commands
    assert set(cli.commands["matrix"].commands) == {"list", "show", "validate", "diff"}


def test_validate_ok(capsys):
    assert main(["matrix", "validate", str(DATA)]) == exitcodes.PASS
    out = capsys.readouterr().out
    assert "valid" in out and "2026.12.0" in out and "14 releases" in out


def test_validate_broken_exits_64_with_message(tmp_path, capsys):
    data = mx.read_raw(DATA)
    del data["kernel_thresholds"][0]["source"]
    p = tmp_path / "broken.yaml"
    p.write_text(yaml.safe_dump(data))
    assert main(["matrix", "validate", str(p)]) == exitcodes.USAGE
    err = capsys.readouterr().err
    assert str(p) in err and "$.kernel_thresholds[0]" in err and "source" in err


def test_validate_missing_file_exits_64(tmp_path, capsys):
    assert main(["matrix", "validate", str(tmp_path / "none.yaml")]) == exitcodes.USAGE
    assert "cannot read" in capsys.readouterr().err


def test_list_table(capsys, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "160")
    assert main(["matrix", "list"]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out  # no colour codes for NO_COLOR / non-TTY
    for v in ("0.4.0", "0.5.2", "0.6.5", "0.7.1"):
        assert v in out
    assert "1.27–1.30" in out and "1.5.11-1" in out and "Never released: 0.6.0" in out


def test_list_json(capsys):
    assert main(["matrix", "list", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {r["release"]: r for r in doc["releases"]}
    assert doc["matrix_version"] == "2026.12.0"
    assert rows["0.6.5"]["k8s_minors"] == ["1.27", "1.28", "1.29", "1.30"]
    assert rows["0.5.1"]["containerd_pin"] == "1.5.11-1" and rows["0.5.2"]["containerd_pin"] is None
    assert rows["0.4.0"]["archs"] == ["amd64"]


def test_show_text(capsys):
    assert main(["matrix", "show", "0.6.3"]) == 0
    out = capsys.readouterr().out
    assert "Sysbox CE 0.6.3" in out
    assert "cfce811006a27305071b1634ca8fe690392f5dcc205612e7b4e5bde411b7701e" in out
    assert "1.26–1.28" in out
    assert "kernel-6.5-needs-0.6.4" in out  # 0.6.3 is below the 6.5 fix


def test_show_json(capsys):
    assert main(["matrix", "show", "v0.7.0", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["release"]["version"] == "0.7.0"
    amd = next(a for a in doc["release"]["artifacts"] if a["arch"] == "amd64")
    assert amd["sha256"].startswith("eeff2736")
    assert "containerd2-k8s-sysfs-procfd-0.7.0" in {r["id"] for r in doc["rules"]}


def test_show_unknown_release_exits_64(capsys):
    assert main(["matrix", "show", "0.6.0"]) == exitcodes.USAGE
    err = capsys.readouterr().err
    assert "never released" in err and "0.6.1" in err


def test_show_with_matrix_option(tmp_path, capsys):
    alt = tmp_path / "alt.yaml"
    alt.write_text(DATA.read_text().replace('matrix_version: "2026.12.0"', 'matrix_version: "2027.1.0"'))
    assert main(["matrix", "show", "0.6.5", "--matrix", str(alt)]) == 0
    assert "matrix 2027.1.0" in capsys.readouterr().out


def test_diff(tmp_path, capsys):
    data = mx.read_raw(DATA)
    data["matrix_version"] = "2026.12.1"
    data["releases"][-1]["kubernetes"]["minors"].append("1.36")
    b = tmp_path / "b.yaml"
    b.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["matrix", "diff", str(DATA), str(b)]) == 1  # differ, as diff(1)
    out = capsys.readouterr().out
    assert "matrix_version: 2026.12.0 -> 2026.12.1" in out
    assert "release 0.7.1: kubernetes.minors:" in out and "'1.36'" in out
    assert main(["matrix", "diff", str(DATA), str(DATA)]) == 0
    assert capsys.readouterr().out.strip() == "no differences"


def test_clirunner_exit_codes():
    r = CliRunner().invoke(cli, ["matrix", "show", "1.0.0"])
    assert r.exit_code == exitcodes.USAGE
    r = CliRunner().invoke(cli, ["matrix", "validate", str(DATA)])
    assert r.exit_code == 0 and "valid" in r.output
