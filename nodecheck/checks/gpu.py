"""NVIDIA GPUs: Coder supports them in CVMs in beta, on bare-metal clusters only."""

from __future__ import annotations

from . import PASS, UNKNOWN, WARN, Ctx, Finding, check


@check("gpu.nvidia", per_release=False)
def nvidia(ctx: Ctx) -> Finding:
    g, p = ctx.facts.gpu, ctx.facts.platform
    src = ctx.matrix.gpu.source
    if g.count is None:
        return ctx.finding(UNKNOWN, f"cannot list PCI devices: {g.reason}", source=src)
    if g.count == 0:
        return ctx.finding(PASS, "no NVIDIA GPU", source=src)
    drv = f"driver {g.driver_version} ({g.driver_flavour or 'flavour unknown'})" if g.driver_version else "no NVIDIA driver loaded"
    where = ("bare metal" if p.virtual is False else f"a virtual machine ({p.evidence})" if p.virtual
             else "unknown whether bare metal")
    return ctx.finding(WARN,
                       f"{g.count} NVIDIA GPU(s) bound to {', '.join(g.bindings)}, {drv}; this node is {where}. "
                       "GPUs in Coder CVMs are beta and bare-metal only; Sysbox itself does not pass devices through",
                       "Use bare-metal GPU nodes for GPU CVMs, or run GPU workspaces without Sysbox.", src)


CHECKS = [nvidia]
