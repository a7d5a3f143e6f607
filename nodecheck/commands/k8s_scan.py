"""`nodecheck k8s scan`: the preflight pod on every node, through the Kubernetes API, one report back."""

from __future__ import annotations

import json
import os
import sys

import click

from .. import exitcodes, pipeline
from ..k8s import render as _render
from ._common import check_ignore, dump_yaml, ignore_option, load_matrix, output_options

FORMATS = ("table", "wide", "json", "yaml")


def _console(stream):
    from ..vocab import console  # colour only on a TTY, never with NO_COLOR
    return console(stream)


@click.command("scan", epilog="Exit 4 when the API refuses or never answers before any node could be scanned "
               "(unreachable, forbidden, no such namespace); a node the API lost track of mid-scan is an unknown "
               "row instead. " + exitcodes.HELP)
@click.argument("node_names", nargs=-1, metavar="[NODE]...")
@click.option("--kubeconfig", metavar="FILE", help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, "
                                                   "else the in-cluster ServiceAccount), as kubectl.")
@click.option("--context", metavar="NAME", help="Kubeconfig context (default: its current-context).")
@click.option("-n", "--namespace", default=_render.DEFAULT_NAMESPACE, show_default=True,
              help="Where the Jobs are created (it must exist with the nodecheck ServiceAccount: "
                   "`nodecheck k8s render --rbac`). Nothing else in it is touched.")
@click.option("-l", "--selector", metavar="SELECTOR", help="Only nodes with these labels (kubectl -l syntax).")
@click.option("--image", default=_render.DEFAULT_IMAGE, show_default=True, help="The nodecheck image.")
@click.option("--with", "with_", multiple=True, type=click.Choice(list(_render.OPTIONAL)),
              help="Add an optional host mount set to the pod (repeatable), as `nodecheck k8s render --with`.")
@click.option("--use-daemonset", "daemonset", metavar="NAME",
              help="Create nothing: read the reports of the running preflight DaemonSet NAME in --namespace "
                   "(`nodecheck k8s render --daemonset`); its pods scored themselves, so --sysbox, "
                   "--matrix and --ignore do not apply.")
@click.option("--tolerate-taints/--no-tolerate-taints", default=True, show_default=True,
              help="Tolerate every taint (scan tainted and cordoned nodes too), as the rendered DaemonSet does. "
                   "With --no-tolerate-taints a tainted node is reported unknown: unschedulable, with the taint.")
@click.option("--timeout", default=180.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds to wait for every node's report (scheduling, image pull and probe together); "
                   "a node without a report by then is reported unknown, with its pod's state.")
@click.option("--keep", is_flag=True, help="Do not delete the Jobs (and pods) this scan created.")
@click.option("--sysbox", "target", metavar="RELEASE", help="Sysbox release to score against (default: newest in the matrix).")
@click.option("--matrix", "matrix_path", metavar="FILE", help="Score against this matrix file instead of the bundled one.")
@ignore_option
@output_options(FORMATS, file_help="Also write one JSON line per node (JSON Lines).",
                help="table for people (default on a TTY), json for machines (default otherwise), yaml, "
                     "or wide (the table with every check).")
@click.option("-v", "--verbose", is_flag=True, help="Table: show passing checks too (= -o wide).")
@click.option("--junit", metavar="FILE", help="Also write a JUnit XML report (one test case per node and check).")
def scan(node_names, kubeconfig, context, namespace, selector, image, with_, daemonset, tolerate_taints, timeout,
         keep, target, matrix_path, ignore, output, output_file, verbose, junit) -> int:
    """Scan Kubernetes nodes from the inside: one read-only preflight pod per node.

    \b
    nodecheck k8s scan                      every node
    nodecheck k8s scan -l pool=workspaces   nodes with these labels
    nodecheck k8s scan node-a node-b        these nodes
    nodecheck k8s scan --use-daemonset nodecheck   read a running preflight DaemonSet

    Creates one Job per node in --namespace (pinned by node affinity, so the scheduler
    still applies taints and says why a pod cannot run), waits up to --timeout, reads each
    pod's snapshot through the API (pod logs), scores it here like `nodecheck scan`, and
    deletes the Jobs (unless --keep). A node whose pod gave no report is `unknown` with the
    reason from the pod's status and events: unschedulable, image pull error, OOMKilled,
    evicted, node NotReady, pod deleted, API server unreachable. Rights needed: see
    `nodecheck k8s render --rbac`.
    """
    if daemonset and (target or matrix_path or ignore):
        raise click.UsageError("--use-daemonset reads reports the pods already scored: --sysbox, --matrix and "
                               "--ignore apply to Job mode only")
    if daemonset and (keep or with_ or image != _render.DEFAULT_IMAGE or not tolerate_taints):
        raise click.UsageError("--use-daemonset creates nothing: --keep, --with, --image and "
                               "--no-tolerate-taints apply to Job mode only")
    matrix = load_matrix(matrix_path, target)
    ignore = check_ignore(ignore, matrix)
    fmt = output or ("table" if sys.stdout.isatty() else "json")
    if fmt == "wide":
        fmt, verbose = "table", True

    from ..k8s import scan as ks
    from ..k8s.score import rows

    opts = ks.ScanOptions(namespace=namespace, image=image, timeout=timeout, keep=keep,
                          tolerate_all=tolerate_taints, with_=tuple(with_), daemonset=daemonset)
    from ..k8s import client
    try:
        conn = client.connect(kubeconfig, context)
    except client.ApiError as exc:
        raise click.UsageError(exc.message) from None  # a config problem is bad input (as k8s nodes)
    progress = _Progress()
    try:
        api = ks.Api(conn.api_client)
        scanner = ks.Scanner(api, opts, on_state=progress.state, on_api_problem=progress.problem)
        nodes = scanner.list_nodes(selector, deadline=_now() + min(timeout, 30))
        listed = [n["metadata"]["name"] for n in nodes]
        names = list(dict.fromkeys(node_names)) if node_names else listed
        if node_names:
            nodes = [n for n in nodes if n["metadata"]["name"] in names]
        if not names:
            click.echo("nodecheck: no nodes to scan" + (f" (none match {selector!r})" if selector else ""), err=True)
            return exitcodes.UNKNOWN
        progress.start(len(names))
        try:
            result = scanner.run(nodes, names)
        finally:
            progress.close()
    except ks.ScanError as exc:
        # The API refused or never answered: no row could be made (as `k8s nodes`, exit 4).
        click.echo(f"nodecheck: {exc}", err=True)
        return exitcodes.API_ERROR
    if result.cleanup_problem:
        click.echo(f"nodecheck: {result.cleanup_problem}", err=True)

    # The Job's pod sees the node only through its hostPaths (render.mounts_for): say so to the scoring.
    visible = None if daemonset else tuple(m.path for m in _render.mounts_for(tuple(with_)))
    node_rows = rows(result, namespace=namespace, daemonset=daemonset, matrix=matrix, target=target, ignore=ignore,
                     visible=visible)
    report = pipeline.build_report(node_rows, matrix=matrix, target=target)
    if output_file:
        from ..report.jsonl import JsonlWriter
        try:
            with JsonlWriter(output_file) as w:
                for n in node_rows:
                    w.write(n)
        except OSError as exc:
            raise click.FileError(output_file, hint=exc.strerror) from exc
    if fmt == "json":
        sys.stdout.write(json.dumps(report, separators=(",", ":")) + "\n")
    elif fmt == "yaml":
        sys.stdout.write(dump_yaml(report))
    else:
        from ..report import table
        table.render(report, _console(sys.stdout), verbose=verbose)
    if junit:
        from ..report.junit import write_junit
        write_junit(report, junit)
    return exitcodes.BY_VERDICT[report["verdict"]]


def _now() -> float:
    import time
    return time.monotonic()


class _Progress:
    """Per-node state changes and done/total on stderr, only when stderr is a TTY.
    API trouble (the server restarting, say) is one line on stderr either way."""

    def __init__(self):
        self.tty = sys.stderr.isatty() and not os.environ.get("NODECHECK_NO_PROGRESS")
        self.bar = None
        self.finished: set[str] = set()

    def start(self, total: int) -> None:
        if not self.tty:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        self.console = _console(sys.stderr)
        self.bar = Progress(TextColumn("k8s scan"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=self.console, transient=True)
        self.task = self.bar.add_task("scan", total=total)
        self.bar.start()

    def state(self, run) -> None:
        if self.bar is None:
            return
        self.bar.console.print(f"  {run.node}: {run.state}", highlight=False, markup=False)
        if run.done and run.node not in self.finished:
            self.finished.add(run.node)
            self.bar.update(self.task, advance=1)

    def problem(self, text: str) -> None:
        if self.bar is not None:
            self.bar.console.print(f"  API: {text}", highlight=False, markup=False)
        else:
            click.echo(f"nodecheck: API: {text}", err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
