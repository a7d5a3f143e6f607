"""Debian and kernel version ordering on real strings.

Debian pairs are checked against dpkg itself (`dpkg --compare-versions`) when dpkg is
installed, so the expected order is the real tool's, not ours.
"""

import shutil
import subprocess

import pytest

from nodecheck.versions import DebianVersion, KernelVersion, dpkg_compare, parse_major_minor

# Real package versions seen in Debian/Ubuntu archives and Docker's apt repository.
DEB_PAIRS = [
    ("1.5.11-1", "1.6.28-1"),
    ("1.6.9-1", "1.6.28-1"),
    ("1.6.28-1", "1.6.28-2"),
    ("1:1.0.6-2ubuntu2", "1:1.0.6-2ubuntu2.1"),
    ("1.0.6-2ubuntu2.1", "1:1.0.6-2ubuntu2"),  # epoch wins
    ("5:24.0.7-1~ubuntu.22.04~jammy", "5:24.0.7-1"),  # ~ sorts before the end
    ("5:20.10.24~3-0~ubuntu-jammy", "5:24.0.7-1~ubuntu.22.04~jammy"),
    ("1.0~rc1", "1.0"),
    ("1.0~rc1-1", "1.0-1"),
    ("2.9.4-1", "2.10-1"),
    ("0.7.1-0", "0.7.1-1"),
    ("1.30.2-1.1", "1.30.10-1.1"),
    ("3.2.7-2+deb12u1", "3.2.7-2+deb12u2"),
    ("1.8.9-2", "1.8.9-2+b1"),
    ("1.2a-1", "1.2b-1"),
    ("1.2-1", "1.2a-1"),
    ("0.8.9~pre-1", "0.8.9-1"),
    ("6.1.0-18", "6.1.0-18+deb12u1"),
]


@pytest.mark.parametrize("lo,hi", DEB_PAIRS)
def test_debian_order(lo, hi):
    a, b = DebianVersion.parse(lo), DebianVersion.parse(hi)
    assert a is not None and b is not None
    assert a < b and b > a and a != b
    assert dpkg_compare(lo, hi) < 0 < dpkg_compare(hi, lo)


@pytest.mark.skipif(not shutil.which("dpkg"), reason="dpkg not installed")
@pytest.mark.parametrize("lo,hi", DEB_PAIRS)
def test_debian_order_agrees_with_dpkg(lo, hi):
    assert subprocess.run(["dpkg", "--compare-versions", lo, "lt", hi]).returncode == 0


@pytest.mark.parametrize("a,b", [("1.0", "1.00"), ("0:1.2-1", "1.2-1"), ("1.5.11-1", "1.5.11-01")])
def test_debian_equal_spellings(a, b):
    assert DebianVersion.parse(a) == DebianVersion.parse(b)


@pytest.mark.parametrize("bad", ["", "   ", "abc", ":1.0", "1:", "a:1.0", "1.0-", None, "1 0"])
def test_debian_unreadable_is_none(bad):
    assert DebianVersion.parse(bad) is None


def test_debian_parts():
    v = DebianVersion.parse("1:1.0.6-2ubuntu2.1")
    assert (v.epoch, v.upstream, v.revision) == (1, "1.0.6", "2ubuntu2.1")
    assert str(v) == "1:1.0.6-2ubuntu2.1"
    assert DebianVersion.parse("5:24.0.7-1~ubuntu.22.04~jammy").upstream_tuple() == (24, 0, 7)
    assert DebianVersion.parse("1.2-3-4").upstream == "1.2-3"


# Real `uname -r` strings from Ubuntu, RHEL, Debian, Amazon, Fedora, Flatcar, Raspberry Pi.
KERNELS = [
    ("3.10.0-1160.el7.x86_64", (3, 10, 0), None),
    ("4.14.336-257.562.amzn2.x86_64", (4, 14, 336), None),
    ("4.15.0-213-generic", (4, 15, 0), "generic"),
    ("4.19.0-26-amd64", (4, 19, 0), "amd64"),
    ("5.4.0-150-generic", (5, 4, 0), "generic"),
    ("5.10.0-0.deb10.30-amd64", (5, 10, 0), "amd64"),
    ("5.14.0-427.13.1.el9_4.x86_64", (5, 14, 0), None),
    ("5.15.0-91-generic", (5, 15, 0), "generic"),
    ("6.1.0-18-arm64", (6, 1, 0), "arm64"),
    ("6.1.79-99.164.amzn2023.x86_64", (6, 1, 79), None),
    ("6.6.21-flatcar", (6, 6, 21), "flatcar"),
    ("6.8.0-1015-aws", (6, 8, 0), "aws"),
    ("6.8.5-301.fc40.x86_64", (6, 8, 5), None),
    ("6.12.1+rpt-rpi-v8", (6, 12, 1), "rpt-rpi-v8"),
    ("6.18.44-fc-v595", (6, 18, 44), "fc-v595"),
    ("5.4", (5, 4, 0), None),
]


@pytest.mark.parametrize("rel,base,flavour", KERNELS)
def test_kernel_parse(rel, base, flavour):
    k = KernelVersion.parse(rel)
    assert k.base == base
    assert k.flavour == flavour
    assert str(k) == rel


def test_kernel_order_is_by_upstream_then_suffix():
    ordered = [KernelVersion.parse(r) for r, _, _ in KERNELS if r != "5.4"]
    assert sorted(ordered, key=lambda k: k.base) == sorted(ordered)
    assert KernelVersion.parse("5.15.0-91-generic") < KernelVersion.parse("5.15.0-101-generic")
    assert KernelVersion.parse("5.14.0-362.8.1.el9_3.x86_64") < KernelVersion.parse("5.14.0-427.13.1.el9_4.x86_64")
    assert KernelVersion.parse("5.9.0") < KernelVersion.parse("5.10.0")


@pytest.mark.parametrize("rel,threshold,expected", [
    ("5.11.0-1-generic", "5.12", False),
    ("5.12.0", "5.12", True),
    ("5.15.0-91-generic", "5.12", True),
    ("5.14.0-427.13.1.el9_4.x86_64", "5.19", False),
    ("6.2.16", "6.3", False),
    ("6.3.0", "6.3", True),
    ("4.19.0-26-amd64", (5, 5), False),
])
def test_kernel_at_least(rel, threshold, expected):
    assert KernelVersion.parse(rel).at_least(threshold) is expected


@pytest.mark.parametrize("bad", ["", "linux", "v5.4", None, "5", "x" * 300])
def test_kernel_unreadable_is_none(bad):
    assert KernelVersion.parse(bad) is None


def test_major_minor():
    assert parse_major_minor("v1.30.2") == (1, 30)
    assert parse_major_minor("1.28") == (1, 28)
    assert parse_major_minor("x") is None
