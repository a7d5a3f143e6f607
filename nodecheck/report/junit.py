"""JUnit XML for CI: one testsuite per node, one testcase per check.

Mapping (classname = node name, name = check id):
- fail    -> <failure>: the node cannot run Sysbox for this reason.
- unknown -> <error>: the check could not be decided (file unreadable, probe cut short).
  Not <skipped>: CI tools render skipped as green, and "we could not tell" must not pass
  a gate silently. <skipped> is kept for checks the user explicitly ignored.
- warn    -> a passing testcase whose <system-out> carries the warning.
- pass    -> a passing testcase.
A node that was never probed (unreachable, auth-failed, host-key-*, timeout,
probe-error) is a suite with a single failing testcase named `host`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ..vocab import ERROR_KINDS
from .jsonl import node_name

HOST_ERROR_KINDS = ERROR_KINDS


def _text(*parts) -> str:
    return "\n".join(str(p) for p in parts if p)


def _host_error(node: dict) -> tuple[str, str, str] | None:
    """(kind, message, stderr_tail) when the node is a host-level error."""
    err = node.get("error")
    if isinstance(err, dict):
        return (str(err.get("kind", "error")), str(err.get("message", "")),
                str(err.get("stderr_tail", "")))
    for key in ("kind", "status", "error_kind"):
        if node.get(key) in HOST_ERROR_KINDS:
            return (node[key], str(node.get("message", "")), str(node.get("stderr_tail", "")))
    return None


def build(report: dict) -> ET.Element:
    root = ET.Element("testsuites", name="nodecheck")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for node in report.get("nodes", []):
        name = node_name(node) or "?"
        suite = ET.SubElement(root, "testsuite", name=name)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        herr = _host_error(node)
        checks = node.get("checks") or []
        if herr and not checks:
            kind, msg, tail = herr
            tc = ET.SubElement(suite, "testcase", classname=name, name="host")
            f = ET.SubElement(tc, "failure", type=kind, message=f"{kind}: {msg}"[:500])
            f.text = _text(msg, tail and f"stderr tail:\n{tail}")
            counts["tests"] += 1
            counts["failures"] += 1
        for chk in checks:
            cid = str(chk.get("id", "?"))
            status = str(chk.get("status", chk.get("verdict", "unknown")))
            msg = str(chk.get("message", ""))
            rem = chk.get("remediation")
            tc = ET.SubElement(suite, "testcase", classname=name, name=cid)
            counts["tests"] += 1
            if status == "fail":
                f = ET.SubElement(tc, "failure", type="fail", message=msg[:500])
                f.text = _text(msg, rem and f"remediation: {rem}")
                counts["failures"] += 1
            elif status == "unknown":
                e = ET.SubElement(tc, "error", type="unknown", message=msg[:500])
                e.text = _text(msg, rem and f"remediation: {rem}")
                counts["errors"] += 1
            elif status in ("skipped", "ignored"):
                ET.SubElement(tc, "skipped", message=msg[:500])
                counts["skipped"] += 1
            elif status == "warn":
                so = ET.SubElement(tc, "system-out")
                so.text = _text(f"WARN: {msg}", rem and f"remediation: {rem}")
            elif msg:
                ET.SubElement(tc, "system-out").text = msg
        for k, v in counts.items():
            suite.set(k, str(v))
            totals[k] += v
    for k, v in totals.items():
        root.set(k, str(v))
    return root


def write_junit(report: dict, path: str) -> None:
    """Atomically, mode 0600; a special file at `path` is refused, never replaced (outfile.py)."""
    from ..outfile import atomic_write

    tree = ET.ElementTree(build(report))
    ET.indent(tree)
    atomic_write(path, ET.tostring(tree.getroot(), encoding="utf-8", xml_declaration=True) + b"\n", "--junit")
