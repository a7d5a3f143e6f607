"""Run the probe on this machine: one `sh` subprocess, the script on stdin."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass

from . import ProbeRun, run_probe


@dataclass
class Local:
    """The `Transport` of `scan` / `collect` on this machine, `--root` trees and the pod.

    The root (a host root mount, a fixture tree, or /) is the script's argument, never
    spliced into its text."""

    root: str = "/"
    timeout: float = 60.0
    shell: str = "sh"

    def execute(self, script: str) -> ProbeRun:
        # Its own process group (session): at the deadline the whole group is killed, so no
        # gzip/dd/awk child outlives nodecheck or keeps the pipes open; after a normal exit any
        # straggler is killed too.
        t0 = time.monotonic()
        p = subprocess.Popen([self.shell, "-s", "--", self.root], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = p.communicate(script.encode(), timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(p.pid)
            out, err = p.communicate()
            return ProbeRun(_decode(out or b""), _decode(err or b""), None, status="timeout",
                            message=f"probe did not finish within {self.timeout:g}s",
                            seconds=time.monotonic() - t0)
        except BaseException:
            _kill_group(p.pid)
            p.wait()
            raise
        _kill_group(p.pid)
        return ProbeRun(_decode(out), _decode(err), p.returncode, seconds=time.monotonic() - t0)


def run(root: str = "/", timeout: float = 60.0, shell: str = "sh") -> ProbeRun:
    """Probe `root` with a hard deadline: the settled run (see transport.settle)."""
    return run_probe(Local(root, timeout, shell))


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _decode(b: bytes) -> str:
    # Binary junk in a probed file must not break decoding of the rest.
    return b.decode("utf-8", errors="replace")
