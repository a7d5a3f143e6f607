"""`nodecheck k8s`: Kubernetes helpers. `render` prints the preflight pod's manifests."""

from __future__ import annotations

import click

from ..k8s import render as _render


@click.group("k8s")
def k8s() -> None:
    """Kubernetes: manifests for scanning nodes from a pod (no API access needed)."""


@k8s.command("render")
@click.option("--job", "kind", flag_value="job", help="A one-shot Job: one pod per node (needs --nodes).")
@click.option("--daemonset", "kind", flag_value="daemonset", default=True,
              help="A DaemonSet: scans every node, then idles (the default).")
@click.option("--image", default=_render.DEFAULT_IMAGE, show_default=True, help="The nodecheck image.")
@click.option("--namespace", "-n", default=_render.DEFAULT_NAMESPACE, show_default=True)
@click.option("--nodes", type=click.IntRange(min=1), default=None,
              help="Job only: parallelism = completions = this many nodes "
                   "(e.g. $(kubectl get nodes --no-headers | wc -l)).")
@click.option("--with", "with_", multiple=True, type=click.Choice(list(_render.OPTIONAL)),
              help="Add an optional host mount set (repeatable): "
                   + "; ".join(f"{k}: {v[0]}" for k, v in _render.OPTIONAL.items()) + ".")
def render(kind: str, image: str, namespace: str, nodes: int | None, with_: tuple[str, ...]) -> None:
    """Print ready multi-document YAML: `nodecheck k8s render | kubectl apply -f -`.

    The same manifests as deploy/ (kustomize). Each pod prints one JSON report line;
    `kubectl logs -n NS -l app.kubernetes.io/name=nodecheck -c scan` gathers the fleet.
    """
    if kind == "job" and nodes is None:
        raise click.UsageError("--job needs --nodes N (the number of nodes to scan, one pod each)")
    if kind == "daemonset" and nodes is not None:
        raise click.UsageError("--nodes applies to --job only (a DaemonSet runs on every node)")
    click.echo(_render.render(kind, image, namespace, nodes or _render.NODES_PLACEHOLDER, with_), nl=False)


from .k8s_nodes import cluster as _cluster, nodes as _nodes  # noqa: E402 - API prescans, own module
k8s.add_command(_nodes)
k8s.add_command(_cluster)
