"""Table-driven verdicts over real-distro fixture trees (tests/fixtures/hosts), target = the
newest release in the matrix (0.7.1) unless a row names another.

Each expectation is argued from the upstream source, not from what the code prints:
  S  = nestybox/sysbox docs at the tag (distro-compat.md, design.md, security.md)
  P  = nestybox/sysbox-pkgr (.deb preinst, sysbox-deploy-k8s.sh)
  C  = Coder's CVM docs (shared/reference/coder-docs)
  #N = a nestybox/sysbox issue or PR

fusermount3: from 0.7.0 sysbox-fs needs fuse 3's fusermount3 (#955, #1005) and the .deb depends on
fuse 2 only, so a tree whose only helper is fuse 2's fusermount (older Ubuntu/Debian, EL7) fails
deps.host-tools for 0.7.x; 0.6.7 (fusermount, #448) is then the newest release it can run.
"""

import json
from pathlib import Path

import jsonschema
import pytest

from nodecheck import pipeline
from nodecheck.matrix import load
from nodecheck.transport import local

HOSTS = Path(__file__).parent / "fixtures" / "hosts"
SCHEMA = json.loads((Path(__file__).parents[1] / "nodecheck/schemas/report.schema.json").read_text())

# (profile, target, verdict, fail ids, recommended)
CASES = [
    # Ubuntu 18.04 GA kernel 4.15: below the 5.3 Ubuntu minimum (P preinst / S distro-compat 0.7.0),
    # and below 5.12 with no shiftfs in its config -> kernel.version, kernel.idmap, shiftfs fail;
    # fuse 2 only -> deps.host-tools fails for 0.7.1.
    ("ubuntu-18.04-4.15", None, "fail", {"kernel.version", "kernel.idmap", "shiftfs", "deps.host-tools"}, None),
    # 18.04 with the 5.4 HWE kernel: >= 5.3; < 5.12 but Ubuntu kernels build shiftfs
    # (CONFIG_SHIFT_FS=m), so shiftfs covers UID shifting (S design.md); but fuse 2 only -> 0.7.1
    # fails deps.host-tools, 0.6.7 passes.
    ("ubuntu-18.04-5.4-hwe", None, "fail", {"deps.host-tools"}, "0.6.7"),
    ("ubuntu-18.04-5.4-hwe", "0.6.7", "pass", set(), "0.6.7"),
    # 20.04, 5.4 + shiftfs: supported; containerd.io is held at 1.5.11-1, which 0.7.1 does not
    # need (fixed in 0.5.2, #544) and nothing upstream says breaks it -> no warning for the pin;
    # fuse 2 only -> 0.7.1 fails deps.host-tools, 0.6.7 passes.
    ("ubuntu-20.04", None, "fail", {"deps.host-tools"}, "0.6.7"),
    ("ubuntu-20.04", "0.6.7", "pass", set(), "0.6.7"),
    # 22.04 node running kubelet 1.30: S install-k8s.md@v0.7.0 lists 1.28-1.31 as EOL, so the
    # 0.7.x installer refuses it; 0.6.7's installer accepts 1.29-1.32 (P 2d5e795f) -> 0.6.7.
    # The tree has fuse3 only: 0.6.7's sysbox-fs execs fuse 2's fusermount (#448), which only the
    # package's `fuse` dependency would bring -> warn at 0.6.7.
    ("ubuntu-22.04", None, "fail", {"kubernetes.version"}, "0.6.7"),
    ("ubuntu-22.04", "0.6.7", "warn", set(), "0.6.7"),
    ("ubuntu-22.04-arm64", None, "pass", set(), "0.7.1"),  # arm64 since 0.5.0 (S arch-compat.md)
    ("ubuntu-24.04", None, "pass", set(), "0.7.1"),  # Noble, kernel 6.8 >= 6.8 (S distro-compat@v0.7.0)
    # kernel 6.8 >= 6.5 needs Sysbox >= 0.6.4 (S CHANGELOG 0.6.4): scoring 0.6.3 must fail.
    ("ubuntu-24.04", "0.6.3", "fail", {"known-issue.kernel-6.5-needs-0.6.4"}, "0.7.1"),
    # 25.04: not in S's distro list (warn) and its AppArmor fusermount3 profile blocks sysbox-fs
    # (sysbox#947) -> fail.
    ("ubuntu-25.04", None, "fail", {"apparmor.fusermount3"}, None),
    # Debian 10 GA kernel 4.19 < 5.5 (P preinst) and < 5.12 without shiftfs.
    ("debian-10-4.19", None, "fail", {"kernel.version", "kernel.idmap", "shiftfs", "deps.host-tools"}, None),
    # Debian 10 + 5.10 backports and Debian 11 (5.10): >= 5.5, but < 5.12 needs shiftfs, which
    # Debian only gets from shiftfs-dkms (S distro-compat: "if kernel < 5.12") -> fail until built.
    # Both have fuse 2 only -> deps.host-tools fails for 0.7.1 too.
    ("debian-10-5.10-bpo", None, "fail", {"kernel.idmap", "shiftfs", "deps.host-tools"}, None),
    ("debian-11", None, "fail", {"kernel.idmap", "shiftfs", "deps.host-tools"}, None),
    # Debian 12 (6.1): kernel fine; S distro-compat@v0.7.0 lists only Buster/Bullseye -> warn.
    ("debian-12", None, "warn", set(), "0.7.1"),
    ("debian-12-armhf", None, "fail", {"arch"}, None),  # only amd64/arm64 (P is_supported_arch)
    # RHEL family: SELinux enforcing is unsupported (S security.md, C) -> fail.
    ("rocky-8-enforcing", None, "fail", {"selinux", "kernel.version", "kernel.idmap", "shiftfs"}, None),
    ("rocky-9-enforcing", None, "fail", {"selinux"}, None),
    ("selinux-eacces", None, "fail", {"selinux"}, None),  # as root the enforce file is readable
    # Rocky 9 permissive: SELinux only warns; the tree has no rpm database, so container
    # runtime versions are unknown -> unknown (never guessed).
    ("rocky-9-permissive", None, "unknown", set(), None),
    ("amzn-2023", None, "unknown", set(), None),  # 6.1 kernel fine; runtimes unknown (no rpm db)
    # Amazon Linux 2 (4.14) and CentOS 7 (3.10): below every minimum and no shiftfs on RHEL-likes;
    # CentOS 7 also ships user.max_user_namespaces = 0 and SELinux enforcing. Both have fuse 2 only.
    ("amzn-2", None, "fail", {"kernel.version", "kernel.idmap", "shiftfs", "deps.host-tools"}, None),
    ("centos-7", None, "fail", {"kernel.version", "kernel.idmap", "shiftfs", "selinux", "userns", "deps.host-tools"}, None),
    ("fedora-40", None, "fail", {"selinux"}, None),  # Fedora defaults to enforcing
    # Sysbox-EE only (S distro-compat); the tree has no FUSE helper at all.
    ("flatcar", None, "fail", {"distro", "deps.host-tools"}, None),
    # GPU node: GPUs in CVMs are beta, bare metal only (C) -> warn; kubelet 1.30 is EOL for 0.7.x.
    ("gpu-ubuntu-22.04", None, "fail", {"kubernetes.version"}, "0.6.7"),
    # /var/lib on NFS: cannot be ID-mapped, unsupported for CVMs (C known issues) -> fail for all.
    ("nfs-var-lib", None, "fail", {"storage.data-root"}, None),
    # Docker as a snap: "Unknown runtime specified sysbox-runc" (S troubleshoot.md) -> fail.
    ("docker-snap", None, "fail", {"runtime.docker"}, None),
]


@pytest.fixture(scope="module")
def matrix():
    return load()


@pytest.fixture(scope="module")
def outputs():
    cache = {}

    def get(profile):
        if profile not in cache:
            run = local.run(str(HOSTS / profile / "root"))
            assert run.exit_status == 0, run.stderr
            cache[profile] = run.stdout
        return cache[profile]
    return get


@pytest.mark.parametrize("profile,target,verdict,fails,recommended", CASES,
                         ids=[f"{c[0]}@{c[1] or 'newest'}" for c in CASES])
def test_fixture_verdict(matrix, outputs, profile, target, verdict, fails, recommended):
    node = pipeline.node_from_output(profile, outputs(profile), matrix=matrix, target=target)
    got_fails = {c["id"] for c in node["checks"] if c["status"] == "fail"}
    assert node["verdict"] == verdict, [(c["id"], c["status"], c["message"]) for c in node["checks"] if c["status"] != "pass"]
    assert got_fails == fails
    assert node["sysbox"]["recommended"] == recommended
    report = pipeline.build_report([node], matrix=matrix, target=target)
    jsonschema.validate(report, SCHEMA)
    for c in node["checks"]:
        if c["status"] == "fail":
            assert c["remediation"], c  # every failure says how to fix it
            assert c["source"].startswith("https://"), c


def test_gpu_node_warns_and_says_bare_metal(matrix, outputs):
    node = pipeline.node_from_output("gpu", outputs("gpu-ubuntu-22.04"), matrix=matrix, target="0.6.7")
    gpu = next(c for c in node["checks"] if c["id"] == "gpu.nvidia")
    assert gpu["status"] == "warn" and "8 NVIDIA GPU" in gpu["message"] and "bare metal" in gpu["message"]


def test_ignore_demotes_fail_to_warn(matrix, outputs):
    out = outputs("rocky-9-enforcing")
    node = pipeline.node_from_output("r", out, matrix=matrix, ignore=["selinux"])
    sel = next(c for c in node["checks"] if c["id"] == "selinux")
    assert sel["status"] == "warn" and sel["ignored"]
    node = pipeline.node_from_output("r", outputs("debian-10-4.19"), matrix=matrix, ignore=["all"])
    assert node["verdict"] == "warn" and not [c for c in node["checks"] if c["status"] == "fail"]


def test_methods_advisor(matrix, outputs):
    m = pipeline.node_from_output("c", outputs("centos-7"), matrix=matrix)["methods"]
    assert m["sysbox-runc"]["status"] == "fail" and m["envbox"]["status"] == "fail"
    assert m["rootless-podman"]["status"] == "fail" and "SELinux" in m["rootless-podman"]["reason"]
    assert m["privileged-sidecar"]["status"] == "warn" and "root on the host" in m["privileged-sidecar"]["reason"]
    m = pipeline.node_from_output("u", outputs("ubuntu-24.04"), matrix=matrix)["methods"]
    assert m["sysbox-runc"]["status"] == "pass" and m["rootless-podman"]["status"] == "pass"
    assert m["envbox"]["status"] == "warn" and "privileged" in m["envbox"]["reason"]


def test_compatible_releases_respect_arch_and_kernel(matrix, outputs):
    # arm64 packages exist from 0.5.0 (S arch-compat.md): no 0.4.x for an arm64 node.
    node = pipeline.node_from_output("a", outputs("ubuntu-22.04-arm64"), matrix=matrix)
    assert "0.4.1" not in node["sysbox"]["compatible_releases"]
    # kernel 6.8 needs >= 0.6.4
    node = pipeline.node_from_output("n", outputs("ubuntu-24.04"), matrix=matrix)
    assert min(node["sysbox"]["compatible_releases"], key=lambda v: tuple(map(int, v.split(".")))) >= "0.6.4"


def test_xfs_data_root_warns_with_its_source(matrix, outputs):
    # Rocky 9 installs on XFS: the Sysbox docs name ext4/btrfs only and the maintainer blamed an
    # XFS data root in #586 (and #818) -> warn, citing #586 (it passed as "assumed ok" before).
    node = pipeline.node_from_output("r", outputs("rocky-9-enforcing"), matrix=matrix)
    st = next(c for c in node["checks"] if c["id"] == "storage.data-root")
    assert st["status"] == "warn" and "xfs" in st["message"]
    assert st["source"] == "https://github.com/nestybox/sysbox/issues/586"
