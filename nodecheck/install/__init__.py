"""`nodecheck install`'s engine: the playbooks in playbooks/ driven through ansible-runner.

Two runs, each in the same private data dir (its artifacts are kept):
  1. `preflight.yml`: the preflight role only; each host's verdict comes back in the
     runner events of the `nodecheck_preflight` task.
  2. `site.yml`, limited to the hosts that passed, with live per-host progress from the
     runner's events; the per-host summary comes from `runner.stats`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

PREFLIGHT_ACTION = "nodecheck_preflight"


class InstallError(Exception):
    """The run could not start (exit code 3)."""


def playbooks_dir() -> Path:
    """NODECHECK_PLAYBOOKS when set (and then only it), else the checkout's playbooks/."""
    env = os.environ.get("NODECHECK_PLAYBOOKS")
    c = Path(env) if env else Path(__file__).resolve().parent.parent.parent / "playbooks"
    if (c / "site.yml").is_file() and (c / "ansible.cfg").is_file():
        return c
    raise InstallError(
        f"cannot find the nodecheck playbooks (no site.yml and ansible.cfg in {c}); "
        "set NODECHECK_PLAYBOOKS to the playbooks/ directory")


@dataclass
class HostPreflight:
    name: str
    verdict: str = "unknown"  # pass warn fail unknown, or "unreachable" / "error"
    install: bool = False
    reason: str = ""
    failing: list = field(default_factory=list)
    release: str | None = None


@dataclass
class HostResult:
    name: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    unreachable: int = 0
    message: str = ""

    @property
    def installed(self) -> bool:
        return self.failed == 0 and self.unreachable == 0 and (self.ok + self.changed) > 0


@dataclass
class RunOutcome:
    status: str
    rc: int | None
    artifact_dir: str
    hosts: dict[str, HostResult]
    stats: dict | None


def _env() -> dict:
    bindir = os.path.dirname(sys.executable)
    return {
        "PATH": bindir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
        "ANSIBLE_CONFIG": str(playbooks_dir() / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        # The action plugin imports nodecheck from the controller's Python.
        "PYTHONPATH": os.pathsep.join(p for p in [str(Path(__file__).resolve().parent.parent.parent),
                                                  os.environ.get("PYTHONPATH", "")] if p),
    }


def private_data_dir(given: str | None) -> Path:
    if given:
        p = Path(given).resolve()
        p.mkdir(parents=True, exist_ok=True)
        return p
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nodecheck" / "install"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%dT%H%M%S-"), dir=base))


def _run(pdd: Path, playbook: str, inventory: str, limit: str | None, extravars: dict, ident: str,
         check: bool, on_event: Callable[[dict], None] | None) -> tuple[object, list[dict]]:
    try:
        import ansible_runner
    except ImportError as exc:
        raise InstallError(f"ansible-runner is not installed ({exc}): pip install 'nodecheck[install]'") from exc
    events: list[dict] = []

    def handler(ev: dict) -> bool:
        events.append(ev)
        if on_event is not None:
            try:
                on_event(ev)
            except Exception:  # a display problem must never stop a rollout
                pass
        return True

    cmdline = "--check --diff" if check else None
    kwargs = dict(
        private_data_dir=str(pdd), project_dir=str(playbooks_dir()), playbook=playbook,
        inventory=str(Path(inventory).resolve()), extravars=extravars, ident=ident,
        envvars=_env(), event_handler=handler, quiet=True, settings={"suppress_ansible_output": True},
    )
    if limit:
        kwargs["limit"] = limit
    if cmdline:
        kwargs["cmdline"] = cmdline
    try:
        r = ansible_runner.run(**kwargs)
    except Exception as exc:  # runner raises for a missing project, a bad inventory path, ...
        raise InstallError(f"ansible-runner could not start: {exc}") from exc
    return r, events


def _host_results(r, events) -> dict[str, HostResult]:
    stats = r.stats or {}
    names = set()
    for key in ("ok", "changed", "failures", "skipped", "dark", "processed"):
        names.update((stats.get(key) or {}).keys())
    hosts = {n: HostResult(n) for n in sorted(names)}
    for n, h in hosts.items():
        h.changed = (stats.get("changed") or {}).get(n, 0)
        # ansible counts a changed task in ok too: ok here is "ok and not changed".
        h.ok = max(0, (stats.get("ok") or {}).get(n, 0) - h.changed)
        h.failed = (stats.get("failures") or {}).get(n, 0)
        h.skipped = (stats.get("skipped") or {}).get(n, 0)
        h.unreachable = (stats.get("dark") or {}).get(n, 0)
    for ev in events:
        if ev.get("event") in ("runner_on_failed", "runner_on_unreachable"):
            data = ev.get("event_data") or {}
            if data.get("ignore_errors"):
                continue
            h = hosts.setdefault(data.get("host", "?"), HostResult(data.get("host", "?")))
            res = data.get("res") or {}
            h.message = str(res.get("msg") or res.get("stderr") or res.get("reason") or "").strip()
    return hosts


def run_preflight(inventory: str, pdd: Path, *, limit: str | None, extravars: dict,
                  on_event=None) -> tuple[dict[str, HostPreflight], RunOutcome]:
    r, events = _run(pdd, "preflight.yml", inventory, limit, extravars, "preflight", False, on_event)
    hosts = _host_results(r, events)
    if r.status in ("failed", "error", "timeout") and not hosts:
        raise InstallError(f"the preflight run did not start (ansible-runner status {r.status}, rc {r.rc}); "
                           f"see {r.config.artifact_dir}/stdout")
    out: dict[str, HostPreflight] = {}
    for ev in events:
        data = ev.get("event_data") or {}
        host = data.get("host")
        if not host:
            continue
        if ev.get("event") == "runner_on_ok" and data.get("task_action") == PREFLIGHT_ACTION:
            res = data.get("res") or {}
            p = HostPreflight(host, verdict=res.get("verdict", "unknown"), install=True,
                              failing=res.get("failing") or [], release=res.get("sysbox_release"))
            checks = (res.get("report") or {}).get("checks") or []
            warns = [c.get("id") for c in checks if c.get("status") in ("warn", "unknown")]
            if warns:
                p.reason = "warnings: " + ", ".join(str(w) for w in warns)
            out[host] = p
    for name, h in hosts.items():
        p = out.setdefault(name, HostPreflight(name, verdict="error"))
        if h.unreachable:
            p.verdict, p.install, p.reason = "unreachable", False, h.message or "unreachable"
        elif h.failed:
            p.install = False
            if p.verdict == "fail":
                p.reason = "; ".join(f"{c.get('id')}: {c.get('message')}" for c in p.failing) or h.message
            else:
                p.verdict, p.reason = ("error" if p.verdict not in ("fail",) else p.verdict), h.message
        elif p.verdict == "unknown":
            p.reason = ("some facts could not be read; installing anyway (the role stops only on fail)"
                        + (f"; {p.reason}" if p.reason else ""))
    outcome = RunOutcome(r.status, r.rc, r.config.artifact_dir, hosts, r.stats)
    return out, outcome


def run_install(inventory: str, pdd: Path, *, hosts: list[str], extravars: dict, check: bool,
                on_event=None) -> RunOutcome:
    r, events = _run(pdd, "site.yml", inventory, ",".join(hosts), extravars, "install", check, on_event)
    results = _host_results(r, events)
    if r.status in ("failed", "error", "timeout") and not results:
        raise InstallError(f"the install run did not start (ansible-runner status {r.status}, rc {r.rc}); "
                           f"see {r.config.artifact_dir}/stdout")
    for h in hosts:
        results.setdefault(h, HostResult(h, message="not in the run's results"))
    return RunOutcome(r.status, r.rc, r.config.artifact_dir, results, r.stats)
