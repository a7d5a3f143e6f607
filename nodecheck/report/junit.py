"""JUnit XML for CI: one testsuite per node, one testcase per check. Renders a Report
(report/model.py) or its JSON form.

Mapping (classname = node name, name = check id):
- fail    -> <failure>: the node cannot run Sysbox for this reason.
- unknown -> <error>: the check could not be decided (file unreadable, probe cut short).
  Not <skipped>: CI tools render skipped as green, and "we could not tell" must not pass
  a gate silently.
- ignored -> <skipped>: a fail or unknown the user explicitly ignored (--ignore); the report
  keeps it as a warn with `ignored` and `demoted_from`, and JUnit says what it was, so an
  ignored blocker never reads as a passing test.
- warn    -> a passing testcase whose <system-out> carries the warning.
- pass    -> a passing testcase.
A node that was never probed (unreachable, auth-failed, host-key-*, timeout,
probe-error, and the k8s scan's pod kinds) is a suite with a single failing testcase named `host`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ..vocab import ERROR_KINDS
from .model import as_report

HOST_ERROR_KINDS = ERROR_KINDS


def _text(*parts) -> str:
    return "\n".join(str(p) for p in parts if p)


def build(report) -> ET.Element:
    root = ET.Element("testsuites", name="nodecheck")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for node in as_report(report).nodes:
        name = node.node or "?"
        suite = ET.SubElement(root, "testsuite", name=name)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        if node.error and not node.checks:
            err = node.error
            tc = ET.SubElement(suite, "testcase", classname=name, name="host")
            f = ET.SubElement(tc, "failure", type=err.kind, message=f"{err.kind}: {err.message}"[:500])
            f.text = _text(err.message, err.stderr_tail and f"stderr tail:\n{err.stderr_tail}")
            counts["tests"] += 1
            counts["failures"] += 1
        for chk in node.checks:
            msg, rem = chk.message, chk.remediation
            tc = ET.SubElement(suite, "testcase", classname=name, name=chk.id)
            counts["tests"] += 1
            if chk.ignored:
                was = chk.demoted_from or "fail"
                sk = ET.SubElement(tc, "skipped", message=f"ignored by --ignore (was {was}): {msg}"[:500])
                sk.text = _text(msg, rem and f"remediation: {rem}")
                counts["skipped"] += 1
            elif chk.status == "fail":
                f = ET.SubElement(tc, "failure", type="fail", message=msg[:500])
                f.text = _text(msg, rem and f"remediation: {rem}")
                counts["failures"] += 1
            elif chk.status == "unknown":
                e = ET.SubElement(tc, "error", type="unknown", message=msg[:500])
                e.text = _text(msg, rem and f"remediation: {rem}")
                counts["errors"] += 1
            elif chk.status == "warn":
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


def write_junit(report, path: str) -> None:
    """Atomically, mode 0600; a special file at `path` is refused, never replaced (outfile.py)."""
    from ..outfile import atomic_write

    tree = ET.ElementTree(build(report))
    ET.indent(tree)
    atomic_write(path, ET.tostring(tree.getroot(), encoding="utf-8", xml_declaration=True) + b"\n", "--junit")
