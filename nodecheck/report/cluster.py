"""Rendering of a `nodecheck k8s cluster` document (nodecheck.k8s-cluster/v1). Computes nothing."""

from __future__ import annotations

from rich.console import Console
from rich.padding import Padding
from rich.text import Text

from .model import NodeReport, ReleaseAdvice, Report, finding_from_dict
from .table import _TRAILING, _check_rows, _status


def render(doc: dict, console: Console, *, verbose: bool = False) -> None:
    # As table.render: rich pads grid rows to full width; drop the trailing blanks.
    with console.capture() as cap:
        _render(doc, console, verbose=verbose)
    console.file.write("\n".join(_TRAILING.sub(r"\1", ln) for ln in cap.get().split("\n")))
    console.file.flush()


def _render(doc: dict, console: Console, *, verbose: bool = False) -> None:
    console.print(Text.assemble(("Cluster ", "bold"), (doc.get("server") or "?", "bold"),
                                f" (Kubernetes {doc.get('kubernetes_version') or 'unknown'})  verdict ",
                                _status(doc["verdict"])))
    pod = doc.get("cvm_pod") or {}
    paths = ", ".join(f"{p} {m}" for p, m in (pod.get("host_paths") or {}).items())
    console.print(f"  workspace namespace {doc.get('workspace_namespace')}; CVM pod: privileged, {paths}",
                  highlight=False)
    checks = [finding_from_dict(c) for c in doc.get("checks", [])]
    if any(verbose or c.status != "pass" for c in checks):
        console.print(Padding(_check_rows(checks, verbose), (0, 0, 0, 4)))
    passed = sum(1 for c in checks if c.status == "pass")
    if not verbose and passed:
        console.print(f"  {passed} checks passed (-v shows them)", style="dim")
    console.print(f"matrix {doc.get('matrix_version')}, target Sysbox {doc.get('target')}", style="dim")


def as_report(doc: dict) -> Report:
    """The cluster as a report of one node named `cluster` (JUnit: one suite)."""
    checks = [finding_from_dict(c) for c in doc.get("checks", [])]
    node = NodeReport(node="cluster", source=doc.get("server"), verdict=doc.get("verdict") or "unknown",
                      checks=checks, sysbox=ReleaseAdvice(doc.get("target")))
    return Report(nodecheck_version=str(doc.get("nodecheck_version", "")), generated_at=str(doc.get("generated_at", "")),
                  matrix_version=doc.get("matrix_version"), target=doc.get("target"), nodes=[node])
