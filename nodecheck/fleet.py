"""Fleet scanning: targets, and a bounded pool with a hard per-host deadline.

Each host runs in its own worker thread (at most `forks` at once). The calling thread
is the watchdog: when a host's deadline passes it closes that host's sockets and
transport (which unblocks any paramiko wait), records the host as `timeout` and frees
the slot at once, without waiting for the worker. A worker stuck where closing cannot
reach it (a DNS lookup, say) is abandoned: it is a daemon thread and its late result
is dropped. So a host costs at most its deadline, and never holds up the others.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import queue
import re
import threading
import time
from dataclasses import dataclass, field, fields
from typing import Callable, Sequence

from .transport import ProbeRun, run_probe, ssh
from .vocab import TRANSPORT_ERROR_KINDS

STATUSES = ("ok",) + TRANSPORT_ERROR_KINDS  # a host's outcome: scored, or why not (vocab)


@dataclass
class Target:
    name: str
    host: str
    port: int | None = None
    user: str | None = None
    key_file: str | None = None
    groups: tuple[str, ...] = ()


@dataclass
class FleetOptions:
    forks: int = 50
    timeout: float = 60.0
    become: bool = False
    accept_new_host_keys: bool = False
    known_hosts: str | None = None
    ssh_config: str | None = None
    user: str | None = None
    port: int | None = None
    key_file: str | None = None
    # The most stdout kept of one host; None: run_fleet sizes it to the parallelism
    # (fleet_stdout_cap), so `forks` hosts flooding at once stay within OUTPUT_BUDGET.
    stdout_cap: int | None = None


@dataclass
class HostResult(ProbeRun):
    """One fleet row: the target's settled ProbeRun, and what run_fleet's `score` made of it
    inside the host's deadline (None without one, or when the watchdog wrote the row)."""

    target: Target | None = None
    node: object = None

    @classmethod
    def of(cls, target: Target, run: ProbeRun) -> "HostResult":
        return cls(**{f.name: getattr(run, f.name) for f in fields(ProbeRun)}, target=target)

    @classmethod
    def error(cls, target: Target, status: str, message: str, **kw) -> "HostResult":
        return cls(target=target, status=status, message=message, **kw)


# -- targets ---------------------------------------------------------------

MAX_INPUT_BYTES = 16 << 20  # an inventory or hosts file larger than this is not one

_HOSTSPEC = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\s\[\]]+))(?::(?P<port>\d+))?$")


def parse_hostspec(spec: str) -> Target:
    """`[user@]host[:port]` (IPv6 in brackets); the name is the spec without the user."""
    m = _HOSTSPEC.match(spec.strip())
    if not m:
        raise ValueError(f"not a host: {spec!r} (expected [user@]host[:port])")
    host = m.group("v6") or m.group("host")
    if host.startswith("-") or "@" in host:  # `x@` is a user with no host
        raise ValueError(f"not a host: {spec!r}")
    port = int(m.group("port")) if m.group("port") else None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"bad port in {spec!r}")
    name = spec.strip().split("@", 1)[-1]
    return Target(name=name, host=host, port=port, user=m.group("user"))


def _read_hosts_file(path: str) -> list[Target]:
    from .infile import read_text

    lines = read_text(path, MAX_INPUT_BYTES, "hosts file").splitlines()  # InputError is a ValueError
    out = []
    for n, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            out.append(parse_hostspec(line))
        except ValueError as exc:
            raise ValueError(f"{path}:{n}: {exc}") from exc
    return out


def _load_inventory(path: str, limit: str | None) -> list[Target]:
    if not os.path.exists(path):
        raise ValueError(f"inventory not found: {path}")
    if not os.path.isdir(path):  # a directory is an Ansible inventory too; a FIFO or device is not
        from .infile import read_text
        read_text(path, MAX_INPUT_BYTES, "inventory")  # InputError (a ValueError): one line, exit 64
    os.environ.setdefault("ANSIBLE_INVENTORY_UNPARSED_FAILED", "True")
    os.environ.setdefault("ANSIBLE_LOCALHOST_WARNING", "False")
    try:
        from ansible.errors import AnsibleError
        from ansible.inventory.helpers import get_group_vars
        from ansible.inventory.manager import InventoryManager
        from ansible.utils.vars import combine_vars
        from ansible.parsing.dataloader import DataLoader
    except ImportError as exc:  # pragma: no cover - ansible-core is a dependency of scan -i
        raise ValueError("reading an Ansible inventory needs ansible-core installed") from exc
    # The env var only counts if ansible's constants were not loaded yet in this process (a library
    # caller, or the test suite, may have imported ansible first): set the constant itself too.
    from ansible import constants as C
    C.INVENTORY_UNPARSED_IS_FAILED = True
    try:
        inv = InventoryManager(loader=DataLoader(), sources=[path])
        if limit:
            inv.subset(limit)
        hosts = inv.get_hosts(pattern="all")
    except AnsibleError as exc:
        raise ValueError(f"inventory {path}: {exc.message if hasattr(exc, 'message') else exc}") from exc
    out = []
    for h in hosts:
        # Group vars (all:vars, parents before children) under the host's own vars.
        # group_vars/ and host_vars/ directories (vars plugins) are not read.
        v = combine_vars(get_group_vars(h.get_groups()), h.get_vars())

        def s(key):
            val = v.get(key)
            return None if val is None else str(val)

        port = s("ansible_port") or s("ansible_ssh_port")
        try:
            port_i = int(port) if port else None
        except ValueError as exc:
            raise ValueError(f"inventory {path}: host {h.name}: bad ansible_port {port!r}") from exc
        if port_i is not None and not 0 < port_i < 65536:  # 70000 must not become 4464
            raise ValueError(f"inventory {path}: host {h.name}: ansible_port {port_i} is not 1-65535")
        out.append(Target(
            name=h.name,
            host=s("ansible_host") or s("ansible_ssh_host") or h.name,
            port=port_i,
            user=s("ansible_user") or s("ansible_ssh_user"),
            key_file=s("ansible_ssh_private_key_file") or s("ansible_private_key_file"),
            groups=tuple(sorted(g.name for g in h.get_groups() if g.name not in ("all", "ungrouped"))),
        ))
    return out


def _match_limit(targets: list[Target], limit: str) -> list[Target]:
    """Ansible-like limit for ad-hoc hosts: names/groups, globs, `,`/`:` lists, `!` and `&`."""
    def regex(text: str):
        try:
            return re.compile(text)
        except re.error as exc:
            raise ValueError(f"--limit: ~{text} is not a regular expression: {exc}") from exc

    sep = r"," if "[" in limit else r"[,:]"
    pats = [p.strip() for p in re.split(sep, limit) if p.strip()]

    def hit(t: Target, p: str) -> bool:
        if p.startswith("~"):
            return regex(p[1:]).search(t.name) is not None
        return fnmatch.fnmatchcase(t.name, p) or fnmatch.fnmatchcase(t.host, p) or any(
            fnmatch.fnmatchcase(g, p) for g in t.groups) or p == "all"

    plain = [p for p in pats if not p.startswith(("!", "&"))]
    sel = [t for t in targets if any(hit(t, p) for p in plain)] if plain else list(targets)
    for p in pats:
        if p.startswith("&"):
            sel = [t for t in sel if hit(t, p[1:])]
        elif p.startswith("!"):
            sel = [t for t in sel if not hit(t, p[1:])]
    return sel


def load_targets(hosts: Sequence[str], inventory: str | None, hosts_file: str | None,
                 limit: str | None) -> list[Target]:
    """All targets, de-duplicated by name in order; ValueError on bad input."""
    targets: list[Target] = []
    if inventory:
        targets += _load_inventory(inventory, limit)
    extra = [parse_hostspec(h) for h in hosts]
    if hosts_file:
        extra += _read_hosts_file(hosts_file)
    if limit and extra:
        extra = _match_limit(extra, limit)
    targets += extra
    seen: set[str] = set()
    out = []
    for t in targets:
        if t.name not in seen:
            seen.add(t.name)
            out.append(t)
    if limit and not out:
        raise ValueError(f"--limit {limit!r} matches no host")
    return out


# -- the pool --------------------------------------------------------------

# What sudo prints on stderr when `sudo -n` cannot run the probe (sudo 1.9 wording; older
# releases say "a terminal is required" where -n now says "a password is required").
_SUDO_FAILURES = (
    (("sudo: a password is required", "sudo: a terminal is required"),
     "sudo needs a password: --become runs `sudo -n sh`, which never prompts; give {user} passwordless "
     "sudo for sh (NOPASSWD) or scan without --become"),
    (("is not in the sudoers file", "is not allowed to execute", "may not run sudo"),
     "sudo refused: {user} may not run sh as root (sudoers); --become needs NOPASSWD for sh"),
    (("sudo: not found", "sudo: command not found"),
     "sudo is not installed on the host; --become needs it"),
)


def become_failure(stderr: str, user: str = "the SSH user") -> str | None:
    """Why `sudo -n` did not run the probe, from its stderr; None when sudo is not the cause."""
    for needles, message in _SUDO_FAILURES:
        if any(n in stderr for n in needles):
            return message.format(user=user)
    return None


def probe_host(target: Target, opts: FleetOptions, session_box: list, config=None) -> HostResult:
    """Connect, authenticate and run the probe once (transport.run_probe: one classifier for
    every transport); never raises for host failures."""
    config = config if config is not None else ssh.load_ssh_config(opts.ssh_config)
    try:
        ep = ssh.resolve(target.host, config=config, user=target.user or opts.user,
                         port=target.port or opts.port, key_file=target.key_file or opts.key_file,
                         known_hosts=opts.known_hosts)
    except Exception as exc:  # a broken Match exec, say
        return HostResult.error(target, "unreachable", f"ssh config: {exc}")
    sess = ssh.Session(ep, config=config, accept_new_host_keys=opts.accept_new_host_keys,
                       become=opts.become, connect_timeout=max(1.0, opts.timeout),
                       stdout_cap=opts.stdout_cap or ssh.STDOUT_CAP)
    session_box.append(sess)
    run = run_probe(sess)
    if run.status == "probe-error" and opts.become and run.parsed is not None and run.parsed.version == 0:
        # sudo failed before the probe started: say so instead of "no probe header".
        sudo_why = become_failure(run.stderr, ep.user or "the SSH user")
        if sudo_why:
            run.failed("auth-failed", sudo_why)
    if run.host_key_added:
        run.message = "; ".join(m for m in (run.message, "host key added to known_hosts") if m)
    return HostResult.of(target, run)


# What `forks` hosts' outputs may hold at once. A real node's output is 0.1-2 MiB (its files are
# read with caps of 1 and 4 MiB), so the per-host floor is never reached by one; a flood is cut
# at the cap and never parsed (probe-error), and holding it costs up to ~5x the cap for a moment
# (the received bytes, their decoded text, the parse).
OUTPUT_BUDGET = 512 << 20
STDOUT_CAP_FLOOR = 8 << 20


def fleet_stdout_cap(forks: int) -> int:
    """Per-host stdout cap: OUTPUT_BUDGET shared by `forks` hosts, within [8 MiB, 64 MiB]."""
    return max(STDOUT_CAP_FLOOR, min(ssh.STDOUT_CAP, OUTPUT_BUDGET // max(1, forks)))


class DeadlinePassed(BaseException):
    """Raised inside a worker thread that is still parsing or scoring at its host's deadline
    (a BaseException, so no `except Exception` in a parser swallows it)."""


def _interrupt(ident: int | None) -> None:
    # A thread cannot be killed, but it can be made to raise at its next bytecode: parsing and
    # scoring are Python loops over capped input, so this stops a slow one within moments
    # instead of letting it burn the CPU (and the GIL) the other hosts need.
    if ident is not None:
        import ctypes
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(DeadlinePassed))


# File descriptors one host holds at once: its socket (or a ProxyCommand's socket and stderr
# file), plus a known_hosts or key file being read, plus the pipe of a ProxyCommand's fork.
FDS_PER_HOST = 4
FDS_RESERVE = 24  # output files, the inventory, Python's own


def fd_limited_forks(forks: int, warn: Callable[[str], None] | None = None) -> int:
    """`forks`, or fewer when RLIMIT_NOFILE cannot hold that many hosts at once. The soft limit
    is raised towards the hard one first; what is still short lowers the parallelism, said on
    `warn`. Without this, `ulimit -n 64` with --forks 200 failed hosts at random with EMFILE."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        open_now = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 16
    except (ImportError, OSError, ValueError):
        return forks
    need = open_now + FDS_RESERVE + FDS_PER_HOST * forks
    if soft != resource.RLIM_INFINITY and soft < need:
        want = need if hard == resource.RLIM_INFINITY else min(hard, need)
        if want > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
                soft = want
            except (OSError, ValueError):
                pass
    if soft == resource.RLIM_INFINITY or soft >= need:
        return forks
    allowed = max(1, (soft - open_now - FDS_RESERVE) // FDS_PER_HOST)
    if warn:
        warn(f"--forks {forks} lowered to {allowed}: the open-file limit (ulimit -n) is {soft} "
             f"and each host needs about {FDS_PER_HOST}")
    return allowed


@dataclass
class _Job:
    index: int
    target: Target
    start: float
    deadline: float
    box: list = field(default_factory=list)
    done: bool = False
    scoring: bool = False
    ident: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def phase(self) -> str:
        if self.scoring:
            return "parse/score"
        return self.box[0].phase if self.box else "connect"


def _warn_stderr(msg: str) -> None:
    import sys
    sys.stderr.write(f"nodecheck: {msg}\n")


def run_fleet(targets: Sequence[Target], opts: FleetOptions,
              on_result: Callable[[HostResult], None],
              progress: Callable[[int, int, HostResult], None] | None = None,
              score: Callable[[HostResult], object] | None = None,
              warn: Callable[[str], None] | None = _warn_stderr) -> list[HostResult]:
    """Probe every target, `forks` at a time; results in target order.

    `score`, when given, turns a host's result into its report node inside the host's worker
    and deadline (set on `HostResult.node`): a host whose output is slow to parse or score is
    a `timeout` row like one slow to answer, and its output is dropped once scored, so the
    run holds nodes, not outputs. `on_result` and `progress` are called in the calling
    thread as each host finishes.
    """
    targets = list(targets)
    n = len(targets)
    results: list[HostResult | None] = [None] * n
    if not n:
        return []
    forks = fd_limited_forks(max(1, int(opts.forks)), warn)
    if opts.stdout_cap is None:
        opts = dataclasses.replace(opts, stdout_cap=fleet_stdout_cap(forks))
    config = ssh.load_ssh_config(opts.ssh_config)
    q: queue.Queue = queue.Queue()
    running: dict[int, _Job] = {}
    next_i = 0
    finished = 0

    def worker(job: _Job) -> None:
        job.ident = threading.get_ident()
        try:
            try:
                r = probe_host(job.target, opts, job.box, config)
            except Exception as exc:  # pragma: no cover - probe_host does not raise
                r = HostResult.error(job.target, "unreachable", repr(exc))
            if score is not None and not job.done:
                with job.lock:
                    job.scoring = True
                try:
                    r.node = score(r)
                    r.stdout, r.parsed = "", None
                except DeadlinePassed:
                    raise
                except Exception as exc:  # a parser bug is this host's error row, not the run's end
                    r = HostResult.error(job.target, "probe-error", stderr=r.stderr, kex=r.kex,
                                         message=f"output could not be scored: {type(exc).__name__}: {exc}")
                finally:
                    with job.lock:
                        job.scoring = False
            if not job.done:
                q.put((job, r))
        except DeadlinePassed:
            pass  # the watchdog wrote this host's timeout row already
        finally:
            try:
                with job.lock:  # an ident can be reused by a later thread: never interrupt that one
                    job.ident = None
            except DeadlinePassed:
                pass

    def finish(job: _Job, r: HostResult) -> None:
        nonlocal finished
        job.done = True
        running.pop(job.index, None)
        r.seconds = round(time.monotonic() - job.start, 3)
        results[job.index] = r
        finished += 1
        on_result(r)
        if progress:
            progress(finished, n, r)

    try:
        while finished < n:
            while next_i < n and len(running) < forks:
                now = time.monotonic()
                job = _Job(next_i, targets[next_i], now, now + opts.timeout)
                running[next_i] = job
                next_i += 1
                threading.Thread(target=worker, args=(job,), daemon=True,
                                 name=f"nodecheck-{job.target.name}").start()
            wait = min(j.deadline for j in running.values()) - time.monotonic()
            try:
                job, r = q.get(timeout=max(0.0, wait))
                if not job.done:
                    finish(job, r)
                # Drain whatever else is ready before looking at deadlines again.
                while True:
                    job, r = q.get_nowait()
                    if not job.done:
                        finish(job, r)
            except queue.Empty:
                pass
            now = time.monotonic()
            for job in [j for j in running.values() if j.deadline <= now]:
                phase = job.phase()
                job.done = True
                with job.lock:
                    if job.scoring or phase == "parse":
                        _interrupt(job.ident)
                for s in job.box:
                    s.close(wait=False)
                finish(job, HostResult.error(job.target, "timeout", f"no result within the {opts.timeout:g}s "
                                                                        f"deadline (stuck in {phase})"))
    finally:
        for job in list(running.values()):
            for s in job.box:
                s.close(wait=False)
        # Give the sessions closed at a deadline a moment to tell sshd to end the remote
        # processes (a signal request) before this process may exit and drop them.
        ssh.wait_closers(2.0)
    return [r for r in results if r is not None]
