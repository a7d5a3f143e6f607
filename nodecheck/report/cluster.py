"""Rendering of a `nodecheck k8s cluster` document (nodecheck.k8s-cluster/v1). Computes nothing."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from .table import ICON, STYLE, _status


def render(doc: dict, console: Console, *, verbose: bool = False) -> None:
    console.print(Text.assemble(("Cluster ", "bold"), (doc.get("server") or "?", "bold"),
                                f" (Kubernetes {doc.get('kubernetes_version') or 'unknown'})  verdict ",
                                _status(doc["verdict"])))
    pod = doc.get("cvm_pod") or {}
    paths = ", ".join(f"{p} {m}" for p, m in (pod.get("host_paths") or {}).items())
    console.print(f"  workspace namespace {doc.get('workspace_namespace')}; CVM pod: privileged, {paths}",
                  highlight=False)
    shown = [c for c in doc.get("checks", []) if verbose or c["status"] != "pass"]
    for c in shown:
        label = ICON.get(c["status"], c["status"].upper())
        console.print(Text.assemble("    ", (f"{label:<8}", STYLE.get(c["status"], "")), (c["id"], "bold"),
                                    "  ", c["message"]))
        if c.get("remediation") and c["status"] != "pass":
            console.print(Text.assemble("             ", ("fix: ", "bold"), c["remediation"]))
    passed = sum(1 for c in doc.get("checks", []) if c["status"] == "pass")
    if not verbose and passed:
        console.print(f"  {passed} checks passed (--verbose shows them)", style="dim")
    console.print(f"matrix {doc.get('matrix_version')}, target Sysbox {doc.get('target')}", style="dim")


def as_report(doc: dict) -> dict:
    """The shape report.junit reads: the cluster is one suite named `cluster`."""
    return {"nodes": [{"node": "cluster", "checks": doc.get("checks", []), "error": None}]}
