"""`nodecheck k8s`: Kubernetes helpers. `render` prints the preflight pod's manifests."""

from __future__ import annotations

import click

from ..k8s import render as _render
from ._common import output_options, write_json, write_text


@click.group("k8s")
def k8s() -> None:
    """Kubernetes: prescan Nodes from the API, check the cluster, scan nodes with the preflight pod.

    
    k8s nodes    which Sysbox releases each Node can run, from the API alone (get/list nodes)
    k8s cluster  the cluster-level requirements (admission dry-run, RuntimeClass, webhooks)
    k8s scan     run the preflight pod on every node and gather its reports
    k8s render   the preflight Job/DaemonSet and the RBAC each identity needs (no API access)
    """


def _valid_namespace(v: str) -> str:
    # An RFC 1123 label, as the API server demands: refused here, not by `kubectl apply` later.
    import re

    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", v or ""):
        raise click.BadParameter(f"{v[:80]!r} is not a namespace name (RFC 1123 label: a-z, 0-9, -; "
                                 "at most 63)", param_hint="--namespace")
    return v


def _valid_image(v: str) -> str:
    # A reference has no spaces or control characters (they would end up in a pod spec).
    if not v or len(v) > 512 or any(c.isspace() or not c.isprintable() for c in v):
        raise click.BadParameter(f"{v[:80]!r} is not an image reference", param_hint="--image")
    return v


@k8s.command("render")
@click.option("--job", "job", is_flag=True, help="A one-shot Job: one pod per node (needs --nodes).")
@click.option("--daemonset", "daemonset", is_flag=True,
              help="A DaemonSet: scans every node, then idles (the default).")
@click.option("--image", default=_render.DEFAULT_IMAGE, show_default=True, callback=lambda c, p, v: _valid_image(v),
              help="The nodecheck image.")
@click.option("--namespace", "-n", default=_render.DEFAULT_NAMESPACE, show_default=True,
              callback=lambda c, p, v: _valid_namespace(v))
@click.option("--nodes", type=click.IntRange(min=1), default=None,
              help="Job only: parallelism = completions = this many nodes "
                   "(e.g. $(kubectl get nodes --no-headers | wc -l)).")
@click.option("--with", "with_", multiple=True, type=click.Choice(list(_render.OPTIONAL)),
              help="Add an optional host mount set (repeatable): "
                   + "; ".join(f"{k}: {v[0]}" for k, v in _render.OPTIONAL.items()) + ".")
@click.option("--nfd", is_flag=True,
              help="Also write a Node Feature Discovery feature file, so NFD labels each node with its "
                   f"verdict: a writable hostPath of {_render.NFD_FEATURES_DIR} (NFD must be installed), "
                   f"labels expiring after {_render.NFD_EXPIRY}, and the DaemonSet rescans every "
                   f"{_render.NFD_INTERVAL_S // 3600}h. The container runs as UID 0 without capabilities "
                   "(deploy/README.md says why).")
@click.option("--rbac", is_flag=True,
              help="Instead: what `nodecheck k8s scan` needs, applied once by an admin: the namespace, the "
                   "pod's ServiceAccount (no rights), the scanner's Role (jobs create/delete/get, pods get/list, "
                   "pods/log get, events list) and ClusterRole (nodes get/list), and with --user/--group/"
                   "--serviceaccount the bindings.")
@click.option("--cluster-rbac", is_flag=True,
              help="Instead: what `nodecheck k8s cluster -n NS` needs: a Role in the workspace namespace NS "
                   "(pods create: the dry-run; RBAC has no dry-run-only verb) and a ClusterRole (get /version, "
                   "list mutatingwebhookconfigurations and nodes, get the sysbox-runc RuntimeClass), and with "
                   "--user/--group/--serviceaccount the bindings. The namespace itself is not rendered.")
@click.option("--user", "rbac_users", multiple=True, metavar="NAME", help="--rbac: bind to this user (repeatable).")
@click.option("--group", "rbac_groups", multiple=True, metavar="NAME", help="--rbac: bind to this group (repeatable).")
@click.option("--serviceaccount", "rbac_sas", multiple=True, metavar="NAMESPACE:NAME",
              help="--rbac: bind to this ServiceAccount (repeatable), as `kubectl create rolebinding`.")
@output_options(("yaml", "json"), default="yaml",
                file_help="Write the manifests to PATH instead of stdout (atomically).",
                help="yaml: multi-document YAML (default); json: one v1 List. Both work with `kubectl apply -f`.")
def render(job: bool, daemonset: bool, image: str, namespace: str, nodes: int | None, with_: tuple[str, ...],
           nfd: bool, output: str, output_file: str | None, rbac: bool = False, cluster_rbac: bool = False,
           **subjects) -> None:
    """Print ready manifests: `nodecheck k8s render | kubectl apply -f -`.

    The same manifests as deploy/ (kustomize). Each pod prints one JSON report line, named
    after its Kubernetes node (NODE_NAME from the downward API);
    `kubectl logs -n NS -l app.kubernetes.io/name=nodecheck -c scan` gathers the fleet.
    """
    if rbac and cluster_rbac:
        raise click.UsageError("--rbac (for k8s scan) and --cluster-rbac (for k8s cluster) are separate: pass one")
    if rbac or cluster_rbac or any(subjects.values()):
        docs = _rbac_documents(rbac or cluster_rbac, job or daemonset or nodes is not None or with_ or nfd, namespace,
                               cluster=cluster_rbac, **subjects)
        if output == "json":
            write_json({"apiVersion": "v1", "kind": "List", "items": docs}, output_file)
        else:
            write_text(_render.dump(docs), output_file)
        return
    if job and daemonset:
        raise click.UsageError("--job and --daemonset are alternatives: pass one (the default is --daemonset)")
    kind = "job" if job else "daemonset"
    if kind == "job" and nodes is None:
        raise click.UsageError("--job needs --nodes N (the number of nodes to scan, one pod each)")
    if kind == "daemonset" and nodes is not None:
        raise click.UsageError("--nodes applies to --job only (a DaemonSet runs on every node)")
    docs = _render.documents(kind, image, namespace, nodes or _render.NODES_PLACEHOLDER, with_, nfd)
    if output == "json":
        write_json({"apiVersion": "v1", "kind": "List", "items": docs}, output_file)
    else:
        write_text(_render.dump(docs), output_file)


def _rbac_documents(rbac: bool, workload_options: bool, namespace: str, rbac_users, rbac_groups, rbac_sas,
                    cluster: bool = False) -> list:
    from ..k8s import rbac as _rbac
    if not rbac:
        raise click.UsageError("--user, --group and --serviceaccount go with --rbac or --cluster-rbac")
    if workload_options:
        raise click.UsageError("--rbac renders the scanner's rights only: drop --job/--daemonset/--nodes/--with/--nfd")
    try:
        subj = _rbac.subjects(rbac_users, rbac_groups, rbac_sas)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--serviceaccount") from exc
    if not subj:
        click.echo("nodecheck: no --user/--group/--serviceaccount given: the Role and ClusterRole are rendered "
                   "without bindings", err=True)
    if cluster:
        from ..k8s import requirements
        return _rbac.cluster_check_documents(namespace, requirements.load().runtime_class, subj)
    return _rbac.documents(namespace, subj)


from .k8s_scan import scan as _scan  # noqa: E402 - `nodecheck k8s scan` lives in its own module
k8s.add_command(_scan)


from .k8s_nodes import cluster as _cluster, nodes as _nodes  # noqa: E402 - API prescans, own module
k8s.add_command(_nodes)
k8s.add_command(_cluster)
