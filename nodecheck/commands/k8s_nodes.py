"""`nodecheck k8s nodes` (a prescan from Node objects) and `nodecheck k8s cluster` (the CVM
cluster requirements), both read-only API calls. Thin: the work is in nodecheck/k8s/."""

from __future__ import annotations

import json
import sys

import click

from .. import exitcodes, pipeline
from ._common import load_matrix

API_HELP = ("Exit 4 when the API cannot be asked: unreachable or stopped, TLS (wrong CA), expired or "
            "invalid credentials, RBAC forbidden; one line on stderr names the problem.")


def _console(stream):
    from ..vocab import console  # colour only on a TTY, never with NO_COLOR
    return console(stream)


def _conn_options(f):
    f = click.option("--request-timeout", default=30.0, show_default=True, type=click.FloatRange(min=1),
                     help="Seconds per API request (connect and read), like kubectl --request-timeout.")(f)
    f = click.option("--context", metavar="NAME", help="Kubeconfig context (default: its current-context).")(f)
    f = click.option("--kubeconfig", metavar="FILE",
                     help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, else the in-cluster "
                          "ServiceAccount), as kubectl finds it.")(f)
    return f


def _report_options(f):
    f = click.option("--junit", metavar="FILE", help="Also write a JUnit XML report.")(f)
    f = click.option("-v", "--verbose", is_flag=True, help="Table: show passing checks too.")(f)
    f = click.option("--format", "fmt", type=click.Choice(["table", "json"]),
                     help="table for people (default on a TTY), json for machines (default otherwise).")(f)
    f = click.option("--matrix", "matrix_path", metavar="FILE", help="Score against this matrix file instead of the bundled one.")(f)
    f = click.option("--sysbox", "target", metavar="RELEASE",
                     help="Sysbox release to score against (default: newest in the matrix).")(f)
    return f


def _connect(kubeconfig, context, timeout):
    from ..k8s import client
    try:
        return client.connect(kubeconfig, context, timeout=timeout)
    except client.ApiError as exc:
        raise click.UsageError(exc.message) from None  # a config problem is bad input: exit 64


def _api_failed(exc) -> int:
    click.echo(f"nodecheck: {exc.message}", err=True)
    return exitcodes.API_ERROR


def _requirements():
    from ..k8s import requirements
    from ..matrix import MatrixError
    try:
        return requirements.load()
    except MatrixError as exc:
        raise click.BadParameter(str(exc), param_hint="matrix/kubernetes.yaml") from None


@click.command("nodes", epilog=API_HELP + " " + exitcodes.HELP)
@_conn_options
@click.option("-l", "--selector", metavar="SELECTOR", help="Only nodes with these labels (kubectl -l syntax).")
@click.option("--ignore", multiple=True, metavar="CHECK_ID",
              help="Demote this check's fail/unknown to warn (repeatable, or `all`), as `nodecheck scan --ignore`.")
@_report_options
def nodes(kubeconfig, context, request_timeout, selector, ignore, target, matrix_path, fmt, verbose, junit) -> int:
    """Prescan a cluster from its Node objects: one read-only API call, no pod.

    \b
    nodecheck k8s nodes                    every node of the current context
    nodecheck k8s nodes --context prod -l node-role.kubernetes.io/worker
    nodecheck k8s nodes --format json | jq '.nodes[] | {node, verdict}'

    Each Node's nodeInfo (kernel, OS image, architecture, kubelet, container runtime),
    labels (managed node pools), capacity (nvidia.com/gpu) and providerID are scored with
    the same checks and matrix as `nodecheck scan`. What a Node cannot show (SELinux,
    cgroups, user namespaces, storage, host tools, ...) is reported `unknown: needs the node
    probe` — run `nodecheck k8s scan` for those. `sysbox.not_ruled_out` lists the releases
    the Node's facts do not rule out. Needs only get/list on nodes (the ClusterRole
    nodecheck-node-reader of `nodecheck k8s render --rbac`).
    """
    from ..k8s import client
    from ..k8s.nodes import score_node

    matrix = load_matrix(matrix_path, target)
    req = _requirements()
    ignore = tuple(i.strip() for i in ignore if i.strip())
    conn = _connect(kubeconfig, context, request_timeout)
    try:
        items = client.list_all(conn, "/api/v1/nodes", query={"labelSelector": selector})
    except client.ApiError as exc:
        return _api_failed(exc)
    scored = [score_node(n, matrix=matrix, req=req, target=target, ignore=ignore)
              for n in sorted(items, key=lambda n: (n.get("metadata") or {}).get("name") or "")]
    report = pipeline.build_report(scored, matrix=matrix, target=target)
    report_out(report, fmt, verbose, junit)
    if not scored:
        click.echo(f"nodecheck: no nodes{' match ' + selector if selector else ''} at {conn.server}", err=True)
        return exitcodes.UNKNOWN
    return exitcodes.BY_VERDICT[report["verdict"]]


def report_out(report: dict, fmt: str | None, verbose: bool, junit: str | None) -> None:
    from ..report import table
    fmt = fmt or ("table" if sys.stdout.isatty() else "json")
    if fmt == "json":
        sys.stdout.write(json.dumps(report, separators=(",", ":")) + "\n")
    else:
        table.render(report, _console(sys.stdout), verbose=verbose)
    if junit:
        from ..report.junit import write_junit
        write_junit(report, junit)


@click.command("cluster", epilog=API_HELP + " " + exitcodes.HELP)
@_conn_options
@click.option("-n", "--workspace-namespace", "namespace", required=True, metavar="NS",
              help="The namespace Coder creates workspaces in: the CVM pod is dry-run there.")
@click.option("--caching/--no-caching", default=True, show_default=True,
              help="Coder's Caching setting (Manage > Admin > Infrastructure): which host paths the CVM mounts.")
@click.option("--shiftfs-autoload/--no-shiftfs-autoload", default=False, show_default=True,
              help="Coder's 'Auto load shiftfs' setting: /usr/src and /lib/modules read-write when on.")
@click.option("--image", default=None, metavar="IMAGE",
              help="Image of the dry-run CVM pod (admission webhooks may check it; it is never pulled).")
@_report_options
def cluster(kubeconfig, context, request_timeout, namespace, caching, shiftfs_autoload, image, target, matrix_path,
            fmt, verbose, junit) -> int:
    """Check the cluster-level CVM requirements of the Coder docs against the API server.

    \b
    nodecheck k8s cluster -n coder-workspaces
    nodecheck k8s cluster -n coder-workspaces --shiftfs-autoload --format json

    \b
    cluster.pod-admission     a server-side dry-run create (dryRun=All: nothing is created) of a
                              privileged pod with the docs' hostPaths for the Caching/shiftfs
                              setting: PodSecurity and every admission webhook answer for real
    cluster.sidecar-injector  Istio/Linkerd sidecar-injector webhooks (Coder: not supported)
    cluster.kubernetes-version  the server vs the docs' minimum (1.18) and the installer's list
    cluster.runtime-class     sysbox-runc present, handler sysbox-runc, nodes labelled running
    cluster.gpu               GPU nodes on cloud VMs (GPU CVMs are bare-metal only)

    Needs: create pods in NS (dry-run only), list mutatingwebhookconfigurations, get
    runtimeclasses, list nodes, get /version: `nodecheck k8s render --cluster-rbac -n NS --user
    NAME` renders exactly these. A call this identity may not make gives that check unknown.
    """
    from ..k8s import client
    from ..k8s import cluster_checks as cc
    from ..report import cluster as render_cluster

    matrix = load_matrix(matrix_path, target)
    req = _requirements()
    conn = _connect(kubeconfig, context, request_timeout)
    try:
        res = cc.run(conn, namespace=namespace, caching=caching, shiftfs_autoload=shiftfs_autoload, matrix=matrix,
                     req=req, target=target, image=image or cc.DEFAULT_CVM_IMAGE)
    except client.ApiError as exc:
        return _api_failed(exc)
    doc = cc.to_doc(res, matrix=matrix, target=target, context=conn.context, source=conn.source)
    fmt = fmt or ("table" if sys.stdout.isatty() else "json")
    if fmt == "json":
        sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")
    else:
        render_cluster.render(doc, _console(sys.stdout), verbose=verbose)
    if junit:
        from ..report.junit import write_junit
        write_junit(render_cluster.as_report(doc), junit)
    return exitcodes.BY_VERDICT[doc["verdict"]]
