"""`nodecheck install`: preflight the inventory, then roll Sysbox out to the hosts that passed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .. import exitcodes
from ._common import load_matrix

VERDICT_STYLE = {"pass": "green", "warn": "yellow", "fail": "red", "unknown": "magenta",
                 "unreachable": "red", "error": "red"}


def _console():
    from rich.console import Console

    # rich honours NO_COLOR and turns colour off when stdout is not a terminal.
    return Console(highlight=False, soft_wrap=True)


class Progress:
    """Live per-host progress from runner events: one line per host result."""

    def __init__(self, console, phase: str):
        self.c = console
        self.phase = phase
        self.task = ""

    def __call__(self, ev: dict) -> None:
        kind = ev.get("event", "")
        data = ev.get("event_data") or {}
        if kind == "playbook_on_task_start":
            self.task = data.get("task", "")
            return
        host = data.get("host")
        if not host or kind not in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable"):
            return
        res = data.get("res") or {}
        if kind == "runner_on_unreachable":
            self.c.print(f"  [red]{host:<20} unreachable[/] {_short(res.get('msg'))}", markup=True)
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            self.c.print(f"  [red]{host:<20} FAILED[/]  {data.get('task', self.task)}: {_short(res.get('msg'))}")
        elif kind == "runner_on_ok" and res.get("changed"):
            self.c.print(f"  [yellow]{host:<20} changed[/] {data.get('task', self.task)}")
        elif kind == "runner_on_ok" and self.phase == "preflight" and data.get("task_action") == "nodecheck_preflight":
            v = res.get("verdict", "?")
            self.c.print(f"  {host:<20} [{VERDICT_STYLE.get(v, 'white')}]{v}[/]")


def _short(msg, n: int = 300) -> str:
    text = " ".join(str(msg or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


@click.command("install")
@click.option("-i", "--inventory", required=True, metavar="FILE", help="Ansible inventory of the hosts to install.")
@click.option("--sysbox", "target", metavar="RELEASE", help="Sysbox release to install (default: the matrix's newest).")
@click.option("--check", is_flag=True, help="Dry run (ansible --check --diff): change nothing, show what would change.")
@click.option("--limit", metavar="PATTERN", help="Only these hosts or groups (Ansible --limit syntax).")
@click.option("--ignore", multiple=True, metavar="CHECK_ID",
              help="Do not let this check's fail stop a host (repeatable; same ids as `nodecheck scan`).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (required when stdin is not a terminal).")
@click.option("--matrix", "matrix_path", metavar="FILE", help="Use this matrix file instead of the bundled one.")
@click.option("--sysbox-deb-url", metavar="URL", help="Download sysbox-ce from this URL (internal mirror); needs --sysbox-deb-sha256.")
@click.option("--sysbox-deb-sha256", metavar="SHA256", help="SHA256 of the .deb given by --sysbox-deb-url or --sysbox-deb-path.")
@click.option("--sysbox-deb-path", metavar="FILE", help="Copy sysbox-ce from this file on this machine (air-gapped).")
@click.option("--private-data-dir", metavar="DIR",
              help="ansible-runner private data dir; its artifacts/ keep both runs (default: a new dir under ~/.cache/nodecheck/install).")
@click.option("-e", "--extra-var", "extra", multiple=True, metavar="KEY=VALUE",
              help="Extra role variable for the install run (repeatable), e.g. -e containerd_pin_enabled=false.")
def install(inventory, target, check, limit, ignore, yes, matrix_path, sysbox_deb_url, sysbox_deb_sha256,
            sysbox_deb_path, private_data_dir, extra):
    """Install Sysbox with Ansible on the hosts that pass the preflight.

    First the preflight role probes every selected host (one exec per host) and scores it;
    hosts whose verdict is fail are skipped, with the reason. After confirmation the
    playbook (roles containerd_pin and sysbox) runs through ansible-runner on the hosts
    that passed, with live progress, then a per-host summary and the artifacts path.

    Exit codes: 0 every selected host ended installed (with --check: would install
    cleanly); 2 a host failed, was unreachable or was skipped by the preflight; 3 the run
    could not start; 64 usage error (including no --yes without a terminal).
    """
    from .. import install as engine

    if not Path(inventory).exists():
        raise click.BadParameter(f"{inventory!r} does not exist", param_hint="-i/--inventory")
    if sysbox_deb_url and sysbox_deb_path:
        raise click.UsageError("--sysbox-deb-url and --sysbox-deb-path are alternatives: pass one")
    if (sysbox_deb_url or sysbox_deb_path) and not sysbox_deb_sha256:
        raise click.UsageError("--sysbox-deb-url/--sysbox-deb-path need --sysbox-deb-sha256: nodecheck never installs an unverified .deb")
    if sysbox_deb_sha256 and (len(sysbox_deb_sha256) != 64 or any(c not in "0123456789abcdefABCDEF" for c in sysbox_deb_sha256)):
        raise click.BadParameter("not a SHA256 (64 hex digits)", param_hint="--sysbox-deb-sha256")
    if sysbox_deb_path and not Path(sysbox_deb_path).is_file():
        raise click.BadParameter(f"{sysbox_deb_path!r} is not a file", param_hint="--sysbox-deb-path")
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if not yes and not check and not interactive:
        raise click.UsageError("refusing to change hosts without confirmation: stdin is not a terminal, pass --yes")

    if matrix_path:
        load_matrix(matrix_path, target)

    extravars: dict = {}
    if target:
        extravars["nodecheck_sysbox_release"] = target
    if ignore:
        extravars["nodecheck_ignore"] = list(ignore)
    if matrix_path:
        extravars["nodecheck_matrix"] = str(Path(matrix_path).resolve())
    deb_vars: dict = {}
    if sysbox_deb_url:
        deb_vars["sysbox_deb_url"] = sysbox_deb_url
    if sysbox_deb_path:
        deb_vars["sysbox_deb_path"] = str(Path(sysbox_deb_path).resolve())
    if sysbox_deb_sha256:
        deb_vars["sysbox_deb_sha256"] = sysbox_deb_sha256.lower()
    for kv in extra:
        if "=" not in kv:
            raise click.BadParameter(f"{kv!r} is not KEY=VALUE", param_hint="-e/--extra-var")
        k, v = kv.split("=", 1)
        import yaml

        deb_vars[k] = yaml.safe_load(v) if v else ""

    c = _console()
    try:
        pdd = engine.private_data_dir(private_data_dir)
        c.print(f"[bold]Preflight[/] ({_escape(inventory)}{', limit ' + _escape(limit) if limit else ''})")
        pre, pre_run = engine.run_preflight(inventory, pdd, limit=limit, extravars=extravars,
                                            on_event=Progress(c, "preflight"))
    except engine.InstallError as exc:
        c.print(f"[red]nodecheck install: {_escape(str(exc))}[/]")
        return exitcodes.UNKNOWN
    if not pre:
        c.print("[red]No host matched the inventory and --limit.[/]")
        return exitcodes.USAGE

    from rich.table import Table

    t = Table(title="Plan", title_justify="left")
    for col in ("host", "verdict", "action", "why"):
        t.add_column(col, overflow="fold")
    for name, p in sorted(pre.items()):
        style = VERDICT_STYLE.get(p.verdict, "white")
        t.add_row(name, f"[{style}]{p.verdict}[/]", "install" if p.install else "[red]skip[/]", _escape(_short(p.reason, 400)))
    c.print(t)
    passing = sorted(n for n, p in pre.items() if p.install)
    skipped = sorted(n for n, p in pre.items() if not p.install)
    if not passing:
        c.print(f"No host passed the preflight; nothing installed. Artifacts: {pre_run.artifact_dir}")
        return exitcodes.FAIL
    verb = "Check (dry run)" if check else "Install Sysbox"
    c.print(f"{verb} on {len(passing)} host(s): {', '.join(passing)}"
            + (f"; skipping {len(skipped)}: {', '.join(skipped)}" if skipped else ""))
    if not yes and not check:
        if not click.confirm("Proceed?", default=False):
            c.print("Nothing changed.")
            return exitcodes.FAIL  # no host was installed

    c.print(f"[bold]{verb}[/]")
    try:
        outcome = engine.run_install(inventory, pdd, hosts=passing, extravars={**extravars, **deb_vars},
                                     check=check, on_event=Progress(c, "install"))
    except engine.InstallError as exc:
        c.print(f"[red]nodecheck install: {_escape(str(exc))}[/]")
        return exitcodes.UNKNOWN

    s = Table(title="Summary" + (" (check mode: nothing was changed)" if check else ""), title_justify="left")
    for col in ("host", "result", "ok", "changed", "failed", "skipped", "unreachable", "message"):
        s.add_column(col, overflow="fold")
    all_ok = not skipped
    for name in sorted(set(outcome.hosts) | set(skipped)):
        if name in skipped:
            p = pre[name]
            s.add_row(name, f"[red]skipped ({p.verdict})[/]", "", "", "", "", "", _escape(_short(p.reason, 200)))
            continue
        h = outcome.hosts[name]
        if h.unreachable:
            result = "[red]unreachable[/]"
        elif h.failed:
            result = "[red]failed[/]"
        elif h.installed:
            result = "[green]would install[/]" if check else "[green]installed[/]"
        else:
            result = "[red]not run[/]"
        all_ok = all_ok and h.installed
        s.add_row(name, result, str(h.ok), str(h.changed), str(h.failed), str(h.skipped), str(h.unreachable),
                  _escape(_short(h.message, 200)))
    c.print(s)
    c.print(f"Artifacts: {outcome.artifact_dir} (preflight: {pre_run.artifact_dir})")
    return exitcodes.PASS if all_ok and outcome.status == "successful" else exitcodes.FAIL
