"""`nodecheck install`'s pieces without a lab: the host key environment and the
classification of ssh's refusals, the target kind of real fixture trees, the ansible-runner
arguments the Ansible-user flags turn into, and the usage errors of those flags."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from nodecheck import pipeline, probe
from nodecheck.install import RunOptions, hostkeys, runner_kwargs
from nodecheck.install.target import DOCKER_HOST, KUBERNETES_NODE, UNKNOWN, target_kind

REPO = Path(__file__).resolve().parent.parent
HOSTS = REPO / "tests" / "fixtures" / "hosts"


# -- host keys ---------------------------------------------------------------------------------

def _ssh_args(env: dict) -> list[str]:
    return shlex.split(env["ANSIBLE_SSH_ARGS"])  # as Ansible's ssh connection splits ssh_args


@pytest.mark.parametrize("accept_new, want", [(False, "StrictHostKeyChecking=yes"),
                                              (True, "StrictHostKeyChecking=accept-new")])
def test_ssh_env_turns_checking_on_and_puts_its_policy_first(accept_new, want):
    env = hostkeys.ssh_env(accept_new=accept_new, environ={})
    # ansible-runner would set False (Ansible then passes StrictHostKeyChecking=no)
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    args = _ssh_args(env)
    # OpenSSH takes the first value of an option: ours precedes everything an inventory adds.
    assert args[:2] == ["-o", want]
    assert "ControlPersist=60s" in args  # Ansible's default connection reuse is kept


def test_ssh_env_keeps_the_users_ssh_args_and_quotes_the_known_hosts_path():
    env = hostkeys.ssh_env(accept_new=False, known_hosts="/tmp/a dir/known hosts",
                           environ={"ANSIBLE_SSH_ARGS": "-o ServerAliveInterval=5"})
    assert _ssh_args(env) == ["-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=/tmp/a dir/known hosts",
                              "-o", "ServerAliveInterval=5"]


# OpenSSH's messages, verbatim from sshconnect.c (check_host_key) and sshconnect2.c, as
# Ansible passes them on ("Failed to connect to the host via ssh: ...").
MISMATCH = """Failed to connect to the host via ssh: @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Someone could be eavesdropping on you right now (man-in-the-middle attack)!
It is also possible that a host key has just been changed.
The fingerprint for the ED25519 key sent by the remote host is
SHA256:kVx7mNm0Yk7tq2m2h6gQnV0bJ0uVq1VbHf2xQ0l7i6c.
Please contact your system administrator.
Add correct host key in /tmp/kh-wrong to get rid of this message.
Offending ED25519 key in /tmp/kh-wrong:1
Host key for 10.214.7.13 has changed and you have requested strict checking.
Host key verification failed."""
UNKNOWN_KEY = ("Failed to connect to the host via ssh: No ED25519 host key is known for 10.214.7.13 and you have "
               "requested strict checking.\r\nHost key verification failed.")
AUTH = "Failed to connect to the host via ssh: root@10.214.7.13: Permission denied (publickey)."
REFUSED = "Failed to connect to the host via ssh: ssh: connect to host 10.214.7.13 port 22: Connection refused"


@pytest.mark.parametrize("msg, kind", [(MISMATCH, "host-key-mismatch"), (UNKNOWN_KEY, "host-key-unknown"),
                                       (AUTH, "auth-failed"), (REFUSED, "unreachable"), ("", "unreachable")])
def test_classify_unreachable_uses_the_scans_vocabulary(msg, kind):
    assert hostkeys.classify_unreachable(msg) == kind
    assert kind in pipeline.ERROR_KINDS


def test_policy_line_says_what_happens_to_unknown_and_changed_keys():
    assert "unknown key fails" in hostkeys.policy(False) and "changed key always fails" in hostkeys.policy(False)
    assert "accepted and recorded" in hostkeys.policy(True) and "changed key fails" in hostkeys.policy(True)


# -- target kind, from real probe runs on fixture trees -----------------------------------------

def _facts(profile: str):
    out = subprocess.run(["sh", "-s", "--", str(HOSTS / profile / "root")], input=probe.script(),
                         capture_output=True, text=True, check=True).stdout
    return pipeline.facts_from_output(out)


def test_target_kind_of_fixture_trees():
    kube = target_kind(_facts("ubuntu-22.04"))  # has /usr/bin/kubelet and a dpkg kubelet package
    assert kube.kind == KUBERNETES_NODE and "kubelet" in kube.why
    assert target_kind(_facts("ubuntu-24.04")).kind == DOCKER_HOST
    # rpm database: the probe cannot tell whether a kubelet package is installed
    amzn = target_kind(_facts("amzn-2"))
    assert amzn.kind == UNKNOWN and "could not read" in amzn.why


def test_target_kind_follows_the_kubelet_config_alone(tmp_path):
    import shutil

    root = tmp_path / "root"
    shutil.copytree(HOSTS / "ubuntu-24.04" / "root", root, symlinks=True)
    assert target_kind(_facts_at(root)).kind == DOCKER_HOST
    (root / "var/lib/kubelet").mkdir(parents=True)
    (root / "var/lib/kubelet/config.yaml").write_text("kind: KubeletConfiguration\n")
    tk = target_kind(_facts_at(root))
    assert tk.kind == KUBERNETES_NODE and "config.yaml" in tk.why


def _facts_at(root: Path):
    out = subprocess.run(["sh", "-s", "--", str(root)], input=probe.script(), capture_output=True, text=True,
                         check=True).stdout
    return pipeline.facts_from_output(out)


# -- the Ansible-user flags -> ansible-runner ------------------------------------------------------

def _kw(tmp_path, **opts):
    inv = tmp_path / "inv.ini"
    inv.write_text("h1\n")
    return runner_kwargs(tmp_path, "site.yml", str(inv), None, {}, "plan", True, RunOptions(**opts))


def test_runner_kwargs_pass_ansible_flags_through(tmp_path):
    kw = _kw(tmp_path, verbosity=2, forks=7, become=True, tags=("sysbox",), skip_tags=("containerd_pin",))
    assert kw["verbosity"] == 2 and kw["forks"] == 7
    assert kw["cmdline"].split() == ["--check", "--diff", "--become"]
    assert kw["tags"] == "preflight,sysbox"  # the preflight always runs
    assert kw["skip_tags"] == "containerd_pin"
    assert kw["envvars"]["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert "passwords" not in kw


def test_runner_kwargs_become_password_goes_to_the_prompt_not_the_command_line(tmp_path):
    kw = _kw(tmp_path, become=True, become_password="s3cret")
    assert "--ask-become-pass" in kw["cmdline"] and "s3cret" not in kw["cmdline"]
    (pattern, answer), = kw["passwords"].items()
    import re

    assert re.search(pattern, "BECOME password: ", re.M) and answer == "s3cret"
    assert "s3cret" not in str(kw["envvars"])
    # ansible-runner must not write it (nor the check-mode cmdline) into the data dir's env/
    assert kw["suppress_env_files"] is True


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "nodecheck.cli", "install", *args], capture_output=True, text=True,
                          cwd=REPO, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args, words", [
    (["--skip-tags", "preflight"], "preflight cannot be skipped"),
    (["--ask-become-pass", "--check"], "needs a terminal"),
    (["--forks", "0", "--check"], "--forks"),
    (["--known-hosts", "/nonexistent/kh", "--check"], "--known-hosts"),
])
def test_install_flag_usage_errors(tmp_path, args, words):
    inv = tmp_path / "inv.ini"
    inv.write_text("h1\n")
    r = _cli("-i", str(inv), *args)
    assert r.returncode == 64, r.stdout + r.stderr
    assert words in r.stderr, r.stderr


def test_install_help_lists_the_ansible_flags():
    out = _cli("--help").stdout
    for flag in ("-v, --verbose", "-f, --forks", "-b, --become", "-K, --ask-become-pass", "-t, --tags", "--skip-tags",
                 "--accept-new-host-keys", "--known-hosts", "--force-plain-host"):
        assert flag in out, flag
