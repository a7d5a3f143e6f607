"""Run the probe on this machine: one `sh` subprocess, the script on stdin."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from .. import probe


@dataclass
class ProbeRun:
    stdout: str
    stderr: str
    exit_status: int | None
    timed_out: bool = False


def run(root: str = "/", timeout: float = 60.0, shell: str = "sh") -> ProbeRun:
    """Probe `root` (a host root mount, a fixture tree, or /) with a hard deadline.

    The root is passed as an argument, never spliced into the script text.
    """
    try:
        p = subprocess.run(
            [shell, "-s", "--", root], input=probe.script().encode(), capture_output=True,
            timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return ProbeRun(_decode(exc.stdout or b""), _decode(exc.stderr or b""), None, timed_out=True)
    return ProbeRun(_decode(p.stdout), _decode(p.stderr), p.returncode)


def _decode(b: bytes) -> str:
    # Binary junk in a probed file must not break decoding of the rest.
    return b.decode("utf-8", errors="replace")
