"""Run the probe on this machine: one `sh` subprocess, the script on stdin."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass

from .. import probe


@dataclass
class ProbeRun:
    stdout: str
    stderr: str
    exit_status: int | None
    timed_out: bool = False
    boundary: str = ""  # the one this run generated: output under any other is not ours


def run(root: str = "/", timeout: float = 60.0, shell: str = "sh") -> ProbeRun:
    """Probe `root` (a host root mount, a fixture tree, or /) with a hard deadline.

    The root is passed as an argument, never spliced into the script text.
    """
    # Its own process group (session): at the deadline the whole group is killed, so no
    # gzip/dd/awk child outlives nodecheck or keeps the pipes open; after a normal exit any
    # straggler is killed too.
    nonce = probe.new_nonce()
    boundary = f"@@NODECHECK-{nonce}@@"
    p = subprocess.Popen([shell, "-s", "--", root], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(probe.script(nonce).encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(p.pid)
        out, err = p.communicate()
        return ProbeRun(_decode(out or b""), _decode(err or b""), None, timed_out=True, boundary=boundary)
    except BaseException:
        _kill_group(p.pid)
        p.wait()
        raise
    _kill_group(p.pid)
    return ProbeRun(_decode(out), _decode(err), p.returncode, boundary=boundary)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _decode(b: bytes) -> str:
    # Binary junk in a probed file must not break decoding of the rest.
    return b.decode("utf-8", errors="replace")
