"""The typed report: what scoring produces and every renderer consumes.

    probe -> sections -> facts -> findings -> NodeReport -> Report -> table / JSON / JSONL / JUnit / NFD

`Finding` is the checks' own type (nodecheck/checks), reused here, not copied. `to_dict` is the one
place a model becomes the `nodecheck.report/v1` JSON (schemas/report.schema.json, tested against
these fields); `from_dict` is the one place a document from outside (a JSON Lines line kept by
--resume, a pod's report row, a test's literal) becomes the model, with the defaults a partial
document gets, so no renderer guesses at keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..checks import Finding
from ..vocab import UNKNOWN, VERDICTS, worst

REPORT_SCHEMA = "nodecheck.report/v1"


def finding_from_dict(d: Mapping) -> Finding:
    status = d.get("status", d.get("verdict", UNKNOWN))
    return Finding(id=str(d.get("id", "?")), status=str(status), message=str(d.get("message", "")),
                   remediation=str(d.get("remediation") or ""), source=str(d.get("source") or ""),
                   ignored=bool(d.get("ignored", False)), demoted_from=str(d.get("demoted_from") or ""),
                   caveat=str(d.get("caveat") or ""))


@dataclass
class HostError:
    """Why a node has no findings: it was never probed, or its output is not a probe's."""

    kind: str  # one of vocab.ERROR_KINDS (pipeline.error_node enforces it)
    message: str
    stderr_tail: str = ""

    def to_dict(self) -> dict:
        return {"kind": self.kind, "message": self.message, "stderr_tail": self.stderr_tail}

    @classmethod
    def from_dict(cls, d: Mapping) -> "HostError":
        return cls(str(d.get("kind", "error")), str(d.get("message", "")), str(d.get("stderr_tail", "")))


@dataclass
class ReleaseAdvice:
    """Which Sysbox releases the node can run, scored against the matrix."""

    target: str | None
    compatible_releases: list[str] = field(default_factory=list)
    recommended: str | None = None
    verdict_by_release: dict[str, str] | None = None  # absent for a node that could not be read
    # `nodecheck k8s nodes` (a prescan from the API): the releases the Node's facts do not rule out.
    not_ruled_out: list[str] | None = None

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"target": self.target, "compatible_releases": list(self.compatible_releases),
                             "recommended": self.recommended}
        if self.verdict_by_release is not None:
            d["verdict_by_release"] = dict(self.verdict_by_release)
        if self.not_ruled_out is not None:
            d["not_ruled_out"] = list(self.not_ruled_out)
        return d

    @classmethod
    def from_dict(cls, d: Mapping | None) -> "ReleaseAdvice":
        d = d or {}
        vbr, nro = d.get("verdict_by_release"), d.get("not_ruled_out")
        return cls(d.get("target"), list(d.get("compatible_releases") or []), d.get("recommended"),
                   dict(vbr) if vbr is not None else None, list(nro) if nro is not None else None)


@dataclass
class Method:
    """One deployment method's verdict for the node (checks/methods.py)."""

    status: str
    reason: str

    def to_dict(self) -> dict:
        return {"status": self.status, "reason": self.reason}


@dataclass
class NodeReport:
    """One node's result: findings against the target release, or the HostError that left none."""

    node: str
    source: str | None
    verdict: str
    checks: list[Finding]
    sysbox: ReleaseAdvice
    methods: dict[str, Method] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)  # Facts.summary(): flat dotted names
    error: HostError | None = None
    probe_problems: list[str] | None = None  # what the probe's output got wrong (capped)
    # `nodecheck k8s scan` rows: the Node object's facts, which facts it filled, where the row came from.
    kubernetes_node: dict | None = None
    from_node: list[str] | None = None
    kubernetes: dict | None = None

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"node": self.node, "source": self.source, "verdict": self.verdict,
                             "checks": [f.to_dict() for f in self.checks], "sysbox": self.sysbox.to_dict(),
                             "methods": {k: m.to_dict() for k, m in self.methods.items()},
                             "facts": dict(self.facts),
                             "error": self.error.to_dict() if self.error else None}
        for key in ("probe_problems", "kubernetes_node", "from_node", "kubernetes"):
            value = getattr(self, key)
            if value is not None:
                d[key] = value
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "NodeReport":
        name = d.get("node", d.get("name"))
        err = d.get("error")
        checks = [finding_from_dict(c) for c in d.get("checks") or []]
        return cls(node=name if isinstance(name, str) else "?", source=d.get("source"),
                   verdict=str(d.get("verdict") or UNKNOWN), checks=checks,
                   sysbox=ReleaseAdvice.from_dict(d.get("sysbox")),
                   methods={k: Method(str(m.get("status", UNKNOWN)), str(m.get("reason", "")))
                            for k, m in (d.get("methods") or {}).items()},
                   facts=dict(d.get("facts") or {}),
                   error=HostError.from_dict(err) if isinstance(err, Mapping) else None,
                   probe_problems=d.get("probe_problems"), kubernetes_node=d.get("kubernetes_node"),
                   from_node=d.get("from_node"), kubernetes=d.get("kubernetes"))


@dataclass
class Report:
    """Verdicts for one or more nodes against one Sysbox release of one matrix version."""

    nodecheck_version: str
    generated_at: str
    matrix_version: str | None
    target: str | None
    nodes: list[NodeReport]
    schema: str = REPORT_SCHEMA

    @property
    def verdict(self) -> str:
        return worst(n.verdict for n in self.nodes) if self.nodes else UNKNOWN

    @property
    def summary(self) -> dict[str, int]:
        out = {v: 0 for v in VERDICTS}
        for n in self.nodes:
            out[n.verdict] += 1
        return out

    def to_dict(self) -> dict:
        return {"schema": self.schema, "nodecheck_version": self.nodecheck_version,
                "generated_at": self.generated_at, "matrix_version": self.matrix_version,
                "target": self.target, "verdict": self.verdict, "summary": self.summary,
                "nodes": [n.to_dict() for n in self.nodes]}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Report":
        return cls(nodecheck_version=str(d.get("nodecheck_version", "")), generated_at=str(d.get("generated_at", "")),
                   matrix_version=d.get("matrix_version"), target=d.get("target"),
                   nodes=[NodeReport.from_dict(n) for n in d.get("nodes") or []],
                   schema=str(d.get("schema", REPORT_SCHEMA)))


def as_report(doc) -> Report:
    """A renderer's input as the model (a Report, or its JSON form)."""
    return doc if isinstance(doc, Report) else Report.from_dict(doc)


def as_node(doc) -> NodeReport:
    return doc if isinstance(doc, NodeReport) else NodeReport.from_dict(doc)


def node_dict(node) -> dict:
    """The JSON form of a node, whichever form it came in (a k8s row may carry keys of its own)."""
    return node.to_dict() if isinstance(node, NodeReport) else dict(node)
