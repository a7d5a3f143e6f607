"""Hostile SSH peers for tests/test_hostile_peers.py, built by the tests.

- `Sshd`: a real OpenSSH sshd on 127.0.0.1 (a free port), logging in the fleet lab's user with a
  key made here; `force` is an sshd ForceCommand (what a hostile or broken node runs instead
  of the probe), `extra` more sshd_config lines. Needs root (sshd, the lab user).
- `RawPeer`: a TCP listener on 127.0.0.1 speaking whatever `behaviour` writes: an endless banner,
  accept-then-stall, a banner and then nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from tests import lab as lablib


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_banner(port: int, proc: subprocess.Popen | None, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"sshd exited {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.settimeout(3)
                if s.recv(64).startswith(b"SSH-"):
                    s.sendall(b"SSH-2.0-sshpeer-ready\r\n")
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("sshd did not start")


class Sshd:
    def __init__(self, *, force: str | None = None, extra: tuple[str, ...] = ()):
        self.force = force
        self.extra = extra
        # sshd (root) and the lab user both read this directory: not pytest's 0700 tmp_path.
        self.dir = Path(tempfile.mkdtemp(prefix="nc-sshpeer-"))
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def key(self) -> str:
        return str(self.dir / "client_key")

    @property
    def known_hosts(self) -> str:
        return str(self.dir / "known_hosts")

    @property
    def name(self) -> str:
        return f"[127.0.0.1]:{self.port}"

    def script(self, name: str, text: str) -> str:
        """An executable script the lab user can run (for ForceCommand)."""
        p = self.dir / name
        p.write_text(text)
        p.chmod(0o755)
        return str(p)

    def __enter__(self) -> "Sshd":
        why = lablib.available()
        if why:
            raise RuntimeError(why)
        lablib.ensure_user()
        for name in ("client_key", "host_key", "other_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f",
                            str(self.dir / name)], check=True, capture_output=True)
        (self.dir / "authorized_keys").write_text((self.dir / "client_key.pub").read_text())
        self.host_key_pub = (self.dir / "host_key.pub").read_text().split()[1]
        self.other_key_pub = (self.dir / "other_key.pub").read_text().split()[1]
        Path(self.known_hosts).write_text(f"{self.name} ssh-ed25519 {self.host_key_pub}\n")
        cfg = [f"ListenAddress 127.0.0.1:{self.port}", f"HostKey {self.dir}/host_key",
               f"PidFile {self.dir}/sshd.pid", f"AuthorizedKeysFile {self.dir}/authorized_keys",
               "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
               "StrictModes no", f"AllowUsers {lablib.LAB_USER}", "UseDNS no", "PrintMotd no",
               "PrintLastLog no", "MaxStartups 400:30:800", "MaxSessions 50", "LogLevel DEBUG",
               *self.extra]
        if self.force:
            cfg.append(f"ForceCommand {self.force}")
        (self.dir / "sshd_config").write_text("\n".join(cfg) + "\n")
        self.log = self.dir / "sshd.log"
        self.proc = subprocess.Popen([lablib.SSHD, "-D", "-f", str(self.dir / "sshd_config"), "-E", str(self.log)],
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            _wait_banner(self.port, self.proc)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class RawPeer:
    """Accepts connections on 127.0.0.1 and runs `behaviour(conn, stop)` for each, in a thread."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.sent = 0

    def __enter__(self) -> "RawPeer":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.behaviour(self, conn)
        except OSError:
            pass
        finally:
            conn.close()

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.sock.close()
