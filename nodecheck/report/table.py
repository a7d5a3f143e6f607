"""Human output: a table per node. Computes nothing; renders a nodecheck.report/v1 dict."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "unknown": "magenta"}
ICON = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "unknown": "UNKNOWN"}


def _status(s: str) -> Text:
    return Text(ICON.get(s, s.upper()), style=STYLE.get(s, ""))


def render_node(console: Console, node: dict, *, verbose: bool = False) -> None:
    f = node.get("facts") or {}
    title = Text.assemble(
        ("Node ", "bold"), (node["node"], "bold"), "  verdict ", _status(node["verdict"]),
    )
    console.print(title)
    if node.get("error"):
        err = node["error"]
        console.print(f"  {err['kind']}: {err['message']}")
        if err.get("stderr_tail"):
            console.print("  stderr: " + err["stderr_tail"].strip().replace("\n", "\n          "))
        console.print()
        return
    console.print(
        f"  {f.get('distro.name') or f.get('distro.id') or 'unknown distro'}, kernel "
        f"{f.get('kernel.release') or 'unknown'} ({f.get('arch') or 'unknown arch'}), "
        f"SELinux {f.get('selinux.mode')}, cgroup v{f.get('cgroups.version') or '?'}",
        highlight=False,
    )
    sb = node.get("sysbox") or {}
    shown = [c for c in node.get("checks", []) if verbose or c["status"] != "pass"]
    if shown:
        console.print(Text(f"  checks against Sysbox {sb.get('target')}:", style="bold"))
    for c in shown:
        label = ICON.get(c["status"], c["status"].upper())
        console.print(Text.assemble("    ", (f"{label:<8}", STYLE.get(c["status"], "")), (c["id"], "bold"),
                                    "  ", c["message"]))
        if c.get("remediation") and c["status"] != "pass":
            console.print(Text.assemble("             ", ("fix: ", "bold"), c["remediation"]))
        if c.get("ignored"):
            console.print(Text("             (fail demoted to warn by --ignore)", style="dim"))
    passed = sum(1 for c in node.get("checks", []) if c["status"] == "pass")
    if not verbose and passed:
        console.print(f"  {passed} checks passed (--verbose shows them)", style="dim")
    methods = node.get("methods") or {}
    if methods:
        console.print("  deployment methods:", style="bold")
        for name, m in methods.items():
            label = ICON.get(m["status"], m["status"].upper())
            console.print(Text.assemble("    ", (f"{name:<19}", ""), (f"{label:<8}", STYLE.get(m["status"], "")), m["reason"]))
    compat = sb.get("compatible_releases") or []
    if "not_ruled_out" in sb and not compat:
        # A prescan from the Kubernetes API (`nodecheck k8s nodes`): most checks need the probe,
        # so say what the Node's facts leave open rather than "can run: none".
        nro = sb["not_ruled_out"]
        console.print(Text.assemble("  Sysbox releases the Node's facts do not rule out: ",
                                    (", ".join(nro) if nro else "none", "bold"),
                                    " (the node probe decides the rest)"))
        console.print()
        return
    console.print(
        Text.assemble(
            "  Sysbox releases this node can run: ", (", ".join(compat) if compat else "none", "bold"),
        )
    )
    rec = sb.get("recommended")
    console.print(Text.assemble("  recommended: ", (rec or "none (see failing checks)", "bold green" if rec else "bold red")))
    console.print()


def render(report: dict, console: Console, *, verbose: bool = False) -> None:
    nodes = report.get("nodes", [])
    for node in nodes:
        render_node(console, node, verbose=verbose)
    if len(nodes) > 1:
        counts = report.get("summary", {})
        parts = [Text.assemble((f"{counts.get(v, 0)} {v}", STYLE[v])) for v in ("pass", "warn", "fail", "unknown")]
        line = Text(f"{len(nodes)} nodes: ")
        for i, p in enumerate(parts):
            if i:
                line.append(", ")
            line.append(p)
        console.print(line)
    console.print(f"matrix {report.get('matrix_version')}, target Sysbox {report.get('target')}", style="dim")
