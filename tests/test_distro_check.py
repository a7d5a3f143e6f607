"""The `distro` check's message and advice fit the node (issue 11): the versions Sysbox lists
for *that* distro, and advice that does not contradict the node (no "prefer Debian" on Debian)."""

from pathlib import Path

import pytest

from nodecheck import matrix as mx
from nodecheck import pipeline
from nodecheck.transport import local

HOSTS = Path(__file__).parent / "fixtures/hosts"
M = mx.load(None)


def _distro(profile: str, target: str | None = None) -> dict:
    run = local.run(str(HOSTS / profile / "root"), timeout=30)
    node = pipeline.node_from_output(profile, run.stdout, matrix=M, target=target)
    (c,) = [c for c in node["checks"] if c["id"] == "distro"]
    return c


def _listed(distro_id: str, release) -> list[str]:
    return [v for d in release.distros if d.id == distro_id for v in (d.versions or ())]


@pytest.mark.parametrize("profile,distro_id", [("debian-12", "debian"), ("ubuntu-25.04", "ubuntu"),
                                               ("rocky-9-enforcing", "rocky")])
def test_unlisted_version_names_the_versions_listed_for_that_distro(profile, distro_id):
    c = _distro(profile)
    assert c["status"] == "warn"
    listed = _listed(distro_id, M.newest)
    assert listed
    for v in listed:
        assert v in c["message"], (v, c["message"])
    # only that distro's versions: nothing about other distros in the message
    others = {d.id for d in M.newest.distros} - {distro_id}
    assert not any(f"{o} " in c["message"] or f"{o}," in c["message"] for o in others), c["message"]
    assert "Prefer a listed distro" not in c["remediation"]


def test_debian_advice_fits_a_debian_node():
    c = _distro("debian-12")
    fix = c["remediation"]
    assert "Ubuntu LTS" not in fix and "use Ubuntu" not in fix.lower()
    assert "debian 10" in fix and "11" in fix
    # the .deb is not refused on an unlisted version: the matrix's preinst threshold is quoted
    assert M.newest.deb_preinst["unsupported_distro_min_kernel"] in fix


def test_non_debian_family_gets_build_from_source_not_the_deb():
    c = _distro("rocky-9-enforcing")
    assert "build it from source" in c["remediation"] and ".deb installs" not in c["remediation"]
    assert "work in progress" in c["message"]


def test_listed_versions_follow_the_target_release():
    # Sysbox 0.4.0 lists Debian 10 and 11 as well; 0.7.1 and 0.4.0 must each quote their own list.
    old = M.releases[0]
    c = _distro("debian-12", str(old.version))
    assert f"Sysbox {old.version}" in c["message"]
    for v in _listed("debian", old):
        assert v in c["message"]
