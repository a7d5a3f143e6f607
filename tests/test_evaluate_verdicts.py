"""checks.evaluate decides the non-target releases' verdicts by their worst status only (issue 15:
it stops at the first fail and copies no findings). Every verdict must still be exactly what
the full scoring of that release gives: worst(run_checks(facts, matrix, release, ignore)) run
fresh (no memo), and the target's findings exactly its own run_checks, for every fixture tree,
several targets, --ignore sets (fail and unknown demoted) and `extra` findings."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from nodecheck import sections
from nodecheck.checks import FAIL, UNKNOWN, WARN, Finding, check_ids, evaluate, run_checks, worst
from nodecheck.facts import gather
from nodecheck.matrix import load
from nodecheck.transport import local

FIXTURES = Path(__file__).resolve().parent / "fixtures"
HOSTS = FIXTURES / "hosts"
PROFILES = sorted(p.name for p in HOSTS.iterdir() if (p / "root").is_dir())


@pytest.fixture(scope="module")
def trees():
    # As tests/test_golden_reports.py: probe a copy, so rpm's ~/.rpmdb never lands in the checkout.
    d = Path(tempfile.mkdtemp(prefix="nodecheck-evaluate-"))
    try:
        shutil.copytree(HOSTS, d / "hosts", symlinks=True, ignore=shutil.ignore_patterns("*.py", "*.md"))
        (d / "kconfigs").symlink_to(FIXTURES / "kconfigs")
        out = {}
        for p in PROFILES:
            run = local.run(str(d / "hosts" / p / "root"))
            assert run.exit_status == 0, run.stderr
            out[p] = gather(sections.parse(run.stdout))
        yield out
    finally:
        shutil.rmtree(d, ignore_errors=True)


def reference(facts, matrix, target, ignore, extra):
    """evaluate's scoring part as it was: every release scored in full, fresh."""
    target_rel = matrix.release(target) if target else matrix.newest
    by_release, target_findings = {}, None
    for rel in matrix.releases:
        fs = run_checks(facts, matrix, rel, ignore)
        if extra is not None:
            fs = fs + [f for f in run_checks.__globals__["apply_ignore"](list(extra(rel)), ignore)]
        by_release[str(rel.version)] = worst(f.status for f in fs)
        if rel is target_rel:
            target_findings = [f.to_dict() for f in fs]
    return by_release, target_findings


def _extra(rel):
    # A release-dependent outside finding (as `k8s scan` adds), failing for the oldest releases.
    return [Finding("kubernetes.node", FAIL if str(rel.version) < "0.5" else UNKNOWN, "from the Node object")]


@pytest.mark.parametrize("profile", PROFILES)
def test_every_release_verdict_is_its_full_scoring(trees, profile):
    m = load()
    ids = check_ids(m)
    facts = trees[profile]
    seen = set()
    for target in (None, str(m.releases[0].version), "0.5.2", "0.6.4"):
        for ignore in ((), ("all",), ("kernel.version",), ("distro", "known-issues"), tuple(ids[:6]),
                       tuple(ids[6:])):
            for extra in (None, _extra):
                got = evaluate(facts, m, target=target, ignore=ignore, extra=extra)
                by_release, findings = reference(facts, m, target, ignore, extra)
                assert got.sysbox.verdict_by_release == by_release, (target, ignore, extra)
                assert [f.to_dict() for f in got.findings] == findings
                assert got.verdict == worst(f["status"] for f in findings)
                seen.update(by_release.values())
    assert seen - {FAIL}, "every release fails for every option set: the fast path is not exercised"
    assert WARN in seen  # --ignore all demotes every fail and unknown
