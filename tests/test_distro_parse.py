"""nodecheck.facts.distro parses in memory what the `distro` library would read from files.

The oracle is the library itself (distro 1.9, root-dir mode, the way this module used it
before issue 15): the section texts are written to a temporary root and read back by
`distro.LinuxDistribution`. Every fixture tree and generated os-release / *-release /
debian_version files (quotes, escapes, comments, CR line ends, non-ASCII, unterminated
quotes, several release files) must give the same DistroFacts both ways.
"""

import os
import tempfile
from pathlib import Path

import distro as _distro
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from nodecheck import sections
from nodecheck.facts import distro
from nodecheck.transport import local

HOSTS = Path(__file__).parent / "fixtures" / "hosts"


def library(secs: sections.Sections) -> distro.DistroFacts:
    """The pre-issue-15 implementation: files in a temporary root, parsed by the library."""
    files = {}
    for name in secs.names():
        rel = distro._safe_name(name)
        text = secs.text(name)
        if rel and text is not None:
            files[rel] = distro._bounded(text)
    if not files:
        return distro.parse(secs)  # no file at all: nothing for the library to read
    with tempfile.TemporaryDirectory(prefix="nodecheck-distro-oracle-") as root:
        for rel, text in files.items():
            p = os.path.join(root, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w", encoding="utf-8", errors="replace") as fh:
                fh.write(text if text.endswith("\n") else text + "\n")
        try:
            d = _distro.LinuxDistribution(include_lsb=False, include_uname=False,
                                          include_oslevel=False, root_dir=root)
            info = d.info()
            osr = d.os_release_info()
        except Exception as exc:  # noqa: BLE001
            return distro.DistroFacts(reason=f"distro files unreadable: {exc}")
        facts = distro.DistroFacts(
            id=d.id() or None, version_id=osr.get("version_id") or info.get("version") or None,
            name=d.name() or None, codename=info.get("codename") or None, like=(d.like() or "").split(),
            pretty_name=d.name(pretty=True) or None, variant_id=osr.get("variant_id") or None)
    if not facts.id:
        facts.reason = "distribution files present but no ID in them"
    return facts


def secs_of(files: dict[str, str]) -> sections.Sections:
    return sections.Sections(by_name={n: sections.Section(name=n, status="ok", text=t) for n, t in files.items()},
                             version=1, done=True)


@pytest.mark.parametrize("profile", sorted(p.name for p in HOSTS.iterdir() if (p / "root").is_dir()))
def test_fixture_trees_parse_as_the_library_reads_them(profile):
    secs = sections.parse(local.run(str(HOSTS / profile / "root"), timeout=30).stdout)
    got = distro.parse(secs)
    assert got == library(secs)
    assert got.id  # every fixture names its distribution


KEYS = ["ID", "VERSION_ID", "NAME", "PRETTY_NAME", "VERSION", "VERSION_CODENAME", "UBUNTU_CODENAME",
        "ID_LIKE", "VARIANT_ID", "id", "Version_Id"]
VALUES = st.sampled_from(["ubuntu", "debian", "rhel centos fedora", "22.04", "9.3", "2", "ol", "opensuse-leap",
                          "Red Hat", "7.9.2009 (Core)", "22.04.3 LTS (Jammy Jellyfish)", "12 (bookworm)",
                          "", "x, y", "café", "a b", "1.0 (a) x", "Rocky Linux 9.3 (Blue Onyx)"])


@st.composite
def value_text(draw):
    v = draw(VALUES | st.text(st.characters(blacklist_categories=("Cs",)), max_size=12))
    quote = draw(st.sampled_from(["", '"', "'"]))
    if draw(st.booleans()):
        v = v.replace(" ", "\\ ") if not quote else v
    return quote + v + (quote if draw(st.integers(0, 9)) else "")  # sometimes unterminated


@st.composite
def os_release(draw):
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            lines.append("# " + draw(st.text(max_size=10)))
        elif kind == 1:
            lines.append(draw(st.text(st.characters(blacklist_categories=("Cs",)), max_size=15)))
        else:
            lines.append(draw(st.sampled_from(KEYS)) + "=" + draw(value_text()))
    return draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines)


RELEASE_NAMES = ["/etc/centos-release", "/etc/redhat-release", "/etc/fedora-release", "/etc/SuSE-release",
                 "/etc/system-release", "/etc/cloudlinux-release", "/etc/debian_version", "/etc/slackware-version",
                 "/etc/weird_release", "/etc/oem-release", "/etc/subuid", "/etc/ü-release"]
RELEASE_LINES = st.sampled_from(["CentOS Linux release 7.9.2009 (Core)", "Red Hat Enterprise Linux release 8.9 (Ootpa)",
                                 "CloudLinux Server release 6.10", "12.5", "bookworm/sid", "", "\n", "Fedora 40",
                                 "Slackware 15.0", "café 1.0", "x (y)"]) | st.text(max_size=20)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(etc=st.one_of(st.none(), os_release()), usr=st.one_of(st.none(), os_release()),
       extra=st.dictionaries(st.sampled_from(RELEASE_NAMES), RELEASE_LINES, max_size=4))
def test_generated_files_parse_as_the_library_reads_them(etc, usr, extra):
    files = dict(extra)
    if etc is not None:
        files["/etc/os-release"] = etc
    if usr is not None:
        files["/usr/lib/os-release"] = usr
    secs = secs_of(files)
    assert distro.parse(secs) == library(secs)


def test_parsing_writes_no_file(monkeypatch):
    # The point of the rewrite: no temporary root, no file system at all.
    import builtins

    def refuse(*a, **k):
        raise AssertionError(f"distro.parse touched the file system: {a}")

    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    d = distro.parse(secs_of({"/etc/os-release": 'ID=debian\nVERSION_ID="12"\n', "/etc/debian_version": "12.5\n"}))
    assert (d.id, d.version_id) == ("debian", "12")


@pytest.mark.parametrize("files", [
    {"/etc/os-release": "ID=ubuntu\nID_LIKE=debian\n", "/etc/debian_version": "bookworm/café\n"},  # ascii read fails
    {"/etc/os-release": 'ID=x\nNAME="unterminated\n'},  # shlex: No closing quotation
    {"/etc/os-release": "ID=ol\r\nVERSION_ID=8.9\r\n"},
    {"/usr/lib/os-release": "ID=opensuse-leap\n", "/etc/SuSE-release": "openSUSE 15.5\n"},
    {"/etc/centos-release": "CentOS Linux release 7.9.2009 (Core)\n", "/etc/redhat-release": "x\n"},
    {"/etc/cloudlinux-release": "CloudLinux Server release 6.10 (Vladimir Aksyonov)\n"},
    {"/etc/redhat-release": "\n"},
])
def test_edge_cases_parse_as_the_library_reads_them(files):
    secs = secs_of(files)
    assert distro.parse(secs) == library(secs)
