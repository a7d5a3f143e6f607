"""The nodecheck_preflight action plugin through its real run(): an Ansible Task, the plugin's
own probe exec (here a local `sh` against a fixture tree instead of an SSH connection), the
scoring, the .deb from the matrix and the install decision it hands to the roles."""

from __future__ import annotations

import subprocess
from types import SimpleNamespace
from pathlib import Path

import pytest

pytest.importorskip("ansible")

from ansible.parsing.dataloader import DataLoader  # noqa: E402
from ansible.playbook.play_context import PlayContext  # noqa: E402
from ansible.playbook.task import Task  # noqa: E402
from ansible.plugins.loader import action_loader, init_plugin_loader, module_loader  # noqa: E402
from ansible.template import Templar  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
HOSTS = REPO / "tests" / "fixtures" / "hosts"


@pytest.fixture(scope="module", autouse=True)
def _loaders():
    # What ansible-playbook does for playbooks/: its library/ and action_plugins/ are searched.
    init_plugin_loader()
    module_loader.add_directory(str(REPO / "playbooks" / "library"))
    action_loader.add_directory(str(REPO / "playbooks" / "action_plugins"))


class _LocalExec:
    """Stands in for the play's connection: runs the command the plugin builds, locally."""

    def __init__(self):
        self.commands = []

    def __call__(self, cmd, in_data=None, sudoable=True, **kw):
        self.commands.append(cmd)
        p = subprocess.run(cmd, shell=True, input=in_data, capture_output=True, timeout=120)
        return {"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr}


def run_plugin(exe=None, **args) -> tuple[dict, _LocalExec]:
    task = Task.load({"nodecheck_preflight": args})
    loader = DataLoader()
    # No remote temp dir is needed: the plugin's one exec sends the probe on stdin.
    connection = SimpleNamespace(_shell=SimpleNamespace(tmpdir="/nonexistent"))
    action = action_loader.get(task.action, task=task, connection=connection, play_context=PlayContext(),
                               loader=loader, templar=Templar(loader=loader), shared_loader_obj=None)
    assert action is not None and type(action).__module__.endswith("nodecheck_preflight")
    exe = exe or _LocalExec()
    action._low_level_execute_command = exe
    return action.run(task_vars={"inventory_hostname": "n1"}), exe


def test_0_4_x_gets_the_distro_specific_deb_for_focal():
    """0.4.x ships one .deb per distro: an Ubuntu 20.04 node must get the focal package the matrix
    lists (Release.artifact("amd64", "ubuntu", "20.04")), with its SHA256."""
    res, exe = run_plugin(target="0.4.0", root=str(HOSTS / "ubuntu-20.04" / "root"))
    assert exe.commands and exe.commands[0].startswith("sh -s -- ")
    assert res["arch"] == "amd64" and res["sysbox_release"] == "0.4.0"
    assert res["artifact"]["file"] == "sysbox-ce_0.4.0-0.ubuntu-focal_amd64.deb", res["artifact"]
    assert res["artifact"]["sha256"] == "b189602cdb2bbca9a1f25159a6e664ebd251d7c2fb6be968c7148564e96744c4"


def test_0_4_x_debian_11_gets_bullseye_and_0_7_gets_the_generic_deb():
    res, _ = run_plugin(target="0.4.1", root=str(HOSTS / "debian-11" / "root"))
    assert res["artifact"].get("file", "").endswith("debian-bullseye_amd64.deb"), res["artifact"]
    res, _ = run_plugin(target="0.7.1", root=str(HOSTS / "debian-11" / "root"))
    assert res["artifact"]["file"] == "sysbox-ce_0.7.1-0.linux_amd64.deb", res["artifact"]


@pytest.mark.parametrize("release, on_host, version, where", [
    ("0.5.1", False, "1.5.11-1", "workspace-image"),  # #544: the inner runc; coder/images#157 pins the image
    ("0.7.1", False, None, "workspace-image"),  # fixed in 0.5.2: no pin at all
])
def test_install_decision_carries_the_matrix_pin(release, on_host, version, where):
    res, _ = run_plugin(target=release, root=str(HOSTS / "debian-12" / "root"))
    pin = res["install"]["containerd_pin"]
    assert (pin["on_host"], pin["version"], pin["where"]) == (on_host, version, where)
    assert pin["host_version"] == "" and pin["source"].startswith("https://github.com/nestybox/sysbox/issues/544")
    assert res["install"]["release"] == release


def test_install_decision_docker_snap_and_network_come_from_the_scan():
    res, _ = run_plugin(root=str(HOSTS / "docker-snap" / "root"))
    assert res["install"]["docker_snap"] is True
    assert res["verdict"] == "fail" and "runtime.docker" in [c["id"] for c in res["failing"]]
    res, _ = run_plugin(root=str(HOSTS / "debian-12" / "root"))
    assert res["install"]["docker_snap"] is False


class _ForgingExec(_LocalExec):
    """A connection whose node answers with a complete probe output of its own making (a forced
    command, ~/.ssh/rc): a passing tree's real output under a boundary this run did not
    generate, or that output with the probe's own printed after it."""

    def __init__(self, forged: bytes, also_real: bool = False):
        super().__init__()
        self.forged, self.also_real = forged, also_real

    def __call__(self, cmd, in_data=None, sudoable=True, **kw):
        real = super().__call__(cmd, in_data, sudoable, **kw) if self.also_real else {"stdout": b""}
        return {"rc": 0, "stdout": self.forged + real["stdout"], "stderr": b""}


@pytest.mark.parametrize("also_real", [False, True])
def test_forged_probe_output_is_never_scored(also_real):
    """The plugin checks the boundary it generated, like `nodecheck scan` (it did not: a forged
    output was scored, and a passing node's forgery put any node on the install path)."""
    from nodecheck import probe
    tree = str(HOSTS / "ubuntu-24.04" / "root")
    forged = subprocess.run(["sh", "-s", "--", tree], input=probe.script("0000forged0000").encode(),
                            capture_output=True, check=True).stdout
    honest, _ = run_plugin(root=tree)
    assert honest["verdict"] != "unknown", honest  # the tree scores: only the forgery is refused
    res, _ = run_plugin(_ForgingExec(forged, also_real), root=tree)
    assert res["verdict"] == "unknown" and res["install"] == {}, res
    error = res["report"]["error"]
    assert error["kind"] == "probe-error", res["report"]
    assert ("headers" if also_real else "did not generate") in error["message"], error
