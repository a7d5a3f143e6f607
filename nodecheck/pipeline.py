"""The one-way flow in one place: probe text -> sections -> facts -> findings -> report node.

Every front end (local scan, SSH fleet, the Ansible action plugin, the pod) calls these
functions, so there is one implementation of parsing and scoring.
"""

from __future__ import annotations

import datetime as _dt

from . import __version__, sections
from .facts import Facts, gather
from .report.model import (REPORT_SCHEMA, HostError, Method, NodeReport, ReleaseAdvice, Report,  # noqa: F401
                           as_node, finding_from_dict, node_dict)
from .vocab import ERROR_KINDS, UNKNOWN, VERDICTS, worst  # noqa: F401 (re-exported for callers of pipeline)


def facts_from_output(stdout: str) -> Facts:
    return gather(sections.parse(stdout))


def score_facts(name: str, facts: Facts, *, matrix, target: str | None = None, ignore=(),
                source: str | None = None, extra=None) -> NodeReport:
    """Facts -> findings -> the node's report (every release scored; findings for the target)."""
    from .checks import evaluate  # the checks need the matrix package; import on use
    s = evaluate(facts, matrix, target=target, ignore=ignore, extra=extra)
    problems = facts.probe.get("problems") or []
    return NodeReport(node=name, source=source, verdict=s.verdict, checks=s.findings, sysbox=s.sysbox,
                      methods=s.methods, facts=facts.summary(), error=None,
                      probe_problems=cap_problems(problems) if problems else None)


def score_output(name: str, stdout: str, *, matrix, target: str | None = None, ignore=(),
                 source: str | None = None) -> NodeReport:
    """Score one probe run's stdout. A run without a probe header is a probe-error node."""
    parsed = sections.parse(stdout)
    if parsed.version == 0:
        return host_error(name, "probe-error", "; ".join(parsed.problems), stderr_tail=stdout[-500:],
                          matrix=matrix, target=target, source=source)
    return score_facts(name, gather(parsed), matrix=matrix, target=target, ignore=ignore, source=source)


def score_run(name: str, run, *, matrix, target: str | None = None, ignore=(),
              source: str | None = None) -> NodeReport:
    """The one classifier of a probe run, whatever carried it: a `transport.ProbeRun` (local,
    --root, the pod, the Ansible plugin) or a `fleet.HostResult` (SSH), settled by
    `transport.settle` (the same rules for all). A run that is not `ok` is a HostError node;
    an ok run is scored from the sections settle already parsed."""
    from .transport import settle
    run = settle(run)
    if not run.ok:
        return host_error(name, run.status, run.message, stderr_tail=run.stderr, matrix=matrix,
                          target=target, source=source)
    return score_facts(name, gather(run.parsed), matrix=matrix, target=target, ignore=ignore, source=source)


def host_error(name: str, kind: str, message: str, *, stderr_tail: str = "", matrix=None,
               target: str | None = None, source: str | None = None) -> NodeReport:
    """A node the scan could not read: verdict unknown, with what went wrong."""
    if kind not in ERROR_KINDS:
        raise ValueError(f"unknown error kind {kind!r}")
    tgt = target or (str(matrix.newest.version) if matrix is not None else None)
    return NodeReport(node=name, source=source, verdict=UNKNOWN, checks=[], sysbox=ReleaseAdvice(tgt),
                      methods={}, facts={}, error=HostError(kind, message, stderr_tail[-2000:]))


# The JSON forms, for callers that still pass report nodes around as dicts (and add keys of their own).
def node_from_facts(name: str, facts: Facts, **kw) -> dict:
    return score_facts(name, facts, **kw).to_dict()


def node_from_output(name: str, stdout: str, **kw) -> dict:
    return score_output(name, stdout, **kw).to_dict()


def error_node(name: str, kind: str, message: str, **kw) -> dict:
    return host_error(name, kind, message, **kw).to_dict()


MAX_PROBLEMS = 50  # a node can print any amount of junk; a report line stays small


def cap_problems(problems: list[str]) -> list[str]:
    """At most MAX_PROBLEMS entries of at most 300 characters; the last says how many were dropped."""
    out = [p if len(p) <= 300 else p[:297] + "..." for p in problems[:MAX_PROBLEMS - 1]]
    if len(problems) >= MAX_PROBLEMS:
        rest = len(problems) - len(out)
        out.append(problems[MAX_PROBLEMS - 1][:300] if rest == 1 else f"... and {rest} more problems")
    return out


def build(nodes, *, matrix, target: str | None = None) -> Report:
    """The typed report over NodeReports (a dict node, e.g. a --resume line, is read into the model)."""
    return Report(nodecheck_version=__version__,
                  generated_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                  matrix_version=matrix.version, target=target or str(matrix.newest.version),
                  nodes=[as_node(n) for n in nodes])


def build_report(nodes: list, *, matrix, target: str | None = None) -> dict:
    """The report's JSON form. Nodes given as dicts are kept as they are (a k8s row carries keys
    of its own); verdict and summary come from the typed report, so they cannot disagree."""
    doc = build(nodes, matrix=matrix, target=target).to_dict()
    doc["nodes"] = [node_dict(n) for n in nodes]
    return doc
