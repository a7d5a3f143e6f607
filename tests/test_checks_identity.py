"""Check identity (issue 13): each check declares its id once; a crash, --ignore, NFD labels and
the advisor all see that id, and the README's table lists exactly the declared ids."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nodecheck import checks
from nodecheck.checks import UNKNOWN, kernel, run_checks
from nodecheck.facts import gather
from nodecheck.matrix import load
from nodecheck.sections import parse

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def matrix():
    return load()


def _readme_ids() -> set[str]:
    text = README.read_text()
    table = text.split("### What is checked", 1)[1].split("\n\n", 2)[1]
    return set(re.findall(r"^\| `([^`]+)` \|", table, re.M))


def test_ids_are_declared_once_unique_and_match_the_readme():
    specs = checks.registry()
    ids = [s.id for s in specs]
    assert len(ids) == len(set(ids)), ids
    declared = set(ids) | {f"{s.also}<rule>" for s in specs if s.also}
    assert declared == _readme_ids()


def test_every_finding_carries_its_checks_declared_id(matrix):
    """On a node with no facts every check answers; each finding's id is its check's id (or
    under its declared dynamic prefix)."""
    empty = gather(parse(""))
    for rel in matrix.releases:
        for spec, got in checks.run_each(empty, matrix, rel):
            for f in got:
                assert f.id == spec.id or (spec.also and f.id.startswith(spec.also)), (spec.id, f.id)


def test_a_crashing_check_is_reported_under_its_id(matrix, monkeypatch):
    def boom(ctx):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(kernel, "_kv", boom)
    f = gather(parse(""))
    got = {x.id: x for x in run_checks(f, matrix, matrix.newest)}
    for cid in ("kernel.version", "kernel.idmap"):
        assert got[cid].status == UNKNOWN and "kaboom" in got[cid].message, got.keys()
    assert "idmap" not in got and "version" not in got


def test_ignore_reaches_a_crashed_check(matrix, monkeypatch):
    monkeypatch.setattr(kernel, "_kv", lambda ctx: 1 / 0)
    got = {x.id: x for x in run_checks(gather(parse("")), matrix, matrix.newest, ignore=["kernel.idmap"])}
    assert got["kernel.idmap"].ignored and got["kernel.idmap"].demoted_from == UNKNOWN


def test_a_check_cannot_report_under_another_id(matrix):
    spec = checks.CheckSpec("x.one", per_release=False, fn=lambda ctx: checks.Finding("x.two", "pass", "m"))
    with pytest.raises(AssertionError):
        checks.run_one(spec, checks.Ctx(gather(parse("")), matrix.newest, matrix))


def test_the_advisor_names_only_declared_ids():
    from nodecheck.checks import methods

    declared = {s.id for s in checks.registry()}
    assert set(methods._KERNEL_LEVEL) <= declared, set(methods._KERNEL_LEVEL) - declared
