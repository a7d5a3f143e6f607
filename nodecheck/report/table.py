"""Human output. Computes nothing; renders a Report (report/model.py) or its JSON form.

Everything is laid out with rich grids, so columns line up and long messages wrap inside
their column at the console's width (a terminal's, or 80 columns / $COLUMNS when piped).

- One node: a block (facts, the checks that did not pass, caveats of passing checks,
  deployment methods, releases it can run). `verbose` adds the passing checks.
- A fleet: one line per host (like Ansible's PLAY RECAP) and the caveats that apply,
  grouped; `verbose` (`-v`, `-o wide`) puts every host's block before the recap.
"""

from __future__ import annotations

import re

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..checks import Finding
from ..vocab import VERDICTS
from .model import NodeReport, Report, as_report

STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "unknown": "magenta"}
ICON = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "unknown": "UNKNOWN"}


def _status(s: str) -> Text:
    return Text(ICON.get(s, s.upper()), style=STYLE.get(s, ""))


def _grid() -> Table:
    return Table.grid(padding=(0, 2), pad_edge=False, expand=False)


def _facts_line(node: NodeReport) -> str:
    f = node.facts
    return (f"{f.get('distro.name') or f.get('distro.id') or 'unknown distro'}, kernel "
            f"{f.get('kernel.release') or 'unknown'} ({f.get('arch') or 'unknown arch'}), "
            f"SELinux {f.get('selinux.mode') or 'unknown'}, cgroup v{f.get('cgroups.version') or '?'}")


def _check_rows(checks: list[Finding], verbose: bool) -> Table:
    t = _grid()
    t.add_column(no_wrap=True, min_width=7)
    t.add_column(no_wrap=True, max_width=28, overflow="fold")
    t.add_column(overflow="fold")
    for c in checks:
        caveat = c.caveat
        if not verbose and c.status == "pass" and not caveat:
            continue
        body = Text(c.message)
        if c.remediation and c.status != "pass":
            body.append("\n")
            body.append("fix: ", style="bold")
            body.append(c.remediation)
        if caveat:
            body.append("\n")
            body.append("note: ", style="bold yellow")
            body.append(caveat)
        if c.ignored:
            body.append(f"\n({c.demoted_from or 'fail'} demoted to warn by --ignore)", style="dim")
        t.add_row(_status(c.status), Text(c.id, style="bold"), body)
    return t


def render_node(console: Console, node: NodeReport, *, verbose: bool = False) -> None:
    title = Text.assemble(("Node ", "bold"), (node.node, "bold"), "  verdict ", _status(node.verdict))
    console.print(title)
    if node.error:
        err = node.error
        t = _grid()
        t.add_column(no_wrap=True)
        t.add_column(overflow="fold")
        t.add_row(Text(err.kind, style="bold"), Text(err.message))  # Text: no markup from the node
        if err.stderr_tail:
            t.add_row("stderr", err.stderr_tail.strip())
        console.print(Padding(t, (0, 0, 0, 2)))
        console.print()
        return
    console.print(Padding(Text(_facts_line(node)), (0, 0, 0, 2)))
    sb = node.sysbox
    checks = node.checks
    shown = [c for c in checks if verbose or c.status != "pass" or c.caveat]
    if shown:
        console.print(Text(f"  checks against Sysbox {sb.target}:", style="bold"))
        console.print(Padding(_check_rows(checks, verbose), (0, 0, 0, 4)))
    hidden = sum(1 for c in checks if c.status == "pass" and not c.caveat)
    if not verbose and hidden:
        console.print(f"  {hidden} more checks passed (-v shows them)", style="dim")
    methods = node.methods
    if methods:
        console.print("  deployment methods:", style="bold")
        t = _grid()
        t.add_column(no_wrap=True)
        t.add_column(no_wrap=True, min_width=7)
        t.add_column(overflow="fold")
        for name, m in methods.items():
            t.add_row(name, _status(m.status), m.reason)
        console.print(Padding(t, (0, 0, 0, 4)))
    compat = sb.compatible_releases
    rec = sb.recommended
    lines = (("Sysbox releases this node can run:", Text(", ".join(compat) if compat else "none", style="bold")),
             ("recommended:", Text(rec or "none (see failing checks)", style="bold green" if rec else "bold red")))
    if sb.not_ruled_out is not None and not compat:
        # A prescan from the Kubernetes API (`nodecheck k8s nodes`): most checks need the node
        # probe, so say what the Node's facts leave open rather than "can run: none".
        nro = sb.not_ruled_out
        lines = (("Sysbox releases the Node's facts do not rule out:",
                  Text((", ".join(nro) if nro else "none") + " (the node probe decides the rest)", style="bold")),)
    for label, value in lines:
        t = Table.grid(padding=(0, 1), pad_edge=False)  # one grid per line: wraps under its value
        t.add_column(no_wrap=True)
        t.add_column(overflow="fold")
        t.add_row(label, value)
        console.print(Padding(t, (0, 0, 0, 2)))
    console.print()


def _not_passing(node: NodeReport) -> Text:
    if node.error:
        return Text(f"{node.error.kind}: {node.error.message}")
    out = Text()
    for c in node.checks:
        if c.status != "pass":
            if out:
                out.append(", ")
            out.append(c.id, style=STYLE.get(c.status, ""))
    return out


def recap(console: Console, report: Report) -> None:
    """One line per host, then the caveats that apply to some of them."""
    nodes = report.nodes
    console.print(Text(f"RECAP: Sysbox {report.target}", style="bold"))
    t = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold", show_edge=False)
    t.add_column("HOST", overflow="fold", min_width=12, max_width=32)
    t.add_column("VERDICT", no_wrap=True)
    for v in VERDICTS:
        t.add_column({"unknown": "UNKN"}.get(v, v.upper()), justify="right", no_wrap=True)
    t.add_column("RECOMMENDED", no_wrap=True)
    t.add_column("NOT PASSING", overflow="fold", min_width=20)
    caveats: dict[tuple[str, str], list[str]] = {}
    for n in nodes:
        counts = [str(sum(1 for c in n.checks if c.status == v)) if not n.error else "-" for v in VERDICTS]
        rec = n.sysbox.recommended or "-"
        t.add_row(n.node, _status(n.verdict), *counts, rec, _not_passing(n))
        for c in n.checks:
            if c.caveat:
                caveats.setdefault((c.id, c.caveat), []).append(n.node)
    console.print(t)
    if caveats:
        console.print(Text("notes:", style="bold yellow"))
        g = _grid()
        g.add_column(no_wrap=True, max_width=28, overflow="fold")
        g.add_column(overflow="fold")
        for (cid, text), hosts in caveats.items():
            who = "every host" if len(hosts) == len(nodes) else ", ".join(hosts)
            g.add_row(Text(cid, style="bold"), Text(f"{text} ({who})"))
        console.print(Padding(g, (0, 0, 0, 2)))


def render(report, console: Console, *, verbose: bool = False) -> None:
    """`report`: a Report, or its JSON form. Every node-supplied string is made printable first."""
    # rich pads every grid row to its full width: render, then drop the trailing blanks so
    # piped output and copy-paste carry no runs of spaces (colour codes are kept).
    doc = report.to_dict() if isinstance(report, Report) else report
    with console.capture() as cap:
        _render(as_report(printable(doc)), console, verbose=verbose)
    text = cap.get()
    console.file.write("\n".join(_TRAILING.sub(r"\1", ln) for ln in text.split("\n")))
    console.file.flush()


_TRAILING = re.compile(r"[ ]+((?:\x1b\[[0-9;]*m)*)$")

# Node-supplied strings (a hostname, os-release's PRETTY_NAME, a package version, a probe
# problem) reach the terminal: an ESC, CSI (U+009B), BEL or backspace in them could retitle the
# window, hide lines or fake a PASS. Every C0/C1 control except newline is shown as \xNN.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def printable(doc):
    """The report with every string's control characters made visible (a copy)."""
    if isinstance(doc, str):
        return _CONTROL.sub(_escape, doc)
    if isinstance(doc, dict):
        return {printable(k): printable(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [printable(v) for v in doc]
    return doc


def _render(report: Report, console: Console, *, verbose: bool = False) -> None:
    nodes = report.nodes
    if len(nodes) == 1:
        render_node(console, nodes[0], verbose=verbose)
    elif nodes:
        if verbose:
            for node in nodes:
                render_node(console, node, verbose=True)
        recap(console, report)
        counts = report.summary
        line = Text(f"{len(nodes)} nodes: ")
        for i, v in enumerate(VERDICTS):
            if i:
                line.append(", ")
            line.append(f"{counts.get(v, 0)} {v}", style=STYLE[v])
        if not verbose:
            line.append("  (-v: every host's checks)", style="dim")
        console.print(line)
    console.print(f"matrix {report.matrix_version}, target Sysbox {report.target}", style="dim")
