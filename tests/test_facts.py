"""Fact parsers on real samples (sources named per sample), one subject at a time.

The parsers take `Sections`; `sections_of` builds them from (name, status, text) the way
the probe prints them, so these tests also exercise the section format.
"""

import gzip

import pytest

from nodecheck import sections
from nodecheck.facts import apparmor, cgroups, distro, gather, gpu, kconfig, kernel, modules, mounts, packages, platform, runtimes, selinux, userns

B = "@@NODECHECK-test@@"


def sections_of(**named) -> sections.Sections:
    """sections_of(**{"/etc/os-release": "ID=..."}) or a (status, text) tuple per name."""
    out = [f"{B} PROBE 1 root=/"]
    for name, val in named.items():
        status, text = val if isinstance(val, tuple) else ("ok", val)
        out.append(f"{B} BEGIN {name} {status}")
        if status == "ok":
            out.append(text)
        else:
            out.append("")
        out.append(f"{B} END {name} 0 256")
    out.append(f"{B} DONE")
    return sections.parse("\n".join(out) + "\n")


def S(**kw):
    return sections_of(**{k.replace("__", "/").replace("_DOT_", "."): v for k, v in kw.items()})


# --- distro: real os-release files (Ubuntu 22.04 and Rocky 9 as shipped; Amazon Linux 2 from the distro sdist)
UBUNTU_2204 = '''PRETTY_NAME="Ubuntu 22.04.3 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.3 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
UBUNTU_CODENAME=jammy
'''
ROCKY_9 = '''NAME="Rocky Linux"
VERSION="9.3 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"
'''
AMZN_2 = '''NAME="Amazon Linux"
VERSION="2"
ID="amzn"
ID_LIKE="centos rhel fedora"
VERSION_ID="2"
PRETTY_NAME="Amazon Linux 2"
'''


@pytest.mark.parametrize("text,id_,ver,like", [
    (UBUNTU_2204, "ubuntu", "22.04", ["debian"]),
    (ROCKY_9, "rocky", "9.3", ["rhel", "centos", "fedora"]),
    (AMZN_2, "amzn", "2", ["centos", "rhel", "fedora"]),
])
def test_distro_os_release(text, id_, ver, like):
    d = distro.parse(sections_of(**{"/etc/os-release": text}))
    assert (d.id, d.version_id, d.like) == (id_, ver, like)


def test_distro_fallback_to_usr_lib_and_redhat_release():
    d = distro.parse(sections_of(**{"/etc/os-release": ("ENOENT", ""), "/usr/lib/os-release": UBUNTU_2204}))
    assert d.id == "ubuntu"
    # CentOS 7 ships centos-release beside redhat-release; with os-release unreadable the
    # distro library reads the release file (redhat-release alone would say "rhel").
    rel = "CentOS Linux release 7.9.2009 (Core)\n"
    d = distro.parse(sections_of(**{"/etc/os-release": ("EACCES", ""), "/etc/centos-release": rel, "/etc/redhat-release": rel}))
    assert d.id == "centos" and d.version_id.startswith("7")


def test_distro_unreadable_is_unknown_with_reason():
    d = distro.parse(sections_of(**{"/etc/os-release": ("EACCES", ""), "/usr/lib/os-release": ("ENOENT", "")}))
    assert d.id is None and "permission denied" in d.reason


def test_distro_ignores_unsafe_section_names():
    d = distro.parse(sections_of(**{"/etc/../../tmp/x-release": "ID=evil\n", "/etc/os-release": UBUNTU_2204}))
    assert d.id == "ubuntu"


# --- kernel
def test_kernel_prefers_root_proc_over_uname():
    k = kernel.parse(S(**{"cmd:uname-r": "6.1.0-18-amd64", "/proc/sys/kernel/osrelease": "5.15.0-91-generic\n",
                          "cmd:uname-m": "x86_64", "/proc/sys/kernel/arch": ("ENOENT", "")}))
    assert k.release == "5.15.0-91-generic" and k.arch == "amd64" and k.machine == "x86_64"


@pytest.mark.parametrize("machine,arch", [("aarch64", "arm64"), ("armv7l", "armhf"), ("x86_64", "amd64"), ("s390x", "s390x"), ("mips", "mips")])
def test_kernel_arch_names(machine, arch):
    assert kernel.parse(S(**{"cmd:uname-r": "6.1.0", "cmd:uname-m": machine})).arch == arch


def test_kernel_unknown():
    k = kernel.parse(S(**{"cmd:uname-r": ("ENOCMD", ""), "/proc/sys/kernel/osrelease": ("EACCES", "")}))
    assert k.release is None and "permission denied" in k.reason


# --- kconfig: a slice of Debian 12's real /boot/config-6.1.0-18-amd64
DEBIAN_CONFIG = """CONFIG_USER_NS=y
CONFIG_OVERLAY_FS=m
CONFIG_FUSE_FS=y
CONFIG_SECURITY_SELINUX=y
CONFIG_DEFAULT_SECURITY_APPARMOR=y
CONFIG_LSM="landlock,lockdown,yama,loadpin,safesetid,integrity,apparmor,selinux,smack,tomoyo,bpf"
"""


def test_kconfig_tristate():
    k = kconfig.parse(sections_of(**{"kconfig:/proc/config.gz": ("ENOENT", ""), "kconfig:/boot/config-6.1.0-18-amd64": DEBIAN_CONFIG}))
    assert k.source == "/boot/config-6.1.0-18-amd64"
    assert k.get("USER_NS") == "y" and k.get("CONFIG_OVERLAY_FS") == "m" and k.get("SHIFT_FS") == "n"
    assert k.options["LSM"].startswith('"landlock')


def test_kconfig_not_found_is_unknown_not_absent():
    k = kconfig.parse(sections_of(**{"kconfig:/proc/config.gz": ("ENOENT", ""), "kconfig:/boot/config-x": ("EACCES", "")}))
    assert not k.known and k.get("USER_NS") is None
    assert "/boot/config-x" in k.reason


def test_kconfig_parse_real_gz_roundtrip():
    assert kconfig.parse_config(gzip.decompress(gzip.compress(DEBIAN_CONFIG.encode())).decode())["FUSE_FS"] == "y"


# --- modules (/proc/modules lines from an Ubuntu 22.04 host)
PROC_MODULES = """overlay 151552 12 - Live 0x0000000000000000
shiftfs 32768 0 - Live 0x0000000000000000
nvidia_uvm 1437696 0 - Live 0x0000000000000000 (POE)
nvidia 56680448 1 nvidia_uvm, Live 0x0000000000000000 (POE)
"""


def test_modules():
    m = modules.parse(S(**{"/proc/modules": PROC_MODULES, "modules_DOT_builtin": "kernel/fs/fuse/fuse.ko\nkernel/fs/ext4/ext4.ko\n",
                           "shiftfs_DOT_ko": ""}))
    assert m.is_loaded("shiftfs") and m.is_loaded("nvidia-uvm") and m.is_builtin("fuse")
    assert m.shiftfs_available is True


def test_modules_shiftfs_unknown_vs_absent():
    assert modules.parse(S(**{"shiftfs_DOT_ko": ("ENOENT", "")})).shiftfs_available is False
    assert modules.parse(S(**{"shiftfs_DOT_ko": ("EACCES", "")})).shiftfs_available is None
    assert modules.parse(S(**{"shiftfs_DOT_ko": "/lib/modules/5.4.0/updates/dkms/shiftfs.ko\n"})).shiftfs_available is True


# --- mounts (mountinfo lines as on an Ubuntu 22.04 node with /var/lib on NFS)
MOUNTINFO = r"""22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/mapper/vg-root rw
25 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
40 22 0:45 / /var/lib rw,relatime shared:30 - nfs4 10.0.0.5:/export/varlib rw,vers=4.2
41 40 0:46 / /var/lib/docker rw,relatime shared:31 - ext4 /dev/sdb1 rw
42 22 0:47 / /mnt/with\040space rw - tmpfs tmpfs rw
"""


def test_mounts_longest_prefix():
    m = mounts.parse(S(mountinfo=MOUNTINFO))
    assert m.data["var_lib"].fstype == "nfs4"
    assert m.data["sysbox"].fstype == "nfs4"
    assert m.data["docker"].fstype == "ext4"
    assert m.fs_of("/var/lib2").fstype == "ext4"  # not a prefix match on /var/lib
    assert m.fs_of("/mnt/with space/x").fstype == "tmpfs"


def test_mounts_unreadable():
    m = mounts.parse(S(mountinfo=("EACCES", "")))
    assert m.mounts is None and "permission denied" in m.reason


# --- SELinux
@pytest.mark.parametrize("named,mode", [
    ({"/sys/fs/selinux/enforce": "1"}, "enforcing"),
    ({"/sys/fs/selinux/enforce": "0"}, "permissive"),
    ({"/sys/fs/selinux/enforce": ("EACCES", "")}, "unknown"),
    ({"/sys/fs/selinux/enforce": ("ENOENT", ""), "/proc/filesystems": "nodev\tsysfs\nnodev\tproc\n\text4\n"}, "disabled"),
    ({"/sys/fs/selinux/enforce": ("ENOENT", ""), "/proc/filesystems": "nodev\tselinuxfs\n", "mountinfo": MOUNTINFO}, "disabled"),
    ({"/sys/fs/selinux/enforce": ("ENOENT", ""), "/proc/filesystems": "nodev\tselinuxfs\n", "mountinfo": ("EACCES", "")}, "unknown"),
    ({"/sys/fs/selinux/enforce": ("ENOENT", ""), "/proc/filesystems": ("EACCES", ""), "mountinfo": ("EACCES", "")}, "unknown"),
])
def test_selinux_modes(named, mode):
    assert selinux.parse(sections_of(**named)).mode == mode


def test_selinux_config_and_cmdline():
    cfg = "# This file controls the state of SELinux\nSELINUX=enforcing\nSELINUXTYPE=targeted\n"
    f = selinux.parse(sections_of(**{"/sys/fs/selinux/enforce": "0", "/etc/selinux/config": cfg,
                                     "/proc/cmdline": "BOOT_IMAGE=/vmlinuz enforcing=0 quiet"}))
    assert (f.mode, f.config_mode, f.config_type, f.cmdline) == ("permissive", "enforcing", "targeted", "enforcing=0")


# --- AppArmor (Ubuntu 25.04's /etc/apparmor.d/fusermount3, abridged, and the sysbox#947 fix)
FUSERMOUNT3 = """abi <abi/4.0>,
include <tunables/global>
profile fusermount3 /usr/bin/fusermount3 {
  mount fstype=@{fuse_types} options=(nosuid,nodev) -> @{HOME}/**/,
  umount @{HOME}/**/,
}
"""


def test_apparmor():
    a = apparmor.parse(S(**{"/sys/module/apparmor/parameters/enabled": "Y\n", "/sys/kernel/security/lsm": "lockdown,capability,landlock,yama,apparmor",
                            "apparmorfs": "", "/etc/apparmor.d/fusermount3": FUSERMOUNT3}))
    assert a.enabled and a.lsms[-1] == "apparmor" and a.securityfs and a.fusermount3_profile
    assert a.fusermount3_allows_sysbox is False
    fixed = FUSERMOUNT3.replace("}", "  mount fstype=@{fuse_types} options=(nosuid,nodev) -> /var/lib/sysboxfs/**/,\n}")
    assert apparmor.parse(S(**{"/etc/apparmor.d/fusermount3": fixed})).fusermount3_allows_sysbox is True


def test_apparmor_unknown_vs_off():
    assert apparmor.parse(S(**{"/sys/module/apparmor/parameters/enabled": ("ENOENT", "")})).enabled is False
    assert apparmor.parse(S(**{"/sys/module/apparmor/parameters/enabled": ("EACCES", "")})).enabled is None


# --- userns, cgroups
def test_userns():
    u = userns.parse(S(**{"/proc/sys/kernel/unprivileged_userns_clone": "0\n", "/proc/sys/user/max_user_namespaces": "63370\n"}))
    assert (u.unprivileged_userns_clone, u.clone_sysctl_exists, u.max_user_namespaces) == (0, True, 63370)
    u = userns.parse(S(**{"/proc/sys/kernel/unprivileged_userns_clone": ("ENOENT", ""), "/proc/sys/user/max_user_namespaces": "0\n"}))
    assert u.clone_sysctl_exists is False and u.max_user_namespaces == 0


V1_MOUNTINFO = """22 1 8:1 / / rw - ext4 /dev/sda1 rw
30 25 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
32 30 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
"""
PROC_CGROUPS = "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t2\t1\t1\nmemory\t5\t80\t1\nrdma\t0\t1\t0\n"


def test_cgroups():
    c = cgroups.parse(S(mountinfo=MOUNTINFO, **{"/sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory pids"}))
    assert c.version == 2 and "memory" in c.controllers
    c = cgroups.parse(S(mountinfo=V1_MOUNTINFO, **{"/proc/cgroups": PROC_CGROUPS}))
    assert c.version == 1 and c.hybrid and c.controllers == ["cpuset", "memory"]
    assert cgroups.parse(S(mountinfo=("EACCES", ""))).version is None


# --- GPU: PCI lines as the probe prints them; IDs from a DGX A100 (A100 0x20b5, NVSwitch 0x1af1)
PCI = """0000:00:00.0 0x8086 0x060000 0x09a2 - 0
0000:07:00.0 0x10de 0x030200 0x20b5 nvidia 0
0000:0f:00.0 0x10de 0x030200 0x20b5 vfio-pci 0
0000:c4:00.0 0x10de 0x068000 0x1af1 - 0
0000:07:00.4 0x10de 0x030200 0x20b5 nvidia 1
0000:03:00.0 0x1d0f 0x030000 0x1111 - 0
garbage line
"""
PROC_NV_OPEN = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.14  Release Build  (dvs-builder@U16-I3-B03-4-3)  Thu Feb 22 01:25:25 UTC 2024\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
PROC_NV_PROP = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n"


def test_gpu_counts_only_real_gpus():
    g = gpu.parse(S(pci=PCI, **{"/proc/driver/nvidia/version": PROC_NV_OPEN, "dev-nvidia": "/dev/nvidia0\n/dev/nvidiactl\n"}))
    assert g.count == 2  # not the NVSwitch, not the VF, not the Amazon VGA
    assert g.bindings == ["nvidia", "vfio-pci"]
    assert (g.driver_version, g.driver_flavour) == ("550.54.14", "open")
    assert g.dev_nodes == ["/dev/nvidia0", "/dev/nvidiactl"]


def test_gpu_driver_version_sources():
    assert gpu.parse_proc_version(PROC_NV_PROP) == ("535.104.05", "proprietary")
    g = gpu.parse(S(**{"/sys/module/nvidia/version": "535.104.05\n", "pci": ""}))
    assert g.driver_version == "535.104.05" and g.count == 0
    assert gpu.parse(S(pci=("EACCES", ""))).count is None


# --- platform
def test_platform():
    assert platform.parse(S(**{"dmi:sys_vendor": "Amazon EC2", "dmi:product_name": "m5.large"})).virtual is True
    p = platform.parse(S(**{"dmi:sys_vendor": "Dell Inc.", "dmi:product_name": "PowerEdge R750xa", "cpuinfo-flags": "flags\t\t: fpu vme de pse lm sse2"}))
    assert p.virtual is False
    assert platform.parse(S(**{"dmi:sys_vendor": ("ENOENT", "")})).virtual is None


# --- packages (dpkg status stanzas in real format; rpm query lines)
DPKG_STATUS = """Package: containerd.io
Status: hold ok installed
Version: 1.5.11-1
Architecture: amd64

Package: docker-ce
Status: install ok installed
Version: 5:24.0.7-1~ubuntu.22.04~jammy
Architecture: amd64

Package: kubelet
Status: deinstall ok config-files
Version: 1.28.2-1.1
Architecture: amd64
"""


def test_packages_dpkg():
    p = packages.parse(S(**{"dpkg-status": DPKG_STATUS, "rpm": ("ENOENT", "")}))
    assert p.manager == "dpkg" and p.known
    assert p.get("containerd.io").held and p.get("containerd.io").upstream == "1.5.11"
    assert p.get("docker-ce").upstream == "24.0.7"
    assert p.get("kubelet") is None  # removed, config files only


def test_packages_rpm_and_unknown():
    p = packages.parse(S(**{"dpkg-status": ("ENOENT", ""), "rpm": "containerd.io\t0:1.6.28-3.1.el9\tx86_64\ndocker-ce\t3:26.1.3-1.el9\tx86_64\n"}))
    assert p.manager == "rpm" and p.get("containerd.io").upstream == "1.6.28" and p.get("docker-ce").upstream == "26.1.3"
    p = packages.parse(S(**{"dpkg-status": ("ENOENT", ""), "rpm": ("ENOCMD", "")}))
    assert not p.known and "rpm command" in p.reason


def test_runtimes():
    sec = S(**{"dpkg-status": DPKG_STATUS, "rpm": ("ENOENT", ""), "bins": "docker /usr/bin/docker\ncontainerd /usr/bin/containerd\nkubelet -\nrsync -\niptables /usr/sbin/iptables\n",
               "snaps": "", "/etc/docker/daemon.json": '{"bip": "172.20.0.1/16"}'})
    pk = packages.parse(sec)
    r = runtimes.parse(sec, pk)
    assert r.get("docker").upstream == "24.0.7" and r.get("docker").source == "dpkg"
    assert r.get("kubelet").installed is False
    assert r.tools["rsync"] is None and r.tools["iptables"] == "/usr/sbin/iptables"
    assert r.docker_snap is False and r.docker_daemon_json == {"bip": "172.20.0.1/16"}
    snap = S(**{"bins": "docker /snap/bin/docker\n", "snaps": "/snap/docker/current\n", "dpkg-status": ""})
    r = runtimes.parse(snap, packages.parse(snap))
    assert r.docker_snap and r.get("docker").source == "snap"


def test_gather_survives_empty_and_garbage():
    for text in ["", "garbage\n\x00\xff", f"{B} PROBE 1 root=/\n{B} BEGIN x ok\npartial"]:
        f = gather(sections.parse(text))
        assert f.selinux.mode == "unknown" and f.kernel.release is None
        assert f.to_dict()["probe"]["complete"] is False


# --- AppArmor fusermount3: the real profile shape (apparmor.git profiles/apparmor.d/fusermount3 ends
# with `include if exists <local/fusermount3>`), combined flags, #947's rules in the drop-in
def test_apparmor_fusermount3_dropin_flags_and_disable():
    prof = FUSERMOUNT3.replace("{\n", "flags=(attach_disconnected) {\n", 1).replace(
        "}\n", "  include if exists <local/fusermount3>\n}\n")
    dropin = "mount fstype=@{fuse_types} options=(nosuid,nodev,rw) -> /var/lib/sysboxfs/**/,\n"
    a = apparmor.parse(S(**{"/etc/apparmor.d/fusermount3": prof, "/etc/apparmor.d/local/fusermount3": dropin,
                            "/etc/apparmor.d/disable/fusermount3": ("ENOENT", "")}))
    assert a.fusermount3_includes_local and a.fusermount3_local and a.fusermount3_allows_sysbox
    assert a.fusermount3_complain is False and a.fusermount3_disabled is False
    a = apparmor.parse(S(**{"/etc/apparmor.d/fusermount3": prof, "/etc/apparmor.d/local/fusermount3": ("ENOENT", "")}))
    assert a.fusermount3_allows_sysbox is False and a.fusermount3_local is False
    a = apparmor.parse(S(**{"/etc/apparmor.d/fusermount3": prof, "/etc/apparmor.d/local/fusermount3": ("EACCES", "")}))
    assert a.fusermount3_allows_sysbox is None and "permission denied" in a.reason
    assert apparmor.profile_complain(prof.replace("flags=(attach_disconnected)", "flags=(attach_disconnected, complain)"))
    assert not apparmor.profile_complain(prof + "# flags=(complain)\n")
    # an old snapshot without the new sections: the drop-in is unknown, not "absent"
    a = apparmor.parse(S(**{"/etc/apparmor.d/fusermount3": prof}))
    assert a.fusermount3_allows_sysbox is None and a.fusermount3_disabled is None


# The layout of `containerd config default` of containerd 2.x (version first, go-toml v2 quoting)
# and 1.7 (keys sorted: version last before the first table), and of the config.toml Docker's
# containerd.io package ships (no version key: containerd reads it as version 1). Written from
# those outputs' shape, abridged, not byte copies.
CONTAINERD2_DEFAULT = """version = 3
root = '/var/lib/containerd'
state = '/run/containerd'
temp = ''
disabled_plugins = []
required_plugins = []
oom_score = 0
imports = []

[grpc]
  address = '/run/containerd/containerd.sock'
"""
CONTAINERD17_DEFAULT = """disabled_plugins = []
imports = []
oom_score = 0
plugin_dir = ""
required_plugins = []
root = "/var/lib/containerd"
state = "/run/containerd"
temp = ""
version = 2

[cgroup]
  path = ""
"""
CONTAINERD_IO_SHIPPED = """#   Copyright 2018-2022 Docker Inc.

#   Licensed under the Apache License, Version 2.0 (the "License");

disabled_plugins = ["cri"]

#root = "/var/lib/containerd"
#state = "/run/containerd"
#subreaper = true
#oom_score = 0

#[grpc]
#  address = "/run/containerd/containerd.sock"
"""


@pytest.mark.parametrize("text,version", [
    (CONTAINERD2_DEFAULT, 3),
    (CONTAINERD17_DEFAULT, 2),
    (CONTAINERD_IO_SHIPPED, 1),
    ('[plugins]\n  version = 3\n', 1),  # a table's key is not the top-level version
    ("", 1),
])
def test_containerd_config_version(text, version):
    assert runtimes.containerd_config_version(text) == version


def test_gather_parses_the_mount_table_once_for_every_parser_that_reads_it(monkeypatch):
    """mounts, cgroups and selinux all read mountinfo; gather() hands them one parsed table
    (issue 13) and each answers as it does parsing the text itself."""
    s = S(mountinfo=MOUNTINFO, **{"/sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory pids",
                                  "/proc/filesystems": "nodev\tselinuxfs\nnodev\tcgroup2\n"})
    alone = (mounts.parse(s), cgroups.parse(s), selinux.parse(s))
    calls = []
    real = mounts.parse_mountinfo

    def counting(text):
        calls.append(len(text))
        return real(text)

    for mod in (mounts, cgroups, selinux):  # wherever a parser may call it from
        monkeypatch.setattr(mod, "parse_mountinfo", counting, raising=False)
    f = gather(s)
    assert len(calls) == 1
    assert (f.mounts, f.cgroups, f.selinux) == alone
    assert f.cgroups.version == 2 and f.mounts.data["var_lib"].fstype
