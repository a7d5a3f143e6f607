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


def plan_table(c, plan: dict, *, title: str = "Kubernetes plan") -> None:
    from rich.table import Table

    c.print(f"Sysbox {_esc(plan.get('release'))} ({_esc(plan.get('release_why', ''))}); installer image "
            f"{_esc(plan.get('installer_image') or 'none')}"
            + (f" (from {_esc(plan.get('installer_image_source'))})" if plan.get("installer_image_source") else ""))
    t = Table(title=title, title_justify="left")
    for col in ("host", "node", "verdict", "action", "labels / why"):
        t.add_column(col, overflow="fold")
    for a in plan.get("nodes") or []:
        node = a.get("node") or "-"
        if a.get("matched_by"):
            node += f" ({a['matched_by']})"
        what = ",".join(f"{k}={v}" for k, v in (a.get("labels") or {}).items()) if a.get("action") == "label" \
            else "; ".join(a.get("reasons") or [])
        style = ACTION_STYLE.get(a.get("action"), "white")
        t.add_row(_esc(a.get("host")), _esc(node), _esc(a.get("verdict")), f"[{style}]{_esc(a.get('action'))}[/]",
                  _esc(what))
    c.print(t)
    for a in plan.get("nodes") or []:
        for w in a.get("warnings") or []:
            c.print(f"[yellow]WARNING[/] {_esc(w)}")
    for e in plan.get("errors") or []:
        c.print(f"[red]{_esc(e)}[/]")


def summary_table(c, run, plan: dict | None, *, check: bool) -> None:
    from rich.table import Table

    s = Table(title="Kubernetes summary" + (" (check mode: nothing was changed)" if check else ""), title_justify="left")
    for col in ("what", "result", "message"):
        s.add_column(col, overflow="fold")
    for ch in run.changes:
        style = {"failed": "red", "changed": "yellow", "would change": "yellow"}.get(ch.result, "green")
        s.add_row(_esc(ch.what), f"[{style}]{_esc(ch.result)}[/]", _esc(ch.message))
    touched = {ch.what for ch in run.changes}
    for a in (plan or {}).get("nodes") or []:
        what = f"Node labels of host {a.get('host')}"
        if what not in touched:
            h = run.outcome.hosts.get(a.get("host"))
            why = "; ".join(a.get("reasons") or []) or (h.message if h else "") or "not reached"
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
    if pr.error or pr.plan.get("errors"):
        c.print(f"Nothing was changed. Artifacts: {pr.outcome.artifact_dir}")
        return exitcodes.FAIL
    approved = pr.plan.get("labelled") or {}
    cleared = [a["host"] for a in pr.plan["nodes"] if a.get("action") == "label"]
    skipped = [a["host"] for a in pr.plan["nodes"] if a.get("action") != "label"]
    if not cleared:
        c.print(f"No Kubernetes node cleared the plan; nothing was changed. Artifacts: {pr.outcome.artifact_dir}")
        return exitcodes.FAIL
    c.print(f"{'Check' if check else 'Roll out'} on {len(cleared)} node(s): "
            + ", ".join(f"{h} ({approved_node(pr.plan, h)})" for h in cleared)
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


def approved_node(plan: dict, host: str) -> str:
    return next((a.get("node") or "?" for a in plan.get("nodes") or [] if a.get("host") == host), "?")


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
