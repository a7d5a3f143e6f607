"""`nodecheck k8s`: Kubernetes helpers. `render` prints the preflight pod's manifests."""

from __future__ import annotations

import click

from ..k8s import render as _render
from ._common import output_options, write_json, write_text


@click.group("k8s")
def k8s() -> None:
    """Kubernetes: manifests for scanning nodes from a pod (no API access needed)."""


@k8s.command("render")
@click.option("--job", "job", is_flag=True, help="A one-shot Job: one pod per node (needs --nodes).")
@click.option("--daemonset", "daemonset", is_flag=True,
              help="A DaemonSet: scans every node, then idles (the default).")
@click.option("--image", default=_render.DEFAULT_IMAGE, show_default=True, help="The nodecheck image.")
@click.option("--namespace", "-n", default=_render.DEFAULT_NAMESPACE, show_default=True)
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
@output_options(("yaml", "json"), default="yaml",
                file_help="Write the manifests to PATH instead of stdout (atomically).",
                help="yaml: multi-document YAML (default); json: one v1 List. Both work with `kubectl apply -f`.")
def render(job: bool, daemonset: bool, image: str, namespace: str, nodes: int | None, with_: tuple[str, ...],
           nfd: bool, output: str, output_file: str | None) -> None:
    """Print ready manifests: `nodecheck k8s render | kubectl apply -f -`.

    The same manifests as deploy/ (kustomize). Each pod prints one JSON report line, named
    after its Kubernetes node (NODE_NAME from the downward API);
    `kubectl logs -n NS -l app.kubernetes.io/name=nodecheck -c scan` gathers the fleet.
    """
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


from .k8s_nodes import cluster as _cluster, nodes as _nodes  # noqa: E402 - API prescans, own module
k8s.add_command(_nodes)
k8s.add_command(_cluster)
