"""The fleet lab: N emulated hosts on this machine, each a real OpenSSH sshd.

Each host gets its own network namespace (veth into a lab bridge, an address in a
10.213.0.0/16 slot that exists only on the lab's own devices) and its own mount
namespace (`nsenter --net` + `unshare -m --propagation private`, keeping this machine's real
/sys with its cgroup mounts, as a real host has them) in which fixture files
are bind-mounted over the real ones: /etc/os-release, /proc/sys/kernel/osrelease,
/boot (kernel config), /sys/bus/pci/devices, and /usr/bin/uname (a script printing the
profile's kernel release, so `uname -r` and the kconfig lookup agree). sshd logs in a
dedicated user `nclab` whose shell is /bin/sh (dash, no rc files), with a lab key.

Latency: a user-space delaying relay (tests/lab/relay.py) listens on the host's address
and forwards to the host's sshd on 127.0.0.1 inside the same namespace, delaying each
direction by RTT/2. With rtt_ms=0 sshd listens on the host's address directly.

Fault hosts (HostSpec.fault):
  refuse       nothing listens: connection refused
  silent       accepts TCP, never speaks SSH (a relay listener that only holds sockets)
  changed-key  known_hosts holds a different key than the host's sshd
  hang         /usr/bin/uname is replaced by a script that sleeps: the probe runs
               `uname -r` early, so it blocks inside the probe, like a command stuck on
               a dead mount (the probe never opens FIFOs: it tests -f first)
  garbage      sshd ForceCommand prints random bytes instead of running the probe
  bad-key      authorized_keys holds another key: auth fails
  unknown-key  a healthy host left out of known_hosts

Scale: 1,000 hosts start on a 2-core machine (tests/lab/scale.py measures it). Each host is
one process (sshd, forked from the lab process straight into its namespaces, its bind mounts
made with mount(2) in the child: no nsenter/unshare/sh/mount execs per host), host keys are
made in-process, and the lab raises its own open-file and process limits to the hard limits
(the relay holds two descriptors per host plus two per open connection). A Linux bridge holds
at most 1,024 ports, hence MAX_HOSTS.

Cleanup: `with Lab(...)`, plus atexit, plus a detached reaper process that tears the lab
down when the owner dies (SIGKILL included) or `max_lifetime` seconds have passed.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import ctypes
import fcntl
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import reaper

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "hosts"
LAB_USER = "nclab"
LAB_HOME = "/var/lib/nclab"
SSHD = "/usr/sbin/sshd"
LOCKDIR = "/run/nodecheck-lab"
# BR_MAX_PORTS in the kernel's bridge is 1 << 10; the gateway needs no port of its own.
MAX_HOSTS = 1020
FAULTS = ("refuse", "silent", "changed-key", "hang", "garbage", "bad-key", "unknown-key")

# Built-in profiles, used when tests/fixtures/hosts/<profile>/root/ lacks a file.
_KCONF = """CONFIG_USER_NS=y
CONFIG_OVERLAY_FS=m
CONFIG_SECCOMP=y
CONFIG_SECCOMP_FILTER=y
CONFIG_CGROUPS=y
CONFIG_NAMESPACES=y
CONFIG_PID_NS=y
CONFIG_NET_NS=y
CONFIG_IPC_NS=y
CONFIG_UTS_NS=y
CONFIG_FUSE_FS=m
"""
PROFILES: dict[str, dict] = {
    "ubuntu-22.04": {
        "os-release": 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\n'
                      'VERSION="22.04.4 LTS (Jammy Jellyfish)"\nVERSION_CODENAME=jammy\nID=ubuntu\n'
                      'ID_LIKE=debian\n',
        "osrelease": "5.15.0-105-generic", "kconfig": _KCONF, "pci": [],
    },
    "debian-12": {
        "os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
                      'VERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n',
        "osrelease": "6.1.0-21-amd64", "kconfig": _KCONF, "pci": [],
    },
    "rocky-9-permissive": {
        "os-release": 'NAME="Red Hat Enterprise Linux"\nVERSION="9.3 (Plow)"\nID="rhel"\n'
                      'ID_LIKE="fedora"\nVERSION_ID="9.3"\nPRETTY_NAME="Red Hat Enterprise Linux 9.3 (Plow)"\n',
        "osrelease": "5.14.0-362.8.1.el9_3.x86_64", "kconfig": _KCONF, "pci": [],
    },
    "gpu-ubuntu-22.04": {
        "os-release": 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\n'
                      'VERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\n',
        "osrelease": "5.15.0-105-generic", "kconfig": _KCONF,
        # (address, vendor, class, device)
        "pci": [("0000:00:00.0", "0x8086", "0x060000", "0x1237"),
                ("0000:3b:00.0", "0x10de", "0x030200", "0x20b5")],
    },
}
PROFILE_NAMES = tuple(PROFILES)


@dataclass
class HostSpec:
    name: str
    profile: str = "debian-12"
    fault: str | None = None
    # sudo for the lab user, in the host's own /etc/sudoers (bind-mounted): None = not a
    # sudoer; "password" = may sudo with a password (so `sudo -n` refuses); "nopasswd" =
    # NOPASSWD for sh only, what --become needs.
    sudo: str | None = None


@dataclass
class LabHost:
    spec: HostSpec
    index: int
    ip: str
    netns: str
    dir: Path
    port: int = 22
    host_key_pub: str = ""
    log: Path | None = None
    proc: subprocess.Popen | None = None
    binds: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.decode(errors='replace')[-1500:]}")
    return r


def raise_limits() -> dict[str, tuple[int, int]]:
    """Soft open-file and process limits up to the hard ones, for this process and what it
    spawns (sshd hosts, relay). The lab's own need, not the product's: nodecheck itself copes
    with a low `ulimit -n` by lowering --forks. Returns the limits now in force."""
    out = {}
    for name in ("RLIMIT_NOFILE", "RLIMIT_NPROC"):
        lim = getattr(resource, name)
        soft, hard = resource.getrlimit(lim)
        if hard == resource.RLIM_INFINITY or soft < hard:
            want = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
            try:
                resource.setrlimit(lim, (want, hard))
            except (ValueError, OSError):
                pass
        out[name] = resource.getrlimit(lim)
    return out


def available() -> str | None:
    """None when a lab can run here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "the fleet lab needs root (network namespaces)"
    for tool in (SSHD, shutil.which("ip"), shutil.which("ssh-keygen"), shutil.which("unshare")):
        if not tool or not os.path.exists(tool):
            return f"missing tool for the fleet lab: {tool} (run tests/setup-system.sh)"
    if not os.path.isdir("/proc/self/ns"):
        return "no namespaces"
    return None


def ensure_user() -> None:
    try:
        import pwd
        pwd.getpwnam(LAB_USER)
    except KeyError:
        _run(["useradd", "--system", "-M", "-d", LAB_HOME, "-s", "/bin/sh", LAB_USER])
    # "!" would make sshd (UsePAM no) treat the account as locked; "*" is just no password.
    _run(["usermod", "-p", "*", LAB_USER])
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    os.makedirs(LAB_HOME, exist_ok=True)
    shutil.chown(LAB_HOME, LAB_USER, LAB_USER)
    for rc in (".profile", ".bashrc", ".shrc"):
        p = Path(LAB_HOME, rc)
        if p.exists():
            p.unlink()


def _profile_files(profile: str) -> dict:
    """The profile's files: fixture tree first, built-in sample otherwise."""
    base = dict(PROFILES.get(profile) or PROFILES["debian-12"])
    root = FIXTURES / profile / "root"
    if root.is_dir():
        osr = root / "etc" / "os-release"
        if not osr.is_file():
            osr = root / "usr" / "lib" / "os-release"
        if osr.is_file():
            base["os-release"] = osr.read_text(errors="replace")
        rel = root / "proc" / "sys" / "kernel" / "osrelease"
        if rel.is_file():
            base["osrelease"] = rel.read_text().strip()
        cfgs = sorted((root / "boot").glob("config-*")) if (root / "boot").is_dir() else []
        if cfgs:
            base["kconfig"] = cfgs[0].read_text(errors="replace")
            if not rel.is_file():
                base["osrelease"] = cfgs[0].name[len("config-"):]
        pci = root / "sys" / "bus" / "pci" / "devices"
        if pci.is_dir():
            base["pci_dir"] = str(pci)
        base["fixture"] = str(root)
    return base


def _keygen(path: Path, comment: str) -> str:
    """An ed25519 key pair in OpenSSH format at `path` and `path`.pub; returns the public line.
    In-process (cryptography, paramiko's dependency): 1,000 ssh-keygen runs took ~8 s here."""
    try:
        from cryptography.hazmat.primitives import serialization as ser
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    except ImportError:
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
        return Path(f"{path}.pub").read_text()
    k = Ed25519PrivateKey.generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(k.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption()))
    pub = k.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH).decode()
    pub = f"{pub} {comment}\n"
    Path(f"{path}.pub").write_text(pub)
    return pub


_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNS, _CLONE_NEWNET = 0x00020000, 0x40000000
_MS_BIND, _MS_REC, _MS_PRIVATE = 4096, 16384, 1 << 18


def _enter_host(netns: str, binds: list[tuple[str, str]]):
    """A preexec_fn: join the host's network namespace, take a private mount namespace
    (what `nsenter --net` + `unshare -m --propagation private` did, keeping this machine's
    real /sys) and bind the fixture files, all by syscalls in the forked child. On failure it
    writes why to fd 2 (the host's start.err) and raises, so Popen fails for this host."""
    netns_path = f"/run/netns/{netns}".encode()
    pairs = [(s.encode(), d.encode()) for s, d in binds]

    def pre() -> None:
        def chk(rc: int, what: str) -> None:
            if rc != 0:
                err = ctypes.get_errno()
                msg = f"{what}: {os.strerror(err)}\n".encode()
                os.write(2, msg)
                raise OSError(err, msg.decode().strip())
        fd = os.open(netns_path, os.O_RDONLY)
        chk(_libc.setns(fd, _CLONE_NEWNET), "setns")
        os.close(fd)
        chk(_libc.unshare(_CLONE_NEWNS), "unshare mount namespace")
        chk(_libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "make / private")
        for src, dst in pairs:
            chk(_libc.mount(src, dst, None, _MS_BIND, None), f"bind {src.decode()} on {dst.decode()}")
    return pre


def _acquire_slot() -> tuple[int, int]:
    os.makedirs(LOCKDIR, exist_ok=True)
    for slot in range(32):
        fd = os.open(f"{LOCKDIR}/slot{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        # A previous owner killed with -9 may have left its namespaces: clear them.
        stale = [n for n in os.listdir("/run/netns")] if os.path.isdir("/run/netns") else []
        prefix = f"ncl{slot}h"
        reaper.cleanup({"netns": [n for n in stale if n.startswith(prefix)],
                        "bridge": f"nclbr{slot}", "veth_prefix": f"nc{slot}h"})
        return slot, fd
    raise RuntimeError("no free fleet-lab slot (32 labs running?)")


class Lab:
    def __init__(self, specs: list[HostSpec], *, rtt_ms: float = 0.0, max_lifetime: float = 900.0,
                 log_level: str = "DEBUG", workdir: str | None = None):
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError("host names must be unique")
        bad = [s.fault for s in specs if s.fault and s.fault not in FAULTS]
        if bad:
            raise ValueError(f"unknown fault(s) {bad}; known: {FAULTS}")
        if len(specs) > MAX_HOSTS:
            raise ValueError(f"at most {MAX_HOSTS} hosts per lab (a Linux bridge holds 1024 ports)")
        self.specs = specs
        self.rtt_ms = rtt_ms
        self.max_lifetime = max_lifetime
        self.log_level = log_level
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="nclab-"))
        self.hosts: list[LabHost] = []
        self.procs: list[subprocess.Popen] = []
        self.pgid: int | None = None
        self.state_path = self.workdir / "lab-state.json"
        self.slot: int | None = None
        self._slot_fd: int | None = None
        self._reaper: subprocess.Popen | None = None
        self._stopped = False

    # -- paths -------------------------------------------------------------
    @property
    def key(self) -> str:
        return str(self.workdir / "client_key")

    @property
    def known_hosts(self) -> str:
        return str(self.workdir / "known_hosts")

    @property
    def bridge(self) -> str:
        return f"nclbr{self.slot}"

    def host(self, name: str) -> LabHost:
        return next(h for h in self.hosts if h.name == name)

    # -- start -------------------------------------------------------------
    def __enter__(self) -> "Lab":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _state(self) -> dict:
        return {"netns": [h.netns for h in self.hosts], "bridge": self.bridge if self.slot is not None else None,
                "veth_prefix": f"nc{self.slot}h" if self.slot is not None else None,
                "pgid": self.pgid, "pids": [p.pid for p in self.procs]}

    def _save_state(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state()))
        os.replace(tmp, self.state_path)

    def _spawn(self, cmd: list[str], **kw) -> subprocess.Popen:
        p = subprocess.Popen(cmd, process_group=self.pgid or 0, stdin=subprocess.DEVNULL, **kw)
        if self.pgid is None:
            self.pgid = p.pid
        self.procs.append(p)
        return p

    def start(self) -> "Lab":
        why = available()
        if why:
            raise RuntimeError(why)
        ensure_user()
        raise_limits()
        self.slot, self._slot_fd = _acquire_slot()
        atexit.register(self.stop)
        base = (213 << 16) | ((self.slot * 8) << 8)  # 10.213.(slot*8).0/21
        prefix = 21

        def ip_of(off: int) -> str:
            v = base + off
            return f"10.{v >> 16}.{(v >> 8) & 255}.{v & 255}"

        self.gateway = ip_of(1)
        for i, spec in enumerate(self.specs):
            d = self.workdir / "hosts" / spec.name
            self.hosts.append(LabHost(spec, i, ip_of(i + 2), f"ncl{self.slot}h{i}", d))
        # The reaper first: from here on, the lab stops by itself.
        self._save_state()
        self._reaper = subprocess.Popen(
            [sys.executable, str(HERE / "reaper.py"), str(self.state_path), str(os.getpid()),
             reaper.proc_start(os.getpid()) or "", str(time.time() + self.max_lifetime)],
            cwd=str(REPO), start_new_session=True, stdin=subprocess.DEVNULL)
        try:
            self._keys()
            self._network(prefix)
            self._save_state()
            self._files()
            self._start_hosts()
            self._save_state()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _keys(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name in ("client_key", "other_key"):
            _keygen(self.workdir / name, f"nclab-{name}")
        os.chmod(self.workdir, 0o755)
        (self.workdir / "authorized_keys").write_text((self.workdir / "client_key.pub").read_text())
        (self.workdir / "authorized_keys.other").write_text((self.workdir / "other_key.pub").read_text())

        for h in self.hosts:
            h.dir.mkdir(parents=True, exist_ok=True)
            h.host_key_pub = _keygen(h.dir / "ssh_host_ed25519_key", h.name).split()[1]
        # The changed-key hosts: known_hosts gets a key that is not theirs.
        wrong = (self.workdir / "other_key.pub").read_text().split()[1]
        lines = []
        for h in self.hosts:
            if h.spec.fault == "unknown-key":
                continue
            key = wrong if h.spec.fault == "changed-key" else h.host_key_pub
            lines.append(f"{h.ip} ssh-ed25519 {key}\n")
        Path(self.known_hosts).write_text("".join(lines))

    def _network(self, prefix: int) -> None:
        # No broadcast or multicast at all: on one bridge every ARP request and every IPv6
        # DAD/router solicitation is flooded to all N ports, N times over, which at 1,000
        # hosts took the machine's CPU for a minute at start and again when a tool first
        # talked to every host. So every MAC is fixed and known up front: permanent neighbour
        # entries on both sides (not counted against gc_thresh3, 1024 by default), static
        # FDB entries (no unknown-unicast flooding), and no IPv6 link-local addresses.
        br = self.bridge
        slot = self.slot
        gw_mac = f"02:1a:{slot:02x}:00:00:01"

        def mac(h: LabHost) -> str:
            return f"02:1b:{slot:02x}:{(h.index >> 16) & 255:02x}:{(h.index >> 8) & 255:02x}:{h.index & 255:02x}"

        batch = [f"link add {br} address {gw_mac} type bridge", f"link set {br} addrgenmode none",
                 f"addr add {self.gateway}/{prefix} dev {br}", f"link set {br} up"]
        fdb = []
        for h in self.hosts:
            veth = f"nc{slot}h{h.index}"
            batch += [f"link add {veth} type veth peer name eth0 address {mac(h)} netns {h.netns}",
                      f"link set {veth} addrgenmode none", f"link set {veth} master {br}",
                      f"link set {veth} up",
                      f"neigh replace {h.ip} lladdr {mac(h)} dev {br} nud permanent"]
            fdb.append(f"fdb replace {mac(h)} dev {veth} master static")
        # All namespaces from one ip process (it returns to its own namespace after each
        # `netns add`), before the batch that moves the veth peers into them.
        _run(["ip", "-batch", "-"], input="".join(f"netns add {h.netns}\n" for h in self.hosts).encode())
        _run(["ip", "-batch", "-"], input="\n".join(batch).encode() + b"\n")
        _run(["bridge", "-batch", "-"], input="\n".join(fdb).encode() + b"\n")

        def conf(h: LabHost) -> None:
            _run(["ip", "-n", h.netns, "-batch", "-"], input=(
                f"link set eth0 addrgenmode none\naddr add {h.ip}/{prefix} dev eth0\n"
                f"link set eth0 up\nlink set lo up\n"
                f"neigh replace {self.gateway} lladdr {gw_mac} dev eth0 nud permanent\n").encode())

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(conf, self.hosts))

    def _files(self) -> None:
        busybox = shutil.which("busybox") or "/bin/busybox"
        for h in self.hosts:
            prof = _profile_files(h.spec.profile)
            d = h.dir
            (d / "os-release").write_text(prof["os-release"])
            rel = prof["osrelease"]
            (d / "osrelease").write_text(rel + "\n")
            (d / "boot").mkdir(exist_ok=True)
            (d / "boot" / f"config-{rel}").write_text(prof["kconfig"])
            pci = prof.get("pci_dir")
            if not pci:
                pci = d / "pci"
                pci.mkdir(exist_ok=True)
                for addr, ven, cls, dev in prof["pci"]:
                    p = pci / addr
                    p.mkdir(exist_ok=True)
                    (p / "vendor").write_text(ven + "\n")
                    (p / "class").write_text(cls + "\n")
                    (p / "device").write_text(dev + "\n")
            if h.spec.fault == "hang":
                uname = "#!/bin/sh\nexec sleep 100000\n"
            else:
                uname = (f'#!/bin/sh\ncase "$*" in\n  -r) echo {rel} ;;\n'
                         f'  *) exec {busybox} uname "$@" ;;\nesac\n')
            (d / "uname").write_text(uname)
            os.chmod(d / "uname", 0o755)
            listen = h.ip if self.rtt_ms <= 0 else "127.0.0.1"
            akf = self.workdir / ("authorized_keys.other" if h.spec.fault == "bad-key" else "authorized_keys")
            cfg = [
                f"ListenAddress {listen}:22", f"HostKey {d}/ssh_host_ed25519_key",
                f"PidFile {d}/sshd.pid", f"AuthorizedKeysFile {akf}",
                "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                "UsePAM no", "StrictModes no", f"AllowUsers {LAB_USER}", "UseDNS no",
                "PrintMotd no", "PrintLastLog no", "MaxStartups 200:30:400", "MaxSessions 50",
                f"LogLevel {self.log_level}", "Subsystem sftp /usr/lib/openssh/sftp-server",
                "PermitUserEnvironment no", "AcceptEnv LANG LC_*",
            ]
            if h.spec.fault == "garbage":
                cfg.append("ForceCommand head -c 3000 /dev/urandom")
            (d / "sshd_config").write_text("\n".join(cfg) + "\n")
            h.log = d / "sshd.log"
            binds = [(f"{d}/os-release", "/etc/os-release"),
                     (f"{d}/osrelease", "/proc/sys/kernel/osrelease"),
                     (f"{d}/boot", "/boot"), (str(pci), "/sys/bus/pci/devices"),
                     (f"{d}/uname", "/usr/bin/uname")]
            if h.spec.sudo:
                rule = {"password": f"{LAB_USER} ALL=(ALL:ALL) ALL",
                        "nopasswd": f"{LAB_USER} ALL=(root) NOPASSWD: /usr/bin/sh, /bin/sh"}[h.spec.sudo]
                sudoers = d / "sudoers"
                sudoers.write_text(f"Defaults env_reset\nDefaults secure_path=/usr/sbin:/usr/bin:/sbin:/bin\n"
                                   f"root ALL=(ALL:ALL) ALL\n{rule}\n")
                os.chmod(sudoers, 0o440)
                binds.append((str(sudoers), "/etc/sudoers"))
            if os.path.exists("/proc/config.gz"):
                # This kernel's own config would be found first: hide it (a non-regular
                # file, which the probe skips) so the profile's /boot config is used.
                binds.append(("/dev/null", "/proc/config.gz"))
            h.binds = binds
            # The same start as a script, for a person debugging one host by hand.
            (d / "start.sh").write_text(
                f"# nsenter --net=/run/netns/{h.netns} unshare -m --propagation private sh {d}/start.sh\n"
                "set -e\n" + "".join(f"mount --bind {s} {t}\n" for s, t in binds)
                + f"exec {SSHD} -D -f {d}/sshd_config -E {h.log}\n")

    def _start_hosts(self) -> None:
        relay_spec = []
        for h in self.hosts:
            f = h.spec.fault
            if f == "refuse":
                continue
            if f == "silent":
                relay_spec.append({"netns": h.netns, "mode": "silent", "listen": [h.ip, 22]})
                continue
            # nsenter --net, not `ip netns exec`: the latter mounts a fresh sysfs over /sys,
            # which has none of this machine's cgroup mounts, so every host read `unknown`
            # on cgroups. With nsenter the host keeps the machine's real /sys (cgroup
            # hierarchies, securityfs, selinuxfs) in its own private mount namespace.
            with open(h.dir / "start.err", "wb") as err:
                h.proc = self._spawn([SSHD, "-D", "-f", str(h.dir / "sshd_config"), "-E", str(h.log)],
                                     preexec_fn=_enter_host(h.netns, h.binds),
                                     stdout=subprocess.DEVNULL, stderr=err)
            if self.rtt_ms > 0:
                relay_spec.append({"netns": h.netns, "mode": "relay", "listen": [h.ip, 22],
                                   "upstream": ["127.0.0.1", 22], "delay_ms": self.rtt_ms / 2})
        if relay_spec:
            spec_path = self.workdir / "relay.json"
            spec_path.write_text(json.dumps(relay_spec))
            p = self._spawn([sys.executable, str(HERE / "relay.py"), str(spec_path)], cwd=str(REPO),
                            stdout=subprocess.PIPE, stderr=open(self.workdir / "relay.err", "wb"))
            line = p.stdout.readline()
            if b"READY" not in line:
                raise RuntimeError("lab relay did not start: "
                                   + (self.workdir / "relay.err").read_text()[-2000:])

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Every sshd host answers with an SSH banner (through its relay)."""
        end = time.monotonic() + timeout

        def ready(h: LabHost) -> str | None:
            if h.spec.fault in ("refuse", "silent"):
                return None
            last = ""
            while time.monotonic() < end:
                if h.proc is not None and h.proc.poll() is not None:
                    last = f"sshd exited {h.proc.returncode}"
                    break
                try:
                    with socket.create_connection((h.ip, 22), timeout=2) as s:
                        s.settimeout(5)
                        if s.recv(64).startswith(b"SSH-"):
                            s.sendall(b"SSH-2.0-nclab-ready\r\n")
                            return None
                except OSError as exc:
                    last = str(exc)
                time.sleep(0.1)
            err = (h.dir / "start.err").read_text()[-500:] if (h.dir / "start.err").exists() else ""
            return f"{h.name}: not ready ({last}) {err}"

        with concurrent.futures.ThreadPoolExecutor(32) as ex:
            errors = [e for e in ex.map(ready, self.hosts) if e]
        if errors:
            raise RuntimeError("lab hosts did not start: " + "; ".join(errors[:5]))
        self.ready_at = time.time()

    # -- use ---------------------------------------------------------------
    def write_inventory(self, path: str, fmt: str = "ini", hosts: list[LabHost] | None = None,
                        extra: str = "") -> str:
        hosts = self.hosts if hosts is None else hosts
        groups: dict[str, list[LabHost]] = {}
        for h in hosts:
            groups.setdefault(re.sub(r"[^A-Za-z0-9_]", "_", h.spec.profile), []).append(h)
            if h.spec.fault:
                groups.setdefault("faults", []).append(h)
        if fmt == "ini":
            lines = []
            for g, hs in groups.items():
                lines.append(f"[{g}]")
                lines += [f"{h.name} ansible_host={h.ip} ansible_port={h.port}" for h in hs]
                lines.append("")
            lines += ["[all:vars]", f"ansible_user={LAB_USER}",
                      f"ansible_ssh_private_key_file={self.key}", extra, ""]
            Path(path).write_text("\n".join(lines))
        else:
            import yaml
            doc = {"all": {"vars": {"ansible_user": LAB_USER, "ansible_ssh_private_key_file": self.key},
                           "children": {g: {"hosts": {h.name: {"ansible_host": h.ip, "ansible_port": h.port}
                                                      for h in hs}} for g, hs in groups.items()}}}
            Path(path).write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def log_offsets(self) -> dict[str, int]:
        return {h.name: (h.log.stat().st_size if h.log and h.log.exists() else 0) for h in self.hosts}

    def ssh_counts(self, since: dict[str, int] | None = None) -> dict[str, dict[str, int]]:
        """Per host, from sshd's DEBUG log: connections, session channels, execs, subsystems."""
        out = {}
        for h in self.hosts:
            c = {"connections": 0, "sessions": 0, "exec": 0, "subsystem": 0}
            if h.log and h.log.exists():
                with open(h.log, "rb") as f:
                    f.seek((since or {}).get(h.name, 0))
                    for line in f:
                        if b"Connection from " in line and b"nclab-ready" not in line:
                            c["connections"] += 1
                        elif b"server_input_channel_open: ctype session" in line:
                            c["sessions"] += 1
                        elif b"req exec" in line and b"session_input_channel_req" in line:
                            c["exec"] += 1
                        elif b"req subsystem" in line and b"session_input_channel_req" in line:
                            c["subsystem"] += 1
            out[h.name] = c
        return out

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            reaper.cleanup(self._state())
        finally:
            for p in self.procs:
                try:
                    p.wait(timeout=5)
                except Exception:
                    pass
            try:
                self.state_path.unlink()
            except OSError:
                pass
            if self._reaper:
                try:
                    self._reaper.wait(timeout=5)
                except Exception:
                    self._reaper.kill()
            if self._slot_fd is not None:
                os.close(self._slot_fd)
                self._slot_fd = None
            if self._own_workdir and not os.environ.get("NCLAB_KEEP"):
                shutil.rmtree(self.workdir, ignore_errors=True)
            try:
                atexit.unregister(self.stop)
            except Exception:
                pass


def mixed_specs(n: int, *, faults: tuple[str, ...] = ()) -> list[HostSpec]:
    """`n` healthy hosts cycling through the profiles, then one host per fault."""
    specs = [HostSpec(f"node{i:03d}", PROFILE_NAMES[i % len(PROFILE_NAMES)]) for i in range(n)]
    specs += [HostSpec(f"fault-{f}", "debian-12", f) for f in faults]
    return specs
