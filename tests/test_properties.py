"""Property tests: every parser takes arbitrary text and never raises; results keep their
invariants (unknown stays unknown, orders are total and consistent)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodecheck import sections
from nodecheck.facts import apparmor, cgroups, distro, gather, gpu, kconfig, kernel, modules, mounts, packages, platform, runtimes, selinux, userns
from nodecheck.versions import DebianVersion, KernelVersion

B = "@@NODECHECK-prop@@"
NAMES = ["/etc/os-release", "/usr/lib/os-release", "/etc/redhat-release", "mountinfo", "/proc/filesystems",
         "/proc/modules", "modules.builtin", "shiftfs.ko", "kconfig:/boot/config-x", "/sys/fs/selinux/enforce",
         "/etc/selinux/config", "/proc/cmdline", "/sys/module/apparmor/parameters/enabled", "/sys/kernel/security/lsm",
         "/etc/apparmor.d/fusermount3", "/proc/sys/kernel/unprivileged_userns_clone", "/proc/sys/user/max_user_namespaces",
         "/sys/fs/cgroup/cgroup.controllers", "/proc/cgroups", "pci", "/proc/driver/nvidia/version",
         "/sys/module/nvidia/version", "dev-nvidia", "dpkg-status", "rpm", "bins", "snaps", "/etc/docker/daemon.json",
         "cmd:uname-r", "cmd:uname-m", "/proc/sys/kernel/osrelease", "dmi:sys_vendor", "cpuinfo-flags"]
STATUSES = ["ok", "ok", "ok", "ENOENT", "EACCES", "ENOTREG", "ENOCMD", "OPENERR weird"]
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400)


@st.composite
def probe_output(draw):
    lines = [f"{B} PROBE 1 root=/"]
    for name in draw(st.lists(st.sampled_from(NAMES), max_size=20, unique=True)):
        status = draw(st.sampled_from(STATUSES))
        lines.append(f"{B} BEGIN {name} {status}")
        if status == "ok":
            lines.append(draw(text))
        lines.append(f"{B} END {name} {draw(st.integers(-1, 2))} 256")
    if draw(st.booleans()):
        lines.append(f"{B} DONE")
    out = "\n".join(lines)
    cut = draw(st.integers(0, len(out)))
    return out[:cut] if draw(st.booleans()) else out


PARSERS = [kernel.parse, distro.parse, kconfig.parse, modules.parse, mounts.parse, selinux.parse,
           apparmor.parse, userns.parse, cgroups.parse, gpu.parse, platform.parse, packages.parse]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(probe_output())
def test_every_parser_total_on_probe_like_output(out):
    s = sections.parse(out)
    for parse in PARSERS:
        parse(s)
    runtimes.parse(s, packages.parse(s))
    f = gather(s)
    assert f.probe["problems"] == [p for p in f.probe["problems"] if not p.startswith("parser ")]  # no parser crashed
    assert f.selinux.mode in ("enforcing", "permissive", "disabled", "unknown")
    if f.selinux.mode == "unknown":
        assert f.selinux.reason


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000))
def test_sections_parse_never_raises_on_junk(junk):
    s = sections.parse(junk)
    gather(s)


@settings(max_examples=300, deadline=None)
@given(text)
def test_text_parsers_never_raise(t):
    kconfig.parse_config(t)
    modules.parse_proc_modules(t)
    modules.parse_builtin(t)
    mounts.parse_mountinfo(t)
    selinux.parse_config(t)
    apparmor.profile_allows_sysbox(t)
    gpu.parse_pci(t)
    gpu.parse_proc_version(t)
    packages.parse_dpkg_status(t)
    packages.parse_rpm(t)
    runtimes.parse_bins(t)


deb = st.from_regex(r"\A(?:[0-9]{1,2}:)?[0-9][0-9a-z.+~]{0,8}(?:-[0-9a-z.+~]{1,6})?\Z")


@settings(max_examples=400, deadline=None)
@given(deb, deb, deb)
def test_debian_order_is_total_and_transitive(a, b, c):
    va, vb, vc = DebianVersion.parse(a), DebianVersion.parse(b), DebianVersion.parse(c)
    if None in (va, vb, vc):
        return
    assert (va < vb) + (va == vb) + (va > vb) == 1
    if va <= vb and vb <= vc:
        assert va <= vc


kern = st.from_regex(r"\A[2-7]\.[0-9]{1,2}(?:\.[0-9]{1,3})?(?:-[0-9a-z._+-]{0,20})?\Z")


@settings(max_examples=300, deadline=None)
@given(kern, kern)
def test_kernel_order_consistent_with_base(a, b):
    ka, kb = KernelVersion.parse(a), KernelVersion.parse(b)
    if ka is None or kb is None:
        return
    if ka.base < kb.base:
        assert ka < kb
    assert (ka < kb) + (ka == kb) + (ka > kb) == 1
