"""The human table (issue 11): column-aligned, wrapped to the console width (80 columns too),
a one-line-per-host recap for fleets with the full blocks behind -v, caveats without -v."""

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from nodecheck import matrix as mx
from nodecheck import pipeline
from nodecheck.report import table
from nodecheck.transport import local

ROOT = Path(__file__).parents[1]
HOSTS = ROOT / "tests/fixtures/hosts"
M = mx.load(None)
STATUS = re.compile(r"^    (PASS|WARN|FAIL|UNKNOWN) +(\S+) +(\S)")


def _node(profile: str, name: str | None = None) -> dict:
    run = local.run(str(HOSTS / profile / "root"), timeout=30)
    return pipeline.node_from_output(name or profile, run.stdout, matrix=M)


def _text(nodes, width=80, verbose=False) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=width, no_color=True, highlight=False, soft_wrap=False)
    table.render(pipeline.build_report(nodes, matrix=M), console, verbose=verbose)
    return buf.getvalue()


@pytest.fixture(scope="module")
def nodes():
    return [_node("ubuntu-22.04", "web1"), _node("debian-12", "web2"), _node("nfs-var-lib", "db1"),
            pipeline.error_node("edge9", "timeout", "probe did not finish within 4s", matrix=M)]


@pytest.mark.parametrize("width", [80, 120])
def test_lines_fit_the_width_and_carry_no_trailing_blanks(nodes, width):
    for verbose in (False, True):
        out = _text(nodes, width, verbose) + _text(nodes[:1], width, verbose)
        for line in out.splitlines():
            assert len(line) <= width, line
            assert line == line.rstrip(), repr(line)


def test_check_columns_align_and_wrapped_lines_stay_in_the_message_column(nodes):
    out = _text(nodes[:1], 80, verbose=True)
    lines = out.splitlines()
    rows = [(i, m) for i, ln in enumerate(lines) if (m := STATUS.match(ln))]
    assert len(rows) == len(nodes[0]["checks"])
    id_col = {m.start(2) for _, m in rows}
    msg_col = {m.start(3) for _, m in rows}
    assert len(id_col) == 1 and len(msg_col) == 1, (id_col, msg_col)
    col = msg_col.pop()
    # every continuation line of the check rows starts at the message column
    end = next(i for i in range(rows[0][0], len(lines)) if re.match(r"^  \S", lines[i]))
    cont = [ln for ln in lines[rows[0][0]:end] if not STATUS.match(ln)]
    assert cont  # something wrapped at 80 columns
    for ln in cont:
        assert ln[:col].strip() == "" and ln[col] != " ", (col, ln)


def test_fleet_is_one_recap_line_per_host_and_blocks_only_with_verbose(nodes):
    out = _text(nodes)
    assert "checks against Sysbox" not in out  # no per-host blocks without -v
    lines = out.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("HOST"))
    # a host's NOT PASSING list may wrap; its continuation lines are indented to that column
    body = [ln for ln in lines[head + 1:] if ln and not ln[0].isspace()][:len(nodes)]
    cont = lines[head + 1: next(i for i, ln in enumerate(lines) if ln.startswith("notes:"))]
    assert all(ln[0].isspace() for ln in cont if ln not in body)
    assert [ln.split()[0] for ln in body] == [n["node"] for n in nodes]
    got = {ln.split()[0]: ln.split()[1] for ln in body}
    assert got == {n["node"]: n["verdict"].upper() for n in nodes}
    web1 = next(ln for ln in body if ln.startswith("web1"))
    assert "kubernetes.version" in web1  # what did not pass, on the host's line
    assert "timeout: probe did not finish" in " ".join(out.split())
    wide = _text(nodes, verbose=True)
    assert wide.count("checks against Sysbox") == 3 and "HOST" in wide  # blocks, then the recap


def test_caveats_of_passing_checks_show_without_verbose(nodes):
    docker = next(c for c in nodes[0]["checks"] if c["id"] == "runtime.docker")
    assert docker["status"] == "pass" and "restarts Docker" in docker["caveat"]
    single = _text(nodes[:1])
    assert "note:" in single and "restarts Docker" in single
    fleet = _text(nodes)
    assert "notes:" in fleet and "restarts Docker" in " ".join(fleet.split())


def test_cli_table_wraps_to_columns_env():
    env = dict(os.environ, COLUMNS="80", NO_COLOR="1")
    p = subprocess.run([sys.executable, "-m", "nodecheck.cli", "scan", "--root", str(HOSTS / "ubuntu-22.04/root"),
                        "-o", "wide"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert p.stdout and max(len(ln) for ln in p.stdout.splitlines()) <= 80
