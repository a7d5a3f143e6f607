"""Run the probe on one host over SSH: one connection, one exec, the probe on stdin.

The remote command is a fixed string (`sh -s -- /`, or `sudo -n sh -s -- /` with
become); nothing from a host name or an inventory string ever reaches a shell. The
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

import getpass
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field

import paramiko
from paramiko.kex_curve25519 import KexCurve25519

REMOTE_COMMAND = "sh -s -- /"
REMOTE_COMMAND_BECOME = "sudo -n sh -s -- /"
STDOUT_CAP = 64 * 1024 * 1024
STDERR_TAIL = 4096
DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")

# paramiko logs a traceback when the watchdog closes a transport mid-read: that is
# expected here, and the host's status already says it; keep it off stderr.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

# The known_hosts writes of accept-new hosts running in parallel.
_KNOWN_HOSTS_LOCK = threading.Lock()


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
class ProbeRun:
    stdout: bytes
    stderr_tail: bytes
    exit_status: int | None
    kex: str | None
    truncated: bool = False
    host_key_added: bool = False


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
    pc = c.get("proxycommand")
    if pc and pc.lower() == "none":
        pc = None
    khf = []
    if known_hosts:
        khf.append(known_hosts)
    for f in (c.get("userknownhostsfile") or "~/.ssh/known_hosts").split():
        if f not in khf:
            khf.append(f)
    return Endpoint(
        alias=host,
        hostname=hostname,
        port=int(port or c.get("port") or 22),
        user=user or c.get("user") or getpass.getuser(),
        key_files=[_expand(k) for k in keys],
        proxy_jump=jump,
        proxy_command=pc,
        known_hosts_files=[_expand(f) for f in khf],
    )


def known_hosts_name(hostname: str, port: int) -> str:
    return hostname if port == 22 else f"[{hostname}]:{port}"


class _Transport(paramiko.Transport):
    """Remembers which key exchange was negotiated (paramiko drops the engine)."""

    negotiated_kex: str | None = None

    def _parse_newkeys(self, m):  # noqa: D401 - paramiko hook
        if self.kex_engine is not None and self.negotiated_kex is None:
            for name, cls in self._kex_info.items():
                if isinstance(self.kex_engine, cls):
                    self.negotiated_kex = name
                    break
        return super()._parse_newkeys(m)


def _prefer(opts_seq, first: list[str]) -> tuple[str, ...]:
    lead = [a for a in first if a in opts_seq]
    return tuple(lead + [a for a in opts_seq if a not in lead])


class Session:
    """One host's connection state. `close()` may be called from any thread."""

    def __init__(self, endpoint: Endpoint, *, config: paramiko.SSHConfig,
                 accept_new_host_keys: bool = False, become: bool = False,
                 connect_timeout: float = 30.0):
        self.ep = endpoint
        self.config = config
        self.accept_new = accept_new_host_keys
        self.become = become
        self.connect_timeout = connect_timeout
        self.phase = "connect"
        self.closed = False
        self._closables: list = []
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

    def close(self) -> None:
        with self._lock:
            self.closed = True
            items, self._closables = self._closables[::-1], []
        for obj in items:
            try:
                obj.close()
            except Exception:
                pass

    # -- connect -----------------------------------------------------------
    def _open_sock(self, ep: Endpoint, depth: int = 0):
        if depth > 8:
            raise SSHError("ProxyJump chain too long")
        if ep.proxy_command:
            try:
                return self._track(paramiko.ProxyCommand(ep.proxy_command))
            except Exception as exc:
                raise SSHError(f"ProxyCommand failed: {exc}") from exc
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
            raise SSHError(f"connect to {ep.hostname}:{ep.port}: {exc.strerror or exc}") from exc
        self._track(sock)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _load_known(self, ep: Endpoint) -> paramiko.HostKeys:
        hk = paramiko.HostKeys()
        for f in ep.known_hosts_files:
            if os.path.isfile(f):
                try:
                    hk.load(f)
                except (OSError, paramiko.SSHException) as exc:
                    raise SSHError(f"cannot read known_hosts {f}: {exc}", kind="host-key-unknown") from exc
        return hk

    def _handshake(self, sock, ep: Endpoint) -> paramiko.Transport:
        self.phase = "handshake"
        hk = self._load_known(ep)
        name = known_hosts_name(ep.hostname, ep.port)
        alias_name = known_hosts_name(ep.alias, ep.port)
        known = hk.lookup(name) or (hk.lookup(alias_name) if alias_name != name else None)
        t = self._track(_Transport(sock))
        t.banner_timeout = self.connect_timeout
        t.handshake_timeout = self.connect_timeout
        sec = t.get_security_options()
        # curve25519 first: the cheapest kex on small CPUs; OpenSSH calls it both names.
        sec.kex = _prefer(sec.kex, ["curve25519-sha256@libssh.org"])
        if known:
            # Like OpenSSH: ask for the key types we already know first.
            sec.key_types = _prefer(sec.key_types, [k for k in known.keys()] + (
                ["rsa-sha2-512", "rsa-sha2-256"] if "ssh-rsa" in known.keys() else []))
        try:
            t.start_client(timeout=self.connect_timeout)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            if self.closed:
                raise SSHError("closed at the deadline", kind="timeout") from exc
            raise SSHError(f"SSH handshake with {ep.hostname}:{ep.port} failed: {exc}") from exc
        key = t.get_remote_server_key()
        ktype = key.get_name()
        if ktype.startswith("rsa-sha2"):
            ktype = "ssh-rsa"
        fp = key.fingerprint if hasattr(key, "fingerprint") else key.get_base64()[:16]
        if known:
            if ktype in known.keys() and known[ktype] == key:
                return t
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
            hk = paramiko.HostKeys()
            if os.path.isfile(path):
                hk.load(path)
            if hk.lookup(name):
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
                keys.append((path, paramiko.PKey.from_path(path)))
            except paramiko.PasswordRequiredException:
                tried.append(f"{path} (encrypted, no passphrase)")
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
                        keys.append((path, paramiko.PKey.from_path(path)))
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
    def run(self, script: str, *, stdout_cap: int = STDOUT_CAP) -> ProbeRun:
        self.host_key_added = False
        sock = self._open_sock(self.ep)
        t = self._handshake(sock, self.ep)
        self._auth(t, self.ep)
        self.phase = "probe"
        try:
            chan = self._track(t.open_session(timeout=self.connect_timeout))
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
            return ProbeRun(stdout=bytes(out), stderr_tail=bytes(err[-STDERR_TAIL:]),
                            exit_status=status, kex=getattr(t, "negotiated_kex", None),
                            truncated=truncated, host_key_added=self.host_key_added)
        except SSHError:
            raise
        except (paramiko.SSHException, EOFError, OSError) as exc:
            if self.closed:
                raise SSHError("closed at the deadline", kind="timeout") from exc
            raise SSHError(f"connection lost during the probe: {exc}") from exc
