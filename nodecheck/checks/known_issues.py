"""Known-broken combinations: the matrix's rules, evaluated against this node's facts.

A rule whose facts are unknown is reported as unknown, except when the missing fact is a
runtime that is certainly not installed (no Docker means no Docker 29 problem).
"""

from __future__ import annotations

from . import FAIL, PASS, UNKNOWN, WARN, Ctx, Finding, check

# Rules a dedicated check decides with better evidence than the rule's condition.
_DECIDED_ELSEWHERE = {"ubuntu-25.04-apparmor-fusermount3": "apparmor.fusermount3"}
_RUNTIME_OF = {"runtime.docker.version": "docker", "runtime.containerd.version": "containerd",
               "kubelet.version": "kubelet"}


def rule_facts(ctx: Ctx) -> dict:
    f = ctx.facts.summary()
    f["kernel.version"] = f.get("kernel.release")
    f["sysbox.release"] = ctx.rel
    return f


@check("known-issues", per_release=True, also="known-issue.")
def known_issues(ctx: Ctx) -> list[Finding]:
    facts = rule_facts(ctx)
    rt = ctx.facts.runtimes
    k8s = rt.get("kubelet").installed
    if k8s is None and rt.kubelet_configured:
        k8s = True
    scope_present = {"kubernetes": k8s, "docker": rt.get("docker").installed}
    out = []
    checked = 0
    for rule in ctx.release.rules:
        if rule.id in _DECIDED_ELSEWHERE or rule.severity == "info":
            continue
        present = scope_present.get(rule.scope, True)
        if present is False:
            continue
        checked += 1
        hit = rule.evaluate(facts)
        if hit and present is None:
            # The condition holds, but whether this node runs what the rule is about does not
            # show (no package database): unknown, not a failure.
            what = "a Kubernetes node" if rule.scope == "kubernetes" else "a Docker host"
            out.append(ctx.finding(UNKNOWN,
                                   f"applies if this is {what}, which cannot be told here: {rule.message}",
                                   rule.fix, rule.source, sub=rule.id))
            continue
        if hit is None:
            missing = [n for n in sorted(rule.facts) if facts.get(n) in (None, "")]
            absent = [n for n in missing if n in _RUNTIME_OF and rt.get(_RUNTIME_OF[n]).installed is False]
            if len(absent) == len(missing):
                continue
            unknown = [n for n in missing if n not in absent]
            out.append(ctx.finding(UNKNOWN,
                                   f"cannot tell whether this applies ({', '.join(unknown)} unknown): {rule.message}",
                                   rule.fix, rule.source, sub=rule.id))
        elif hit:
            out.append(ctx.finding(FAIL if rule.severity == "fail" else WARN,
                                   rule.message, rule.fix, rule.source, sub=rule.id))
    if not out:
        out.append(ctx.finding(PASS, f"no known-broken combination matches ({checked} rules checked "
                               f"for Sysbox {ctx.rel})", source=ctx.release.source))
    return out


CHECKS = [known_issues]
