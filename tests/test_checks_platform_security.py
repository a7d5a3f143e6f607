"""nodecheck/checks/platform.py, security.py, storage.py and gpu.py, one row per branch, on the
small facts builder (tests/checkfacts.py). Each row argues its status from upstream:
S = nestybox/sysbox docs at the tag, C = Coder's CVM docs, #N = a sysbox issue."""

from __future__ import annotations

import pytest

from checkfacts import build, one
from nodecheck.matrix import load

U2404 = 'ID=ubuntu\nVERSION_ID="24.04"\n'
D12 = 'ID=debian\nVERSION_ID="12"\n'
MINT = 'ID=linuxmint\nID_LIKE="ubuntu debian"\nVERSION_ID="21.3"\n'
FEDORA = 'ID=fedora\nVERSION_ID="40"\n'
FLATCAR = 'ID=flatcar\nVERSION_ID="3815.2.0"\n'


def mi(*rows: tuple[str, str, str]) -> str:
    """mountinfo lines for (mountpoint, fstype, source)."""
    return "".join(f"{20 + i} 1 0:{i} / {mp} rw,relatime shared:1 - {fs} {src} rw\n" for i, (mp, fs, src) in enumerate(rows))


@pytest.fixture(scope="module")
def m():
    return load()


ROWS = [
    # arch (S arch-compat.md: amd64 always, arm64 from 0.5.0)
    ("arch", "unknown arch", dict(), "0.7.1", "unknown"),
    ("arch", "x86_64", dict(arch="x86_64"), "0.7.1", "pass"),
    ("arch", "arm64 on 0.7.1", dict(arch="aarch64"), "0.7.1", "pass"),
    ("arch", "arm64 before 0.5.0", dict(arch="aarch64"), "0.4.1", "fail"),
    ("arch", "armhf never", dict(arch="armv7l"), "0.7.1", "fail"),
    # distro (S distro-compat.md at the tag)
    ("distro", "no os-release", dict(), "0.7.1", "unknown"),
    ("distro", "Ubuntu 24.04 listed for 0.7.1", dict(os_release=U2404), "0.7.1", "pass"),
    ("distro", "Debian 12 not in 0.7.0's list: untested, the .deb installs", dict(os_release=D12), "0.7.1", "warn"),
    ("distro", "Mint: unlisted, Debian family", dict(os_release=MINT), "0.7.1", "warn"),
    ("distro", "Fedora on 0.4.0: work in progress (source build)", dict(os_release='ID=fedora\nVERSION_ID="34"\n'),
     "0.4.0", "warn"),
    ("distro", "Flatcar: Sysbox-EE only", dict(os_release=FLATCAR), "0.7.1", "fail"),
    # cgroups (CHANGELOG 0.4.0: v1 and v2)
    ("cgroups", "no mount table", dict(), "0.7.1", "unknown"),
    ("cgroups", "v2", dict(files={"mountinfo": mi(("/sys/fs/cgroup", "cgroup2", "cgroup2"))}), "0.7.1", "pass"),
    ("cgroups", "v1", dict(files={"mountinfo": mi(("/sys/fs/cgroup/memory", "cgroup", "cgroup"))}), "0.7.1", "pass"),
    # selinux (S security.md, C: SELinux-enabled hosts unsupported)
    ("selinux", "enforcing", dict(files={"/sys/fs/selinux/enforce": "1\n"}), "0.7.1", "fail"),
    ("selinux", "permissive", dict(files={"/sys/fs/selinux/enforce": "0\n"}), "0.7.1", "warn"),
    ("selinux", "no selinuxfs at all", dict(files={"/sys/fs/selinux/enforce": None, "/selinux/enforce": None,
                                                   "/proc/filesystems": "nodev\tproc\n\text4\n", "mountinfo": mi(("/", "ext4", "/dev/sda1"))}),
     "0.7.1", "pass"),
    # apparmor.fusermount3 (#947, #1005)
    ("apparmor.fusermount3", "AppArmor disabled", dict(files={"/sys/module/apparmor/parameters/enabled": "N\n"}), "0.7.1", "pass"),
    ("apparmor.fusermount3", "no profile", dict(files={"/sys/module/apparmor/parameters/enabled": "Y\n",
                                                       "/etc/apparmor.d/fusermount3": None}), "0.7.1", "pass"),
    ("apparmor.fusermount3", "enforced profile without the sysboxfs rule",
     dict(files={"/sys/module/apparmor/parameters/enabled": "Y\n", "/etc/apparmor.d/fusermount3": "profile fusermount3 /usr/bin/fusermount3 {\n}\n",
                 "/etc/apparmor.d/disable/fusermount3": None}), "0.7.1", "fail"),
    ("apparmor.fusermount3", "the profile allows /var/lib/sysboxfs",
     dict(files={"/sys/module/apparmor/parameters/enabled": "Y\n",
                 "/etc/apparmor.d/fusermount3": "profile fusermount3 {\n  mount fstype=fuse.* -> /var/lib/sysboxfs/**,\n}\n",
                 "/etc/apparmor.d/disable/fusermount3": None}), "0.7.1", "pass"),
    ("apparmor.fusermount3", "disabled by the aa-disable marker",
     dict(files={"/sys/module/apparmor/parameters/enabled": "Y\n", "/etc/apparmor.d/fusermount3": "profile fusermount3 {\n}\n",
                 "/etc/apparmor.d/disable/fusermount3": ""}), "0.7.1", "pass"),
    # userns (S troubleshoot.md)
    ("userns", "max_user_namespaces = 0", dict(files={"/proc/sys/user/max_user_namespaces": "0\n"}), "0.7.1", "fail"),
    ("userns", "CONFIG_USER_NS not set", dict(files={"kconfig:/boot/config": "# CONFIG_USER_NS is not set\nCONFIG_X=y\n"}),
     "0.7.1", "fail"),
    ("userns", "unprivileged_userns_clone = 0: the package sets it", dict(files={
        "/proc/sys/user/max_user_namespaces": "15000\n", "/proc/sys/kernel/unprivileged_userns_clone": "0\n"}), "0.7.1", "warn"),
    ("userns", "nothing readable", dict(), "0.7.1", "unknown"),
    ("userns", "available", dict(files={"/proc/sys/user/max_user_namespaces": "15000\n",
                                        "/proc/sys/kernel/unprivileged_userns_clone": "1\n"}), "0.7.1", "pass"),
    # storage.data-root (sysbox-mgr utils.go, sysbox-libs idmap, S troubleshoot.md, #586)
    ("storage.data-root", "no mount table", dict(), "0.7.1", "unknown"),
    ("storage.data-root", "ext4", dict(kernel="6.8.0-1", files={"mountinfo": mi(("/", "ext4", "/dev/sda1"))}), "0.7.1", "pass"),
    ("storage.data-root", "/var/lib on NFS", dict(kernel="6.8.0-1", files={"mountinfo": mi(("/", "ext4", "/dev/sda1"),
                                                                                             ("/var/lib", "nfs4", "srv:/x"))}),
     "0.7.1", "fail"),
    ("storage.data-root", "xfs: blamed in #586", dict(kernel="6.8.0-1", files={"mountinfo": mi(("/", "xfs", "/dev/sda1"))}),
     "0.7.1", "warn"),
    # gpu.nvidia (C: GPUs in CVMs are beta, bare metal only)
    ("gpu.nvidia", "PCI unreadable", dict(), "0.7.1", "unknown"),
    ("gpu.nvidia", "no NVIDIA device", dict(files={"pci": ""}), "0.7.1", "pass"),
]


@pytest.mark.parametrize("cid, why, kw, release, status", ROWS, ids=[f"{r[0]}:{r[1][:30]}" for r in ROWS])
def test_row(m, cid, why, kw, release, status):
    f = one(m, build(**kw), release, cid)
    assert f.status == status, (why, f)
    if status == "fail":
        assert f.remediation, f
