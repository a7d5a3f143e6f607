"""nodecheck/checks/known_issues.py, one row per branch, on the small facts builder: the matrix's
rules against a node's facts (a hit, a scoped rule on a node without that runtime, unknown
facts, unknown scope, and the pass line)."""

from __future__ import annotations

import pytest

from checkfacts import build
from nodecheck.checks import run_checks
from nodecheck.matrix import load

K65 = "known-issue.kernel-6.5-needs-0.6.4"
TNS = "known-issue.docker29.5-time-namespace"
D29 = {"docker-ce": "5:29.5.0-1~debian.12~bookworm"}


@pytest.fixture(scope="module")
def m():
    return load()


def ids(m, facts, release: str) -> dict[str, str]:
    return {f.id: f.status for f in run_checks(facts, m, m.release(release)) if f.id.startswith("known-issue")}


ROWS = [
    # (why, facts kwargs, release, id, expected status; None = not reported)
    ("6.8 on 0.6.3: the /proc,/sys fix is in 0.6.4 (CHANGELOG 0.6.4)", dict(kernel="6.8.0-45-generic", pkgs={}, bins=()),
     "0.6.3", K65, "fail"),
    ("6.8 on 0.6.4: fixed", dict(kernel="6.8.0-45-generic", pkgs={}, bins=()), "0.6.4", K65, None),
    ("no kernel release: cannot tell", dict(pkgs={}, bins=()), "0.6.3", K65, "unknown"),
    ("Docker 29.5 on 0.7.0 (#1011, moby#52326)", dict(kernel="6.8.0-1", pkgs=D29, bins=("docker", "dockerd"),
     files={"/etc/docker/daemon.json": None}), "0.7.0", TNS, "fail"),
    ("Docker 29.5, daemon.json unread: cannot tell", dict(kernel="6.8.0-1", pkgs=D29, bins=("docker", "dockerd")),
     "0.7.0", TNS, "unknown"),
    ("Docker 29.5 with time namespaces off (moby#52577)", dict(kernel="6.8.0-1", pkgs=D29, bins=("docker", "dockerd"),
     files={"/etc/docker/daemon.json": '{"features": {"time-namespaces": false}}'}), "0.7.0", TNS, None),
    ("no Docker at all: the Docker-scoped rule does not apply", dict(kernel="6.8.0-1", pkgs={}, bins=()), "0.7.0", TNS, None),
    ("nothing matches on 0.7.1: the pass line", dict(kernel="6.8.0-45-generic", pkgs={}, bins=(),
     os_release='ID=ubuntu\nVERSION_ID="24.04"\n'), "0.7.1", "known-issues", "pass"),
]


@pytest.mark.parametrize("why, kw, release, cid, status", ROWS, ids=[r[0][:40] for r in ROWS])
def test_row(m, why, kw, release, cid, status):
    got = ids(m, build(**kw), release)
    assert got.get(cid) == status, (why, got)
