"""Golden reports: one `nodecheck.report/v1` JSON report per fixture tree (tests/fixtures/hosts),
plus what every renderer makes of it (table, JUnit, NFD), compared byte for byte.

They make "no behaviour change" visible: a refactor that moves scoring or rendering must leave
every file here unchanged; a fix that changes a verdict, a message or a rendering changes the
golden, and the diff is reviewed with the fix. Regenerate after a deliberate change with

    NODECHECK_REGEN_GOLDEN=1 .venv/bin/pytest -q tests/test_golden_reports.py

and commit tests/golden/ with the change. Only the clock and nodecheck's own version are
normalised (they change on every run / release); everything else is what the scan emits.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import pytest
from rich.console import Console

from nodecheck import pipeline
from nodecheck.matrix import load
from nodecheck.report import junit, nfd, table
from nodecheck.transport import local

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
HOSTS = FIXTURES / "hosts"
GOLDEN = REPO / "tests" / "golden"
PROFILES = sorted(p.name for p in HOSTS.iterdir() if (p / "root").is_dir())
REGEN = os.environ.get("NODECHECK_REGEN_GOLDEN") == "1"


@lru_cache(maxsize=None)
def _scratch() -> Path:
    # As tests/test_fixture_trees.py: probe a copy, so rpm's ~/.rpmdb never lands in the checkout.
    d = Path(tempfile.mkdtemp(prefix="nodecheck-golden-"))
    shutil.copytree(HOSTS, d / "hosts", symlinks=True, ignore=shutil.ignore_patterns("*.py", "*.md"))
    (d / "kconfigs").symlink_to(FIXTURES / "kconfigs")
    return d


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    if _scratch.cache_info().currsize:
        shutil.rmtree(_scratch(), ignore_errors=True)
        _scratch.cache_clear()


@pytest.fixture(scope="module")
def matrix():
    return load()


def _normalise(report: dict) -> dict:
    report = dict(report)
    report["generated_at"] = "<generated_at>"
    report["nodecheck_version"] = "<nodecheck_version>"
    return report


def _scan(profile: str, matrix) -> dict:
    run = local.run(str(_scratch() / "hosts" / profile / "root"))
    assert run.exit_status == 0, run.stderr
    node = pipeline.node_from_output(profile, run.stdout, matrix=matrix, source=f"root:fixtures/{profile}")
    return _normalise(pipeline.build_report([node], matrix=matrix))


def _table(report: dict, verbose: bool) -> str:
    buf = io.StringIO()
    table.render(report, Console(file=buf, width=100, color_system=None, force_terminal=False,
                                 highlight=False), verbose=verbose)
    return buf.getvalue()


def _junit(report: dict) -> str:
    import xml.etree.ElementTree as ET

    tree = ET.ElementTree(junit.build(report))
    ET.indent(tree)
    return ET.tostring(tree.getroot(), encoding="unicode") + "\n"


def _renders(report: dict) -> str:
    parts = [("table", _table(report, False)), ("table -v", _table(report, True)),
             ("junit", _junit(report)), ("nfd", nfd.features_file(report["nodes"][0]))]
    return "".join(f"===== {name} =====\n{text}" for name, text in parts)


def _compare(path: Path, text: str) -> None:
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.is_file(), f"{path} missing: NODECHECK_REGEN_GOLDEN=1 .venv/bin/pytest tests/test_golden_reports.py"
    want = path.read_text()
    assert text == want, f"{path.relative_to(REPO)} differs (deliberate? regenerate: NODECHECK_REGEN_GOLDEN=1)"


_reports: dict[str, dict] = {}


def _report(profile: str, matrix) -> dict:
    if profile not in _reports:
        _reports[profile] = _scan(profile, matrix)
    return _reports[profile]


@pytest.mark.parametrize("profile", PROFILES)
def test_golden_report(profile, matrix):
    report = _report(profile, matrix)
    _compare(GOLDEN / f"{profile}.json", json.dumps(report, indent=1, sort_keys=False) + "\n")
    _compare(GOLDEN / "renders" / f"{profile}.txt", _renders(report))


def test_golden_fleet(matrix):
    """All trees as one fleet report: the recap table and one JUnit document."""
    nodes = [_report(p, matrix)["nodes"][0] for p in PROFILES]
    report = _normalise(pipeline.build_report(nodes, matrix=matrix))
    text = "".join(f"===== {n} =====\n{t}" for n, t in
                   (("table", _table(report, False)), ("junit", _junit(report))))
    _compare(GOLDEN / "renders" / "_fleet.txt", text)


def test_goldens_have_no_strays():
    """A removed fixture tree takes its golden with it (no golden outlives its input)."""
    names = {p.stem for p in GOLDEN.glob("*.json")}
    assert names == set(PROFILES) or REGEN, names ^ set(PROFILES)

