"""`nodecheck install`'s engine: the playbooks driven through ansible-runner.

Two runs of `site.yml`, each in the same private data dir (its artifacts are kept):
  1. the plan: `site.yml --check --diff` on every selected host (ident "plan"). The
     preflight scores each host (its verdict and target kind come back in the events of the
     `nodecheck_preflight` task), every role's refusals run, each role records what it would
     do as a `nodecheck_plan_<role>` host fact, and check mode reports the tasks that would
     change. This is what `nodecheck install` shows before asking, and all that --check runs.
  2. the install: `site.yml` for real, limited to the hosts the plan cleared (ident
     "install"), with live per-host progress; the per-host summary comes from runner stats.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import hostkeys
from .target import DOCKER_HOST

PREFLIGHT_ACTION = "nodecheck_preflight"
PLAN_FACT_PREFIX = "nodecheck_plan_"
_PKG = Path(__file__).resolve().parent.parent  # .../nodecheck
_CHECKOUT = _PKG.parent / "playbooks"  # a source checkout: the repo's playbooks/
_PACKAGED = _PKG / "data" / "playbooks"  # an installed wheel: package data (setup.py copies it)


class InstallError(Exception):
    """The run could not start (exit code 3)."""


def _is_project(d: Path) -> bool:
    return (d / "site.yml").is_file() and (d / "ansible.cfg").is_file()


def playbooks_dir() -> Path:
    """NODECHECK_PLAYBOOKS when set (and then only it), else the checkout's playbooks/, else
    the copy installed with the package."""
    env = os.environ.get("NODECHECK_PLAYBOOKS")
    candidates = [Path(env)] if env else [_CHECKOUT, _PACKAGED]
    for c in candidates:
        if _is_project(c):
            return c
    raise InstallError(
        f"cannot find the nodecheck playbooks (no site.yml and ansible.cfg in {' or '.join(map(str, candidates))}); "
        "set NODECHECK_PLAYBOOKS to the playbooks/ directory")


@dataclass(frozen=True)
class PlanItem:
    """One thing a role will do to a host: install, remove, pin, hold, write, enable, restart."""

    role: str
    action: str
    what: str
    detail: str = ""


@dataclass
class HostPlan:
    """One host after the plan run: its preflight, its target kind, and what would change."""

    name: str
    verdict: str = "unknown"  # pass warn fail unknown, or an error kind (unreachable, host-key-*, error)
    install: bool = False
    reason: str = ""
    failing: list = field(default_factory=list)
    release: str | None = None
    target_kind: str | None = None
    target_kind_why: str = ""
    items: list[PlanItem] = field(default_factory=list)
    would_change: list[str] = field(default_factory=list)  # check mode's changed tasks
    # The preflight's install decision (nodecheck/install/decision.py, the `install` result).
    decision: dict = field(default_factory=dict)

    @property
    def pin_note(self) -> str:
        """Where a containerd.io pin the release needs goes when it is not this host (the
        workspace image): the user must do it; empty when the host gets it or none is needed."""
        pin = self.decision.get("containerd_pin") or {}
        return str(pin.get("why") or "") if pin.get("version") and not pin.get("on_host") else ""

    @property
    def action(self) -> str:
        if not self.install:
            return "skip"
        return "install" if (self.items or self.would_change) else "up to date"


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


@dataclass(frozen=True)
class RunOptions:
    """What the user passes through to Ansible (the flags Ansible users reach for)."""

    verbosity: int = 0  # -v / -vv ...
    forks: int | None = None
    become: bool = False
    become_password: str | None = None  # --ask-become-pass: asked on the controller, fed to the prompt
    tags: tuple[str, ...] = ()
    skip_tags: tuple[str, ...] = ()
    accept_new_host_keys: bool = False
    known_hosts: str | None = None
    force_plain_host: bool = False


def _env(opts: RunOptions, pdd: Path) -> dict:
    bindir = os.path.dirname(sys.executable)
    env = {
        "PATH": bindir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
        "ANSIBLE_CONFIG": str(playbooks_dir() / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        # Control sockets per run dir: a master opened by another tool never carries this run.
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(pdd / "cp"),
        # The action plugin imports nodecheck from the controller's Python.
        "PYTHONPATH": os.pathsep.join(p for p in [str(_PKG.parent), os.environ.get("PYTHONPATH", "")] if p),
    }
    env.update(hostkeys.ssh_env(accept_new=opts.accept_new_host_keys, known_hosts=opts.known_hosts))
    return env


def private_data_dir(given: str | None) -> Path:
    if given:
        p = Path(given).resolve()
        p.mkdir(parents=True, exist_ok=True)
        return p
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nodecheck" / "install"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%dT%H%M%S-"), dir=base))


def runner_kwargs(pdd: Path, playbook: str, inventory: str, limit: str | None, extravars: dict, ident: str,
                  check: bool, opts: RunOptions) -> dict:
    """The ansible_runner.run() arguments for one run (a pure function: tested without Ansible)."""
    cmdline = ["--check", "--diff"] if check else []
    if opts.become:
        cmdline.append("--become")
    kwargs: dict = dict(
        private_data_dir=str(pdd), project_dir=str(playbooks_dir()), playbook=playbook,
        inventory=str(Path(inventory).resolve()), extravars=extravars, ident=ident,
        envvars=_env(opts, pdd), quiet=True, settings={"suppress_ansible_output": True},
        # ansible-runner otherwise writes envvars, extravars, passwords and cmdline to env/ in
        # the data dir, and a later run in the same dir reuses those files instead of its own
        # arguments: the install run then ran with the plan run's `--check`, and a become
        # password would sit on disk. Everything is passed in memory instead.
        suppress_env_files=True,
    )
    if opts.become_password is not None:
        cmdline.append("--ask-become-pass")
        # ansible-runner answers prompts from this map (regex -> reply), never from a file.
        kwargs["passwords"] = {r"^BECOME password.*:\s*?$": opts.become_password}
    if limit:
        kwargs["limit"] = limit
    if cmdline:
        kwargs["cmdline"] = " ".join(cmdline)
    if opts.verbosity:
        kwargs["verbosity"] = opts.verbosity
    if opts.forks:
        kwargs["forks"] = opts.forks
    if opts.tags:
        # The preflight always runs: without it no host has a verdict or a target kind.
        kwargs["tags"] = ",".join(dict.fromkeys(("preflight", *opts.tags)))
    if opts.skip_tags:
        kwargs["skip_tags"] = ",".join(opts.skip_tags)
    return kwargs


# Files ansible-runner reads from <data dir>/env/ in preference to (cmdline) or on top of
# (extravars) the arguments; nodecheck never writes them, so any there are stale.
_STALE_ENV_FILES = ("cmdline", "extravars", "envvars", "passwords", "settings")


def _run(kwargs: dict, on_event: Callable[[dict], None] | None) -> tuple[object, list[dict]]:
    try:
        import ansible_runner
    except ImportError as exc:
        raise InstallError(f"ansible-runner is not installed ({exc}): pip install 'nodecheck[install]'") from exc
    for name in _STALE_ENV_FILES:
        (Path(kwargs["private_data_dir"]) / "env" / name).unlink(missing_ok=True)
    events: list[dict] = []

    def handler(ev: dict) -> bool:
        events.append(ev)
        if on_event is not None:
            try:
                on_event(ev)
            except Exception:  # a display problem must never stop a rollout
                pass
        return True

    if "cmdline" not in kwargs:
        # ansible-runner writes cmdline to env/cmdline in the private data dir and a later run
        # that passes none reads it back: the real run after the check-mode plan run (same dir)
        # would run with --check again.
        (Path(kwargs["private_data_dir"]) / "env" / "cmdline").unlink(missing_ok=True)
    try:
        r = ansible_runner.run(event_handler=handler, **kwargs)
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


def _changed_label(data: dict) -> str:
    """How a changed task reads in the plan: a `Would ...` task's own message, else its name
    (with the loop items that changed)."""
    res = data.get("res") or {}
    name = str(data.get("task") or "?")
    if data.get("task_action") in ("debug", "ansible.builtin.debug") and res.get("msg"):
        return str(res["msg"])
    items = [r for r in (res.get("results") or []) if isinstance(r, dict) and r.get("changed")]
    if items:
        labels = [str(r.get("_ansible_item_label", r.get("item", "?"))) for r in items]
        return f"{name} ({', '.join(labels)})"
    return name


def collect_plan(events: list[dict], hosts: dict[str, HostResult], *, force_plain_host: bool = False) -> dict[str, HostPlan]:
    """Per host: preflight verdict, target kind, plan items and check mode's changes, from the
    plan run's runner events (a pure function of the events)."""
    out: dict[str, HostPlan] = {}

    def plan(host: str) -> HostPlan:
        return out.setdefault(host, HostPlan(host))

    for ev in events:
        data = ev.get("event_data") or {}
        host = data.get("host")
        if not host or ev.get("event") not in ("runner_on_ok",):
            continue
        res = data.get("res") or {}
        p = plan(host)
        if data.get("task_action") == PREFLIGHT_ACTION:
            p.verdict = res.get("verdict", "unknown")
            p.failing = res.get("failing") or []
            p.release = res.get("sysbox_release")
            p.target_kind = res.get("target_kind")
            p.target_kind_why = res.get("target_kind_why") or ""
            p.decision = res.get("install") or {}
            checks = (res.get("report") or {}).get("checks") or []
            warns = [c.get("id") for c in checks if c.get("status") in ("warn", "unknown")]
            if warns:
                p.reason = "warnings: " + ", ".join(str(w) for w in warns)
            continue
        for key, value in (res.get("ansible_facts") or {}).items():
            if key.startswith(PLAN_FACT_PREFIX) and isinstance(value, list):
                role = key[len(PLAN_FACT_PREFIX):]
                p.items = [i for i in p.items if i.role != role]  # the install play records it again
                p.items += [PlanItem(role, str(v.get("action", "?")), str(v.get("what", "")), str(v.get("detail", "")))
                            for v in value if isinstance(v, dict)]
        if res.get("changed"):
            label = _changed_label(data)
            if label not in p.would_change:
                p.would_change.append(label)

    for name, h in hosts.items():
        p = plan(name)
        if h.unreachable:
            p.verdict = hostkeys.classify_unreachable(h.message)
            p.install, p.reason = False, h.message or "unreachable"
        elif h.failed:
            p.install = False
            if p.verdict == "fail" and p.failing:
                p.reason = "; ".join(f"{c.get('id')}: {c.get('message')}" for c in p.failing)
            else:
                if p.verdict != "fail":
                    p.verdict = p.verdict if p.target_kind else "error"
                p.reason = ("refused: " if p.target_kind else "") + h.message
        else:
            p.install = True
            if p.target_kind and p.target_kind != DOCKER_HOST and not force_plain_host and not p.items:
                p.install = False
                p.reason = (f"{p.target_kind} ({p.target_kind_why}): the plain-host path (.deb, containerd.io pin) "
                            "is not taken on a host with a kubelet; --force-plain-host to force it")
            elif p.verdict == "unknown":
                p.reason = ("some facts could not be read; installing anyway (the preflight stops only on fail)"
                            + (f"; {p.reason}" if p.reason else ""))
    return out


def run_plan(inventory: str, pdd: Path, *, limit: str | None, extravars: dict, opts: RunOptions,
             on_event=None) -> tuple[dict[str, HostPlan], RunOutcome]:
    """Run 1: site.yml in check mode on every selected host; nothing changes."""
    r, events = _run(runner_kwargs(pdd, "site.yml", inventory, limit, extravars, "plan", True, opts), on_event)
    hosts = _host_results(r, events)
    if r.status in ("failed", "error", "timeout") and not hosts:
        raise InstallError(f"the plan run did not start (ansible-runner status {r.status}, rc {r.rc}); "
                           f"see {r.config.artifact_dir}/stdout")
    plans = collect_plan(events, hosts, force_plain_host=opts.force_plain_host)
    return plans, RunOutcome(r.status, r.rc, r.config.artifact_dir, hosts, r.stats)


def run_install(inventory: str, pdd: Path, *, hosts: list[str], extravars: dict, opts: RunOptions,
                on_event=None) -> RunOutcome:
    """Run 2: site.yml for real, limited to the hosts the plan cleared."""
    r, events = _run(runner_kwargs(pdd, "site.yml", inventory, ",".join(hosts), extravars, "install", False, opts),
                     on_event)
    results = _host_results(r, events)
    if r.status in ("failed", "error", "timeout") and not results:
        raise InstallError(f"the install run did not start (ansible-runner status {r.status}, rc {r.rc}); "
                           f"see {r.config.artifact_dir}/stdout")
    for h in hosts:
        results.setdefault(h, HostResult(h, message="not in the run's results"))
    return RunOutcome(r.status, r.rc, r.config.artifact_dir, results, r.stats)
