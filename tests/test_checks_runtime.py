"""nodecheck/checks/runtime.py, one row per branch, on the small facts builder (tests/checkfacts.py).
Each row names only the inputs its branch reads; the expected status is argued in the row."""

from __future__ import annotations

import pytest

from checkfacts import build, one, with_pin
from nodecheck.matrix import load

D = "/etc/docker/daemon.json"
DOCKER = {"docker-ce": "5:27.3.1-1~ubuntu.24.04~noble"}
DOCKER_BINS = ("docker", "dockerd")
PRETTY = '{\n  "bip": "172.20.0.1/16",\n  "default-address-pools": [\n    {"base": "172.25.0.0/16", "size": 24}\n  ]\n}\n'
COMPACT = '{"bip": "172.20.0.1/16", "default-address-pools": [{"base": "172.25.0.0/16", "size": 24}]}'
KUBELET = {"/var/lib/kubelet/config.yaml": "kind: KubeletConfiguration\n"}


@pytest.fixture(scope="module")
def m():
    return load()


# (why, facts kwargs, release, status, in message, caveat: True = must have one naming it, False = none)
DOCKER_ROWS = [
    ("snap: docker run fails with Unknown runtime (S troubleshoot.md)",
     dict(pkgs={}, bins=("docker",), snaps=["/snap/docker/current"]), "fail", "snap", False),
    ("no package database and no tool list: cannot tell", dict(pkgs=None, bins=None), "unknown", "cannot tell", False),
    ("not installed: fine for K8s nodes", dict(pkgs={}, bins=()), "pass", "not installed", False),
    ("daemon.json unusable: the package's jq edit would fail (P postinst)",
     dict(pkgs=DOCKER, bins=DOCKER_BINS, files={D: "{nope"}), "fail", "unusable", False),
    ("no daemon.json: the package restarts Docker to add bip/pools", dict(pkgs=DOCKER, bins=DOCKER_BINS, files={D: None}),
     "pass", "native install", "restarts Docker"),
    ("bip and pools pretty-printed: the package's grep matches, no restart", dict(pkgs=DOCKER, bins=DOCKER_BINS, files={D: PRETTY}),
     "pass", "native install", False),
    # The package greps '^[ ]+"bip": ...' (P postinst docker_network_valid_config): a compact file
    # with both keys still gets the restart, so the caveat stays (the scan once said otherwise).
    ("bip and pools on one line: the package's grep misses them", dict(pkgs=DOCKER, bins=DOCKER_BINS, files={D: COMPACT}),
     "pass", "native install", "restarts Docker"),
]


@pytest.mark.parametrize("why, kw, status, needle, caveat", DOCKER_ROWS, ids=[r[0][:40] for r in DOCKER_ROWS])
def test_docker(m, why, kw, status, needle, caveat):
    f = one(m, build(**kw), "0.7.1", "runtime.docker")
    assert f.status == status and needle in f.message, (why, f)
    assert (caveat in f.caveat) if caveat else not f.caveat, (why, f.caveat)


def test_docker_network_preset_is_the_packages_test():
    assert build(pkgs=DOCKER, bins=DOCKER_BINS, files={D: PRETTY}).runtimes.docker_network_preset is True
    assert build(pkgs=DOCKER, bins=DOCKER_BINS, files={D: COMPACT}).runtimes.docker_network_preset is False
    assert build(pkgs=DOCKER, bins=DOCKER_BINS, files={D: None}).runtimes.docker_network_preset is False
    assert build(pkgs=DOCKER, bins=DOCKER_BINS).runtimes.docker_network_preset is None  # not read


CD = ("containerd",)
CONTAINERD_ROWS = [
    # <= 0.5.1: the matrix puts 1.5.11-1 in the workspace image (#544 is the inner runc,
    # coder/images#157): the host's newer containerd.io passes, the caveat says where the pin goes.
    ("0.5.1, host containerd.io 1.6.28: pin belongs in the image", dict(pkgs={"containerd.io": "1.6.28-1"}, bins=CD),
     "0.5.1", "pass", "containerd 1.6.28", "workspace image"),
    ("0.5.1, no containerd: the image still needs the pin", dict(pkgs={}, bins=()), "0.5.1", "pass", "not installed",
     "workspace image"),
    ("0.7.1, held at 1.5.11-1: not needed since 0.5.2, not harmful upstream",
     dict(pkgs={"containerd.io": ("1.5.11-1", "hold")}, bins=CD), "0.7.1", "pass", "does not need the 1.5.11-1 pin", False),
    ("0.7.1, newer containerd.io: nothing to say", dict(pkgs={"containerd.io": "1.7.22-1"}, bins=CD), "0.7.1", "pass",
     "containerd 1.7.22", False),
    ("no package database, no tool list", dict(pkgs=None, bins=None), "0.7.1", "unknown", "cannot tell", False),
    ("K8s node, containerd 2.0.5: the installer's containerd path (hostUsers: false)",
     dict(pkgs={"containerd.io": "2.0.5-1", "kubelet": "1.33.4-1.1"}, bins=CD + ("kubelet",), files=KUBELET),
     "0.7.1", "pass", "configure containerd 2.0.5 directly", False),
    ("K8s node, containerd 2.0.3 (userns bug range): CRI-O", dict(pkgs={"containerd.io": "2.0.3-1", "kubelet": "1.33.4-1.1"},
     bins=CD + ("kubelet",), files=KUBELET), "0.7.1", "pass", "containerd 2.0.3", "its own CRI-O"),
]


@pytest.mark.parametrize("why, kw, release, status, needle, caveat", CONTAINERD_ROWS, ids=[r[0][:40] for r in CONTAINERD_ROWS])
def test_containerd(m, why, kw, release, status, needle, caveat):
    f = one(m, build(**kw), release, "runtime.containerd")
    assert f.status == status and needle in f.message, (why, f)
    assert (caveat in f.caveat) if caveat else not f.caveat, (why, f.caveat)


def test_containerd_host_pin_warns_only_where_the_matrix_says_host(m):
    """A matrix entry with where: host judges the host's package (and the install pins it)."""
    host = with_pin(m.release("0.5.1"), where="host")
    newer = build(pkgs={"containerd.io": "1.6.28-1"}, bins=CD)
    f = one(m, newer, host, "runtime.containerd")
    assert f.status == "warn" and "needs on the host" in f.message and "nodecheck install does it" in f.remediation
    assert one(m, build(pkgs={"containerd.io": ("1.5.11-1", "hold")}, bins=CD), host, "runtime.containerd").status == "pass"
    assert one(m, newer, m.release("0.5.1"), "runtime.containerd").status == "pass"  # workspace-image: not the host's


K = ("kubelet",)
KUBE_ROWS = [
    ("no kubelet: not a K8s node", dict(pkgs={}, bins=(), files={"/var/lib/kubelet/config.yaml": None}), "0.7.1", "pass"),
    ("nothing readable: cannot tell", dict(pkgs=None, bins=None), "0.7.1", "unknown"),
    ("kubelet binary without a package version", dict(pkgs={}, bins=K, files=KUBELET), "0.7.1", "unknown"),
    ("1.33 is in 0.7.1's installer list (S install-k8s.md@v0.7.0)", dict(pkgs={"kubelet": "1.33.4-1.1"}, bins=K, files=KUBELET),
     "0.7.1", "pass"),
    ("1.30 is EOL for 0.7.x (S install-k8s.md@v0.7.0)", dict(pkgs={"kubelet": "1.30.2-1.1"}, bins=K, files=KUBELET),
     "0.7.1", "fail"),
]


@pytest.mark.parametrize("why, kw, release, status", KUBE_ROWS, ids=[r[0][:40] for r in KUBE_ROWS])
def test_kubernetes(m, why, kw, release, status):
    assert one(m, build(**kw), release, "kubernetes.version").status == status, why


TOOLS_ALL = ("rsync", "iptables", "modprobe", "jq", "fusermount", "fusermount3")
TOOLS_ROWS = [
    ("tool list unread", dict(pkgs={}, bins=None), "0.7.1", "unknown"),
    ("all present", dict(pkgs={}, bins=TOOLS_ALL), "0.7.1", "pass"),
    # from 0.7.0 sysbox-fs execs fusermount3 and the .deb pulls in fuse 2 only (#955): fail
    ("fusermount3 missing on 0.7.1", dict(pkgs={}, bins=tuple(t for t in TOOLS_ALL if t != "fusermount3")), "0.7.1", "fail"),
    # 0.6.7 needs fuse 2's fusermount (#448), which the package's fuse dependency brings: warn
    ("fusermount missing on 0.6.7", dict(pkgs={}, bins=tuple(t for t in TOOLS_ALL if t != "fusermount")), "0.6.7", "warn"),
    ("rsync missing: the package depends on it", dict(pkgs={}, bins=tuple(t for t in TOOLS_ALL if t != "rsync")), "0.7.1", "warn"),
]


@pytest.mark.parametrize("why, kw, release, status", TOOLS_ROWS, ids=[r[0][:40] for r in TOOLS_ROWS])
def test_host_tools(m, why, kw, release, status):
    assert one(m, build(**kw), release, "deps.host-tools").status == status, why
