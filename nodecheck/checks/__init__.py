"""Checks: facts + one matrix release -> findings. One check per concern, each a small
function in a module named for what it looks at; numbers and lists come from the matrix.

`evaluate` scores a node against every release (to list the ones it can run) and
returns the findings for the target release, the verdict, and the deployment methods.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable

from ..facts import Facts

if TYPE_CHECKING:  # report.model imports Finding from here: the model is imported where used
    from ..report.model import Method, ReleaseAdvice

from ..vocab import _ORDER, FAIL, PASS, UNKNOWN, WARN, worst  # noqa: F401 (re-exported: checks import them from here)


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
    """What a check sees: the node's facts, the release being scored, the whole matrix, and
    the running check's declared id (which `finding` stamps on what it builds)."""

    facts: Facts
    release: object  # nodecheck.matrix.Release
    matrix: object  # nodecheck.matrix.Matrix
    spec: "CheckSpec | None" = None

    @property
    def rel(self) -> str:
        return str(self.release.version)

    def finding(self, status: str, message: str, remediation: str = "", source: str = "", *,
                caveat: str = "", sub: str | None = None) -> Finding:
        """A finding under the running check's id; `sub` names one of a check's dynamic ids
        (`known-issue.<rule>`), only for a check that declared that prefix (`also`)."""
        if self.spec is None:
            raise AssertionError("Ctx.finding outside a registered check")
        if sub is None:
            fid = self.spec.id
        elif self.spec.also:
            fid = self.spec.also + sub
        else:
            raise AssertionError(f"{self.spec.id} declared no dynamic ids, got sub={sub!r}")
        return Finding(fid, status, message, remediation, source, caveat=caveat)


Check = Callable[[Ctx], "Finding | list[Finding]"]


@dataclass(frozen=True)
class CheckSpec:
    """A check's identity, declared once with @check: its id (what --ignore, NFD labels, the
    advisor and a crash report use), whether it reads the release being scored (else it runs
    once per node however many releases are scored), and an optional prefix for ids it makes
    up at run time (`known-issue.` + a matrix rule id)."""

    id: str
    per_release: bool
    fn: Check
    also: str = ""


def check(id: str, *, per_release: bool, also: str = ""):
    """Declare a function a check: `@check("kernel.idmap", per_release=True)`."""
    def deco(fn):
        fn.check_spec = CheckSpec(id, per_release, fn, also)
        return fn
    return deco


_MODULES = ("platform", "kernel", "security", "storage", "hostpaths", "runtime", "gpu", "known_issues")


_REGISTRY: list[CheckSpec] = []


def registry() -> list[CheckSpec]:
    """Every check in report order (module order, then each module's CHECKS order)."""
    import importlib
    if _REGISTRY:
        return _REGISTRY
    out = []
    for name in _MODULES:
        mod = importlib.import_module(f"{__name__}.{name}")
        for fn in mod.CHECKS:
            spec = getattr(fn, "check_spec", None)
            if spec is None:
                raise TypeError(f"{mod.__name__}.{fn.__name__} is in CHECKS without @check(id, per_release=...)")
            out.append(spec)
    _REGISTRY[:] = out
    return _REGISTRY


def run_one(spec: CheckSpec, ctx: Ctx) -> list[Finding]:
    """One check's findings. A check that raises is reported unknown under its declared id, so
    --ignore, NFD labels and the advisor still find it; a finding under an id the check did
    not declare is a bug in the check (AssertionError)."""
    ctx = replace(ctx, spec=spec)
    try:
        got = spec.fn(ctx)
    except Exception as exc:  # noqa: BLE001 - a check bug must not cost the node
        return [Finding(spec.id, UNKNOWN, f"internal error in check: {type(exc).__name__}: {exc}")]
    got = got if isinstance(got, list) else [got]
    for f in got:
        if f.id != spec.id and not (spec.also and f.id.startswith(spec.also)):
            raise AssertionError(f"check {spec.id} reported a finding under {f.id!r}")
    return got


def run_each(facts: Facts, matrix, release) -> list[tuple[CheckSpec, list[Finding]]]:
    """(check, its findings) for one release, no memo, no --ignore (for tests and tools)."""
    ctx = Ctx(facts, release, matrix)
    return [(spec, run_one(spec, ctx)) for spec in registry()]


def run_checks(facts: Facts, matrix, release, ignore=(), memo: dict | None = None) -> list[Finding]:
    """Findings for one release. With `memo`, checks that do not read the release run once
    per node however many releases are scored (a fleet scan scores every host 14 times)."""
    ctx = Ctx(facts, release, matrix)
    out: list[Finding] = []
    for spec in registry():
        if not spec.per_release and memo is not None and spec.id in memo:
            out.extend(replace(f) for f in memo[spec.id])
            continue
        got = run_one(spec, ctx)
        if not spec.per_release and memo is not None:
            memo[spec.id] = [replace(f) for f in got]
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
    """Every id a check can report against this matrix (what --ignore accepts, besides `all`):
    each check's declared id, plus one id per matrix rule under a check's declared prefix
    (`known-issue.<rule>`)."""
    ids = set()
    for spec in registry():
        ids.add(spec.id)
        if spec.also:
            ids.update(f"{spec.also}{r.id}" for r in matrix.rules)
    return sorted(ids)


def _release_verdict(facts: Facts, matrix, release, wanted: set[str], memo: dict, extra) -> str:
    """worst(run_checks(facts, matrix, release, ignore) + extra) for a release whose findings
    are not reported: statuses are read as --ignore would leave them (nothing is copied or
    demoted), release-independent checks first (from the memo), and it stops at the first
    fail, since nothing is worse (issue 15: 13 of the 14 releases scored per node need only
    this). The target release is always scored in full, so every check still runs per node."""
    ctx = Ctx(facts, release, matrix)
    out = PASS
    specs = registry()
    for spec in [s for s in specs if not s.per_release] + [s for s in specs if s.per_release]:
        if spec.per_release:
            got = run_one(spec, ctx)
        else:
            if spec.id not in memo:
                memo[spec.id] = [replace(f) for f in run_one(spec, ctx)]
            got = memo[spec.id]
        for f in got:
            s = f.status
            if s in (FAIL, UNKNOWN) and ("all" in wanted or f.id.lower() in wanted):
                s = WARN  # what apply_ignore makes of it
            if _ORDER[s] > _ORDER[out]:
                out = s
        if out == FAIL:
            return out
    if extra is not None:
        out = worst([out, *(f.status for f in apply_ignore(list(extra(release)), wanted))])
    return out


@dataclass
class Scoring:
    """What scoring one node yields: the target release's findings and their verdict, every
    release's verdict (`sysbox`), and the deployment methods' verdicts."""

    verdict: str
    findings: list[Finding]
    sysbox: ReleaseAdvice
    methods: dict[str, Method]


def evaluate(facts: Facts, matrix, *, target: str | None = None, ignore=(), extra=None) -> Scoring:
    """The scoring part of a report node: verdict, findings, sysbox releases, methods.

    `extra(release) -> [Finding]`: findings from outside the probe, scored with the node's
    own for every release (`nodecheck k8s scan` adds what only the Node object says)."""
    from ..report.model import ReleaseAdvice
    from .methods import advise

    target_rel = matrix.release(target) if target else matrix.newest
    per_release = {}
    findings_target: list[Finding] = []
    memo: dict = {}
    wanted = {i.lower() for i in ignore}
    for rel in matrix.releases:
        if rel is not target_rel:
            per_release[str(rel.version)] = _release_verdict(facts, matrix, rel, wanted, memo, extra)
            continue
        fs = run_checks(facts, matrix, rel, ignore, memo)
        if extra is not None:
            fs = fs + apply_ignore(list(extra(rel)), ignore)
        per_release[str(rel.version)] = worst(f.status for f in fs)
        findings_target = fs
    compatible = [v for v, verdict in per_release.items() if verdict in (PASS, WARN)]
    verdict = worst(f.status for f in findings_target)
    return Scoring(verdict, findings_target,
                   ReleaseAdvice(str(target_rel.version), compatible, compatible[-1] if compatible else None,
                                 per_release),
                   advise(facts, matrix, findings_target, verdict))
