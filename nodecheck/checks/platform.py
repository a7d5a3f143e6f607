"""Architecture, distribution and cgroups against a release."""

from __future__ import annotations

from . import FAIL, PASS, UNKNOWN, WARN, Ctx, Finding, check


@check("arch", per_release=True)
def arch(ctx: Ctx) -> Finding:
    a = ctx.facts.kernel.arch
    src = ctx.release.archs_source
    if not a:
        return ctx.finding(UNKNOWN, f"architecture unknown: {ctx.facts.kernel.reason}", source=src)
    supported = ", ".join(ctx.release.archs)
    if ctx.release.supports_arch(a):
        return ctx.finding(PASS, f"{a} is supported by Sysbox {ctx.rel} ({supported})", source=src)
    return ctx.finding(FAIL, f"{a} ({ctx.facts.kernel.machine}) is not supported by Sysbox {ctx.rel}; "
                       f"supported: {supported}", "Use an amd64 or arm64 node (arm64 needs Sysbox 0.5.0+).", src)


def _versions_of(entries) -> str:
    """'10 (buster), 11 (bullseye)' or 'any version' for one distro's matrix entries."""
    out = []
    for e in entries:
        if e.versions is None:
            return "any version"
        out += [f"{v} ({e.codename})" if e.codename and len(e.versions) == 1 else v for v in e.versions]
    return ", ".join(out)


def _supported_list(release) -> str:
    """'ubuntu 18.04, 20.04, ...; debian 10, 11': what has a .deb for this release."""
    by_id: dict[str, list] = {}
    for e in release.distros:
        if e.support == "supported":
            by_id.setdefault(e.id, []).append(e)
    return "; ".join(f"{i} {', '.join(v for e in es for v in (e.versions or ('any',)))}" for i, es in by_id.items())


_SUPPORT = {"supported": ".deb package", "wip": "work in progress, no package", "ee-only": "Sysbox-EE only",
            "unsupported": "unsupported"}


def _debian_family(d) -> bool:
    return d.id.lower() in ("debian", "ubuntu") or any(x.lower() in ("debian", "ubuntu") for x in d.like)


@check("distro", per_release=True)
def distro(ctx: Ctx) -> Finding:
    d = ctx.facts.distro
    if not d.id:
        return ctx.finding(UNKNOWN, f"distribution unknown: {d.reason}")
    name = f"{d.id} {d.version_id or ''}".strip()
    entry = ctx.release.distro(d.id, d.version_id)
    if entry is None:
        same = [x for x in ctx.release.distros if x.id == d.id.lower()]
        min_k = (ctx.release.deb_preinst or {}).get("unsupported_distro_min_kernel")
        if same:
            # The distro is listed, this version is not: say which versions are, and what
            # that means here (untested, not refused), instead of "prefer a listed distro".
            vers = _versions_of(same)
            supports = sorted({_SUPPORT.get(x.support, x.support) for x in same})
            msg = (f"{d.id} {d.version_id or '(no VERSION_ID)'} is not one of the {d.id} versions Sysbox "
                   f"{ctx.rel} lists ({vers}: {'/'.join(supports)}); it may work but is untested upstream")
            if any(x.support == "supported" for x in same) and _debian_family(d):
                fix = ("Not a blocker: the sysbox-ce .deb installs on unlisted versions"
                       + (f" with kernel >= {min_k}" if min_k else "")
                       + f". For an upstream-tested install use {d.id} {vers.replace(', ', ' or ')}; otherwise "
                       f"try Sysbox on one {name} node before rolling it out.")
            else:
                fix = (f"Sysbox {ctx.rel} has no package for {d.id} (listed {vers}: {'/'.join(supports)}): build it "
                       "from source (github.com/nestybox/sysbox) and test it on this version, or use Ubuntu/Debian "
                       f"nodes ({_supported_list(ctx.release)}).")
            return ctx.finding(WARN, msg, fix, same[0].source)
        listed = _supported_list(ctx.release)
        msg = (f"{name} is not in Sysbox {ctx.rel}'s distro list (.deb packages for {listed}); "
               "it may work but is untested upstream")
        if _debian_family(d):
            fix = (f"{d.id} is Debian-based, so the sysbox-ce .deb can install"
                   + (f" (kernel >= {min_k})" if min_k else "")
                   + f"; for an upstream-tested install use one of: {listed}.")
        else:
            fix = (f"Sysbox CE ships only .deb packages ({listed}): on {d.id} build it from source "
                   "(github.com/nestybox/sysbox), or run the workloads on Ubuntu/Debian nodes.")
        return ctx.finding(WARN, msg, fix, ctx.release.source)
    if entry.support == "supported":
        return ctx.finding(PASS, f"{name} is supported by Sysbox {ctx.rel} (.deb package)", source=entry.source)
    if entry.support == "wip":
        return ctx.finding(WARN,
                           f"{name} is listed as work in progress for Sysbox {ctx.rel}: no package, build from source",
                           "Build Sysbox from source (github.com/nestybox/sysbox), or use Ubuntu/Debian nodes "
                           f"({_supported_list(ctx.release)}).",
                           entry.source)
    return ctx.finding(FAIL, f"{name} is supported only by Sysbox-EE ({entry.support}), not Sysbox CE {ctx.rel}",
                       f"Use Ubuntu or Debian nodes for Sysbox CE ({_supported_list(ctx.release)}); Sysbox-EE is "
                       "deprecated.", entry.source)


@check("cgroups", per_release=True)
def cgroups(ctx: Ctx) -> Finding:
    c = ctx.facts.cgroups
    src = ctx.release.cgroups_source
    if c.version is None:
        return ctx.finding(UNKNOWN, f"cgroup version unknown: {c.reason}", source=src)
    ok = ctx.release.cgroup_v2 if c.version == 2 else ctx.release.cgroup_v1
    label = "v2" if c.version == 2 else ("v1 (hybrid)" if c.hybrid else "v1")
    if ok:
        return ctx.finding(PASS, f"cgroup {label} is supported by Sysbox {ctx.rel}", source=src)
    return ctx.finding(FAIL, f"cgroup {label} is not supported by Sysbox {ctx.rel}",
                       "Use a newer Sysbox release (cgroup v2 from 0.4.0).", src)


CHECKS = [arch, distro, cgroups]
