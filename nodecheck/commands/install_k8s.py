"""`nodecheck install` for Kubernetes nodes: show the rollout plan (which Nodes get which labels,
which are skipped or refused and why, managed-pool warnings), ask, apply, and say what was and
was not changed. The engine is nodecheck.install.k8s_run; this module only presents it."""

from __future__ import annotations

import click

from .. import exitcodes

ACTION_STYLE = {"label": "green", "skip": "red", "refuse": "red"}


def _esc(text) -> str:
    from rich.markup import escape

    return escape(str(text))


def plan_table(c, plan, *, title: str = "Kubernetes plan") -> None:
    """`plan`: a nodecheck.install.k8s_plan.K8sPlan."""
    from rich.table import Table

    c.print(f"Sysbox {_esc(plan.release)} ({_esc(plan.release_why)}); installer image "
            f"{_esc(plan.installer_image or 'none')}"
            + (f" (from {_esc(plan.installer_image_source)})" if plan.installer_image_source else ""))
    t = Table(title=title, title_justify="left")
    for col in ("host", "node", "verdict", "action", "labels / why"):
        t.add_column(col, overflow="fold")
    for a in plan.nodes:
        node = (a.node or "-") + (f" ({a.matched_by})" if a.matched_by else "")
        what = ",".join(f"{k}={v}" for k, v in a.labels.items()) if a.action == "label" else "; ".join(a.reasons)
        style = ACTION_STYLE.get(a.action, "white")
        t.add_row(_esc(a.host), _esc(node), _esc(a.verdict), f"[{style}]{_esc(a.action)}[/]", _esc(what))
    c.print(t)
    for a in plan.nodes:
        for w in a.warnings:
            c.print(f"[yellow]WARNING[/] {_esc(w)}")
    for e in plan.errors:
        c.print(f"[red]{_esc(e)}[/]")


def summary_table(c, run, plan, *, check: bool) -> None:
    from rich.table import Table

    s = Table(title="Kubernetes summary" + (" (check mode: nothing was changed)" if check else ""), title_justify="left")
    for col in ("what", "result", "message"):
        s.add_column(col, overflow="fold")
    for ch in run.changes:
        style = {"failed": "red", "changed": "yellow", "would change": "yellow"}.get(ch.result, "green")
        s.add_row(_esc(ch.what), f"[{style}]{_esc(ch.result)}[/]", _esc(ch.message))
    touched = {ch.what for ch in run.changes}
    for a in plan.nodes if plan is not None else ():
        what = f"Node labels of host {a.host}"
        if what not in touched:
            h = run.outcome.hosts.get(a.host)
            why = "; ".join(a.reasons) or (h.message if h else "") or "not reached"
            s.add_row(_esc(what), "[red]not changed[/]", _esc(why))
    c.print(s)
    if run.error:
        c.print(f"[red]{_esc(run.error)}[/]")
    c.print(f"Artifacts: {run.outcome.artifact_dir}")


def rollout(c, inventory: str, pdd, *, hosts: list[str], extravars: dict, opts, check: bool, yes: bool,
            on_event=None) -> int:
    """Plan, show, ask, apply for the Kubernetes hosts; the exit code of this part."""
    from ..install import InstallError, k8s_run

    c.print(f"[bold]Kubernetes plan[/] for {len(hosts)} host(s): reads the Nodes, changes nothing")
    try:
        pr = k8s_run.run_plan(inventory, pdd, hosts=hosts, extravars=extravars, opts=opts, on_event=on_event)
    except InstallError as exc:
        c.print(f"[red]nodecheck install: {_esc(exc)}[/]")
        return exitcodes.UNKNOWN
    if pr.plan is None:
        c.print(f"[red]nodecheck install: {_esc(pr.error or 'no Kubernetes plan was made')}[/]")
        c.print(f"Nothing was changed. Artifacts: {pr.outcome.artifact_dir}")
        return exitcodes.UNKNOWN
    plan_table(c, pr.plan)
    if pr.error or pr.plan.errors:
        c.print(f"Nothing was changed. Artifacts: {pr.outcome.artifact_dir}")
        return exitcodes.FAIL
    approved = pr.plan.labelled
    cleared = [a.host for a in pr.plan.cleared]
    skipped = [a.host for a in pr.plan.nodes if a.action != "label"]
    if not cleared:
        c.print(f"No Kubernetes node cleared the plan; nothing was changed. Artifacts: {pr.outcome.artifact_dir}")
        return exitcodes.FAIL
    c.print(f"{'Check' if check else 'Roll out'} on {len(cleared)} node(s): "
            + ", ".join(f"{h} ({pr.plan.node_of(h) or '?'})" for h in cleared)
            + (f"; leaving {len(skipped)} alone: {', '.join(skipped)}" if skipped else ""))
    if not yes and not check and not click.confirm("Proceed with the Kubernetes rollout?", default=False):
        c.print("Nothing changed.")
        return exitcodes.FAIL
    try:
        run = k8s_run.run_apply(inventory, pdd, hosts=cleared, extravars=extravars, approved=approved, check=check,
                                opts=opts, on_event=on_event)
    except InstallError as exc:
        c.print(f"[red]nodecheck install: {_esc(exc)}[/]")
        return exitcodes.UNKNOWN
    summary_table(c, run, pr.plan, check=check)
    ok = run.outcome.status == "successful" and not run.error and not skipped
    return exitcodes.PASS if ok else exitcodes.FAIL


def uninstall(c, inventory: str, pdd, *, hosts: list[str] | None, extravars: dict, opts, check: bool, yes: bool,
              on_event=None) -> int:
    from ..install import InstallError, k8s_run

    c.print("[bold]Kubernetes uninstall[/]: sysbox-deploy-k8s (with upstream's cleanup on nodes where Sysbox runs), "
            "the sysbox-runc RuntimeClass, RBAC and ConfigMap, the FUSE device plugin, and the "
            "sysbox-install / smarter-device-manager labels of the inventory's Nodes")
    if not yes and not check and not click.confirm("Proceed?", default=False):
        c.print("Nothing changed.")
        return exitcodes.FAIL
    try:
        run = k8s_run.run_uninstall(inventory, pdd, hosts=hosts, extravars=extravars, check=check, opts=opts,
                                    on_event=on_event)
    except InstallError as exc:
        c.print(f"[red]nodecheck install: {_esc(exc)}[/]")
        return exitcodes.UNKNOWN
    summary_table(c, run, None, check=check)
    return exitcodes.PASS if run.outcome.status == "successful" and not run.error else exitcodes.FAIL
