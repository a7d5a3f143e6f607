"""`nodecheck install`: plan (preflight + check mode) the inventory, show it, then roll Sysbox
out to the hosts the plan cleared."""

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
        elif kind == "runner_on_ok" and res.get("changed") and self.phase == "install":
            self.c.print(f"  [yellow]{host:<20} changed[/] {data.get('task', self.task)}")
        elif kind == "runner_on_ok" and self.phase == "plan" and data.get("task_action") == "nodecheck_preflight":
            v = res.get("verdict", "?")
            self.c.print(f"  {host:<20} [{VERDICT_STYLE.get(v, 'white')}]{v}[/]")


def _short(msg, n: int = 300) -> str:
    text = " ".join(str(msg or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _plan_table(c, plans: dict, check: bool):
    from rich.table import Table

    t = Table(title="Plan" + (" (check mode)" if check else ""), title_justify="left")
    for col in ("host", "verdict", "target", "action", "what will change / why"):
        t.add_column(col, overflow="fold")
    for name, p in sorted(plans.items()):
        style = VERDICT_STYLE.get(p.verdict, "white")
        lines = [f"{i.action} {i.what}" + (f" ({i.detail})" if i.detail else "") for i in p.items]
        if p.install and not lines and p.would_change:
            lines = [f"would change: {w}" for w in p.would_change]
        if not p.install or p.reason:
            lines = lines + [_short(p.reason, 400)] if p.reason else lines
        if p.install and p.pin_note:  # the user's step: no role can pin the runc inside an image
            lines.append("you: " + _short(p.pin_note, 400))
        action = {"skip": "[red]skip[/]", "up to date": "[green]up to date[/]"}.get(p.action, p.action)
        t.add_row(name, f"[{style}]{p.verdict}[/]", p.target_kind or "?", action,
                  _escape("\n".join(lines) if lines else "nothing to change"))
    c.print(t)


@click.command("install")
@click.option("-i", "--inventory", required=True, metavar="FILE", help="Ansible inventory of the hosts to install.")
@click.option("--sysbox", "target", metavar="RELEASE", help="Sysbox release to install (default: the one the preflight recommends per host).")
@click.option("--check", is_flag=True, help="Dry run (ansible --check --diff): show the plan and what would change; change nothing.")
@click.option("--limit", metavar="PATTERN", help="Only these hosts or groups (Ansible --limit syntax).")
@click.option("--ignore", multiple=True, metavar="CHECK_ID",
              help="Do not let this check's fail stop a host (repeatable; same ids as `nodecheck scan`).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (required when stdin is not a terminal).")
@click.option("--matrix", "matrix_path", metavar="FILE", help="Use this matrix file instead of the bundled one.")
@click.option("--sysbox-deb-url", metavar="URL", help="Download sysbox-ce from this URL (internal mirror); needs --sysbox-deb-sha256.")
@click.option("--sysbox-deb-sha256", metavar="SHA256", help="SHA256 of the .deb given by --sysbox-deb-url or --sysbox-deb-path.")
@click.option("--sysbox-deb-path", metavar="FILE", help="Copy sysbox-ce from this file on this machine (air-gapped).")
@click.option("--accept-new-host-keys", is_flag=True,
              help="Trust and record keys of hosts not yet in known_hosts (OpenSSH accept-new), as `nodecheck scan` does. "
                   "Without it an unknown key fails the host; a changed key always fails it.")
@click.option("--known-hosts", metavar="FILE", help="known_hosts file to verify host keys against (default: ~/.ssh/known_hosts or the inventory's UserKnownHostsFile).")
@click.option("--force-plain-host", is_flag=True,
              help="Take the plain-host path (.deb, containerd.io pin) even on hosts with a kubelet. Without it such "
                   "hosts are left to the Kubernetes path.")
@click.option("-b", "--become", is_flag=True, help="Run operations with become (sudo), as ansible-playbook --become.")
@click.option("-K", "--ask-become-pass", is_flag=True, help="Ask for the become (sudo) password once, as ansible-playbook -K.")
@click.option("-f", "--forks", type=click.IntRange(1, 500), metavar="N", help="Hosts at a time (default: ansible.cfg's 20).")
@click.option("-t", "--tags", multiple=True, metavar="TAGS",
              help="Only the roles with these tags (containerd_pin, sysbox; comma-separated or repeated). The preflight always runs.")
@click.option("--skip-tags", multiple=True, metavar="TAGS", help="Skip the roles with these tags (not preflight).")
@click.option("-v", "--verbose", "verbosity", count=True, help="Ansible verbosity (-v, -vv, -vvv); the output is in the artifacts' stdout.")
@click.option("--uninstall", is_flag=True,
              help="Remove the Kubernetes rollout (playbooks/k8s-uninstall.yml: sysbox-deploy-k8s with upstream's cleanup, "
                   "the sysbox-runc RuntimeClass, the FUSE device plugin, the node labels). No preflight; plain hosts are untouched.")
@click.option("--private-data-dir", metavar="DIR",
              help="ansible-runner private data dir; its artifacts/ keep both runs (default: a new dir under ~/.cache/nodecheck/install).")
@click.option("-e", "--extra-var", "extra", multiple=True, metavar="KEY=VALUE",
              help="Extra role variable (repeatable), e.g. -e containerd_pin_enabled=false.")
def install(inventory, target, check, limit, ignore, yes, matrix_path, sysbox_deb_url, sysbox_deb_sha256,
            sysbox_deb_path, accept_new_host_keys, known_hosts, force_plain_host, become, ask_become_pass, forks,
            tags, skip_tags, verbosity, uninstall, private_data_dir, extra):
    """Install Sysbox with Ansible on the hosts that pass the preflight.

    First the plan: playbooks/site.yml runs in check mode on every selected host. The
    preflight probes each host (one exec) and scores it; hosts whose verdict is fail are
    skipped, with the reason. Each host's target kind is decided there: a plain Docker host
    gets the .deb and the containerd.io pin; a host with a kubelet is left to the
    Kubernetes path unless --force-plain-host. Every role's refusals run, and the plan lists
    per host what will be installed (package and version), removed, pinned, held, written,
    enabled and restarted, and the host key policy. --check stops there.

    After confirmation the playbook runs for real through ansible-runner on the hosts the
    plan cleared, with live progress, then a per-host summary and the artifacts path.
    Re-running changes nothing on hosts already installed.

    Host keys are verified as `nodecheck scan` verifies them: unknown keys fail unless
    --accept-new-host-keys, changed keys always fail (an inventory's
    StrictHostKeyChecking=no does not weaken this).

    Exit codes: 0 every selected host ended installed (with --check: would install
    cleanly); 2 a host failed, was unreachable or was skipped by the plan; 3 the run
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
    if known_hosts and not Path(known_hosts).is_file() and not accept_new_host_keys:
        raise click.BadParameter(f"{known_hosts!r} is not a file", param_hint="--known-hosts")
    tag_list = tuple(t.strip() for v in tags for t in v.split(",") if t.strip())
    skip_list = tuple(t.strip() for v in skip_tags for t in v.split(",") if t.strip())
    if "preflight" in skip_list:
        raise click.BadParameter("the preflight cannot be skipped by nodecheck install (ansible-playbook with "
                                 "-e nodecheck_preflight_enabled=false can)", param_hint="--skip-tags")
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
    if force_plain_host:
        extravars["nodecheck_force_plain_host"] = True
    if sysbox_deb_url:
        extravars["sysbox_deb_url"] = sysbox_deb_url
    if sysbox_deb_path:
        extravars["sysbox_deb_path"] = str(Path(sysbox_deb_path).resolve())
    if sysbox_deb_sha256:
        extravars["sysbox_deb_sha256"] = sysbox_deb_sha256.lower()
    for kv in extra:
        if "=" not in kv:
            raise click.BadParameter(f"{kv!r} is not KEY=VALUE", param_hint="-e/--extra-var")
        k, v = kv.split("=", 1)
        import yaml

        extravars[k] = yaml.safe_load(v) if v else ""

    password = None
    if ask_become_pass:
        if not interactive:
            raise click.UsageError("--ask-become-pass needs a terminal to ask on")
        password = click.prompt("BECOME password", hide_input=True, default="", show_default=False)
    opts = engine.RunOptions(verbosity=verbosity, forks=forks, become=become or ask_become_pass,
                             become_password=password, tags=tag_list, skip_tags=skip_list,
                             accept_new_host_keys=accept_new_host_keys,
                             known_hosts=str(Path(known_hosts).resolve()) if known_hosts else None,
                             force_plain_host=force_plain_host)

    from ..install import hostkeys

    c = _console()
    if uninstall:
        from . import install_k8s

        hosts = None if not limit else [limit]
        return install_k8s.uninstall(c, inventory, engine.private_data_dir(private_data_dir), hosts=hosts,
                                     extravars=extravars, opts=opts, check=check, yes=yes)
    try:
        pdd = engine.private_data_dir(private_data_dir)
        c.print(f"[bold]Plan[/] ({_escape(inventory)}{', limit ' + _escape(limit) if limit else ''}): "
                "preflight and check mode, nothing is changed")
        plans, plan_run = engine.run_plan(inventory, pdd, limit=limit, extravars=extravars, opts=opts,
                                          on_event=Progress(c, "plan"))
    except engine.InstallError as exc:
        c.print(f"[red]nodecheck install: {_escape(str(exc))}[/]")
        return exitcodes.UNKNOWN
    if not plans:
        c.print("[red]No host matched the inventory and --limit.[/]")
        return exitcodes.USAGE

    _plan_table(c, plans, check)
    c.print(_escape(hostkeys.policy(accept_new_host_keys, opts.known_hosts)))
    # Hosts with a kubelet take the Kubernetes path (playbooks/k8s.yml): its own plan (which
    # Nodes get labelled, skipped or refused, and why), confirmation and summary; the plain-host
    # path below then goes on with the other hosts, and the exit code is the worse of the two.
    k8s_rc = None
    k8s_hosts = sorted(n for n, p in plans.items() if p.target_kind == "kubernetes-node" and not force_plain_host)
    if k8s_hosts:
        from . import install_k8s

        k8s_rc = install_k8s.rollout(c, inventory, pdd, hosts=k8s_hosts, extravars=extravars, opts=opts,
                                     check=check, yes=yes)
        plans = {n: p for n, p in plans.items() if n not in k8s_hosts}
        if not plans:
            return k8s_rc

    def _rc(code: int) -> int:
        return code if k8s_rc is None else max(code, k8s_rc)

    passing = sorted(n for n, p in plans.items() if p.install)
    skipped = sorted(n for n, p in plans.items() if not p.install)
    if check:
        c.print(f"Check mode: nothing was changed. Would install on {len(passing)} host(s)"
                + (f": {', '.join(passing)}" if passing else "")
                + (f"; skipping {len(skipped)}: {', '.join(skipped)}" if skipped else "")
                + f". Artifacts: {plan_run.artifact_dir}")
        return _rc(exitcodes.PASS if passing and not skipped and plan_run.status == "successful" else exitcodes.FAIL)
    if not passing:
        c.print(f"No {'plain (Docker) ' if k8s_hosts else ''}host passed the plan; nothing installed on them. "
                f"Artifacts: {plan_run.artifact_dir}")
        return _rc(exitcodes.FAIL)
    c.print(f"Install Sysbox on {len(passing)} host(s): {', '.join(passing)}"
            + (f"; skipping {len(skipped)}: {', '.join(skipped)}" if skipped else ""))
    if not yes:
        if not click.confirm("Proceed?", default=False):
            c.print("Nothing changed.")
            return _rc(exitcodes.FAIL)  # no host was installed

    c.print("[bold]Install Sysbox[/]")
    try:
        outcome = engine.run_install(inventory, pdd, hosts=passing, extravars=extravars, opts=opts,
                                     on_event=Progress(c, "install"))
    except engine.InstallError as exc:
        c.print(f"[red]nodecheck install: {_escape(str(exc))}[/]")
        return exitcodes.UNKNOWN

    from rich.table import Table

    s = Table(title="Summary", title_justify="left")
    for col in ("host", "result", "ok", "changed", "failed", "skipped", "unreachable", "message"):
        s.add_column(col, overflow="fold")
    all_ok = not skipped
    for name in sorted(set(outcome.hosts) | set(skipped)):
        if name in skipped:
            p = plans[name]
            s.add_row(name, f"[red]skipped ({p.verdict})[/]", "", "", "", "", "", _escape(_short(p.reason, 200)))
            continue
        h = outcome.hosts[name]
        if h.unreachable:
            result = "[red]unreachable[/]"
        elif h.failed:
            result = "[red]failed[/]"
        elif h.installed:
            result = "[green]installed[/]"
        else:
            result = "[red]not run[/]"
        all_ok = all_ok and h.installed
        s.add_row(name, result, str(h.ok), str(h.changed), str(h.failed), str(h.skipped), str(h.unreachable),
                  _escape(_short(h.message, 200)))
    c.print(s)
    c.print(f"Artifacts: {outcome.artifact_dir} (plan: {plan_run.artifact_dir})")
    return _rc(exitcodes.PASS if all_ok and outcome.status == "successful" else exitcodes.FAIL)
