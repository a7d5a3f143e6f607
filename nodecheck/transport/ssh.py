"""Run the probe on one host over SSH: one connection, one exec, the probe on stdin.

The remote command is a fixed string (`sh -s -- /`, or with become `sudo -n sh -c` of a
fixed wrapper around `sh -s -- /`); nothing from a host name or an inventory string ever reaches a shell. The
probe text is written to the channel's stdin, stdin is closed, and the whole stdout
comes back (capped) with the stderr tail and the exit status. No sftp, no temp files,
no Python on the node.

Honoured from the user's SSH setup: ~/.ssh/config (HostName, User, Port,
IdentityFile, ProxyJump, ProxyCommand, UserKnownHostsFile), ssh-agent, known_hosts.
Host keys are verified: unknown and changed keys fail the host (`HostKeyError`);
`accept_new_host_keys` accepts unknown keys only and appends them to the known_hosts
file, like OpenSSH's StrictHostKeyChecking=accept-new.

Every blocking step can be interrupted from another thread with `Session.close()`:
that is how the fleet enforces its hard per-host deadline.
"""

from __future__ import annotations

import base64
import binascii
import errno
import functools
import getpass
import hmac
import logging
import os
import re
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field



def _import_paramiko():
    """paramiko.config imports `invoke` for ssh_config's `Match exec` alone, and that import
    (YAML, asyncio, ssl, unittest.mock) was 85 of the ~300 ms a fleet scan spent before its
    first connection (issue 15). paramiko is imported with `invoke` hidden, then handed a
    stand-in that imports the real module the first time `Match exec` uses it, so a config
    with `Match exec` behaves as before (and fails as before where invoke is missing)."""
    import sys
    hidden = "invoke" not in sys.modules
    if hidden:
        sys.modules["invoke"] = None  # `import invoke` raises ImportError: paramiko records it
    try:
        import paramiko
        import paramiko.config
    finally:
        if hidden and sys.modules.get("invoke", 0) is None:
            del sys.modules["invoke"]
    if paramiko.config.invoke is None:
        paramiko.config.invoke = _InvokeOnUse(paramiko.config)
    return paramiko


class _InvokeOnUse:
    def __init__(self, config_module):
        self._config = config_module

    def __getattr__(self, name: str):
        import invoke
        self._config.invoke = invoke
        return getattr(invoke, name)


paramiko = _import_paramiko()
from paramiko.kex_curve25519 import KexCurve25519  # noqa: E402 - after _import_paramiko

from . import ProbeRun

REMOTE_COMMAND = "sh -s -- /"
# With become the probe runs as root, where the SSH user's `signal` request (see Session.close)
# only reaches sudo, which relays it to its command and no further: a root shell waits here
# instead, the probe (reading the same stdin, fd 3, as a background job's stdin is /dev/null)
# in its own process group's care, and on TERM/HUP kills that whole group (`kill 0`). A trap
# runs while `wait` waits, never while a foreground child runs, hence the background job.
REMOTE_COMMAND_BECOME = ("sudo -n sh -c 'exec 3<&0; sh -s -- / <&3 3<&- & "
                         "trap \"kill -KILL 0\" HUP TERM; wait $!'")
STDOUT_CAP = 64 * 1024 * 1024
STDERR_TAIL = 4096
DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")
# Before its version string a server may send other lines (RFC 4253 4.2): at most this many,
# this long (OpenSSH allows 1024 lines; a version string is at most 255 bytes).
BANNER_MAX_LINES = 1024
BANNER_LINE_MAX = 8192

# paramiko logs a traceback when the watchdog closes a transport mid-read: that is
# expected here, and the host's status already says it; keep it off stderr.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

# The known_hosts writes of accept-new hosts running in parallel.
_KNOWN_HOSTS_LOCK = threading.Lock()


# Closing a session whose remote command still runs: the signal requests get this long.
END_REMOTE_WAIT = 1.5
_CLOSERS: list[threading.Thread] = []
_CLOSERS_LOCK = threading.Lock()


def _signal(chan, name: str) -> None:
    # RFC 4254 6.9 "signal" (paramiko has no call for it). OpenSSH >= 7.9 runs killpg() on the
    # session's process group, which a non-interactive `sh -s` and its children share; it
    # refuses for forced-command and subsystem sessions.
    m = paramiko.Message()
    m.add_byte(paramiko.common.cMSG_CHANNEL_REQUEST)
    m.add_int(chan.remote_chanid)
    m.add_string("signal")
    m.add_boolean(False)
    m.add_string(name)
    chan.transport._send_user_message(m)


def _end_remote(chan) -> None:
    """TERM the remote command's group, KILL what is left, each given a moment to exit."""
    try:
        for sig, grace in (("TERM", 0.5), ("KILL", 0.5)):
            _signal(chan, sig)
            if chan.status_event.wait(grace):
                return
    except Exception:
        pass  # the transport went away: nothing more to ask


def wait_closers(timeout: float) -> None:
    """Wait (at most `timeout` in all) for sessions closed with wait=False to finish closing."""
    end = time.monotonic() + timeout
    with _CLOSERS_LOCK:
        pending = list(_CLOSERS)
    for th in pending:
        th.join(max(0.0, end - time.monotonic()))


class SSHError(Exception):
    """A failure with a HostResult status name in `kind`."""

    kind = "unreachable"

    def __init__(self, message: str, kind: str | None = None):
        super().__init__(message)
        if kind:
            self.kind = kind


class HostKeyError(SSHError):
    kind = "host-key-unknown"


class AuthError(SSHError):
    kind = "auth-failed"


@dataclass
class Endpoint:
    """Where and as whom to connect, after ~/.ssh/config is applied."""

    alias: str
    hostname: str
    port: int
    user: str
    key_files: list[str] = field(default_factory=list)
    proxy_jump: str | None = None
    proxy_command: str | None = None
    known_hosts_files: list[str] = field(default_factory=list)


def _expand(p: str) -> str:
    return os.path.expanduser(os.path.expandvars(p))


def load_ssh_config(path: str | None) -> paramiko.SSHConfig:
    """The user's ssh config (or an explicit file); an empty config when absent."""
    path = _expand(path or "~/.ssh/config")
    if os.path.isfile(path):
        return paramiko.SSHConfig.from_path(path)
    return paramiko.SSHConfig()


def resolve(host: str, *, config: paramiko.SSHConfig, user: str | None = None,
            port: int | None = None, key_file: str | None = None,
            known_hosts: str | None = None, hostname_explicit: bool = False) -> Endpoint:
    """Apply ssh config to `host`. Explicit user/port/key win over the config."""
    c = config.lookup(host)
    hostname = host if hostname_explicit else c.get("hostname", host)
    keys = [key_file] if key_file else []
    keys += [k for k in c.get("identityfile", []) if k not in keys]
    jump = c.get("proxyjump")
    if jump and jump.lower() == "none":
        jump = None
    # (Only when there is one: the raw lookup runs any `Match exec` again.)
    pc = _raw_option(config, host, "proxycommand", c) if c.get("proxycommand") else None
    if pc and pc.lower() == "none":
        pc = None
    khf = []
    if known_hosts:
        khf.append(known_hosts)
    for f in (c.get("userknownhostsfile") or "~/.ssh/known_hosts").split():
        if f not in khf:
            khf.append(f)
    eff_port = int(port or c.get("port") or 22)
    eff_user = user or c.get("user") or getpass.getuser()
    if pc:
        # Expanded here, with the port and user this connection really uses (-p, host:port,
        # ansible_port win over the config's Port): paramiko expands %p from the config only.
        pc = expand_tokens(pc, {"h": hostname, "p": str(eff_port), "r": eff_user, "n": host,
                                "u": getpass.getuser(), "d": os.path.expanduser("~"),
                                "L": socket.gethostname().split(".")[0], "l": socket.gethostname()},
                           "ProxyCommand")
    return Endpoint(
        alias=host,
        hostname=hostname,
        port=eff_port,
        user=eff_user,
        key_files=[_expand(k) for k in keys],
        proxy_jump=jump,
        proxy_command=pc,
        known_hosts_files=[_expand(f) for f in khf],
    )


def _raw_option(config: paramiko.SSHConfig, host: str, key: str, looked_up) -> str | None:
    """An option's value before paramiko's token expansion (it expands %p with the config's
    Port, wrong under -p or ansible_port). Uses paramiko's two-pass lookup without its final
    expansion; the expanded value is the fallback should that private API change."""
    try:
        opts = config._lookup(hostname=host)
        opts = config._lookup(host, opts, canonical=False, final=False)
        return opts.get(key)
    except Exception:  # pragma: no cover - a paramiko without _lookup
        return looked_up.get(key)


def expand_tokens(value: str, tokens: dict[str, str], what: str) -> str:
    """OpenSSH's percent_expand: %% is %, %X a known token, any other %X an error."""
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= len(value):
            raise SSHError(f"{what}: a lone % at the end of {value!r}")
        t = value[i + 1]
        if t == "%":
            out.append("%")
        elif t in tokens:
            out.append(tokens[t])
        else:
            raise SSHError(f"{what}: unknown token %{t} in {value!r}")
        i += 2
    return "".join(out)



# -- known_hosts -------------------------------------------------------------
# Parsed here, not by paramiko.HostKeys: paramiko reads an `@cert-authority` or `@revoked`
# line as a host named "@revoked" with key type "<pattern>" and a key that is not base64,
# and raises for the whole file, so one such line made every host unreachable. OpenSSH's
# sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT": `[@marker] patterns keytype base64 [comment]`,
# patterns a comma list with `*`/`?` wildcards and `!` negation, or one `|1|salt|hmac`.

KNOWN_HOSTS_CAP = 64 << 20  # a known_hosts file larger than this is read up to here


@dataclass(frozen=True)
class KnownHost:
    marker: str  # "", "@revoked" or "@cert-authority"
    patterns: tuple[str, ...]
    keytype: str
    blob: bytes


def _is_literal(pattern: str) -> bool:
    return not pattern.startswith(("|", "!")) and "*" not in pattern and "?" not in pattern


class KnownHosts:
    """A known_hosts file's entries in file order, indexed by literal host name.

    A fleet looks up every host in a file that lists every host: scanning each line per host
    made 1,000 hosts cost 1,000,000 pattern matches (~50 ms of controller CPU per host, a
    regex compiled for each once the re module's cache of 512 overflowed). Lines whose
    patterns are all plain names are found through a dict; wildcards, negations and hashed
    names (which only a per-line HMAC can test) are matched line by line, as OpenSSH does."""

    def __init__(self, entries: list[KnownHost]):
        self.entries = tuple(entries)
        self._by_name: dict[str, list[int]] = {}
        self._hashed: list[tuple[int, bytes, bytes]] = []  # (line, salt, HMAC-SHA1), decoded once
        self._other: list[int] = []
        self._found: dict[tuple[str, ...], list[KnownHost]] = {}
        for i, e in enumerate(self.entries):
            if e.patterns and all(_is_literal(p) for p in e.patterns):
                for name in {p.lower() for p in e.patterns}:
                    self._by_name.setdefault(name, []).append(i)
            elif len(e.patterns) == 1 and (salted := _hashed_parts(e.patterns[0])):
                self._hashed.append((i, *salted))
            elif e.patterns:
                self._other.append(i)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def matching(self, names: list[str]) -> list[KnownHost]:
        """The entries whose patterns match any of `names`, in file order."""
        key = tuple(names)
        found = self._found.get(key)
        if found is None:  # a handshake asks twice (key types to offer, then the verdict)
            found = self._found[key] = self._match(names)
        return found

    def _match(self, names: list[str]) -> list[KnownHost]:
        hits = {i for n in names for i in self._by_name.get(n.lower(), ())}
        for n in names:
            raw = n.encode()
            hits.update(i for i, salt, want in self._hashed if hmac.compare_digest(hmac.digest(salt, raw, "sha1"), want))
        hits.update(i for i in self._other if any(host_matches(self.entries[i].patterns, n) for n in names))
        return [self.entries[i] for i in sorted(hits)]


def parse_known_hosts(text: str) -> KnownHosts:
    """Every well-formed line; malformed ones are skipped, as OpenSSH skips them."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        marker = ""
        if f[0].startswith("@"):
            marker, f = f[0], f[1:]
            if marker not in ("@revoked", "@cert-authority"):
                continue  # an unknown marker: OpenSSH ignores the line
        if len(f) < 3:
            continue
        try:
            blob = base64.b64decode(f[2], validate=True)
        except (binascii.Error, ValueError):
            continue
        out.append(KnownHost(marker, tuple(p for p in f[0].split(",") if p), f[1], blob))
    return KnownHosts(out)


def _hashed_parts(pattern: str) -> tuple[bytes, bytes] | None:
    """(salt, HMAC-SHA1 of the name) of a hashed `|1|salt|hmac` pattern; None for any other."""
    parts = pattern.split("|")  # "", "1", salt, hmac
    if len(parts) != 4 or parts[0] or parts[1] != "1":
        return None
    try:
        return base64.b64decode(parts[2]), base64.b64decode(parts[3])
    except (binascii.Error, ValueError):
        return None


def _hashed_match(pattern: str, name: str) -> bool:
    salted = _hashed_parts(pattern)
    return salted is not None and hmac.compare_digest(hmac.digest(salted[0], name.encode(), "sha1"), salted[1])


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str) -> "re.Pattern[str]":
    # OpenSSH's match_pattern: only * and ? are special (fnmatch would read the brackets of
    # "[host]:port" as a character class and never match the literal name).
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                              for c in pattern.lower()), re.S)


def host_matches(patterns: tuple[str, ...], name: str) -> bool:
    """OpenSSH's match_hostname: a negated match wins over any positive one."""
    hit = False
    for p in patterns:
        if p.startswith("|"):
            hit = hit or _hashed_match(p, name)
            continue
        neg = p.startswith("!")
        if _glob(p[1:] if neg else p).fullmatch(name.lower()):
            if neg:
                return False
            hit = True
    return hit


def _key_type(name: str) -> str:
    return "ssh-rsa" if name.startswith("rsa-sha2") else name


def _matching(known: "KnownHosts | list[KnownHosts]", names: list[str]) -> list[KnownHost]:
    files = [known] if isinstance(known, KnownHosts) else known
    return [e for f in files for e in f.matching(names)]


def host_key_status(known: "KnownHosts | list[KnownHosts]", names: list[str], keytype: str, blob: bytes) -> str:
    """`revoked`, `known`, `mismatch` (the host has keys, not this one) or `unknown`.

    @revoked refuses the key for the hosts its patterns match; @cert-authority lines are CA
    keys for host certificates, which this client does not use, so they match no plain key
    (a host known only through a CA is unknown, as it is to OpenSSH without certificates)."""
    keytype = _key_type(keytype)
    mine = _matching(known, names)
    if any(e.marker == "@revoked" and e.blob == blob for e in mine):
        return "revoked"
    plain = [e for e in mine if not e.marker]
    if any(_key_type(e.keytype) == keytype and e.blob == blob for e in plain):
        return "known"
    return "mismatch" if plain else "unknown"


def known_key_types(known: "KnownHosts | list[KnownHosts]", names: list[str]) -> list[str]:
    return [e.keytype for e in _matching(known, names) if not e.marker]


class _ByContent:
    """What was built from a file, per path, while the file's bytes stay the same. A fleet reads
    the same known_hosts and key file once per host: building again each time was ~4 ms (a
    1,000-line known_hosts) and ~240 ms (a 3072-bit RSA key's validation) of CPU per host. The
    caller still reads the file every time (~0.05 ms) and the bytes are compared, not trusted to a
    timestamp: an in-place rewrite of the same size within one clock tick keeps mtime and ctime."""

    def __init__(self):
        self._items: dict[str, tuple[bytes, object]] = {}
        self._lock = threading.Lock()

    def get(self, path: str, data: bytes, build):
        """The value built from `data`; `build()` runs under the lock, so the workers that
        arrive at once wait for one build, not 50. Its exceptions are raised, never kept."""
        with self._lock:
            cached = self._items.get(path)
            if cached is not None and cached[0] == data:
                return cached[1]
            value = build()
            self._items[path] = (data, value)
            return value


_KNOWN_HOSTS = _ByContent()
_PRIVATE_KEYS = _ByContent()


def read_known_hosts(path: str) -> KnownHosts:
    """One file's entries (none when absent); SSHError when it exists but cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return KnownHosts([])
    except OSError as exc:
        raise _local_error(exc, f"cannot read known_hosts {path}") from exc
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise SSHError(f"known_hosts {path} is not a regular file", kind="host-key-unknown")
        data = f.read(KNOWN_HOSTS_CAP)
    return _KNOWN_HOSTS.get(path, data, lambda: parse_known_hosts(data.decode("utf-8", "replace")))


def _local_error(exc: OSError, what: str) -> "SSHError":
    """EMFILE/ENFILE is this machine out of file descriptors, not the host's doing: say so
    (it used to read as host-key-unknown, the known_hosts open being the first to fail)."""
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        return SSHError(f"{what}: too many open files on this machine ({exc.strerror}); "
                        f"lower --forks or raise `ulimit -n`", kind="unreachable")
    return SSHError(f"{what}: {exc.strerror or exc}", kind="host-key-unknown")


def load_private_key(path: str) -> "paramiko.PKey":
    """paramiko.PKey.from_path, once per file while its bytes are unchanged (in this process: a
    library caller's keys stay loaded as a fleet's do). Its exceptions (OSError, an encrypted
    key's PasswordRequiredException or cryptography's TypeError, a bad key) are raised each
    time, never cached."""
    with open(path, "rb") as f:
        data = f.read()
    # A file replaced between this read and the load is kept under the older bytes, so the
    # next call, reading the newer ones, loads again.
    return _PRIVATE_KEYS.get(path, data, lambda: paramiko.PKey.from_path(path))


def known_hosts_name(hostname: str, port: int) -> str:
    return hostname if port == 22 else f"[{hostname}]:{port}"


class _Transport(paramiko.Transport):
    """Remembers which key exchange was negotiated (paramiko drops the engine)."""

    negotiated_kex: str | None = None

    def _check_banner(self):
        # paramiko reads the lines before the server's version string with no length limit
        # (an endless line with no newline grows a bytes buffer, quadratically, until the
        # deadline) and gives each of 100 lines its own timeout. Read them here with bounds, as
        # OpenSSH's kex_exchange_identification does, then hand paramiko the SSH- line.
        pk = self.packetizer
        buf = getattr(pk, "_Packetizer__remainder", b"")
        end = time.monotonic() + self.banner_timeout
        for _ in range(BANNER_MAX_LINES):
            while b"\n" not in buf:
                if len(buf) > BANNER_LINE_MAX:
                    raise paramiko.SSHException(f"the peer sent a line of more than {BANNER_LINE_MAX} "
                                                "bytes before its SSH version string: not an SSH server")
                left = end - time.monotonic()
                if left <= 0:
                    raise paramiko.SSHException(f"no SSH version string within {self.banner_timeout:g}s")
                buf += pk._read_timeout(left)
            line, _, rest = buf.partition(b"\n")
            if line.startswith(b"SSH-"):
                pk._Packetizer__remainder = buf
                return super()._check_banner()
            buf = rest
        raise paramiko.SSHException(f"more than {BANNER_MAX_LINES} lines before the SSH version string")

    def _parse_newkeys(self, m):  # noqa: D401 - paramiko hook
        if self.kex_engine is not None and self.negotiated_kex is None:
            for name, cls in self._kex_info.items():
                if isinstance(self.kex_engine, cls):
                    self.negotiated_kex = name
                    break
        return super()._parse_newkeys(m)


class _ProxyCommand:
    """A ProxyCommand, run as OpenSSH runs it: `sh -c "exec CMD"`, so `exec nc %h %p`, pipes and
    quoting work (paramiko splits the line with shlex and runs no shell). The command talks on
    one end of a socketpair; paramiko gets the other, a real socket (timeouts, recv, close
    work as on TCP). It runs in its own session: close() ends the whole group."""

    def __init__(self, command: str):
        shell = "/bin/sh"  # OpenSSH uses $SHELL; a fleet run should not depend on the login shell
        # OpenSSH prefixes "exec " blindly, so `ProxyCommand exec nc %h %p` becomes `exec exec nc`,
        # which bash and dash refuse ("exec: exec: not found", seen with OpenSSH 9.2): one
        # leading exec is what the user meant, and it is kept single here.
        if not re.match(r"exec\s", command):
            command = f"exec {command}"
        self.err = tempfile.TemporaryFile()
        ours, theirs = socket.socketpair()
        try:
            self.proc = subprocess.Popen([shell, "-c", command], stdin=theirs, stdout=theirs,
                                         stderr=self.err, start_new_session=True, close_fds=True)
        except OSError as exc:
            ours.close()
            self.err.close()
            raise _local_error(exc, "ProxyCommand") if exc.errno in (errno.EMFILE, errno.ENFILE) else \
                SSHError(f"ProxyCommand {command!r}: {exc.strerror or exc}") from exc
        finally:
            theirs.close()
        self.sock = ours

    def stderr_tail(self) -> str:
        try:
            self.err.seek(0)
            return self.err.read()[-STDERR_TAIL:].decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    def close(self) -> None:
        try:
            self.sock.close()
        finally:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except OSError:
                pass
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
            self.err.close()


def _prefer(opts_seq, first: list[str]) -> tuple[str, ...]:
    lead = [a for a in first if a in opts_seq]
    return tuple(lead + [a for a in opts_seq if a not in lead])


class Session:
    """One host's connection state. `close()` may be called from any thread."""

    def __init__(self, endpoint: Endpoint, *, config: paramiko.SSHConfig,
                 accept_new_host_keys: bool = False, become: bool = False,
                 connect_timeout: float = 30.0, stdout_cap: int = STDOUT_CAP):
        self.ep = endpoint
        self.stdout_cap = stdout_cap
        self.config = config
        self.accept_new = accept_new_host_keys
        self.become = become
        self.connect_timeout = connect_timeout
        self.phase = "connect"
        self.closed = False
        self._closables: list = []
        self._proxies: dict = {}
        self._chan = None
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------
    def _track(self, obj):
        with self._lock:
            if self.closed:
                try:
                    obj.close()
                except Exception:
                    pass
                raise SSHError("session closed", kind="timeout")
            self._closables.append(obj)
        return obj

    def close(self, wait: bool = True) -> None:
        """Close everything. While the probe's channel is open with no exit status (a deadline,
        a capped flood, a lost read), first ask sshd to signal the remote command's process
        group (TERM, then KILL): closing alone leaves a non-pty command and its children
        running on the node, as sshd neither kills nor hangs them up. With wait=False (the
        watchdog) that happens on a closer thread; `wait_closers()` waits for those."""
        with self._lock:
            self.closed = True
            items, self._closables = self._closables[::-1], []
            chan, self._chan = self._chan, None

        def close_items():
            for obj in items:
                try:
                    obj.close()
                except Exception:
                    pass

        if chan is None or chan.closed or chan.exit_status_ready() or not chan.get_transport() \
                or not chan.get_transport().is_active():
            close_items()
            return

        def end_then_close():
            ender = threading.Thread(target=_end_remote, args=(chan,), daemon=True)
            ender.start()
            ender.join(END_REMOTE_WAIT)
            close_items()  # also unblocks an ender stuck on a full send window

        th = threading.Thread(target=end_then_close, daemon=True, name="nodecheck-close")
        with _CLOSERS_LOCK:
            _CLOSERS[:] = [c for c in _CLOSERS if c.is_alive()] + [th]
        th.start()
        if wait:
            th.join()

    # -- connect -----------------------------------------------------------
    def _open_sock(self, ep: Endpoint, depth: int = 0):
        if depth > 8:
            raise SSHError("ProxyJump chain too long")
        if ep.proxy_command:
            proxy = self._track(_ProxyCommand(ep.proxy_command))
            self._proxies[id(proxy.sock)] = proxy
            return proxy.sock
        if ep.proxy_jump:
            # The last hop of a comma list is the nearest one; connect through the rest.
            hops = [h.strip() for h in ep.proxy_jump.split(",") if h.strip()]
            t = None
            for hop in hops:
                user, _, hp = hop.rpartition("@")
                if hp.startswith("["):
                    h, _, rest = hp[1:].partition("]")
                    p = rest[1:] if rest.startswith(":") else None
                else:
                    h, _, p = hp.partition(":")
                jep = resolve(h, config=self.config, user=user or None,
                              port=int(p) if p else None)
                jep.known_hosts_files = ep.known_hosts_files + [
                    f for f in jep.known_hosts_files if f not in ep.known_hosts_files]
                if t is None:
                    jep.proxy_jump = jep.proxy_jump if hop == hops[0] else None
                    sock = self._open_sock(jep, depth + 1) if jep.proxy_jump or jep.proxy_command \
                        else self._tcp(jep)
                else:
                    sock = self._direct_tcpip(t, jep)
                t = self._handshake(sock, jep)
                self._auth(t, jep)
            return self._direct_tcpip(t, ep)
        return self._tcp(ep)

    def _direct_tcpip(self, t: paramiko.Transport, ep: Endpoint):
        try:
            return self._track(t.open_channel(
                "direct-tcpip", (ep.hostname, ep.port), ("127.0.0.1", 0),
                timeout=self.connect_timeout))
        except Exception as exc:
            raise SSHError(f"jump host could not reach {ep.hostname}:{ep.port}: {exc}") from exc

    def _tcp(self, ep: Endpoint):
        try:
            sock = socket.create_connection((ep.hostname, ep.port), timeout=self.connect_timeout)
        except socket.timeout as exc:
            raise SSHError(f"connect to {ep.hostname}:{ep.port} timed out", kind="timeout") from exc
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                raise _local_error(exc, f"connect to {ep.hostname}:{ep.port}") from exc
            raise SSHError(f"connect to {ep.hostname}:{ep.port}: {exc.strerror or exc}") from exc
        self._track(sock)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _load_known(self, ep: Endpoint) -> list[KnownHosts]:
        return [read_known_hosts(f) for f in ep.known_hosts_files]

    def _handshake(self, sock, ep: Endpoint) -> paramiko.Transport:
        self.phase = "handshake"
        entries = self._load_known(ep)
        name = known_hosts_name(ep.hostname, ep.port)
        alias_name = known_hosts_name(ep.alias, ep.port)
        names = [name] if alias_name == name else [name, alias_name]
        known = known_key_types(entries, names)
        t = self._track(_Transport(sock))
        t.banner_timeout = self.connect_timeout
        t.handshake_timeout = self.connect_timeout
        sec = t.get_security_options()
        # curve25519 first: the cheapest kex on small CPUs; OpenSSH calls it both names.
        sec.kex = _prefer(sec.kex, ["curve25519-sha256@libssh.org"])
        if known:
            # Like OpenSSH: ask for the key types we already know first.
            sec.key_types = _prefer(sec.key_types, known + (
                ["rsa-sha2-512", "rsa-sha2-256"] if "ssh-rsa" in known else []))
        try:
            t.start_client(timeout=self.connect_timeout)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            if self.closed:
                raise SSHError("closed at the deadline", kind="timeout") from exc
            proxy = self._proxies.get(id(sock))
            why = proxy and proxy.stderr_tail()
            raise SSHError(f"SSH handshake with {ep.hostname}:{ep.port} failed: {exc}"
                           + (f" (ProxyCommand said: {why[-300:]})" if why else "")) from exc
        key = t.get_remote_server_key()
        ktype = _key_type(key.get_name())
        fp = key.fingerprint if hasattr(key, "fingerprint") else key.get_base64()[:16]
        verdict = host_key_status(entries, names, ktype, key.asbytes())
        if verdict == "known":
            return t
        if verdict == "revoked":
            raise HostKeyError(f"host key for {name} ({ktype} {fp}) is marked @revoked in known_hosts: "
                               "refused", kind="host-key-mismatch")
        if verdict == "mismatch":
            raise HostKeyError(
                f"host key for {name} does not match known_hosts ({fp}): possible "
                "man-in-the-middle, or the host was reinstalled; remove the old key to accept",
                kind="host-key-mismatch")
        if not self.accept_new:
            raise HostKeyError(
                f"host key for {name} is not in known_hosts ({ktype} {fp}); add it "
                "(ssh-keyscan, or scan with --accept-new-host-keys)",
                kind="host-key-unknown")
        self._append_known(ep, name, key)
        self.host_key_added = True
        return t

    def _append_known(self, ep: Endpoint, name: str, key) -> None:
        path = ep.known_hosts_files[0]
        with _KNOWN_HOSTS_LOCK:
            # Re-check under the lock: another worker may have written it.
            if known_key_types(read_known_hosts(path), [name]):
                return
            os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a") as f:
                f.write(f"{name} {key.get_name() if not key.get_name().startswith('rsa-sha2') else 'ssh-rsa'} {key.get_base64()}\n")

    def _auth(self, t: paramiko.Transport, ep: Endpoint) -> None:
        self.phase = "auth"
        tried = []
        keys: list = []
        for path in ep.key_files:
            if not os.path.isfile(path):
                tried.append(f"{path} (missing)")
                continue
            try:
                keys.append((path, load_private_key(path)))
            except paramiko.PasswordRequiredException:
                tried.append(f"{path} (encrypted, no passphrase)")
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    raise _local_error(exc, f"reading {path}") from exc
                tried.append(f"{path} (unreadable: {exc})")
            except Exception as exc:
                tried.append(f"{path} (unreadable: {exc})")
        if os.environ.get("SSH_AUTH_SOCK"):
            try:
                agent = paramiko.Agent()
                keys += [(f"agent:{k.get_name()}", k) for k in agent.get_keys()]
            except Exception:
                pass
        if not ep.key_files:
            for name in DEFAULT_KEYS:
                path = _expand(f"~/.ssh/{name}")
                if os.path.isfile(path):
                    try:
                        keys.append((path, load_private_key(path)))
                    except Exception:
                        pass
        for label, key in keys:
            try:
                t.auth_publickey(ep.user, key)
            except paramiko.AuthenticationException:
                tried.append(f"{label} (rejected)")
                continue
            except (paramiko.SSHException, EOFError, OSError) as exc:
                if self.closed:
                    raise SSHError("closed at the deadline", kind="timeout") from exc
                raise SSHError(f"connection lost during auth: {exc}") from exc
            if t.is_authenticated():
                return
        raise AuthError(f"authentication failed for {ep.user}@{ep.hostname}: "
                        + (", ".join(tried) if tried else "no keys (agent empty, no IdentityFile)"))

    # -- the one exec ------------------------------------------------------
    def execute(self, script: str) -> ProbeRun:
        """The `Transport` call: connect, authenticate, run `script` once, close. A host's
        failure is the run's status (an SSHError's kind); never raises for one."""
        t0 = time.monotonic()
        try:
            run = self.run(script)
        except SSHError as exc:
            run = ProbeRun(status=exc.kind, message=str(exc))
        except Exception as exc:  # never crash the fleet for one host
            run = ProbeRun(status="unreachable", message=f"{type(exc).__name__}: {exc}")
        finally:
            self.close()
        # From here on the fleet's watchdog may interrupt the worker (parsing, scoring).
        self.phase = "parse"
        run.seconds = time.monotonic() - t0
        return run

    def run(self, script: str, *, stdout_cap: int | None = None) -> ProbeRun:
        """The exec itself; raises SSHError. The output is decoded, bad bytes replaced."""
        stdout_cap = self.stdout_cap if stdout_cap is None else stdout_cap
        self.host_key_added = False
        sock = self._open_sock(self.ep)
        t = self._handshake(sock, self.ep)
        self._auth(t, self.ep)
        self.phase = "probe"
        try:
            chan = self._track(t.open_session(timeout=self.connect_timeout))
            with self._lock:
                self._chan = chan
            chan.exec_command(REMOTE_COMMAND_BECOME if self.become else REMOTE_COMMAND)
            chan.sendall(script.encode())
            chan.shutdown_write()
            chan.settimeout(0.2)
            out = bytearray()
            err = bytearray()
            truncated = False

            def drain_err():
                while chan.recv_stderr_ready():
                    err.extend(chan.recv_stderr(65536))
                    if len(err) > 4 * STDERR_TAIL:
                        del err[:-STDERR_TAIL]

            while True:
                drain_err()
                try:
                    data = chan.recv(1 << 20)
                except socket.timeout:
                    if self.closed or not t.is_active():
                        raise SSHError("connection closed during the probe", kind="timeout")
                    continue
                if not data:
                    break
                if len(out) + len(data) > stdout_cap:
                    out.extend(data[: stdout_cap - len(out)])
                    truncated = True
                    break
                out.extend(data)
            status = None
            if not truncated:
                end = time.monotonic() + 5
                while not chan.exit_status_ready() and time.monotonic() < end and not self.closed:
                    drain_err()
                    chan.status_event.wait(0.05)
                if chan.exit_status_ready():
                    status = chan.recv_exit_status()
                drain_err()
            if self.closed and not out:
                raise SSHError("closed at the deadline", kind="timeout")
            return ProbeRun(stdout="" if truncated else out.decode("utf-8", "replace"),
                            stderr=bytes(err[-STDERR_TAIL:]).decode("utf-8", "replace"),
                            exit_status=status, kex=getattr(t, "negotiated_kex", None),
                            truncated=truncated, host_key_added=self.host_key_added,
                            message=f"output exceeded {stdout_cap} bytes (not parsed)" if truncated else "")
        except SSHError:
            raise
        except (paramiko.SSHException, EOFError, OSError) as exc:
            if self.closed:
                raise SSHError("closed at the deadline", kind="timeout") from exc
            raise SSHError(f"connection lost during the probe: {exc}") from exc
