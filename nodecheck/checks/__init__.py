"""Checks: facts + one matrix release -> findings. One check per concern, each a small
function in a module named for what it looks at; numbers and lists come from the matrix.

`evaluate` scores a node against every release (to list the ones it can run) and
returns the findings for the target release, the verdict, and the deployment methods.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    demoted_from: str = ""  # the status --ignore turned into warn (fail or unknown)
    caveat: str = ""  # something the user must know even when the check passes (shown without -v)

    def to_dict(self) -> dict:
        d = {"id": self.id, "status": self.status, "message": self.message,
             "remediation": self.remediation, "source": self.source}
        if self.ignored:
            d["ignored"] = True
            d["demoted_from"] = self.demoted_from
        if self.caveat:
            d["caveat"] = self.caveat
        return d


@dataclass
class Ctx:
    """What a check sees: the node's facts, the release being scored, the whole matrix."""

    facts: Facts
    release: object  # nodecheck.matrix.Release
    matrix: object  # nodecheck.matrix.Matrix

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


def _registry() -> list[tuple[Check, bool]]:
    """Every check in report order, with whether it reads the release being scored."""
    from . import gpu, kernel, known_issues, platform, runtime, security, storage
    per_release = (platform, kernel, runtime, known_issues)
    return [(c, m in per_release) for m in (platform, kernel, security, storage, runtime, gpu, known_issues)
            for c in m.CHECKS]


def run_checks(facts: Facts, matrix, release, ignore=(), memo: dict | None = None) -> list[Finding]:
    """Findings for one release. With `memo`, checks that do not read the release run once
    per node however many releases are scored (a fleet scan scores every host 14 times)."""
    ctx = Ctx(facts, release, matrix)
    out: list[Finding] = []
    for check, per_release in _registry():
        if not per_release and memo is not None and check in memo:
            out.extend(replace(f) for f in memo[check])
            continue
        try:
            got = check(ctx)
        except Exception as exc:  # noqa: BLE001 - a check bug must not cost the node
            got = Finding(getattr(check, "check_id", check.__name__), UNKNOWN,
                          f"internal error in check: {type(exc).__name__}: {exc}")
        got = got if isinstance(got, list) else [got]
        if not per_release and memo is not None:
            memo[check] = [replace(f) for f in got]
        out.extend(got)
    return apply_ignore(out, ignore)


def apply_ignore(findings: list[Finding], ignore) -> list[Finding]:
    """Demote fail *and unknown* of ignored checks to warn, as kubeadm's
    --ignore-preflight-errors does for errors. Unknown too, so that a CI gate is not stuck
    on a fact this node cannot show (e.g. no kernel config): ignoring it is the user's
    explicit, recorded decision (`ignored`, `demoted_from`). Nodes that could not be read at
    all (unreachable, timeout) have no checks and stay unknown."""
    wanted = {i.lower() for i in ignore}
    for f in findings:
        if f.status in (FAIL, UNKNOWN) and ("all" in wanted or f.id.lower() in wanted):
            f.status, f.ignored, f.demoted_from = WARN, True, f.status
    return findings


def check_ids(matrix) -> list[str]:
    """Every id a check can report against this matrix (what --ignore accepts, besides `all`).

    Derived, not listed by hand, so a new check cannot be missed: every check is run on a
    node with no facts at all (each returns its unknown finding, under its id), plus
    `known-issues` and one `known-issue.<rule>` per matrix rule."""
    from ..sections import parse
    from ..facts import gather

    empty = gather(parse(""))
    ids = {"known-issues"} | {f"known-issue.{r.id}" for r in matrix.rules}
    for rel in matrix.releases:
        ids.update(f.id for f in run_checks(empty, matrix, rel))
    return sorted(ids)


def evaluate(facts: Facts, matrix, *, target: str | None = None, ignore=(), extra=None) -> dict:
    """The scoring part of a report node: verdict, checks, sysbox releases, methods.

    `extra(release) -> [Finding]`: findings from outside the probe, scored with the node's
    own for every release (`nodecheck k8s scan` adds what only the Node object says)."""
    from .methods import advise

    target_rel = matrix.release(target) if target else matrix.newest
    per_release = {}
    findings_target: list[Finding] = []
    memo: dict = {}
    for rel in matrix.releases:
        fs = run_checks(facts, matrix, rel, ignore, memo)
        if extra is not None:
            fs = fs + apply_ignore(list(extra(rel)), ignore)
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
