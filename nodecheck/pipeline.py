"""The one-way flow in one place: probe text -> sections -> facts -> findings -> report node.

Every front end (local scan, SSH fleet, the Ansible action plugin, the pod) calls these
functions, so there is one implementation of parsing and scoring.
"""

from __future__ import annotations

import datetime as _dt

from . import __version__, sections
from .facts import Facts, gather
from .vocab import ERROR_KINDS, VERDICTS, worst  # noqa: F401 (re-exported for callers of pipeline)

REPORT_SCHEMA = "nodecheck.report/v1"


def facts_from_output(stdout: str) -> Facts:
    return gather(sections.parse(stdout))


def node_from_facts(name: str, facts: Facts, *, matrix, target: str | None = None,
                    ignore=(), source: str | None = None, extra=None) -> dict:
    from .checks import evaluate  # the checks need the matrix package; import on use
    result = evaluate(facts, matrix, target=target, ignore=ignore, extra=extra)
    node = {"node": name, "source": source, **result, "facts": facts.summary(), "error": None}
    problems = facts.probe.get("problems") or []
    if problems:
        node["probe_problems"] = cap_problems(problems)
    return node


def node_from_output(name: str, stdout: str, *, matrix, target: str | None = None,
                     ignore=(), source: str | None = None) -> dict:
    """Score one probe run's stdout. A run without a probe header is a probe-error node."""
    parsed = sections.parse(stdout)
    if parsed.version == 0:
        return error_node(name, "probe-error", "; ".join(parsed.problems), stderr_tail=stdout[-500:],
                          matrix=matrix, target=target, source=source)
    return node_from_facts(name, gather(parsed), matrix=matrix, target=target, ignore=ignore, source=source)


MAX_PROBLEMS = 50  # a node can print any amount of junk; a report line stays small


def cap_problems(problems: list[str]) -> list[str]:
    """At most MAX_PROBLEMS entries of at most 300 characters; the last says how many were dropped."""
    out = [p if len(p) <= 300 else p[:297] + "..." for p in problems[:MAX_PROBLEMS - 1]]
    if len(problems) >= MAX_PROBLEMS:
        rest = len(problems) - len(out)
        out.append(problems[MAX_PROBLEMS - 1][:300] if rest == 1 else f"... and {rest} more problems")
    return out


def error_node(name: str, kind: str, message: str, *, stderr_tail: str = "", matrix=None,
               target: str | None = None, source: str | None = None) -> dict:
    """A node the scan could not read: verdict unknown, with what went wrong."""
    if kind not in ERROR_KINDS:
        raise ValueError(f"unknown error kind {kind!r}")
    tgt = target or (str(matrix.newest.version) if matrix is not None else None)
    return {
        "node": name, "source": source, "verdict": "unknown", "checks": [],
        "sysbox": {"target": tgt, "compatible_releases": [], "recommended": None},
        "methods": {}, "facts": {}, "error": {"kind": kind, "message": message, "stderr_tail": stderr_tail[-2000:]},
    }


def build_report(nodes: list[dict], *, matrix, target: str | None = None) -> dict:
    summary = {v: 0 for v in VERDICTS}
    for n in nodes:
        summary[n["verdict"]] += 1
    return {
        "schema": REPORT_SCHEMA,
        "nodecheck_version": __version__,
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "matrix_version": matrix.version,
        "target": target or str(matrix.newest.version),
        "verdict": worst(n["verdict"] for n in nodes) if nodes else "unknown",
        "summary": summary,
        "nodes": nodes,
    }
