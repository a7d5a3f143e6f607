"""Checks: facts + one matrix release -> findings. One check per concern, each a small
function in a module named for what it looks at; numbers and lists come from the matrix.

`evaluate` scores a node against every release (to list the ones it can run) and
returns the findings for the target release, the verdict, and the deployment methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..facts import Facts

PASS, WARN, FAIL, UNKNOWN = "pass", "warn", "fail", "unknown"
_ORDER = {PASS: 0, WARN: 1, UNKNOWN: 2, FAIL: 3}


@dataclass
class Finding:
    id: str
    status: str
    message: str
    remediation: str = ""
    source: str = ""
    ignored: bool = False

    def to_dict(self) -> dict:
        d = {"id": self.id, "status": self.status, "message": self.message,
             "remediation": self.remediation, "source": self.source}
        if self.ignored:
            d["ignored"] = True
        return d


@dataclass
class Ctx:
    """What a check sees: the node's facts, the release being scored, the whole matrix."""

    facts: Facts
    release: object  # nodecheck.matrix.Release
    matrix: object  # nodecheck.matrix.Matrix
    cache: dict = field(default_factory=dict)

    @property
    def rel(self) -> str:
        return str(self.release.version)


Check = Callable[[Ctx], "Finding | list[Finding]"]


def worst(statuses) -> str:
    out = PASS
    for s in statuses:
        if _ORDER[s] > _ORDER[out]:
            out = s
    return out


def _registry() -> list[Check]:
    from . import gpu, kernel, known_issues, platform, runtime, security, storage
    return [*platform.CHECKS, *kernel.CHECKS, *security.CHECKS, *storage.CHECKS, *runtime.CHECKS,
            *gpu.CHECKS, *known_issues.CHECKS]


def run_checks(facts: Facts, matrix, release, ignore=()) -> list[Finding]:
    ctx = Ctx(facts, release, matrix)
    out: list[Finding] = []
    for check in _registry():
        try:
            got = check(ctx)
        except Exception as exc:  # noqa: BLE001 - a check bug must not cost the node
            got = Finding(getattr(check, "check_id", check.__name__), UNKNOWN,
                          f"internal error in check: {type(exc).__name__}: {exc}")
        out.extend(got if isinstance(got, list) else [got])
    return apply_ignore(out, ignore)


def apply_ignore(findings: list[Finding], ignore) -> list[Finding]:
    """Demote the fail of ignored checks to warn, as kubeadm's --ignore-preflight-errors does."""
    wanted = {i.lower() for i in ignore}
    for f in findings:
        if f.status == FAIL and ("all" in wanted or f.id.lower() in wanted):
            f.status, f.ignored = WARN, True
    return findings


def evaluate(facts: Facts, matrix, *, target: str | None = None, ignore=()) -> dict:
    """The scoring part of a report node: verdict, checks, sysbox releases, methods."""
    from .methods import advise

    target_rel = matrix.release(target) if target else matrix.newest
    per_release = {}
    findings_target: list[Finding] = []
    for rel in matrix.releases:
        fs = run_checks(facts, matrix, rel, ignore)
        per_release[str(rel.version)] = worst(f.status for f in fs)
        if rel is target_rel:
            findings_target = fs
    compatible = [v for v, verdict in per_release.items() if verdict in (PASS, WARN)]
    verdict = worst(f.status for f in findings_target)
    return {
        "verdict": verdict,
        "checks": [f.to_dict() for f in findings_target],
        "sysbox": {
            "target": str(target_rel.version),
            "compatible_releases": compatible,
            "recommended": compatible[-1] if compatible else None,
            "verdict_by_release": per_release,
        },
        "methods": advise(facts, matrix, findings_target, verdict),
    }
