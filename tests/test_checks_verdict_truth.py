"""Issue 14 - verdict truth: each matrix rule and check re-read against upstream, table-driven.

Every row starts from the probe's real output on a fixture tree (tests/fixtures/hosts), changes
only the inputs the row is about (a package version, daemon.json, config.toml, an AppArmor file,
the kernel release), re-parses them with the real parsers and scores one release. The expected
status is argued from the upstream source named in the row, not from what the code prints:
  #N      = nestybox/sysbox issue or PR N        runc#N = nestybox/sysbox-runc PR N
  moby#N  = moby/moby PR N                       P@c    = nestybox/sysbox-pkgr at commit c
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import pytest

from nodecheck import sections
from nodecheck.checks import run_checks
from nodecheck.facts import gather
from nodecheck.matrix import load
from nodecheck.sections import Section
from nodecheck.transport import local

HOSTS = Path(__file__).parent / "fixtures" / "hosts"
_BASE: dict[str, sections.Sections] = {}

U2204_DOCKER = "5:24.0.7-1~ubuntu.22.04~jammy"


@pytest.fixture(scope="module")
def m():
    return load()


def _base(profile: str) -> sections.Sections:
    if profile not in _BASE:
        run = local.run(str(HOSTS / profile / "root"))
        assert run.exit_status == 0, run.stderr
        _BASE[profile] = sections.parse(run.stdout)
    return _BASE[profile]


def _set_pkgs(text: str, pkgs: dict[str, str | None]) -> str:
    """dpkg-status stanzas with `Version:` replaced (None drops the package)."""
    stanzas = [s for s in text.strip().split("\n\n") if s.strip()]
    out, seen = [], set()
    for st in stanzas:
        name = st.splitlines()[0].split(": ", 1)[1]
        if name in pkgs:
            seen.add(name)
            if pkgs[name] is None:
                continue
            st = "\n".join(f"Version: {pkgs[name]}" if ln.startswith("Version: ") else ln for ln in st.splitlines())
        out.append(st)
    for name, ver in pkgs.items():
        if name not in seen and ver is not None:
            out.append(f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {ver}")
    return "\n\n".join(out) + "\n"


def _set_bins(text: str, bins: dict[str, str | None]) -> str:
    lines = []
    for ln in text.splitlines():
        name = ln.split()[0] if ln.split() else ""
        if name in bins:
            ln = f"{name} {bins[name] or '-'}"
        lines.append(ln)
    return "\n".join(lines) + "\n"


def facts(profile: str = "ubuntu-22.04", *, pkgs: dict | None = None, bins: dict | None = None,
          kernel: str | None = None, files: dict | None = None):
    """Facts of `profile` with the named inputs changed; a file value of None means ENOENT."""
    s = copy.copy(_base(profile))
    s.by_name = dict(s.by_name)
    if pkgs:
        s.by_name["dpkg-status"] = Section("dpkg-status", "ok", _set_pkgs(s.get("dpkg-status").text, pkgs))
    if bins:
        s.by_name["bins"] = Section("bins", "ok", _set_bins(s.get("bins").text, bins))
    if kernel:
        s.by_name["/proc/sys/kernel/osrelease"] = Section("/proc/sys/kernel/osrelease", "ok", kernel + "\n")
    for name, val in (files or {}).items():
        if val is None:
            s.by_name[name] = Section(name, "ENOENT")
        elif isinstance(val, tuple):
            s.by_name[name] = Section(name, val[0], val[1] if val[0] == "ok" else None)
        else:
            s.by_name[name] = Section(name, "ok", val)
    return gather(s)


def status_of(m, f, release: str, check_id: str) -> str | None:
    """The status of one finding for one release; None when the check or rule gave none."""
    got = [x for x in run_checks(f, m, m.release(release)) if x.id == check_id]
    assert len(got) <= 1
    return got[0].status if got else None


def finding(m, f, release: str, check_id: str):
    return next(x for x in run_checks(f, m, m.release(release)) if x.id == check_id)


# ---------------------------------------------------------------------------------------------
# deps.host-tools: fusermount3 from 0.7.0 (#955: sysbox-fs moved to a Bazil FUSE library built on
# libfuse3; #1005's sysbox-fs 0.7.0 logs run fusermount3). The .deb depends on fuse (2) only, so a
# fuse-2-only node is not fixed by installing the package -> fail. Before 0.7.0 sysbox-fs execs
# fuse 2's fusermount (#448), which the package's `fuse` dependency normally brings -> warn.
FUSE2_ONLY = {"fusermount": "/bin/fusermount", "fusermount3": None}
FUSE3_ONLY = {"fusermount": None, "fusermount3": "/usr/bin/fusermount3"}


@pytest.mark.parametrize("tools,release,expected", [
    (FUSE2_ONLY, "0.7.0", "fail"),
    (FUSE2_ONLY, "0.7.1", "fail"),
    (FUSE2_ONLY, "0.6.7", "pass"),
    (FUSE3_ONLY, "0.7.1", "pass"),
    (FUSE3_ONLY, "0.6.7", "warn"),
    ({"fusermount": "/bin/fusermount", "fusermount3": "/usr/bin/fusermount3"}, "0.7.1", "pass"),
    ({"fusermount3": "/usr/bin/fusermount3", "rsync": None}, "0.7.1", "warn"),  # rsync: a .deb dependency
])
def test_host_tools_fusermount3_from_0_7_0(m, tools, release, expected):
    f = facts(bins=tools)
    got = finding(m, f, release, "deps.host-tools")
    assert got.status == expected, got.message
    if expected == "fail":
        assert "fuse3" in got.remediation and got.source == "https://github.com/nestybox/sysbox/pull/955"


# ---------------------------------------------------------------------------------------------
# apparmor.fusermount3 (#947, #1005). The stock profile ends with `include if exists
# <local/fusermount3>`; rules there are honoured. Complain mode is a flag among others; a profile
# linked in /etc/apparmor.d/disable/ is not loaded at boot.
PROFILE = """abi <abi/4.0>,
include <tunables/global>

profile fusermount3 /usr/bin/fusermount3 flags=(attach_disconnected) {
  include <abstractions/base>
  mount fstype=@{fuse_types} options=(nosuid,nodev) -> @{HOME}/**/,
  umount @{HOME}/**/,

  # Site-specific additions and overrides. See local/README for details.
  include if exists <local/fusermount3>
}
"""
DROPIN = """mount fstype=@{fuse_types} options=(nosuid,nodev,rw) -> /var/lib/sysboxfs/**/,
mount fstype=@{fuse_types} options=(nosuid,nodev,ro) -> /var/lib/sysboxfs/**/,
umount /var/lib/sysboxfs/**/,
"""
AA = "/etc/apparmor.d/fusermount3"
LOCAL = "/etc/apparmor.d/local/fusermount3"
DISABLE = "/etc/apparmor.d/disable/fusermount3"


@pytest.mark.parametrize("files,expected", [
    ({AA: PROFILE, LOCAL: None, DISABLE: None}, "fail"),                       # stock, enforced
    ({AA: PROFILE, LOCAL: DROPIN, DISABLE: None}, "pass"),                     # #947 rules in the drop-in
    ({AA: PROFILE, LOCAL: "# empty\n", DISABLE: None}, "fail"),                # drop-in without them
    ({AA: PROFILE.replace("include if exists <local/fusermount3>\n", ""), LOCAL: DROPIN, DISABLE: None},
     "fail"),                                                                  # drop-in not included
    ({AA: PROFILE.replace("flags=(attach_disconnected)", "flags=(attach_disconnected,complain)"),
      LOCAL: None, DISABLE: None}, "pass"),                                    # combined flags
    ({AA: PROFILE.replace("flags=(attach_disconnected)", "flags=(complain)"), LOCAL: None, DISABLE: None}, "pass"),
    ({AA: PROFILE, LOCAL: None, DISABLE: PROFILE}, "pass"),                    # aa-disable link
    ({AA: PROFILE, LOCAL: ("EACCES", ""), DISABLE: None}, "unknown"),          # drop-in unreadable
    ({AA: PROFILE + "\n# flags=(complain) is not set\n", LOCAL: None, DISABLE: None}, "fail"),  # a comment
])
def test_apparmor_fusermount3_profile(m, files, expected):
    f = facts("ubuntu-25.04", files=files)
    got = finding(m, f, "0.7.1", "apparmor.fusermount3")
    assert got.status == expected, got.message
    if expected == "fail":
        assert "/etc/apparmor.d/local/fusermount3" in got.remediation  # the drop-in, not the shipped file


def test_apparmor_local_dropin_read_by_the_probe(tmp_path, m):
    """The probe reads the drop-in and the aa-disable marker from a real tree."""
    root = tmp_path / "root"
    shutil.copytree(HOSTS / "ubuntu-25.04" / "root", root, symlinks=True)
    (root / "etc/apparmor.d/fusermount3").write_text(PROFILE)
    (root / "etc/apparmor.d/local").mkdir()
    (root / "etc/apparmor.d/local/fusermount3").write_text(DROPIN)
    f = gather(sections.parse(local.run(str(root)).stdout))
    assert f.apparmor.fusermount3_local and f.apparmor.fusermount3_allows_sysbox
    assert status_of(m, f, "0.7.1", "apparmor.fusermount3") == "pass"
    (root / "etc/apparmor.d/local/fusermount3").write_text("")
    (root / "etc/apparmor.d/disable").mkdir()
    os.symlink("../fusermount3", root / "etc/apparmor.d/disable/fusermount3")
    f = gather(sections.parse(local.run(str(root)).stdout))
    assert f.apparmor.fusermount3_allows_sysbox is False and f.apparmor.fusermount3_disabled is True
    assert status_of(m, f, "0.7.1", "apparmor.fusermount3") == "pass"


# ---------------------------------------------------------------------------------------------
# Docker 29.5+ private time namespace (moby#52326; escape hatch moby#52577): #1011 on 0.7.0 and
# 0.6.7; sysbox-runc had no time-namespace support before runc#112 (not in 0.7.0's pin); 0.7.1's
# sysbox-runc contains it (34bb0bb8 is an ancestor of the #1013 fix 87af3d51).
TN = "known-issue.docker29.5-time-namespace"
D = "/etc/docker/daemon.json"


@pytest.mark.parametrize("docker,daemon_json,release,expected", [
    ("5:29.5.0-1~ubuntu.22.04~jammy", None, "0.7.0", "fail"),
    ("5:29.5.0-1~ubuntu.22.04~jammy", None, "0.6.7", "fail"),
    ("5:29.6.1-1~ubuntu.22.04~jammy", '{"log-driver": "json-file"}', "0.6.1", "fail"),
    ("5:29.5.0-1~ubuntu.22.04~jammy", None, "0.7.1", None),
    ("5:29.4.0-1~ubuntu.22.04~jammy", None, "0.7.0", None),                  # before moby#52326
    (U2204_DOCKER, None, "0.7.0", None),
    ("5:29.5.0-1~ubuntu.22.04~jammy", '{"features": {"time-namespaces": false}}', "0.7.0", None),
    ("5:29.5.0-1~ubuntu.22.04~jammy", ("EACCES", ""), "0.7.0", "unknown"),   # cannot see the setting
])
def test_docker_29_5_time_namespace(m, docker, daemon_json, release, expected):
    f = facts(pkgs={"docker-ce": docker}, files={D: daemon_json})
    assert status_of(m, f, release, TN) == expected


def test_containerd_2_2_alone_is_not_the_time_namespace_trigger(m):
    # Matrix 2026.11.0 failed "containerd >= 2.2" here; the trigger is Docker's default (moby#52326).
    f = facts(pkgs={"containerd.io": "2.2.1-1", "kubelet": None}, bins={"kubelet": None}, files={D: None})
    assert status_of(m, f, "0.7.0", TN) is None


# ---------------------------------------------------------------------------------------------
# K8s + containerd 2.x on 0.7.0 (#1006: Ubuntu 22.04 on 5.15 and 6.8 fail like #1013's 24.04;
# fixed by runc#117 in 0.7.1), and the installer's version-2 table under a `version = 3` config
# (#997, #1013 gap 1).
SYSFS = "known-issue.containerd2-k8s-sysfs-procfd-0.7.0"
V3 = "known-issue.containerd2-config-v3-installer-stanza-0.7.0"
V3W = "known-issue.containerd2-config-v3-installer-stanza-unverified"
CC = "/etc/containerd/config.toml"
K8S_133 = {"containerd.io": "2.2.3-1", "kubelet": "1.33.4-1.1"}
CONFIG_V3 = 'version = 3\nroot = "/var/lib/containerd"\n\n[plugins."io.containerd.cri.v1.runtime"]\n'
CONFIG_V2 = 'version = 2\n\n[plugins."io.containerd.grpc.v1.cri"]\n  version = 3\n'


@pytest.mark.parametrize("kernel,release,expected", [
    ("5.15.0-91-generic", "0.7.0", "fail"),   # Ubuntu 22.04 + 5.15: not tied to 24.04 or 6.8
    ("6.8.0-45-generic", "0.7.0", "fail"),
    ("5.15.0-91-generic", "0.7.1", None),
])
def test_containerd2_sysfs_on_any_distro(m, kernel, release, expected):
    f = facts(pkgs=K8S_133, kernel=kernel, files={CC: CONFIG_V2})
    assert status_of(m, f, release, SYSFS) == expected


@pytest.mark.parametrize("config,release,rule,expected", [
    (CONFIG_V3, "0.7.0", V3, "fail"),
    (CONFIG_V3, "0.7.1", V3W, "warn"),       # 0.7.1's notes list no fix; #997 open
    (CONFIG_V2, "0.7.0", V3, None),          # a version 2 config is migrated by containerd 2
    ("[grpc]\n  address = \"/run/containerd/containerd.sock\"\n", "0.7.0", V3, None),  # no version: 1
    (None, "0.7.0", V3, "unknown"),          # no config file: cannot tell
])
def test_containerd2_config_v3(m, config, release, rule, expected):
    f = facts(pkgs=K8S_133, files={CC: config})
    assert status_of(m, f, release, rule) == expected


def test_config_v3_needs_a_kubernetes_node(m):
    f = facts(pkgs={"containerd.io": "2.2.3-1", "kubelet": None}, bins={"kubelet": None}, files={CC: CONFIG_V3})
    assert status_of(m, f, "0.7.0", V3) is None


# ---------------------------------------------------------------------------------------------
# K8s 1.33+ turns UserNamespacesSupport on: pods without hostUsers: false fail on 0.6.7 and 0.7.0
# (#987 on 0.6.7, #999 and #1019 on 0.7.0).
@pytest.mark.parametrize("kubelet,release,expected", [
    ("1.33.4-1.1", "0.7.0", "warn"),
    ("1.35.0-1.1", "0.7.0", "warn"),
    ("1.33.4-1.1", "0.6.7", "warn"),
    ("1.32.9-1.1", "0.7.0", None),
    ("1.33.4-1.1", "0.6.6", None),
])
def test_k8s_1_33_host_users(m, kubelet, release, expected):
    f = facts(pkgs={"kubelet": kubelet}, files={CC: CONFIG_V2})
    got = status_of(m, f, release, "known-issue.k8s-1.33-pods-need-hostusers-false")
    assert got == expected
    if got:
        assert "hostUsers: false" in finding(m, f, release, "known-issue.k8s-1.33-pods-need-hostusers-false").remediation


# ---------------------------------------------------------------------------------------------
# sysbox-deploy-k8s on a distro it does not list: dies before 0.6.7 (P@95761e2 is_supported_distro
# -> die), warns and then has no artifacts dir from 0.6.7 (P@2d5e795). Ubuntu 24.04 is listed from
# 0.6.7; debian* and flatcar* always.
UNLISTED_DIE = "known-issue.k8s-installer-unlisted-distro-dies"
UNLISTED_CP = "known-issue.k8s-installer-unlisted-distro-no-artifacts"
OS_2310 = 'ID=ubuntu\nVERSION_ID="23.10"\nPRETTY_NAME="Ubuntu 23.10"\n'
OS_2404 = 'ID=ubuntu\nVERSION_ID="24.04"\nPRETTY_NAME="Ubuntu 24.04.1 LTS"\n'
OS_DEB12 = 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'


@pytest.mark.parametrize("os_release,release,rule,expected", [
    (OS_2310, "0.6.6", UNLISTED_DIE, "fail"),
    (OS_2310, "0.7.1", UNLISTED_CP, "fail"),
    (OS_2404, "0.6.6", UNLISTED_DIE, "fail"),
    (OS_2404, "0.6.7", UNLISTED_CP, None),
    (OS_DEB12, "0.6.6", UNLISTED_DIE, None),
    (OS_DEB12, "0.7.1", UNLISTED_CP, None),
])
def test_k8s_installer_distro_list(m, os_release, release, rule, expected):
    f = facts(files={"/etc/os-release": os_release, "/usr/lib/os-release": os_release, CC: CONFIG_V2})
    assert status_of(m, f, release, rule) == expected


def test_unlisted_distro_without_kubelet_is_not_a_k8s_failure(m):
    f = facts(pkgs={"kubelet": None}, bins={"kubelet": None}, files={"/etc/os-release": OS_2310})
    assert status_of(m, f, "0.6.6", UNLISTED_DIE) is None


# The K8s installer up to 0.6.4 aborts without kernel.unprivileged_userns_clone (#780; CHANGELOG
# 0.6.5 adds the existence check).
@pytest.mark.parametrize("sysctl,release,expected", [
    (None, "0.6.4", "fail"),
    (None, "0.6.5", None),
    ("1\n", "0.6.4", None),
])
def test_k8s_installer_userns_clone_sysctl(m, sysctl, release, expected):
    f = facts(files={"/proc/sys/kernel/unprivileged_userns_clone": sysctl})
    assert status_of(m, f, release, "known-issue.k8s-installer-userns-clone-sysctl-missing") == expected


# ---------------------------------------------------------------------------------------------
# #922: wrong owner on hard-linked files with shiftfs loaded, Ubuntu 22.04 / 5.15, 0.6.5-0.6.6.
MODS_SHIFTFS = "shiftfs 28672 0 - Live 0x0000000000000000\noverlay 151552 0 - Live 0x0000000000000000\n"
MODS_NONE = "overlay 151552 0 - Live 0x0000000000000000\n"


@pytest.mark.parametrize("modules,release,expected", [
    (MODS_SHIFTFS, "0.6.5", "warn"),
    (MODS_SHIFTFS, "0.6.6", "warn"),
    (MODS_SHIFTFS, "0.6.7", None),
    (MODS_NONE, "0.6.5", None),
    (("EACCES", ""), "0.6.5", "unknown"),
])
def test_shiftfs_hardlink_owner(m, modules, release, expected):
    f = facts(files={"/proc/modules": modules})
    assert status_of(m, f, release, "known-issue.shiftfs-hardlink-owner-0.6.5-0.6.6") == expected


# ---------------------------------------------------------------------------------------------
# Kernel 7.x (Ubuntu 26.04): sysbox-fs nil-pointer panic with 0.7.0 (#1003, confirmed on 26.04 +
# 7.x); whether 0.7.1 has the fix is not stated -> warn.
@pytest.mark.parametrize("kernel,release,rule,expected", [
    ("7.0.0-9-generic", "0.7.0", "known-issue.kernel-7-sysbox-fs-panic-0.7.0", "fail"),
    ("7.0.0-9-generic", "0.7.1", "known-issue.kernel-7-sysbox-fs-panic-unverified", "warn"),
    ("6.17.0-1015-aws", "0.7.0", "known-issue.kernel-7-sysbox-fs-panic-0.7.0", None),
])
def test_kernel_7(m, kernel, release, rule, expected):
    f = facts(kernel=kernel, pkgs={"kubelet": None}, bins={"kubelet": None})
    assert status_of(m, f, release, rule) == expected


# #1035: 0.7.1 + kernel 6.17 + containerd 2.2.1 fails; neighbours (cause unknown) warn.
@pytest.mark.parametrize("kernel,containerd,rule,expected", [
    ("6.17.0-1015-aws", "2.2.1-1", "known-issue.kernel-6.17-containerd-2.2.1-sysctl", "fail"),
    ("6.17.0-1015-aws", "2.2.1-1", "known-issue.kernel-6.17-containerd-2.2-sysctl-unverified", None),
    ("6.17.0-1015-aws", "2.2.3-1", "known-issue.kernel-6.17-containerd-2.2-sysctl-unverified", "warn"),
    ("6.18.2-generic", "2.2.1-1", "known-issue.kernel-6.17-containerd-2.2-sysctl-unverified", "warn"),
    ("6.8.0-45-generic", "2.2.3-1", "known-issue.kernel-6.17-containerd-2.2-sysctl-unverified", None),
])
def test_kernel_6_17_containerd_2_2(m, kernel, containerd, rule, expected):
    f = facts(kernel=kernel, pkgs={"containerd.io": containerd, "kubelet": "1.35.0-1.1"}, files={CC: CONFIG_V2})
    assert status_of(m, f, "0.7.1", rule) == expected


# ---------------------------------------------------------------------------------------------
# storage.data-root: XFS warns (docs name ext4/btrfs; #586/#818 blame XFS), ZFS fails (#849).
def _mountinfo(fstype_var_lib: str, docker_fs: str | None = None) -> str:
    lines = ["22 1 259:1 / / rw,relatime - ext4 /dev/nvme0n1p1 rw",
             f"30 22 259:2 / /var/lib rw,relatime - {fstype_var_lib} /dev/nvme1n1 rw"]
    if docker_fs:
        lines.append(f"31 30 0:50 / /var/lib/docker rw,relatime - {docker_fs} tank/docker rw,xattr,posixacl")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("mountinfo,expected,source", [
    (_mountinfo("xfs"), "warn", "https://github.com/nestybox/sysbox/issues/586"),
    (_mountinfo("ext4", docker_fs="zfs"), "fail", "https://github.com/nestybox/sysbox/issues/849"),
    (_mountinfo("zfs"), "fail", "https://github.com/nestybox/sysbox/issues/849"),
    (_mountinfo("btrfs"), "pass", None),
])
def test_data_root_filesystems(m, mountinfo, expected, source):
    f = facts(files={"mountinfo": mountinfo})
    got = finding(m, f, "0.7.1", "storage.data-root")
    assert got.status == expected, got.message
    if source:
        assert got.source == source


# ---------------------------------------------------------------------------------------------
# runtime.containerd: the 1.5.11-1 pin is needed only up to 0.5.1 (#544, #560); nothing upstream
# says it breaks later releases, so no warning there. The installer's containerd path starts at
# 2.0.0 except the 2.0.1-2.0.4 userns bug range (is_containerd_with_userns, P@0088f039).
def test_containerd_pin_is_not_a_warning_after_0_5_2(m):
    f = facts("ubuntu-20.04")
    got = finding(m, f, "0.7.1", "runtime.containerd")
    assert got.status == "pass" and "does not need the 1.5.11-1 pin" in got.message
    # Up to 0.5.1 the matrix puts the pin in the workspace image (the inner runc breaks, #544,
    # coder/images#157): the host's containerd.io is not judged, the caveat tells the user.
    old = finding(m, facts(pkgs={"containerd.io": "1.6.28-1"}), "0.5.1", "runtime.containerd")
    assert old.status == "pass" and "containerd.io=1.5.11-1 in the workspace image" in old.caveat


@pytest.mark.parametrize("containerd,path", [
    ("2.0.0-1", "containerd"), ("2.0.3-1", "CRI-O"), ("2.0.5-1", "containerd"), ("1.7.27-1", "CRI-O"),
])
def test_installer_containerd_path(m, containerd, path):
    got = finding(m, facts(pkgs={"containerd.io": containerd}, files={CC: CONFIG_V2}), "0.7.1", "runtime.containerd")
    msg = got.message + " " + (getattr(got, "caveat", "") or "")
    assert ("configure containerd" in msg) == (path == "containerd")
    assert ("its own CRI-O" in msg) == (path == "CRI-O")
