"""One ProbeRun and one classifier for every transport (issue 13): local `sh`, SSH and the
Ansible plugin's connection all return `transport.ProbeRun`, settled by `transport.settle`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nodecheck import fleet, probe
from nodecheck.transport import ProbeRun, Transport, boundary_of, local, run_probe, settle, ssh

REPO = Path(__file__).resolve().parents[1]
TREE = REPO / "tests" / "fixtures" / "hosts" / "ubuntu-24.04" / "root"
NONCE = "0123456789abcdef"
B = boundary_of(NONCE)


@pytest.fixture(scope="module")
def real() -> str:
    run = local.Local(str(TREE)).execute(probe.script(NONCE))
    assert run.exit_status == 0 and run.ok, run
    return run.stdout


def _no_done(t):
    return t[:t.rindex(B + " DONE")]


# (what the node sent, exit status, the transport's status) -> (settled status, words in the message)
CASES = {
    "a whole run": (lambda t: t, 0, "ok", "ok", ""),
    "non-zero exit": (lambda t: t, 2, "ok", "probe-error", "exited with status 2"),
    "no exit status": (lambda t: t, None, "ok", "probe-error", "no exit status"),
    "no DONE line": (_no_done, 0, "ok", "probe-error", "no DONE"),
    "no DONE and killed": (_no_done, 137, "ok", "probe-error", "status 137"),
    "garbage": (lambda t: "\x00\xff junk\n", 0, "ok", "probe-error", "no probe header"),
    "nothing, sh missing": (lambda t: "", 127, "ok", "probe-error", "exited with status 127"),
    "a foreign boundary": (lambda t: t.replace(B, "@@NODECHECK-madeup@@"), 0, "ok", "probe-error",
                           "did not generate"),
    "a forgery printed first": (lambda t: t.replace(B, "@@NODECHECK-madeup@@") + t, 0, "ok", "probe-error",
                                "2 probe headers"),
    "the transport's own error": (lambda t: t, 0, "host-key-mismatch", "host-key-mismatch", "kept"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_settle(real, case):
    make, rc, status, want, says = CASES[case]
    run = settle(ProbeRun(make(real), exit_status=rc, boundary=B, status=status,
                          message="kept" if status != "ok" else ""))
    assert (run.status, says in run.message) == (want, True), (run.status, run.message)
    assert settle(run) is run and run.status == want  # idempotent


def test_a_capped_output_is_never_parsed():
    run = settle(ProbeRun(B + " PROBE 3 root=/\n", exit_status=0, boundary=B, truncated=True,
                          message="output exceeded 1024 bytes (not parsed)"))
    assert run.status == "probe-error" and "1024" in run.message and run.parsed is None


def test_local_is_a_transport_and_run_probe_settles_it():
    t: Transport = local.Local(str(TREE), timeout=30)
    run = run_probe(t)
    assert type(run) is ProbeRun and run.ok and run.parsed is not None
    assert run.boundary.startswith("@@NODECHECK-") and run.parsed.boundary == run.boundary
    slow = run_probe(local.Local(str(TREE), timeout=0.001, shell="sh"))
    assert slow.status == "timeout" and slow.timed_out and "within 0.001s" in slow.message


def test_ssh_session_is_a_transport_whose_failures_are_statuses(tmp_path):
    import socket
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = ssh.load_ssh_config(str(tmp_path / "none"))
    ep = ssh.resolve("127.0.0.1", config=config, user="x", port=port, known_hosts=str(tmp_path / "kh"))
    sess = ssh.Session(ep, config=config, connect_timeout=2)
    run = run_probe(sess)  # never raises for a host's failure
    assert type(run) is ProbeRun and run.status == "unreachable" and run.message
    assert sess.closed and sess.phase == "parse"


def test_there_is_one_probe_run_class():
    names = []
    for path in (REPO / "nodecheck").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name == "ProbeRun":
                names.append(str(path.relative_to(REPO)))
    assert names == ["nodecheck/transport/__init__.py"], names
    assert issubclass(fleet.HostResult, ProbeRun)


@pytest.mark.parametrize("forks,cap", [(1, 64 << 20), (8, 64 << 20), (50, (512 << 20) // 50), (200, 8 << 20),
                                       (10_000, 8 << 20)])
def test_the_fleet_output_budget_is_shared_by_its_forks(forks, cap):
    assert fleet.fleet_stdout_cap(forks) == cap


def _slow_shell(tmp_path, body: str) -> str:
    sh = tmp_path / "slowsh"
    sh.write_text(f"#!/bin/sh\n{body}\n")
    sh.chmod(0o755)
    return str(sh)


def _wait_for(path: str, seconds: float) -> bool:
    import time
    deadline = time.monotonic() + seconds
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return Path(path).exists()


def test_a_started_probe_keeps_running_while_the_caller_works_and_its_output_is_not_lost(tmp_path):
    # The probe's whole output (here 600 KiB, over a default pipe's 64 KiB) must fit the widened
    # pipe: the caller reads nothing until result(), and the probe must finish meanwhile.
    shell = _slow_shell(tmp_path, 'cat >/dev/null; head -c 614400 /dev/zero | tr "\\0" x; echo; echo done >"$0.done"')
    p = local.Probe(str(tmp_path), timeout=30, shell=shell)
    assert _wait_for(shell + ".done", 10), "the probe blocked on its pipe while the caller worked"
    run = p.result()
    assert run.exit_status == 0 and len(run.stdout) == 614401
    assert run.status == "probe-error"  # not our probe's output: settled like any other run


def test_the_deadline_counts_from_the_start_not_from_result(tmp_path):
    import time
    shell = _slow_shell(tmp_path, "cat >/dev/null; sleep 30")
    p = local.Probe(str(tmp_path), timeout=1, shell=shell)
    time.sleep(1.2)
    t0 = time.monotonic()
    run = p.result()
    assert run.status == "timeout" and time.monotonic() - t0 < 0.5


def test_cancel_kills_the_probe_group_and_is_idempotent(tmp_path):
    import time
    shell = _slow_shell(tmp_path, 'cat >/dev/null; sleep 30 & echo $! >"$0.pid"; wait')
    p = local.Probe(str(tmp_path), timeout=30, shell=shell)
    assert _wait_for(shell + ".pid", 5)
    child = int(Path(shell + ".pid").read_text())
    p.cancel()
    p.cancel()
    time.sleep(0.1)
    try:  # gone, or a zombie waiting for whoever reaps orphans here
        state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        state = "gone"
    assert state in ("gone", "Z", "X")


def test_a_usage_error_after_the_probe_started_leaves_no_probe_behind(tmp_path, monkeypatch):
    # scan starts the local probe before the matrix is loaded; a bad --sysbox found then must
    # still be a plain usage error (exit 64) and the probe's process group must be gone.
    from nodecheck.cli import main
    started = []
    real = local.Probe

    class Spy(real):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            started.append(self)
    monkeypatch.setattr(local, "Probe", Spy)
    assert main(["scan", "--sysbox", "9.9.9", "-o", "json"]) == 64
    assert started and started[0]._running.done
    assert started[0]._running.process.poll() is not None


def test_paramiko_comes_without_invoke_and_match_exec_still_runs(tmp_path):
    # In a fresh interpreter (this one may have imported invoke already): importing the SSH
    # transport must not import invoke (85 ms of a fleet scan's start-up), and an ssh_config
    # `Match exec` must still run its command through it.
    import subprocess
    import sys
    marker = tmp_path / "ran"
    code = (
        "import sys\n"
        "from nodecheck.transport import ssh\n"
        "assert 'invoke' not in sys.modules, 'invoke imported with paramiko'\n"
        f"cfg = ssh.paramiko.SSHConfig.from_text('Match exec \"touch {marker}\"\\n  HostName yes.example\\n'"
        " + 'Host *\\n  HostName no.example\\n')\n"
        "print(cfg.lookup('node1')['hostname'])\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "yes.example" and marker.exists()
