"""A real kubelet node on this machine, joined to the control-plane lab (tests/k8slab/cluster.py).

    from tests.k8slab.node import start_real_node
    node = start_real_node(cluster, "nodecheck-lab-node")   # or the session fixture `k8s_real_node`
    ...                                                      # pods scheduled to it really run
    node.stop()

What runs (all real, nothing stood in):
- **containerd** (Debian's) with its own root, state, socket, runc root and CNI config under the node's
  temp dir, so it never touches a system containerd; CRI with **runc** (Debian's) and the **CNI** bridge,
  host-local and loopback plugins (Debian's containernetworking-plugins) on a bridge of its own.
- the images of tests/k8slab/images.py (pause from Kubernetes' pause.c, nodecheck from the project's
  Dockerfile), imported with `ctr images import`: there is no registry.
- **kubelet** built with the control plane (same k8s.io/kubernetes version), with its own root dir, a client
  certificate `system:node:NAME` in `system:nodes` (so the Node authorizer and NodeRestriction apply to
  it) and a serving certificate signed by the cluster CA (the apiserver verifies it, and `pods/log`, exec
  etc. work through the API).

What this machine needs, and why, is in the comments of kubelet_config() and containerd_config().
Everything is torn down by stop(): kubelet and containerd (process groups), pod cgroups, mounts, the
bridge, and the temp dir; a reaper (tests/lab/reaper.py) kills the processes if the test process dies.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.k8slab import images as imagelib  # noqa: E402
from tests.lab import reaper  # noqa: E402

CNI_BIN = Path("/usr/lib/cni")          # Debian's containernetworking-plugins
RUNC = "/usr/sbin/runc"                 # Debian's runc
READY_TIMEOUT = float(os.environ.get("NODECHECK_K8SNODE_TIMEOUT", "180"))
# The host sysctls kubelet insists on (pkg/kubelet/cm setupKernelTunables) and the value it wants.
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": 1, "vm/panic_on_oom": 0, "kernel/panic": 10, "kernel/panic_on_oops": 1,
    "kernel/keys/root_maxkeys": 1000000, "kernel/keys/root_maxbytes": 25000000,
}
CGROUP_V1 = Path("/sys/fs/cgroup")


class NodeError(RuntimeError):
    pass


# -- configuration (pure functions of their arguments) ----------------------------------------------


def containerd_config(d: Path, sandbox_image: str, restrict_oom_score_adj: bool = False) -> str:
    """containerd 1.6 config (version 2) rooted entirely under d."""
    return f"""version = 2
root = "{d}/root"
state = "{d}/state"
# Plugins that would look outside our dirs (/opt/containerd) or need absent kernels/tools.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  # Our own pause image, imported (no registry to pull registry.k8s.io/pause from).
  sandbox_image = "{sandbox_image}"
  # A random loopback port: the default 10010 could be taken by another containerd.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # True where root lacks CAP_SYS_RESOURCE (the development sandbox: CapEff without bit 24). The CRI gives
  # the pause container oom_score_adj -998, lowering needs that capability, and runc then fails every
  # sandbox with "nsexec: failed to update /proc/self/oom_score_adj: Permission denied". Restricted,
  # containerd clamps scores to its own (0), as it does for rootless runs; pod containers are unaffected
  # (their scores are >= 2).
  restrict_oom_score_adj = {str(restrict_oom_score_adj).lower()}
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{RUNC}"
        Root = "{d}/runc"
        # cgroupfs, as the kubelet (kubelet_config): there is no systemd on the lab machines to ask.
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{d}/cni/net.d"
    max_conf_num = 1
"""


def cni_conflist(bridge: str, subnet: str, ipam_dir: Path) -> str:
    """A bridge network of our own (bridge name and subnet unique per node), host-local IPAM kept under
    the node's dir, no masquerading (the pods need no traffic beyond the node)."""
    return json.dumps({
        "cniVersion": "1.0.0", "name": "nodecheck-lab",
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False, "hairpinMode": False,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]], "dataDir": str(ipam_dir)}},
            {"type": "loopback"},
        ],
    }, indent=1)


def kubelet_config(*, d: Path, socket: Path, ca_file: Path, tls: tuple[Path, Path], node_ip: str, port: int,
                   healthz_port: int, cgroup_root: str, cgroup_v1: bool) -> dict:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "containerRuntimeEndpoint": f"unix://{socket}",
        # The node's own address on the lab bridge only (see _start), a free port (the lab may run where
        # something holds 10250), no read-only port.
        "address": node_ip, "port": port, "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1", "healthzPort": healthz_port,
        "tlsCertFile": str(tls[0]), "tlsPrivateKeyFile": str(tls[1]),
        "rotateCertificates": False, "serverTLSBootstrap": False,
        # Callers authenticate with a CA-signed cert and are authorized by the apiserver (SubjectAccessReview):
        # the apiserver's kubelet-client identity is bound to system:kubelet-api-admin by the cluster lab.
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(ca_file)}},
        "authorization": {"mode": "Webhook"},
        # No systemd as PID 1 on the lab machines (this one runs a sandbox supervisor as PID 1), so the
        # cgroupfs driver; containerd is configured the same way (SystemdCgroup = false).
        "cgroupDriver": "cgroupfs",
        # A cgroup parent of our own instead of /: a second lab node (or a real kubelet) never shares
        # /kubepods with this one, and stop() can remove everything the node created.
        "cgroupRoot": cgroup_root, "cgroupsPerQOS": True, "enforceNodeAllocatable": ["pods"],
        # kubelet 1.35 refuses to start on cgroup v1 unless told otherwise (KEP-5573). This machine mounts
        # the v1 hierarchies (cpu, memory, pids, ... with an empty v2 "unified" tree): that is what we have.
        **({"failCgroupV1": False} if cgroup_v1 else {}),
        # Swap: the dev machine has none, CI machines may; the node's pods are tiny.
        "failSwapOn": False,
        # The images were imported by us and cannot be pulled again: never garbage-collect them, and do
        # not evict the scan pod because other work fills the shared disk (defaults: 10%/15% free).
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
        "mergeDefaultEvictionSettings": False,
        # Leave the host's iptables alone: no pod needs kubelet's canary/hint chains here (no kube-proxy).
        "makeIPTablesUtilChains": False,
        "podLogsDir": str(d / "pod-logs"),
        "maxPods": 20, "registerNode": True,
        "clusterDomain": "cluster.local", "clusterDNS": [],
        "resolvConf": "/etc/resolv.conf",
        "volumeStatsAggPeriod": "0s",
        "serializeImagePulls": False,
    }


def bridge_name(name: str, token: str) -> str:
    return f"ncl{token[:8]}"[:15]   # IFNAMSIZ - 1


# -- the running node ---------------------------------------------------------------------------------


@dataclass
class RealNode:
    name: str
    cluster: object
    workdir: Path
    socket: Path
    kubelet_port: int
    bridge: str
    subnet: str
    node_ip: str
    cgroup_root: str
    images: list
    kubeconfig: Path | None = None      # the kubelet's own credential (system:node:NAME)
    procs: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    _mounts: list = field(default_factory=list)
    _kubelet_argv: list = field(default_factory=list)
    _reaper: subprocess.Popen | None = None
    _stopped: bool = False

    # -- helpers for tests ----------------------------------------------------------------------------

    def ctr(self, *args: str, check: bool = True, timeout: float = 120.0) -> subprocess.CompletedProcess:
        """ctr against this node's containerd, namespace k8s.io (the CRI's)."""
        r = subprocess.run(["ctr", "--address", str(self.socket), "-n", "k8s.io", *args],
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode:
            raise NodeError(f"ctr {' '.join(args)}: {r.stderr.strip()}")
        return r

    def node_object(self) -> dict:
        return json.loads(self.cluster.kubectl("get", "node", self.name, "-o", "json").stdout)

    def ready(self) -> bool:
        r = self.cluster.kubectl("get", "node", self.name, "-o", "json", check=False)
        if r.returncode:
            return False
        conds = json.loads(r.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for comp in ("containerd", "kubelet"):
                p = self.procs.get(comp)
                if p and p.poll() is not None:
                    raise NodeError(f"{comp} exited with {p.returncode}: {self.log_tail(comp)}")
            if self.ready():
                return
            time.sleep(1)
        raise NodeError(f"node {self.name} not Ready after {timeout:.0f}s: {self.log_tail('kubelet')}")

    def log_tail(self, comp: str, n: int = 3000) -> str:
        try:
            return (self.workdir / "logs" / f"{comp}.log").read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    def kill_container_of(self, namespace: str, pod: str, container: str, sig: str = "SIGKILL") -> None:
        """Kill a pod's container process on the node (a fault test: "the pod was killed mid-scan")."""
        doc = json.loads(self.cluster.kubectl("get", "pod", "-n", namespace, pod, "-o", "json").stdout)
        statuses = doc["status"].get("initContainerStatuses", []) + doc["status"].get("containerStatuses", [])
        cid = next(s["containerID"] for s in statuses if s["name"] == container and s.get("containerID"))
        self.ctr("tasks", "kill", "--signal", sig, cid.split("://", 1)[1])

    def stop_kubelet(self) -> None:
        """Stop the kubelet only (the node goes NotReady after the grace period; pods keep running)."""
        _kill_group(self.procs.pop("kubelet", None))
        self._save_state()

    def start_kubelet(self) -> None:
        if "kubelet" not in self.procs:
            self._spawn("kubelet", self._kubelet_argv)

    # -- process management ---------------------------------------------------------------------------

    def _spawn(self, comp: str, argv: list[str]) -> subprocess.Popen:
        with open(self.workdir / "logs" / f"{comp}.log", "ab") as log:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True, cwd=self.workdir)
        self.procs[comp] = p
        self._save_state()
        return p

    def _save_state(self) -> None:
        state = self.workdir / "node-state.json"
        tmp = state.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pids": [p.pid for p in self.procs.values() if p.poll() is None],
                                   "bridge": self.bridge}))
        os.replace(tmp, state)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        # Pods first, while kubelet and containerd still run: removing the sandboxes through the CRI lets
        # CNI release the addresses and containerd unmount the rootfs and netns.
        try:
            self._remove_pods()
        except Exception as e:  # noqa: BLE001 - teardown goes on; the log says why
            print(f"k8s node: removing pods failed: {e}", file=sys.stderr)
        _kill_group(self.procs.pop("kubelet", None))
        _kill_group(self.procs.pop("containerd", None))
        for p in list(self.procs.values()):
            _kill_group(p)
        self.procs.clear()
        self._kill_leftover_shims()
        for m in reversed(self._mounts):
            subprocess.run(["umount", "-R", "-l", str(m)], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        _remove_cgroups(self.cgroup_root)
        try:
            (self.workdir / "node-state.json").unlink()   # tells the reaper this was a normal stop
        except OSError:
            pass
        if self._reaper:
            try:
                self._reaper.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._reaper.kill()
                self._reaper.wait()
        try:
            atexit.unregister(self.stop)
        except Exception:  # noqa: BLE001
            pass
        try:
            self.cluster.delete_node(self.name)
        except Exception:  # noqa: BLE001 - the control plane may already be gone
            pass
        if not os.environ.get("NODECHECK_K8SLAB_KEEP"):
            _unmount_under(self.workdir)
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _remove_pods(self) -> None:
        if self.procs.get("containerd") is None or self.procs["containerd"].poll() is not None:
            return
        r = self.ctr("containers", "list", "-q", check=False)
        for cid in r.stdout.split():
            self.ctr("tasks", "kill", "--signal", "SIGKILL", cid, check=False)
        if "kubelet" in self.procs:
            # The API way first, so the kubelet tears sandboxes down through CNI.
            self.cluster.kubectl("delete", "pods", "--all-namespaces", "--field-selector",
                                 f"spec.nodeName={self.name}", "--grace-period=0", "--force",
                                 "--wait=false", check=False)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.ctr("containers", "list", "-q", check=False).stdout.strip():
                time.sleep(1)

    def _kill_leftover_shims(self) -> None:
        # A shim outlives containerd by design; ours are those whose command line names our socket.
        me = str(self.socket)
        for pid_dir in Path("/proc").iterdir():
            if not pid_dir.name.isdigit():
                continue
            try:
                cmd = (pid_dir / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"containerd-shim-runc-v2") and me.encode() in cmd:
                try:
                    os.kill(int(pid_dir.name), signal.SIGKILL)
                except OSError:
                    pass


def _kill_group(p: subprocess.Popen | None, timeout: float = 15.0) -> None:
    if p is None or p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    except ProcessLookupError:
        pass


def _cgroup_hierarchies() -> list[Path]:
    """Mounted cgroup v1 hierarchies (and the unified one) where kubelet creates its tree."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fstype = right.split()[0] if right else ""
        if fstype in ("cgroup", "cgroup2"):
            out.append(Path(left.split()[4]))
    return out


def _remove_cgroups(cgroup_root: str) -> None:
    # Bottom-up rmdir: a cgroup directory goes away only empty of children (files are virtual).
    for h in _cgroup_hierarchies():
        top = h / cgroup_root.lstrip("/")
        if not top.is_dir():
            continue
        for dirpath, dirnames, _ in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


def _unmount_under(d: Path) -> None:
    prefix = str(d.resolve()) + "/"
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for m in sorted((m for m in mounts if (m + "/").startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)


def _owner_alive(workdir: Path) -> bool:
    try:
        owner = json.loads((workdir / "owner.json").read_text())
    except (OSError, ValueError):
        return False
    return reaper.proc_start(owner["pid"]) == owner["start"]


def sweep_stale(tmp: Path | None = None) -> list[Path]:
    """Remove what a node whose test process died (SIGKILL, a timeout) left behind: the reaper already
    killed its kubelet and containerd and deleted its bridge; its root-dir mount, pod cgroups and temp dir
    stay until the next start_real_node() sweeps them here. Nodes of live processes are left alone."""
    out = []
    for d in Path(tmp or tempfile.gettempdir()).glob("nodecheck-k8snode-*"):
        try:
            young = time.time() - d.stat().st_mtime < 60   # owner.json may not be written yet
        except OSError:
            continue
        if not d.is_dir() or _owner_alive(d) or (young and not (d / "owner.json").exists()):
            continue
        try:
            cfg = json.loads((d / "kubelet-config.json").read_text())
        except (OSError, ValueError):
            cfg = {}
        _unmount_under(d)
        if cfg.get("cgroupRoot", "").startswith("/nodecheck-lab-"):
            _remove_cgroups(cfg["cgroupRoot"])
        shutil.rmtree(d, ignore_errors=True)
        out.append(d)
    return out


def has_cap_sys_resource() -> bool:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 24 & 1)   # CAP_SYS_RESOURCE = 24
    return False


def cgroup_v1() -> bool:
    return not (CGROUP_V1 / "cgroup.controllers").exists()


def preflight() -> str | None:
    """Why a real node cannot start here, or None."""
    if os.geteuid() != 0:
        return "needs root (containerd, mounts, cgroups, a bridge)"
    for tool in ("containerd", "containerd-shim-runc-v2", "ctr", "unshare", "ip", "buildah", "gcc",
                 "debootstrap"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is not installed (tests/setup-system.sh installs it)"
    for f in (Path(RUNC), CNI_BIN / "bridge", CNI_BIN / "host-local", CNI_BIN / "loopback"):
        if not f.exists():
            return f"{f} is missing (tests/setup-system.sh installs runc and containernetworking-plugins)"
    return None


def _subnet(token: str) -> str:
    # 10.200-239.x.0/24 from the token: concurrent nodes (other runs) practically never collide.
    n = int(token[:6], 16)
    return f"10.{200 + n % 40}.{(n >> 8) % 256}.0/24"


def start_real_node(cluster, name: str = "nodecheck-lab-node", *, image_list=None) -> RealNode:
    """Build/import the images, start containerd and a kubelet joined to `cluster`; return once the Node is
    Ready. Raises NodeError with the component's log tail when something does not come up."""
    why = preflight()
    if why:
        raise NodeError(why)
    t0 = time.monotonic()
    sweep_stale()
    imgs = image_list if image_list is not None else imagelib.all_images()
    t_images = time.monotonic() - t0
    token = secrets.token_hex(8)
    workdir = Path(tempfile.mkdtemp(prefix=f"nodecheck-k8snode-{token[:6]}-"))
    for sub in ("logs", "containerd/cni/net.d", "containerd/cni/ipam", "kubelet", "pod-logs", "sysctl", "pki"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    node = RealNode(
        name=name, cluster=cluster, workdir=workdir, socket=workdir / "containerd" / "containerd.sock",
        kubelet_port=_free_port(), bridge=bridge_name(name, token), subnet=_subnet(token),
        node_ip=_subnet(token).rsplit(".", 1)[0] + ".1",
        cgroup_root=f"/nodecheck-lab-{token[:8]}", images=imgs,
    )
    node.timings["images_s"] = round(t_images, 1)
    (workdir / "owner.json").write_text(json.dumps({"pid": os.getpid(), "start": reaper.proc_start(os.getpid())}))
    node._save_state()
    node._reaper = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "lab" / "reaper.py"), str(workdir / "node-state.json"),
         str(os.getpid()), reaper.proc_start(os.getpid()) or "", str(time.time() + 4 * 3600)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    atexit.register(node.stop)
    try:
        _start(node, cluster)
    except BaseException:
        node.stop()
        raise
    node.timings["start_total_s"] = round(time.monotonic() - t0, 1)
    return node


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(node: RealNode, cluster) -> None:
    d = node.workdir
    pause = next(i for i in node.images if "pause" in i.ref)
    t = time.monotonic()
    (d / "containerd" / "config.toml").write_text(
        containerd_config(d / "containerd", pause.ref, restrict_oom_score_adj=not has_cap_sys_resource()))
    (d / "containerd" / "cni" / "net.d" / "10-nodecheck-lab.conflist").write_text(
        cni_conflist(node.bridge, node.subnet, d / "containerd" / "cni" / "ipam"))
    node._spawn("containerd", ["containerd", "--config", str(d / "containerd" / "config.toml"),
                               "--log-level", "info"])
    deadline = time.monotonic() + 60
    while not node.ctr("version", check=False).returncode == 0:
        if node.procs["containerd"].poll() is not None or time.monotonic() > deadline:
            raise NodeError(f"containerd did not start: {node.log_tail('containerd')}")
        time.sleep(0.3)
    node.timings["containerd_s"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    for img in node.images:
        node.ctr("images", "import", str(img.archive), timeout=600)
    node.timings["import_s"] = round(time.monotonic() - t, 1)

    # The node's InternalIP: kubelet refuses a loopback node IP (kubelet_node_status.go validateNodeIP), so
    # the node gets the gateway address of its own pod bridge, made here before CNI sees it (the bridge
    # plugin adopts an existing bridge of that name and finds its gateway address already set). Local
    # addresses are reachable from the host (the apiserver) whatever the bridge's carrier state.
    subprocess.run(["ip", "link", "add", node.bridge, "type", "bridge"], check=True, capture_output=True)
    prefix = node.subnet.split("/")[1]
    subprocess.run(["ip", "addr", "add", f"{node.node_ip}/{prefix}", "dev", node.bridge], check=True)
    subprocess.run(["ip", "link", "set", node.bridge, "up"], check=True)
    # The kubelet's credentials: a client cert as the node (Node authorizer + NodeRestriction apply) and a
    # serving cert for its InternalIP, which the apiserver checks against the cluster CA.
    kubeconfig = node.kubeconfig = cluster.kubeconfig_for(f"system:node:{node.name}", ["system:nodes"])
    tls = cluster.serving_cert_for(node.name, ips=(node.node_ip,))
    # Pre-create our cgroup parent in every hierarchy: kubelet's cgroupfs driver requires it to exist.
    for h in _cgroup_hierarchies():
        top = h / node.cgroup_root.lstrip("/")
        try:
            top.mkdir(exist_ok=True)
            # A new v1 cpuset cgroup starts with no CPUs and no memory nodes (no task could join it):
            # give it its parent's, as the kernel would with cgroup.clone_children.
            for f in ("cpuset.cpus", "cpuset.mems"):
                if (h / f).exists() and not (top / f).read_text().strip():
                    (top / f).write_text((h / f).read_text())
        except OSError:
            pass
    cfg = kubelet_config(d=d, socket=node.socket, ca_file=cluster.ca_file, tls=tls, node_ip=node.node_ip,
                         port=node.kubelet_port,
                         healthz_port=_free_port(), cgroup_root=node.cgroup_root, cgroup_v1=cgroup_v1())
    (d / "kubelet-config.json").write_text(json.dumps(cfg, indent=1))
    # kubelet mounts pod volumes (emptyDir tmpfs, ...) under its root dir and containerd, in the host's
    # mount namespace, must see them: the root dir is a shared mount, and kubelet runs in a mount namespace
    # of its own that keeps that propagation (see _kubelet_sysctl_guard for why it has its own namespace).
    root_dir = d / "kubelet"
    subprocess.run(["mount", "--bind", str(root_dir), str(root_dir)], check=True)
    node._mounts.append(root_dir)
    subprocess.run(["mount", "--make-shared", str(root_dir)], check=True)
    for key, want in KUBELET_SYSCTLS.items():
        (d / "sysctl" / key.replace("/", "_")).write_text(f"{want}\n")
    kubelet = str(cluster.bin_dir / "kubelet")
    node._kubelet_argv = [
        "unshare", "--mount", "--propagation", "unchanged", "--",
        "sh", str(HERE / "kubelet-ns.sh"), str(d / "sysctl"),
        kubelet, f"--config={d / 'kubelet-config.json'}", f"--kubeconfig={kubeconfig}",
        f"--root-dir={root_dir}", f"--hostname-override={node.name}", f"--node-ip={node.node_ip}",
        f"--cert-dir={d / 'pki'}", "--v=2",
    ]
    t = time.monotonic()
    node._spawn("kubelet", node._kubelet_argv)
    node.wait_ready()
    node.timings["kubelet_ready_s"] = round(time.monotonic() - t, 1)
