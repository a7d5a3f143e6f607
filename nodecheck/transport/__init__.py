"""Transports carry the probe to a node and its output back; every one returns a `ProbeRun`.

A transport (this machine's `sh`, an SSH session, the Ansible action plugin's connection)
knows how to run a script on a node and nothing of what the output means. `run_probe` hands
it the probe with a fresh boundary; `settle` then decides, with the same rules for every
transport, whether what came back is a probe run to score or a host error. So a forged
boundary, a run cut short or a non-zero exit reads the same from `scan`, `scan --host`, the
pod and `nodecheck install`'s preflight (before, each front end had its own rules).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the sections module is imported by settle(), not by every transport user
    from ..sections import Sections

OK = "ok"


@dataclass
class ProbeRun:
    """What one run of the probe on one node brought back, and what `settle` made of it."""

    stdout: str = ""
    stderr: str = ""  # a transport may keep only its tail
    exit_status: int | None = None  # None: the run never reported one (killed, stream cut)
    boundary: str = ""  # the boundary this run generated: output under any other is not ours
    status: str = OK  # ok, or a vocab.TRANSPORT_ERROR_KINDS name: why there is nothing to score
    message: str = ""
    truncated: bool = False  # stdout reached the transport's cap: never parsed
    seconds: float = 0.0
    kex: str | None = None  # SSH: the key exchange negotiated
    host_key_added: bool = False  # SSH: accept-new wrote the host's key to known_hosts
    # settle()'s parse of stdout, kept so that scoring does not parse it a second time.
    parsed: "Sections | None" = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def timed_out(self) -> bool:
        return self.status == "timeout"

    def failed(self, status: str, message: str) -> "ProbeRun":
        self.status, self.message = status, message
        return self


class Transport(Protocol):
    def execute(self, script: str) -> ProbeRun:
        """Run `script` once on the node (fed on stdin, never spliced into a command line) and
        return what came back. A host's failure (unreachable, a deadline, a refused key) is the
        run's `status`, never an exception."""


def boundary_of(nonce: str) -> str:
    return f"@@NODECHECK-{nonce}@@"


def probe_script() -> tuple[str, str]:
    """A fresh nonce's probe text and the boundary its output must carry."""
    from .. import probe
    nonce = probe.new_nonce()
    return probe.script(nonce), boundary_of(nonce)


def run_probe(transport: Transport) -> ProbeRun:
    """The probe with a fresh nonce through `transport`, settled."""
    script, boundary = probe_script()
    run = transport.execute(script)
    run.boundary = boundary
    return settle(run)


def settle(run: ProbeRun) -> ProbeRun:
    """Classify a run whose transport had no complaint: `ok` only for one probe header under
    this run's boundary, a DONE line and exit status 0; else `probe-error` with the reason.

    Strict on purpose: a run without DONE or with a non-zero exit may have been cut inside a
    section, and its facts are not the node's. Idempotent (a settled run is returned as is)."""
    if not run.ok or run.parsed is not None:
        return run
    if run.truncated:
        return run.failed("probe-error", run.message or "output exceeded the transport's size cap")
    from .. import sections
    parsed = run.parsed = sections.parse(run.stdout)
    exited = f"probe exited with status {run.exit_status}"
    if parsed.version == 0:
        why = parsed.problems[0] if parsed.problems and "headers" in parsed.problems[0] else \
            "no probe header in the output (garbage, or the probe never started)"
        return run.failed("probe-error", f"{exited}: {why}" if run.exit_status not in (0, None) else why)
    if run.boundary and parsed.boundary != run.boundary:
        return run.failed("probe-error", "probe output carries a boundary this run did not generate "
                                         "(not our probe)")
    if not parsed.done:
        return run.failed("probe-error", "probe output ends early (no DONE line)"
                          + (f"; {exited}" if run.exit_status not in (0, None) else ""))
    if run.exit_status is None:
        return run.failed("probe-error", "no exit status from the probe's shell")
    if run.exit_status != 0:
        return run.failed("probe-error", exited)
    return run
