"""`nodecheck scan`: score nodes against the Sysbox matrix (this machine, a root, a snapshot, or a fleet)."""

from __future__ import annotations

import json
import os
import sys

import click

from .. import exitcodes
# rich, the report renderers, snapshots (jsonschema) and the transports are imported where used:
# `nodecheck scan` of this machine must start in well under 0.1 s (issue 15).
from ._common import (PORT, SECONDS, check_ignore, check_root, dump_yaml, parse_duration, ignore_option, load_matrix, node_name,
                      output_options, root_option)

FORMATS = ("table", "wide", "json", "yaml")


def _console(stream):
    from ..vocab import console  # colour only on a TTY, never with NO_COLOR (https://no-color.org/)
    return console(stream)


@click.command(epilog=exitcodes.HELP)
@click.argument("hosts", nargs=-1, metavar="[HOST]...")
@root_option
@click.option("--snapshot", "snapshots", multiple=True, metavar="FILE",
              help="Re-score a saved `nodecheck collect` snapshot (repeatable); the node is not touched.")
@click.option("-i", "--inventory", metavar="FILE", help="Ansible inventory (INI or YAML) of hosts to scan over SSH.")
@click.option("--hosts-file", metavar="FILE", help="Hosts to scan over SSH, one [user@]host[:port] a line.")
@click.option("--limit", metavar="PATTERN", help="Only these hosts or groups (Ansible --limit syntax).")
@click.option("--sysbox", "target", metavar="RELEASE", help="Sysbox release to score against (default: newest in the matrix).")
@click.option("--matrix", "matrix_path", metavar="FILE", help="Score against this matrix file instead of the bundled one.")
@ignore_option
@output_options(FORMATS, file_help="Append one JSON line per node as each finishes (JSON Lines); "
                                   "a killed run loses only the hosts in flight.",
                help="table for people (default on a TTY), json for machines (default otherwise), "
                     "yaml, or wide (the table with every check and a full block per host).")
@click.option("-v", "--verbose", is_flag=True, help="Table: every check and, for a fleet, a full block per host (= -o wide).")
@click.option("--resume", is_flag=True, help="With --output-file: skip hosts already in the file.")
@click.option("--junit", metavar="FILE", help="Also write a JUnit XML report (one test case per node and check).")
@click.option("--nfd-features-file", metavar="PATH",
              help="Also write a Node Feature Discovery features.d file with the verdict and key facts (single node).")
@click.option("--nfd-expiry", default="24h", show_default=True, metavar="DURATION", callback=lambda c, p, v: parse_duration(v),
              help="With --nfd-features-file: NFD drops the labels after this long (`# +expiry-time`) unless "
                   "rescanned, so a node never keeps a stale verdict; e.g. 90m, 24h, 7d; 0 = never.")
@click.option("--forks", default=50, show_default=True, type=click.IntRange(1, 1000), help="SSH: hosts probed at once.")
@click.option("--timeout", default=60.0, show_default=True, type=SECONDS,
              help="Hard per-host deadline in seconds (connect, auth and probe together).")
@click.option("--become", is_flag=True, help="SSH: run the probe with `sudo -n` (never prompts).")
@click.option("-u", "--user", metavar="USER", help="SSH user (default: ssh_config, inventory, or the current user).")
@click.option("-p", "--port", type=PORT, metavar="PORT", help="SSH port (default: ssh_config, inventory, or 22).")
@click.option("-k", "--identity", "key_file", metavar="FILE", help="SSH private key file.")
@click.option("--known-hosts", metavar="FILE", help="known_hosts file to verify host keys against (default: ~/.ssh/known_hosts).")
@click.option("--ssh-config", metavar="FILE", help="ssh_config file (default: ~/.ssh/config).")
@click.option("--accept-new-host-keys", is_flag=True,
              help="Trust and record keys of hosts not yet in known_hosts (OpenSSH accept-new). A changed key still fails.")
def scan(hosts, root, snapshots, inventory, hosts_file, limit, target, matrix_path, ignore, output,
         output_file, verbose, resume, junit, nfd_features_file, nfd_expiry, forks, timeout, become, user, port, key_file, known_hosts,
         ssh_config, accept_new_host_keys) -> int:
    """Tell whether nodes can run Sysbox, why not, and how to fix it.

    \b
    nodecheck scan                      this machine
    nodecheck scan --root /host         the node mounted at /host (the preflight pod)
    nodecheck scan --snapshot s.json    a saved snapshot, without touching the node
    nodecheck scan -i inventory.ini     a fleet over SSH (host keys verified)
    nodecheck scan web1 admin@web2:2222 hosts named on the command line

    Each check says pass, warn, fail or unknown, with the measured value, the threshold,
    a fix and the matrix source. The node verdict is the worst check (fail > unknown >
    warn > pass) for the target release; the report also lists every release the node
    can run and recommends the newest. Scanning is read-only.
    """
    fleet_mode = bool(hosts or inventory or hosts_file)
    if sum([fleet_mode, bool(snapshots), root != "/"]) > 1:
        raise click.UsageError("choose one of: hosts/--inventory/--hosts-file, --snapshot, --root")
    if resume and not output_file:
        raise click.UsageError("--resume needs --output-file FILE")
    probe = None
    if not (fleet_mode or snapshots):
        # This machine or a root: the probe is read-only, so it starts before anything else and
        # runs while the matrix loads and the scoring modules import (issue 15). A usage error
        # found meanwhile cancels it (kills its process group); the user sees only the error.
        from ..transport import local
        check_root(root)
        probe = local.Probe(root, timeout=timeout)
    try:
        return _scan(probe, hosts, root, snapshots, inventory, hosts_file, limit, target, matrix_path, ignore, output,
                     output_file, verbose, resume, junit, nfd_features_file, nfd_expiry, forks, timeout, become, user,
                     port, key_file, known_hosts, ssh_config, accept_new_host_keys, fleet_mode)
    finally:
        if probe is not None:
            probe.cancel()


def _scan(probe, hosts, root, snapshots, inventory, hosts_file, limit, target, matrix_path, ignore, output,
          output_file, verbose, resume, junit, nfd_features_file, nfd_expiry, forks, timeout, become, user, port,
          key_file, known_hosts, ssh_config, accept_new_host_keys, fleet_mode) -> int:
    matrix = load_matrix(matrix_path, target)
    ignore = check_ignore(ignore, matrix)
    fmt = output or ("table" if sys.stdout.isatty() else "json")
    if fmt == "wide":
        fmt, verbose = "table", True
    output = output_file

    # Every output path is checked before the scan starts: a device, FIFO or symlink there is
    # refused (exit 64) instead of being found (or replaced) after a long fleet run.
    from ..outfile import OutputWriteError, check_target
    check_target(junit, "--junit")
    check_target(nfd_features_file, "--nfd-features-file")
    writer = None
    write_failed: list[OutputWriteError] = []
    if output:
        from ..report.jsonl import JsonlWriter
        writer = JsonlWriter(output)

    def done(node: dict) -> None:
        # A failed append (disk full, I/O error) stops writing the file but not the scan: the
        # lines already written stay, the report still goes to stdout, and the run exits 74.
        nonlocal writer
        if writer:
            try:
                writer.write({**node, "matrix_version": matrix.version})
            except OSError as exc:
                write_failed.append(OutputWriteError(output, exc))
                writer.close()
                writer = None

    try:
        if fleet_mode:
            from .. import fleet
            nodes = _scan_fleet(fleet, hosts, inventory, hosts_file, limit,
                                (output, matrix.version, target or str(matrix.newest.version)) if resume else None,
                                     fleet.FleetOptions(forks=forks, timeout=timeout, become=become,
                                                        accept_new_host_keys=accept_new_host_keys,
                                                        known_hosts=known_hosts, ssh_config=ssh_config,
                                                        user=user, port=port, key_file=key_file),
                                     matrix, target, ignore, done)
        elif snapshots:
            from .. import pipeline, snapshot
            nodes = []
            for path in snapshots:
                try:
                    doc = snapshot.load(path)
                except snapshot.SnapshotError as exc:
                    raise click.BadParameter(str(exc), param_hint="--snapshot") from exc
                node = snapshot.score(doc, matrix=matrix, target=target, ignore=ignore,
                                      source=f"snapshot:{path}").to_dict()
                done(node)
                nodes.append(node)
        else:
            name = node_name(root)
            _import_scoring(fmt)
            run = probe.result()
            from .. import pipeline
            src = "local:/" if root == "/" else f"root:{root}"
            # timeout / foreign boundary / no probe header / scored: pipeline.score_run decides
            node = pipeline.score_run(name, run, matrix=matrix, target=target, ignore=ignore,
                                      source=src).to_dict()
            done(node)
            nodes = [node]
    finally:
        if writer:
            writer.close()

    from .. import pipeline
    report = pipeline.build_report(nodes, matrix=matrix, target=target)
    if fmt == "json":
        sys.stdout.write(json.dumps(report, separators=(",", ":")) + "\n")
    elif fmt == "yaml":
        sys.stdout.write(dump_yaml(report))
    else:
        from ..report import table
        table.render(report, _console(sys.stdout), verbose=verbose)
    if junit:
        from ..report.junit import write_junit
        try:
            write_junit(report, junit)
        except OutputWriteError as exc:
            write_failed.append(exc)
    if nfd_features_file:
        if len(nodes) != 1:
            raise click.UsageError("--nfd-features-file describes one node; scan a single node with it")
        from ..outfile import atomic_write
        from ..report.nfd import features_file
        import datetime as dt
        expires = dt.datetime.now(dt.timezone.utc) + nfd_expiry if nfd_expiry else None
        try:
            atomic_write(nfd_features_file, features_file(nodes[0], expires).encode(), "--nfd-features-file")
        except OutputWriteError as exc:
            write_failed.append(exc)
    if write_failed:
        for exc in write_failed:
            click.echo(f"nodecheck: {exc.message}", err=True)
        return exitcodes.OUTPUT_ERROR
    if not nodes:
        click.echo("nodecheck: no hosts to scan", err=True)
        return exitcodes.UNKNOWN
    return exitcodes.BY_VERDICT[report["verdict"]]


# What scoring one node imports (and, for a table, rendering it): see _import_scoring.
_SCORING_MODULES = ("json", "datetime", "nodecheck.pipeline", "nodecheck.checks", "nodecheck.checks.methods",
                    "nodecheck.checks.gpu", "nodecheck.checks.kernel", "nodecheck.checks.known_issues",
                    "nodecheck.checks.platform", "nodecheck.checks.runtime", "nodecheck.checks.security",
                    "nodecheck.checks.storage", "packaging.specifiers", "nodecheck.k8s.requirements")
_TABLE_MODULES = ("rich.console", "nodecheck.report.table")


def _import_scoring(fmt: str) -> None:
    """Import what scoring (and rendering) will need while the probe runs: the probe's pipes
    hold its whole output, so it never waits for this thread (transport/local.py). A failed
    import is left for the scoring code's own import to raise, where it is reported."""
    import importlib

    for name in _SCORING_MODULES + (_TABLE_MODULES if fmt == "table" else ()):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - see the docstring
            pass
    try:  # the hostpaths check's table (cached): read now, not after the probe
        from ..k8s import requirements
        requirements.load()
    except Exception:  # noqa: BLE001 - the check reads it again and says what failed
        pass


def _scan_fleet(fleet, hosts, inventory, hosts_file, limit, resume_from, opts, matrix, target, ignore, done):
    try:
        targets = fleet.load_targets(hosts, inventory, hosts_file, limit)
    except (ValueError, OSError) as exc:
        raise click.UsageError(str(exc)) from exc
    position = {t.name: i for i, t in enumerate(targets)}
    nodes = []
    if resume_from:
        from ..report.jsonl import resumable
        path, matrix_version, release = resume_from
        previous, rejected = resumable(path, matrix_version=matrix_version, target=release)
        wanted = {t.name for t in targets}
        nodes = [previous[t.name] for t in targets if t.name in previous]
        targets = [t for t in targets if t.name not in previous]
        if nodes:
            click.echo(f"nodecheck: resuming, {len(nodes)} hosts already in {path}", err=True)
        stale = sorted(n for n in rejected if n in wanted and n not in previous)
        if stale:
            click.echo(f"nodecheck: rescanning {len(stale)} hosts whose lines in {path} are invalid or were "
                       f"scored for another release/matrix: {', '.join(stale[:10])}"
                       + (" ..." if len(stale) > 10 else ""), err=True)

    from .. import pipeline

    def score(r) -> dict:
        return pipeline.score_run(r.target.name, r, matrix=matrix, target=target, ignore=ignore,
                                  source=f"ssh:{r.target.host}").to_dict()

    progress = _Progress(len(targets))

    def on_result(r) -> None:
        node = r.node if r.node is not None else score(r)  # scored in the host's deadline
        done(node)
        nodes.append(node)
        progress.advance(node)

    try:
        fleet.run_fleet(targets, opts, on_result, score=score)
    finally:
        progress.close()
    return sorted(nodes, key=lambda n: position.get(n["node"], len(position)))


class _Progress:
    """done/total, failures and ETA on stderr, only when stderr is a TTY."""

    def __init__(self, total: int):
        self.bar = None
        if total and sys.stderr.isatty() and not os.environ.get("NODECHECK_NO_PROGRESS"):
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
            self.bar = Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[bad]} not passing"), TimeRemainingColumn(),
                                console=_console(sys.stderr), transient=True)
            self.task = self.bar.add_task("scan", total=total, bad=0)
            self.bad = 0
            self.bar.start()

    def advance(self, node: dict) -> None:
        if self.bar:
            if node["verdict"] in ("fail", "unknown"):
                self.bad += 1
            self.bar.update(self.task, advance=1, bad=self.bad)

    def close(self) -> None:
        if self.bar:
            self.bar.stop()
