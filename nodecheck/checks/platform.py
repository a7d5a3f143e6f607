"""Architecture, distribution and cgroups against a release."""

from __future__ import annotations

from . import FAIL, PASS, UNKNOWN, WARN, Ctx, Finding


def arch(ctx: Ctx) -> Finding:
    a = ctx.facts.kernel.arch
    src = ctx.release.raw.get("architectures", {}).get("source", "")
    if not a:
        return Finding("arch", UNKNOWN, f"architecture unknown: {ctx.facts.kernel.reason}", source=src)
    supported = ", ".join(ctx.release.archs)
    if ctx.release.supports_arch(a):
        return Finding("arch", PASS, f"{a} is supported by Sysbox {ctx.rel} ({supported})", source=src)
    return Finding("arch", FAIL, f"{a} ({ctx.facts.kernel.machine}) is not supported by Sysbox {ctx.rel}; "
                   f"supported: {supported}", "Use an amd64 or arm64 node (arm64 needs Sysbox 0.5.0+).", src)


def distro(ctx: Ctx) -> Finding:
    d = ctx.facts.distro
    if not d.id:
        return Finding("distro", UNKNOWN, f"distribution unknown: {d.reason}")
    name = f"{d.id} {d.version_id or ''}".strip()
    entry = ctx.release.distro(d.id, d.version_id)
    if entry is None:
        listed = sorted({x.id for x in ctx.release.distros})
        return Finding("distro", WARN,
                       f"{name} is not in Sysbox {ctx.rel}'s distro list ({', '.join(listed)}); "
                       "it may work but is untested upstream",
                       "Prefer a listed distro (Ubuntu LTS or Debian) for a supported install.",
                       ctx.release.source)
    if entry.support == "supported":
        return Finding("distro", PASS, f"{name} is supported by Sysbox {ctx.rel} (.deb package)", source=entry.source)
    if entry.support == "wip":
        return Finding("distro", WARN,
                       f"{name} is listed as work in progress for Sysbox {ctx.rel}: no package, build from source",
                       "Build Sysbox from source (github.com/nestybox/sysbox), or use Ubuntu/Debian nodes.",
                       entry.source)
    return Finding("distro", FAIL, f"{name} is supported only by Sysbox-EE ({entry.support}), not Sysbox CE {ctx.rel}",
                   "Use Ubuntu or Debian nodes for Sysbox CE (Sysbox-EE is deprecated).", entry.source)


def cgroups(ctx: Ctx) -> Finding:
    c = ctx.facts.cgroups
    src = ctx.release.raw.get("cgroups", {}).get("source", "")
    if c.version is None:
        return Finding("cgroups", UNKNOWN, f"cgroup version unknown: {c.reason}", source=src)
    ok = ctx.release.cgroup_v2 if c.version == 2 else ctx.release.cgroup_v1
    label = "v2" if c.version == 2 else ("v1 (hybrid)" if c.hybrid else "v1")
    if ok:
        return Finding("cgroups", PASS, f"cgroup {label} is supported by Sysbox {ctx.rel}", source=src)
    return Finding("cgroups", FAIL, f"cgroup {label} is not supported by Sysbox {ctx.rel}",
                   "Use a newer Sysbox release (cgroup v2 from 0.4.0).", src)


CHECKS = [arch, distro, cgroups]
