"""Run the probe on this machine: one `sh` subprocess, the script on stdin."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass

from . import ProbeRun, probe_script, settle

# A pipe holds 64 KiB by default and a probe writes ~100-300 KiB: with room for all of it the
# probe never waits for the reader, so the caller can import and load the matrix while the probe
# runs (issue 15). 1 MiB is Linux's pipe-max-size for unprivileged users; past it the probe simply
# waits for `finish()`.
_PIPE_BYTES = 1 << 20


@dataclass
class Local:
    """The `Transport` of `scan` / `collect` on this machine, `--root` trees and the pod.

    The root (a host root mount, a fixture tree, or /) is the script's argument, never
    spliced into its text."""

    root: str = "/"
    timeout: float = 60.0
    shell: str = "sh"

    def execute(self, script: str) -> ProbeRun:
        return self.start(script).finish()

    def start(self, script: str) -> "Running":
        # Its own process group (session): at the deadline the whole group is killed, so no
        # gzip/dd/awk child outlives nodecheck or keeps the pipes open; after a normal exit any
        # straggler is killed too.
        p = subprocess.Popen([self.shell, "-s", "--", self.root], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        running = Running(p, self.timeout, time.monotonic())
        _widen(p.stdout)
        data = script.encode()
        if len(data) <= (_PIPE_BYTES if _widen(p.stdin) else 1 << 16):
            try:  # fits the empty pipe whole: never blocks, and the probe starts reading at once
                p.stdin.write(data)
            except BrokenPipeError:  # the shell is gone already; finish() reports its status
                pass
            p.stdin.close()
            p.stdin = None  # communicate() then only reads
        else:
            running.script = data
        return running


@dataclass
class Running:
    """A probe started by `Local.start`: `finish()` waits for it within what is left of the
    deadline (counted from the start), `cancel()` kills it (a usage error found meanwhile)."""

    process: subprocess.Popen
    timeout: float
    started: float
    script: bytes | None = None
    done: bool = False

    def finish(self) -> ProbeRun:
        p = self.process
        self.done = True
        left = max(0.0, self.timeout - (time.monotonic() - self.started))
        try:
            out, err = p.communicate(self.script, timeout=left)
        except subprocess.TimeoutExpired:
            _kill_group(p.pid)
            out, err = p.communicate()
            return ProbeRun(_decode(out or b""), _decode(err or b""), None, status="timeout",
                            message=f"probe did not finish within {self.timeout:g}s",
                            seconds=time.monotonic() - self.started)
        except BaseException:
            self.done = False
            self.cancel()
            raise
        _kill_group(p.pid)
        return ProbeRun(_decode(out), _decode(err), p.returncode, seconds=time.monotonic() - self.started)

    def cancel(self) -> None:
        """Kill the probe's process group and reap it; nothing once the result was taken."""
        if self.done:
            return
        self.done = True
        p = self.process
        _kill_group(p.pid)
        p.wait()
        for f in (p.stdin, p.stdout, p.stderr):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass


class Probe:
    """`run()` in two halves, so the caller's own work overlaps the probe:
    `Probe(root, timeout).result()` is `run(root, timeout)`."""

    def __init__(self, root: str = "/", timeout: float = 60.0, shell: str = "sh"):
        script, self._boundary = probe_script()
        self._running = Local(root, timeout, shell).start(script)

    def result(self) -> ProbeRun:
        run = self._running.finish()
        run.boundary = self._boundary
        return settle(run)

    def cancel(self) -> None:
        self._running.cancel()


def run(root: str = "/", timeout: float = 60.0, shell: str = "sh") -> ProbeRun:
    """Probe `root` with a hard deadline: the settled run (see transport.settle)."""
    return Probe(root, timeout, shell).result()


def _widen(pipe) -> bool:
    import fcntl
    try:
        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)
        return True
    except OSError:  # not Linux, or over this user's pipe limit: the default size, read as before
        return False


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _decode(b: bytes) -> str:
    # Binary junk in a probed file must not break decoding of the rest.
    return b.decode("utf-8", errors="replace")
