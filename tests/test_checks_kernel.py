"""nodecheck/checks/kernel.py, one row per branch, on the small facts builder (tests/checkfacts.py).
Thresholds argued from upstream: S distro-compat.md / design.md at the tag, P preinst."""

from __future__ import annotations

import pytest

from checkfacts import build, one
from nodecheck.matrix import load

U2204 = 'ID=ubuntu\nVERSION_ID="22.04"\n'
U1804 = 'ID=ubuntu\nVERSION_ID="18.04"\n'
D10 = 'ID=debian\nVERSION_ID="10"\n'
ARCH = "ID=arch\n"
SHIFTFS = {"shiftfs.ko": "/lib/modules/x/kernel/fs/shiftfs.ko\n", "/proc/modules": "", "modules.builtin": ""}
NO_SHIFTFS = {"shiftfs.ko": "", "/proc/modules": "", "modules.builtin": ""}
REMAP = {"/etc/docker/daemon.json": '{"userns-remap": "default"}'}


@pytest.fixture(scope="module")
def m():
    return load()


VERSION_ROWS = [
    ("no kernel release", dict(os_release=U2204), "0.7.1", "unknown"),
    ("22.04 on 5.15 >= its minimum", dict(os_release=U2204, kernel="5.15.0-100-generic"), "0.7.1", "pass"),
    ("18.04 GA 4.15 < 5.3 (P preinst, S distro-compat)", dict(os_release=U1804, kernel="4.15.0-213-generic"), "0.7.1", "fail"),
    ("Debian 10 GA 4.19 < 5.5", dict(os_release=D10, kernel="4.19.0-27-amd64"), "0.7.1", "fail"),
    ("unlisted distro on 6.1: the installer's generic minimum", dict(os_release=ARCH, kernel="6.1.0"), "0.7.1", "pass"),
    ("unlisted distro on 5.4 < the generic non-Ubuntu 5.5", dict(os_release=ARCH, kernel="5.4.0"), "0.7.1", "fail"),
    ("no distro at all: generic minimum", dict(kernel="6.1.0"), "0.7.1", "pass"),
]


@pytest.mark.parametrize("why, kw, release, status", VERSION_ROWS, ids=[r[0][:40] for r in VERSION_ROWS])
def test_version(m, why, kw, release, status):
    f = one(m, build(**kw), release, "kernel.version")
    assert f.status == status, (why, f)
    if status == "fail":
        assert f.remediation and f.source.startswith("https://"), f


def test_version_fix_names_the_distros_kernel(m):
    assert "hwe-18.04" in one(m, build(os_release=U1804, kernel="4.15.0-1"), "0.7.1", "kernel.version").remediation
    assert "buster-backports" in one(m, build(os_release=D10, kernel="4.19.0-1"), "0.7.1", "kernel.version").remediation


IDMAP_ROWS = [
    ("no kernel release", dict(), "0.7.1", "unknown"),
    ("0.4.1 has no ID-mapped mounts (S design.md@v0.4.1)", dict(kernel="6.8.0-45-generic"), "0.4.1", "pass"),
    (">= 5.19 with 0.6.1+: ID-mapped rootfs too", dict(kernel="6.8.0-45-generic"), "0.7.1", "pass"),
    ("5.15 + shiftfs: bind mounts ID-mapped, shiftfs for the rootfs", dict(kernel="5.15.0-1", files=SHIFTFS), "0.7.1", "pass"),
    ("5.15 without shiftfs: rootfs chown at start", dict(kernel="5.15.0-1", files=NO_SHIFTFS), "0.7.1", "warn"),
    ("5.4 + shiftfs: shiftfs does the shifting", dict(kernel="5.4.0-190-generic", files=SHIFTFS), "0.7.1", "pass"),
    ("5.4 without shiftfs: nobody:nogroup bind mounts", dict(kernel="5.4.0-190-generic", files=NO_SHIFTFS), "0.7.1", "fail"),
    ("5.4, shiftfs unknown (no module listing)", dict(kernel="5.4.0-190-generic"), "0.7.1", "unknown"),
]


@pytest.mark.parametrize("why, kw, release, status", IDMAP_ROWS, ids=[r[0][:40] for r in IDMAP_ROWS])
def test_idmap(m, why, kw, release, status):
    assert one(m, build(**kw), release, "kernel.idmap").status == status, why


SHIFTFS_ROWS = [
    ("0.4.1 needs shiftfs or userns-remap on every kernel: neither", dict(kernel="6.8.0-1", files=NO_SHIFTFS), "0.4.1", "fail"),
    ("0.4.1 with Docker userns-remap", dict(kernel="6.8.0-1", pkgs={}, bins=(), files={**NO_SHIFTFS, **REMAP}), "0.4.1", "pass"),
    ("0.4.1, shiftfs unknown, no remap", dict(kernel="6.8.0-1"), "0.4.1", "unknown"),
    ("0.7.1 without a kernel release", dict(), "0.7.1", "unknown"),
    ("0.7.1 on 6.8: not required", dict(kernel="6.8.0-45-generic", files=NO_SHIFTFS), "0.7.1", "pass"),
    ("0.7.1 on 5.4 with shiftfs", dict(kernel="5.4.0-1", files=SHIFTFS), "0.7.1", "pass"),
    ("0.7.1 on 5.4 without", dict(kernel="5.4.0-1", files=NO_SHIFTFS), "0.7.1", "fail"),
    ("0.7.1 on 5.4, unknown", dict(kernel="5.4.0-1"), "0.7.1", "unknown"),
]


@pytest.mark.parametrize("why, kw, release, status", SHIFTFS_ROWS, ids=[r[0][:40] for r in SHIFTFS_ROWS])
def test_shiftfs(m, why, kw, release, status):
    assert one(m, build(**kw), release, "shiftfs").status == status, why
