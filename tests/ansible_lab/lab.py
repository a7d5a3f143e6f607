"""The install lab: real Debian hosts (debootstrap) reachable over SSH in network namespaces.

Topology (nothing in the machine's own network namespace):

    netns ncil-<tag>-ctl   bridge ncil<tag>br 10.214.<n>.1/24   the controller: ansible, HTTP mirror
      |- veth -> netns ncil-<tag>-h1   eth0 10.214.<n>.11/24     host h1: its own sshd
      |- veth -> netns ncil-<tag>-h2   eth0 10.214.<n>.12/24     ...

Each host is an overlay of the cached bookworm tree (rootfs.py) with its own upper dir.
Its sshd is the chroot's own /usr/sbin/sshd, started as

    ip netns exec NS unshare --pid --fork --mount --kill-child sh -c '<mounts>; chroot ROOT sshd -D'

so the host has its own PID and mount namespace: /proc, /sys, /dev and a tmpfs /run are
mounted into the root there, PID 1 is that `sh` (not systemd: services are enabled, not
started, exactly as in a chroot), and fixture files can be bind-mounted over
/proc/sys/kernel/osrelease or sysctl files without touching the machine's kernel.

The controller runs every Ansible command through `ip netns exec <ctl>` (see `ctl_cmd`).
"""

from __future__ import annotations

import atexit
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import repo as lab_repo
from . import rootfs

REPO_MOUNT = "/srv/nodecheck-lab-repo"


@dataclass
class HostSpec:
    name: str
    # Extra apt packages installed from the lab repo into the host before it starts
    # (e.g. ["containerd.io=1.6.28-1", "docker-ce"]).
    preinstall: list[str] = field(default_factory=list)
    # Fixture contents bind-mounted over files in the host's mount namespace
    # ({"/proc/sys/kernel/osrelease": "4.19.0-lab\n"}).
    overlay_files: dict[str, str] = field(default_factory=dict)
    # Files written into the host's root before it starts ({"/etc/os-release": "..."}, or
    # (content, mode) for executables).
    files: dict[str, str] = field(default_factory=dict)
    # Give the host private copies of the sysctls the sysbox role writes, so `sysctl -w`
    # in the play changes a file in the host's namespace, not this machine's kernel.
    private_sysctls: bool = True
    # /var/lib/sysbox, /var/lib/docker, /var/lib/containers on the machine's own filesystem
    # instead of the host's overlay root.
    data_root_bind: bool = True
    hostvars: dict = field(default_factory=dict)
    # Commands started in the background inside the host (its PID namespace, chrooted),
    # e.g. a stand-in dockerd.
    daemons: list[str] = field(default_factory=list)


# Data roots the preflight's storage check reads (Sysbox, Docker, CRI-O/Podman): bound to
# directories off the overlay (see HostSpec.data_root_bind).
DATA_ROOTS = ("/var/lib/sysbox", "/var/lib/docker", "/var/lib/containers")

# The sysctl files the sysbox role may write; private per host (see HostSpec.private_sysctls).
SYSCTL_PATHS = [
    "/proc/sys/kernel/unprivileged_userns_clone", "/proc/sys/fs/inotify/max_queued_events",
    "/proc/sys/fs/inotify/max_user_watches", "/proc/sys/fs/inotify/max_user_instances",
    "/proc/sys/kernel/keys/maxkeys", "/proc/sys/kernel/keys/maxbytes", "/proc/sys/kernel/pid_max",
]


@dataclass
class Host:
    spec: HostSpec
    root: Path
    addr: str
    netns: str
    mounts: list[Path]
    fixtures: Path
    proc: subprocess.Popen | None = None

    @property
    def name(self) -> str:
        return self.spec.name


def _run(cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run(cmd, **kw)


def _ip(*args, ns: str | None = None):
    cmd = ["ip"] + (["-n", ns] if ns else []) + list(args)
    return _run(cmd, capture_output=True, text=True)


class Lab:
    def __init__(self, workdir: Path, specs: list[HostSpec], log=print):
        self.workdir = Path(workdir)
        self.specs = specs
        self.log = log
        self.tag = secrets.token_hex(2)
        self.subnet = 1 + int(self.tag, 16) % 250
        self.ctl = f"ncil-{self.tag}-ctl"
        self.bridge = f"ncil{self.tag}br"
        self.gw = f"10.214.{self.subnet}.1"
        self.hosts: dict[str, Host] = {}
        self.http: subprocess.Popen | None = None
        self.timings: dict[str, float] = {}
        self.key = self.workdir / "id_ed25519"
        self.known_hosts = self.workdir / "known_hosts"
        self.pkgs: dict = {}
        self._stopped = False

    # -- setup ---------------------------------------------------------------------
    def start(self) -> "Lab":
        atexit.register(self.stop)
        t0 = time.monotonic()
        base, spent = rootfs.base_tree(log=self.log)
        self.timings["debootstrap_or_cache"] = spent
        t1 = time.monotonic()
        self.pkgs = lab_repo.build_repo(self.workdir, rootfs_arch(base))
        self.timings["build_repo"] = time.monotonic() - t1
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], capture_output=True)
        t2 = time.monotonic()
        self._network()
        for i, spec in enumerate(self.specs):
            self._make_host(base, spec, f"10.214.{self.subnet}.{11 + i}")
        self.timings["hosts_setup"] = time.monotonic() - t2
        self._start_http()
        self._wait_ssh()
        self.timings["lab_start_total"] = time.monotonic() - t0
        return self

    def _network(self):
        _ip("netns", "add", self.ctl)
        _ip("link", "set", "lo", "up", ns=self.ctl)
        _ip("link", "add", self.bridge, "type", "bridge", ns=self.ctl)
        _ip("addr", "add", f"{self.gw}/24", "dev", self.bridge, ns=self.ctl)
        _ip("link", "set", self.bridge, "up", ns=self.ctl)

    def _make_host(self, base: Path, spec: HostSpec, addr: str) -> Host:
        ns = f"ncil-{self.tag}-{spec.name}"
        root, mounts = rootfs.make_host_root(base, self.workdir / "hosts", spec.name)
        fixtures = self.workdir / "hosts" / spec.name / "fixtures"
        fixtures.mkdir(parents=True, exist_ok=True)
        host = Host(spec=spec, root=root, addr=addr, netns=ns, mounts=mounts, fixtures=fixtures)
        idx = len(self.hosts)
        self.hosts[spec.name] = host  # registered first, so stop() undoes a half-made host
        # apt source: the lab repository, as file: (copied in: a few KB).
        shutil.copytree(self.pkgs["repo"], root / REPO_MOUNT.lstrip("/"), dirs_exist_ok=True)
        (root / "etc/apt/sources.list.d/nodecheck-lab.list").write_text(
            f"deb [trusted=yes] file:{REPO_MOUNT} ./\n")
        (root / "etc/hostname").write_text(spec.name + "\n")
        for d in DATA_ROOTS:
            (root / d.lstrip("/")).mkdir(parents=True, exist_ok=True)
        for path, content in spec.files.items():
            content, mode = content if isinstance(content, tuple) else (content, 0o644)
            p = root / path.lstrip("/")
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(content)
            p.chmod(mode)
        self._chroot(root, "apt-get", "update", "-qq")
        if spec.preinstall:
            self._chroot(root, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *spec.preinstall,
                         env={"DEBIAN_FRONTEND": "noninteractive"})
        # sshd: the host's own keys, root login with the lab key only, no PAM.
        self._chroot(root, "ssh-keygen", "-A")
        ssh_dir = root / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(Path(str(self.key) + ".pub").read_text())
        (ssh_dir / "authorized_keys").chmod(0o600)
        (root / "etc/ssh/sshd_config.d/nodecheck-lab.conf").write_text(
            f"ListenAddress {addr}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "UsePAM no\nUseDNS no\n")
        pub = (root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
        with open(self.known_hosts, "a") as f:
            f.write(f"{addr} {pub[0]} {pub[1]}\n")
        # network namespace + veth into the controller's bridge
        _ip("netns", "add", ns)
        a, b = f"nci{self.tag}h{idx}a", f"nci{self.tag}h{idx}b"
        _ip("link", "add", a, "type", "veth", "peer", "name", b)
        _ip("link", "set", a, "netns", ns)
        _ip("link", "set", b, "netns", self.ctl)
        _ip("link", "set", b, "master", self.bridge, ns=self.ctl)
        _ip("link", "set", b, "up", ns=self.ctl)
        _ip("link", "set", a, "name", "eth0", ns=ns)
        _ip("addr", "add", f"{addr}/24", "dev", "eth0", ns=ns)
        _ip("link", "set", "eth0", "up", ns=ns)
        _ip("link", "set", "lo", "up", ns=ns)
        host.proc = self._start_sshd(host)
        return host

    def _start_sshd(self, host: Host) -> subprocess.Popen:
        r = shlex.quote(str(host.root))
        lines = [
            "set -e",
            f"hostname {shlex.quote(host.name)}",
            f"mount -t proc proc {r}/proc",
            f"mount --rbind /sys {r}/sys",
            f"mount --rbind /dev {r}/dev",
            f"mount -t tmpfs -o mode=755 tmpfs {r}/run",
            f"mkdir -p {r}/run/sshd",
        ]
        # `ip netns exec` gives the namespace a fresh /sys without the cgroup mounts: mount
        # this machine's cgroup hierarchies again (same filesystems, so the same cgroups).
        lines += cgroup_mounts(f"{r}/sys/fs/cgroup")
        if host.spec.data_root_bind:
            # Sysbox refuses a data-root on overlayfs (the host's root is an overlay here):
            # give Sysbox's and the engines' data roots their own directories on the
            # machine's real filesystem, as a real host has them on its disk.
            for d in DATA_ROOTS:
                data = host.fixtures.parent / ("data" + d.replace("/", "-"))
                data.mkdir(exist_ok=True)
                lines.append(f"mount --bind {shlex.quote(str(data))} {r}{d}")
        files = dict(host.spec.overlay_files)
        if host.spec.private_sysctls:
            for path in SYSCTL_PATHS:
                if os.path.exists(path) and path not in files:
                    try:
                        files[path] = Path(path).read_text()
                    except OSError:
                        pass
        for i, (path, content) in enumerate(sorted(files.items())):
            fx = host.fixtures / f"f{i}-{Path(path).name}"
            fx.write_text(content)
            lines.append(f"mount --bind {shlex.quote(str(fx))} {r}{shlex.quote(path)}")
        for cmd in host.spec.daemons:
            lines.append(f"chroot {r} {cmd} >/dev/null 2>&1 &")
        # PID 1 of the host stays this shell (outside the chroot), like a container's init.
        lines.append(f"chroot {r} /usr/sbin/sshd -D -e >{shlex.quote(str(host.fixtures.parent / 'sshd.log'))} 2>&1 &")
        lines.append("wait")
        script = "\n".join(lines)
        return subprocess.Popen(
            ["ip", "netns", "exec", host.netns, "unshare", "--pid", "--fork", "--mount", "--uts",
             "--propagation", "private", "--kill-child", "sh", "-c", script],
            start_new_session=True,
        )

    def _chroot(self, root: Path, *cmd, env=None):
        e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
        e.update(env or {})
        r = subprocess.run(["chroot", str(root), *cmd], capture_output=True, text=True, env=e)
        if r.returncode:
            raise RuntimeError(f"chroot {root} {' '.join(cmd)}: exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
        return r

    def _start_http(self):
        self.http = subprocess.Popen(
            ["ip", "netns", "exec", self.ctl, sys.executable, "-m", "http.server", "--bind", self.gw,
             "--directory", str(self.pkgs["artifacts"]), "8080"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )

    def _wait_ssh(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        for h in self.hosts.values():
            while True:
                r = subprocess.run(self.ctl_cmd(["ssh", *self.ssh_opts(), f"root@{h.addr}", "true"]),
                                   capture_output=True, text=True)
                if r.returncode == 0:
                    break
                if time.monotonic() > deadline:
                    log = (h.fixtures.parent / "sshd.log")
                    raise RuntimeError(f"{h.name}: ssh not up: {r.stderr}\n{log.read_text() if log.exists() else ''}")
                time.sleep(0.2)

    # -- use -----------------------------------------------------------------------
    @property
    def mirror_url(self) -> str:
        return f"http://{self.gw}:8080/{self.pkgs['sysbox_deb'].name}"

    def ssh_opts(self) -> list[str]:
        return ["-i", str(self.key), "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]

    def ctl_cmd(self, cmd: list[str]) -> list[str]:
        """A command line that runs on the controller (inside the lab's controller netns)."""
        return ["ip", "netns", "exec", self.ctl, *cmd]

    def write_inventory(self, path: Path, names=None, group_vars: dict | None = None) -> Path:
        import yaml

        hosts = {}
        for name in names or self.hosts:
            h = self.hosts[name]
            hv = {"ansible_host": h.addr, "ansible_user": "root"}
            hv.update(h.spec.hostvars)
            hosts[name] = hv
        gv = {
            "ansible_ssh_private_key_file": str(self.key),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes",
            "ansible_python_interpreter": "/usr/bin/python3",
        }
        gv.update(group_vars or {})
        path.write_text(yaml.safe_dump({"all": {"hosts": hosts, "vars": gv}}, sort_keys=False))
        return path

    def sh(self, name: str, cmd: str) -> subprocess.CompletedProcess:
        """Run a shell command on a host over SSH (as the play does)."""
        h = self.hosts[name]
        return subprocess.run(self.ctl_cmd(["ssh", *self.ssh_opts(), f"root@{h.addr}", cmd]),
                              capture_output=True, text=True)

    # -- teardown ------------------------------------------------------------------
    def stop(self):
        if self._stopped:
            return
        self._stopped = True
        procs = [h.proc for h in self.hosts.values() if h.proc] + ([self.http] if self.http else [])
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        # Every namespace of this lab (its tag is unique), also ones a failed start left.
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        for line in listed.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(f"ncil-{self.tag}-"):
                subprocess.run(["ip", "netns", "del", name], capture_output=True)
        time.sleep(0.2)
        # Every mount under the lab's workdir, innermost first.
        prefix = str(self.workdir.resolve()) + "/"
        with open("/proc/self/mounts") as f:
            mounts = [line.split()[1] for line in f if line.split()[1].startswith(prefix)]
        for m in sorted(set(mounts), key=len, reverse=True):
            for _ in range(20):
                if subprocess.run(["umount", m], capture_output=True).returncode == 0:
                    break
                time.sleep(0.25)
            else:
                subprocess.run(["umount", "-l", m], capture_output=True)


def cgroup_mounts(target: str) -> list[str]:
    """Shell lines that mount this machine's cgroup hierarchies (v1 and/or v2) at target."""
    out = [f"mount -t tmpfs -o mode=755 cgroup-root {target}"]
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        mnt, fstype, opts = fields[4], rfields[0], rfields[2]
        if not mnt.startswith("/sys/fs/cgroup"):
            continue
        dest = shlex.quote(target + mnt[len("/sys/fs/cgroup"):])
        if fstype == "cgroup2":
            if mnt == "/sys/fs/cgroup":
                out = [f"mount -t cgroup2 cgroup2 {target}"]
            else:
                out += [f"mkdir -p {dest}", f"mount -t cgroup2 cgroup2 {dest} || true"]
        elif fstype == "cgroup":
            sub = ",".join(o for o in opts.split(",") if o not in ("rw", "ro"))
            out += [f"mkdir -p {dest}", f"mount -t cgroup -o {shlex.quote(sub)} cgroup {dest} || true"]
    return out


def rootfs_arch(base: Path) -> str:
    r = subprocess.run(["chroot", str(base), "dpkg", "--print-architecture"], capture_output=True, text=True, check=True)
    return r.stdout.strip()
