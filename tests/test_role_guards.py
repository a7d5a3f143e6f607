"""The sysbox role's refusals act on the preflight's decision (nodecheck_install), not on a
second derivation; only without a decision do they look for themselves. Run for real with
ansible-playbook on a local connection: the guards only read (stat, a stand-in `docker ps`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.skipif(not (BIN / "ansible-playbook").exists(), reason="ansible-playbook is not in this venv")


def run_guards(tmp_path: Path, decision: dict | None, *, docker_running: bool, containers: int = 1,
               daemon_json: str | None = None) -> subprocess.CompletedProcess:
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "docker").write_text("#!/bin/sh\n" + "".join(f"echo c{i}\n" for i in range(containers)))
    (fake / "docker").chmod(0o755)
    dj = tmp_path / "daemon.json"
    if daemon_json is not None:
        dj.write_text(daemon_json)
    variables = {"sysbox_installed_version": "", "sysbox_resolved_version": "0.7.1-0",
                 "sysbox_docker_running": docker_running, "sysbox_docker_daemon_json": str(dj),
                 "sysbox_force_upgrade": False}
    if decision is not None:
        variables["nodecheck_install"] = decision
    play = [{"hosts": "all", "gather_facts": False, "tasks": [
        {"ansible.builtin.import_tasks": str(REPO / "playbooks/roles/sysbox/tasks/guards.yml")}]}]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "playbooks/ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PATH=f"{fake}:{BIN}:{os.environ.get('PATH', '')}", ANSIBLE_HOME=str(tmp_path / "ah"),
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(tmp_path / "play.yml"),
                           "-e", f"@{tmp_path / 'vars.json'}", "-e", f"ansible_python_interpreter={sys.executable}"],
                          env=env, capture_output=True, text=True, timeout=300)


def test_snap_refused_on_the_preflights_word(tmp_path):
    r = run_guards(tmp_path, {"docker_snap": True, "docker_network_preset": True}, docker_running=False)
    assert r.returncode == 2 and "runs Docker from the snap (the preflight found it)" in r.stdout, r.stdout[-2000:]
    # the role did not look again: its own stat runs only without a decision
    assert re.search(r"TASK \[Look for the Docker snap \(no preflight decision\)\][^\n]*\n(?:[^\n]*\n)*?skipping: \[localhost\]",
                     r.stdout), r.stdout[-2000:]


def test_network_trap_follows_the_decision_not_a_second_reading(tmp_path):
    # daemon.json here is compact (the package's grep would not match), but the decision is the
    # preflight's: preset true -> no refusal; preset false -> refusal with containers present.
    compact = '{"bip": "172.20.0.1/16", "default-address-pools": [{"base": "172.25.0.0/16", "size": 24}]}'
    ok = run_guards(tmp_path, {"docker_snap": False, "docker_network_preset": True}, docker_running=True,
                    daemon_json=compact)
    assert ok.returncode == 0, ok.stdout[-2000:]
    refused = run_guards(tmp_path, {"docker_snap": False, "docker_network_preset": False}, docker_running=True,
                         daemon_json=compact)
    assert refused.returncode == 2 and "cannot proceed due to existing Docker containers" in refused.stdout


def test_without_a_decision_the_role_reads_daemon_json_as_the_package_does(tmp_path):
    compact = '{"bip": "172.20.0.1/16", "default-address-pools": [{"base": "172.25.0.0/16", "size": 24}]}'
    r = run_guards(tmp_path, None, docker_running=True, daemon_json=compact)
    assert r.returncode == 2 and "cannot proceed due to existing Docker containers" in r.stdout, r.stdout[-2000:]
    pretty = json.dumps(json.loads(compact), indent=2)
    r = run_guards(tmp_path, None, docker_running=True, daemon_json=pretty)
    assert r.returncode == 0, r.stdout[-2000:]
