"""Secrets never leave the node (issue 12, "Security"): containerd's config.toml (0600, registry
credentials inside), daemon.json (a splunk-token, a proxy password), crio.conf and the kubelet
config and the kernel command line are read only for what a parser uses, and no output nodecheck writes (snapshot, JSON
Lines, JUnit, NFD features) holds a credential; every one is created 0600."""

from __future__ import annotations

import json
import os
import stat

import pytest

from hostile import copy_root, nodecheck

SECRETS = ["hunter2-registry-pw", "c2VjcmV0LWF1dGg=", "eyJ-identity-token", "splunk-8c1f-token",
           "proxy-pw-0042", "crio-secret-77", "kubelet-bearer-99", "mirror-pw-13", "next-line-pw-21",
           "luks-keyfile-pw-3", "iscsi-chap-pw-8"]

# As dracut users write it: a key file and an iSCSI CHAP password on the kernel line, the SELinux
# switch among them, and an init argument after "--" that the kernel never sees.
CMDLINE = ("BOOT_IMAGE=/vmlinuz-6.8.0 root=/dev/mapper/vg-root ro rd.luks.key=/keys/luks-keyfile-pw-3 "
           "netroot=iscsi:user:iscsi-chap-pw-8@10.0.0.5::3260::iqn.2024-01.com.example:disk quiet "
           "selinux=0 systemd.unified_cgroup_hierarchy=1 -- enforcing=1\n")

CONTAINERD = """version = 2
root = "/var/lib/containerd"

[plugins."io.containerd.grpc.v1.cri".registry.configs."registry.example.com".auth]
  username = "bot"
  password = "hunter2-registry-pw"
  auth = "c2VjcmV0LWF1dGg="
  identitytoken = "eyJ-identity-token"
"""

# Pretty-printed as dockerd's users write it; bip/pools one key per line.
DAEMON = """{
  "data-root": "/var/lib/docker",
  "bip": "172.20.0.1/16",
  "log-driver": "splunk",
  "log-opts": {"splunk-token": "splunk-8c1f-token", "splunk-url": "https://splunk.example.com:8088",
               "splunk-password":
                 "next-line-pw-21"},
  "proxies": {"http-proxy": "http://alice:proxy-pw-0042@proxy.example.com:3128"},
  "registry-mirrors": ["https://bob:mirror-pw-13@mirror.example.com"],
  "features": {"time-namespaces": false}
}
"""


@pytest.fixture
def node(tmp_path):
    root = copy_root(tmp_path / "root")
    for rel, text in (("etc/containerd/config.toml", CONTAINERD), ("etc/docker/daemon.json", DAEMON),
                      ("etc/crio/crio.conf", '[crio.image]\nglobal_auth_file = ""\npassword = "crio-secret-77"\n'),
                      ("var/lib/kubelet/config.yaml", "kind: KubeletConfiguration\nstaticPodURLHeader:\n"
                                                      "  Authorization: ['Bearer kubelet-bearer-99']\n"),
                      ("proc/cmdline", CMDLINE)):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(0o600)
    return root


def _assert_clean(text: str, where: str) -> None:
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"{where} holds {leaked}"


def test_snapshot_keeps_what_parsers_need_and_no_credential(node, tmp_path):
    os.umask(0o022)
    out = tmp_path / "snap.json"
    p = nodecheck("collect", "--root", node, "--output-file", out)
    assert p.returncode == 0, p.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text()
    _assert_clean(text, "snapshot")
    rt = json.loads(text)["facts"]["runtimes"]
    # What the parsers read is intact.
    assert rt["containerd_config_version"] == 2
    assert rt["docker_time_namespaces"] == "disabled"
    assert rt["docker_daemon_json"]["data-root"] == "/var/lib/docker"
    assert rt["docker_daemon_json"]["bip"] == "172.20.0.1/16"
    assert rt["docker_daemon_json"]["log-opts"]["splunk-url"] == "https://splunk.example.com:8088"
    assert rt["kubelet_configured"] is True
    raw = json.loads(text)["probe"]["output"]
    assert "/etc/crio/crio.conf" not in raw  # read by no parser: not read at all
    assert "<redacted>" in raw
    # The kernel line keeps its switches (the SELinux one is read) and nothing past "--".
    assert "\nselinux=0 systemd.unified_cgroup_hierarchy=1\n" in raw
    assert json.loads(text)["facts"]["selinux"]["cmdline"] == "selinux=0"


@pytest.mark.parametrize("option", ["--output-file", "--junit", "--nfd-features-file"])
def test_scan_outputs_hold_no_credential_and_are_0600(node, tmp_path, option):
    os.umask(0o022)
    out = tmp_path / "out"
    p = nodecheck("scan", "--root", node, option, out, "-o", "json")
    # The kubelet config makes it a kubelet node whose kubelet version is unknown: exit 3.
    assert p.returncode in (0, 1, 3) and "Traceback" not in p.stderr, p.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    _assert_clean(out.read_text(), option)
    _assert_clean(p.stdout, "the report on stdout")


def test_scan_of_the_snapshot_rescored_is_clean_too(node, tmp_path):
    snap = tmp_path / "snap.json"
    assert nodecheck("collect", "--root", node, "--output-file", snap).returncode == 0
    p = nodecheck("scan", "--snapshot", snap, "-o", "json")
    _assert_clean(p.stdout, "a rescored snapshot")
    checks = {c["id"]: c["status"] for c in json.loads(p.stdout)["nodes"][0]["checks"]}
    assert checks["runtime.docker"] == "pass"  # the redacted daemon.json is still valid JSON
