"""The Ansible project and `nodecheck install` without a lab: lint, syntax, variable docs,
the action plugin's helpers, and the command's refusals and exit codes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
PLAYBOOKS = REPO / "playbooks"
BIN = Path(sys.executable).parent
ROLES = ("preflight", "sysbox", "containerd_pin", "k8s_node_labels", "fuse_device_plugin", "sysbox_k8s")


def _env(**extra):
    # Only our own Ansible settings: a variable left by another tool in this process (e.g. an
    # in-process ansible-runner run) must not change how lint and syntax checks behave.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "RUNNER_"))}
    env.update(ANSIBLE_CONFIG=str(PLAYBOOKS / "ansible.cfg"), PATH=f"{BIN}:{env.get('PATH', '')}",
               ANSIBLE_NOCOLOR="1", NO_COLOR="1", ANSIBLE_HOME=str(REPO / "tests/.cache/ansible-home"))
    env.update(extra)
    return env


def _tool(name):
    path = BIN / name
    if not path.exists():
        path = shutil.which(name)
    if not path:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return str(path)


@pytest.mark.slow
def test_ansible_lint_production_profile_passes():
    r = subprocess.run([_tool("ansible-lint"), "--profile", "production", "--nocolor", "playbooks/"],
                       cwd=REPO, env=_env(), capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "Profile 'production' was required, and it passed" in r.stdout + r.stderr


@pytest.mark.parametrize("playbook", ["site.yml", "preflight.yml", "k8s.yml", "k8s-uninstall.yml"])
def test_syntax_check(playbook):
    r = subprocess.run([_tool("ansible-playbook"), "--syntax-check", "-i", "localhost,", playbook],
                       cwd=PLAYBOOKS, env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_site_runs_preflight_first_and_tags_every_role():
    site = yaml.safe_load((PLAYBOOKS / "site.yml").read_text())
    assert site[0]["ansible.builtin.import_playbook"] == "preflight.yml"
    pre = yaml.safe_load((PLAYBOOKS / "preflight.yml").read_text())
    assert pre[0]["tags"] == ["preflight"] and pre[0]["roles"][0]["role"] == "preflight"
    # every role's refusals run on every host before any role changes anything
    checks = [t["ansible.builtin.include_role"] for t in site[1]["tasks"]]
    assert [(c["name"], c["tasks_from"]) for c in checks] == [("containerd_pin", "checks.yml"), ("sysbox", "checks.yml")]
    roles = {r["role"]: r["tags"] for r in site[2]["roles"]}
    assert roles == {"containerd_pin": ["containerd_pin"], "sysbox": ["sysbox"]}


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_documented_and_prefixed(role):
    path = PLAYBOOKS / "roles" / role / "defaults" / "main.yml"
    lines = path.read_text().splitlines()
    keys = yaml.safe_load(path.read_text())
    assert keys, f"{path} defines no variables"
    for key in keys:
        assert key.startswith(role + "_"), f"{role}: {key} lacks the role prefix"
        i = next(n for n, line in enumerate(lines) if line.startswith(key + ":"))
        # the comment block directly above the variable (blank lines end it)
        above = []
        for line in reversed(lines[:i]):
            if not line.startswith("#"):
                break
            above.append(line)
        assert above, f"{role}: {key} has no comment documenting it"
    assert (PLAYBOOKS / "roles" / role / "meta" / "main.yml").exists()


def test_sysbox_role_never_installs_without_a_checksum():
    """Every way in (get_url, copy) is followed by a SHA256 check before apt sees the file."""
    tasks = yaml.safe_load((PLAYBOOKS / "roles/sysbox/tasks/install.yml").read_text())
    names = [t["name"] for t in tasks]
    get_url = next(t for t in tasks if "ansible.builtin.get_url" in t)
    assert get_url["ansible.builtin.get_url"]["checksum"].startswith("sha256:")
    verify = names.index("Verify the SHA256, deleting a file that does not match")
    install = next(i for i, t in enumerate(tasks) if "deb" in (t.get("ansible.builtin.apt") or {}))
    assert names.index("Copy the .deb from the controller") < verify < install
    resolve = yaml.safe_load((PLAYBOOKS / "roles/sysbox/tasks/resolve.yml").read_text())
    assert any("sysbox_resolved_sha256 is match('^[0-9a-f]{64}$')" in (t.get("ansible.builtin.assert") or {}).get("that", [])
               for t in resolve)


# -- the action plugin's pure helpers ---------------------------------------------------

def _plugin():
    sys.path.insert(0, str(PLAYBOOKS / "action_plugins"))
    try:
        import nodecheck_preflight
    finally:
        sys.path.pop(0)
    return nodecheck_preflight


def test_effective_verdict_demotes_only_when_every_fail_is_ignored():
    from nodecheck.report.model import NodeReport

    p = _plugin()
    node = NodeReport.from_dict({"verdict": "fail", "checks": [
        {"id": "kernel.min", "status": "fail"}, {"id": "distro", "status": "fail"}, {"id": "x", "status": "warn"}]})
    assert p.effective_verdict(node, []) == "fail"
    assert p.effective_verdict(node, ["kernel.min"]) == "fail"
    assert p.effective_verdict(node, ["kernel.min", "distro"]) == "warn"
    assert [c.id for c in p.failing_checks(node, ["distro"])] == ["kernel.min"]
    assert p.effective_verdict(NodeReport.from_dict({"verdict": "pass", "checks": []}), []) == "pass"


def test_artifact_comes_from_the_matrix():
    matrix = pytest.importorskip("nodecheck.matrix")
    p = _plugin()
    m = matrix.load()
    art = p.artifact_from_matrix(m, "0.7.1", "amd64")
    assert art["sha256"] == "9d6d5484f980d0a17f86c492c1262015c2afb66280bdb97215b79fde6a0261c5"
    assert art["file"].startswith("sysbox-ce_0.7.1") and art["file"].endswith("amd64.deb")
    assert art["url"].startswith("https://")
    assert p.artifact_from_matrix(m, "0.7.1", "arm64")["sha256"].startswith("04ca894a")
    assert p.artifact_from_matrix(m, "9.9.9", "amd64") == {}
    assert p.artifact_from_matrix(m, "0.7.1", "s390x") == {}


def test_arch_from_probe_output():
    p = _plugin()
    from nodecheck import pipeline, probe

    out = subprocess.run(["sh", "-s", "--", "/"], input=probe.script(), capture_output=True, text=True).stdout
    machine = os.uname().machine
    assert p.arch_of(pipeline.facts_from_output(out)) == {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


# -- nodecheck install: refusals before anything runs --------------------------------

def _install(args, tmp_path, stdin=None, **env):
    return subprocess.run([sys.executable, "-m", "nodecheck.cli", "install", *args], cwd=tmp_path,
                          env=_env(**env), capture_output=True, text=True, stdin=stdin or subprocess.DEVNULL, timeout=120)


@pytest.fixture
def inventory(tmp_path):
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts:\n    h1:\n      ansible_host: 192.0.2.1\n")
    return inv


def test_install_without_yes_and_without_a_tty_refuses_with_64(inventory, tmp_path):
    r = _install(["-i", str(inventory)], tmp_path)
    assert r.returncode == 64, r.stdout + r.stderr
    assert "pass --yes" in r.stdout + r.stderr
    assert not (tmp_path / "artifacts").exists()


@pytest.mark.parametrize("args, needle", [
    (["--sysbox-deb-url", "http://m/x.deb"], "need --sysbox-deb-sha256"),
    (["--sysbox-deb-url", "http://m/x.deb", "--sysbox-deb-path", "/etc/hostname", "--sysbox-deb-sha256", "a" * 64],
     "alternatives"),
    (["--sysbox-deb-url", "http://m/x.deb", "--sysbox-deb-sha256", "abc"], "not a SHA256"),
    (["--matrix", "/nonexistent/matrix.yaml"], "matrix"),
])
def test_install_usage_errors(inventory, tmp_path, args, needle):
    r = _install(["-i", str(inventory), "--yes", *args], tmp_path)
    assert r.returncode == 64, r.stdout + r.stderr
    assert needle in r.stdout + r.stderr


def test_install_that_cannot_start_exits_3(inventory, tmp_path):
    empty = tmp_path / "no-playbooks"
    empty.mkdir()
    r = _install(["-i", str(inventory), "--yes", "--private-data-dir", str(tmp_path / "pdd")], tmp_path,
                 NODECHECK_PLAYBOOKS=str(empty))
    assert r.returncode == 3, r.stdout + r.stderr
    assert "cannot find the nodecheck playbooks" in r.stdout
