"""A real Kubernetes control plane on loopback for the tests: etcd, kube-apiserver,
kube-controller-manager and kube-scheduler (built by tests/k8slab/build.sh from the upstream Go
modules), with generated certificates, RBAC + Node authorization, NodeRestriction, the built-in
PodSecurity admission, and working service-account tokens.

    from tests.k8slab.cluster import start_cluster
    c = start_cluster()                       # or the session fixture `k8s_cluster` (tests/conftest.py)
    c.register_node("n1", kernel="6.8.0-45-generic", labels={"eks.amazonaws.com/nodegroup": "ng"})
    c.kubectl("get", "nodes", "-o", "json")
    c.kubeconfig_for("reader", ["readers"])   # a client-cert identity signed by the cluster CA
    c.stop()

Concurrency: every port is a free loopback port picked at start, every file lives under a fresh
temp dir, and each component runs with its own flags only (no ~/.kube, no default ports), so two
test runs at once never share anything.

Nodes are registered through the API as kwok does (there is no kubelet behind them): a Node with a
realistic status.nodeInfo, Ready=True, and a Lease in kube-node-lease that a heartbeat thread renews
every 10 s, so the real node-lifecycle controller keeps them Ready and untainted, the real DaemonSet
controller counts them in desiredNumberScheduled and the real scheduler binds pods to them. (Those
pods stay Pending-bound: nothing runs them. A real kubelet can join with
kubeconfig_for("system:node:NAME", ["system:nodes"]) and serving_cert_for(NAME, ips).)

Teardown: stop() (idempotent), atexit, and a detached reaper process (tests/k8slab/reaper.py) that
kills every component and removes the temp dir when the owning process dies, SIGKILL included,
or after max_lifetime.
"""

from __future__ import annotations

import atexit
import datetime as _dt
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.k8slab import certs  # noqa: E402
from tests.lab import reaper  # noqa: E402

K8S_VERSION = "v1.35.4"
ETCD_VERSION = "v3.6.5"
CACHE = Path(os.environ.get("NODECHECK_LAB_CACHE", "/var/cache/nodecheck-lab"))
BIN_DIR = CACHE / f"k8s-{K8S_VERSION}-etcd-{ETCD_VERSION}" / "bin"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl")
SERVICE_CIDR = "10.96.0.0/16"
START_TIMEOUT = float(os.environ.get("NODECHECK_K8SLAB_TIMEOUT", "180"))
HEARTBEAT_S = 10.0
NODE_GRACE_S = 30
# What the apiserver calls kubelets as (pods/log, exec): bound to system:kubelet-api-admin below.
KUBELET_CLIENT_USER = "kube-apiserver-kubelet-client"


class LabError(RuntimeError):
    pass


class KubectlError(subprocess.CalledProcessError):
    def __str__(self) -> str:  # the default omits stderr, which is the only useful part
        return f"kubectl {' '.join(self.cmd[3:])}: exit {self.returncode}: {(self.stderr or '').strip()[-2000:]}"


def ensure_binaries() -> Path:
    """The binaries, built by build.sh if any is missing (loudly: a failed build is an error)."""
    if all((BIN_DIR / c).is_file() for c in COMPONENTS):
        return BIN_DIR
    r = subprocess.run(["bash", str(HERE / "build.sh")], stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise LabError(f"tests/k8slab/build.sh failed with exit {r.returncode} (its stderr is above)")
    out = Path(r.stdout.strip().splitlines()[-1])
    missing = [c for c in COMPONENTS if not (out / c).is_file()]
    if missing:
        raise LabError(f"build.sh finished but {out} lacks {', '.join(missing)}")
    return out


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rfc3339(t: _dt.datetime | None = None) -> str:
    return (t or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro(t: _dt.datetime | None = None) -> str:
    return (t or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Cluster:
    def __init__(self, workdir: str | os.PathLike | None = None, *, bin_dir: Path | None = None,
                 max_lifetime: float = 4 * 3600.0):
        self.bin_dir = Path(bin_dir or BIN_DIR)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="nodecheck-k8slab-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pki = self.workdir / "pki"
        self.logs = self.workdir / "logs"
        self.kubeconfigs = self.workdir / "kubeconfigs"
        for d in (self.pki, self.logs, self.kubeconfigs):
            d.mkdir(exist_ok=True)
        self.max_lifetime = max_lifetime
        self.apiserver_port = free_port()
        self.etcd_port, self.etcd_peer_port = free_port(), free_port()
        self.cm_port, self.scheduler_port = free_port(), free_port()
        self.server = f"https://127.0.0.1:{self.apiserver_port}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.nodes: dict[str, dict] = {}  # registered fake nodes: name -> the lease they renew
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._reaper: subprocess.Popen | None = None
        self.state_path = self.workdir / "lab-state.json"
        self._stopped = False
        self._certs()

    # -- certificates and kubeconfigs -------------------------------------------------------

    def _certs(self) -> None:
        self.ca = certs.CA.create()
        self.ca_file = self.pki / "ca.crt"
        self.ca_file.write_bytes(self.ca.pem)
        certs.write_pair(self.pki, "apiserver", self.ca.issue(
            "kube-apiserver", server=True, client=False, ips=["127.0.0.1", "10.96.0.1"],
            dns=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local"]))
        certs.write_pair(self.pki, "etcd", self.ca.issue("etcd", server=True, client=True,
                                                          ips=["127.0.0.1"], dns=["localhost"]))
        certs.write_pair(self.pki, "apiserver-etcd-client", self.ca.issue("kube-apiserver-etcd-client"))
        certs.write_pair(self.pki, "apiserver-kubelet-client", self.ca.issue(KUBELET_CLIENT_USER))
        sa_key, sa_pub, self._sa_key = certs.rsa_keypair()
        (self.pki / "sa.key").touch(mode=0o600)
        (self.pki / "sa.key").write_bytes(sa_key)
        (self.pki / "sa.pub").write_bytes(sa_pub)
        self.admin_kubeconfig = self.kubeconfig_for("kubernetes-admin", ["system:masters"], name="admin")
        self._admin_cert = (self.kubeconfigs / "admin.crt", self.kubeconfigs / "admin.key")
        self._cm_kubeconfig = self.kubeconfig_for("system:kube-controller-manager")
        self._sched_kubeconfig = self.kubeconfig_for("system:kube-scheduler")

    def kubeconfig_for(self, user: str, groups=(), *, name: str | None = None,
                       not_after: _dt.datetime | None = None) -> Path:
        """A kubeconfig whose identity is a client cert CN=user, O=groups, signed by the cluster CA."""
        stem = name or "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in user)
        crt, key = certs.write_pair(self.kubeconfigs, stem,
                                    self.ca.issue(user, groups=tuple(groups), not_after=not_after))
        return self.write_kubeconfig(stem, user=stem, auth={"client-certificate": str(crt),
                                                             "client-key": str(key)})

    def kubeconfig_with_token(self, name: str, token: str, *, ca_file: Path | None = None,
                              server: str | None = None) -> Path:
        """A kubeconfig authenticating with a bearer token (e.g. a ServiceAccount's)."""
        return self.write_kubeconfig(name, user=name, auth={"token": token}, ca_file=ca_file, server=server)

    def write_kubeconfig(self, stem: str, *, user: str, auth: dict, ca_file: Path | None = None,
                         server: str | None = None) -> Path:
        doc = {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "k8slab", "cluster": {"server": server or self.server,
                                                        "certificate-authority": str(ca_file or self.ca_file)}}],
            "users": [{"name": user, "user": auth}],
            "contexts": [{"name": f"{user}@k8slab", "context": {"cluster": "k8slab", "user": user}}],
            "current-context": f"{user}@k8slab",
        }
        path = self.kubeconfigs / f"{stem}.kubeconfig"
        path.touch(mode=0o600)
        path.write_text(json.dumps(doc, indent=1))
        return path

    def serving_cert_for(self, name: str, ips=("127.0.0.1",)) -> tuple[Path, Path]:
        """A serving cert for a kubelet named `name` (the apiserver verifies it against the CA)."""
        return certs.write_pair(self.pki, f"kubelet-{name}", self.ca.issue(
            f"system:node:{name}", groups=("system:nodes",), server=True, client=False,
            dns=[name, "localhost"], ips=list(ips)))

    def service_account_token(self, namespace: str, name: str, *, expires_in: int = 3600,
                              audience: str | None = None) -> str:
        """A token signed with the cluster's SA key. expires_in < 0 gives an expired one (the
        TokenRequest API refuses lifetimes under 10 minutes, so an expired token cannot be asked
        for): the apiserver still validates it for real and answers 401."""
        now = int(time.time())
        sa = json.loads(self.kubectl("get", "serviceaccount", "-n", namespace, name, "-o", "json").stdout)
        claims = {
            "iss": "https://kubernetes.default.svc.cluster.local",
            "sub": f"system:serviceaccount:{namespace}:{name}",
            "aud": [audience or "https://kubernetes.default.svc.cluster.local"],
            "iat": now - 7200 if expires_in < 0 else now, "nbf": now - 7200 if expires_in < 0 else now,
            "exp": now + expires_in,
            "kubernetes.io": {"namespace": namespace,
                              "serviceaccount": {"name": name, "uid": sa["metadata"]["uid"]}},
        }
        return certs.sign_jwt(self._sa_key, claims)

    # -- processes ---------------------------------------------------------------------------

    def _flags(self, component: str) -> list[str]:
        p = self.pki
        if component == "etcd":
            d = self.workdir / "etcd"
            return [
                "--name=k8slab", f"--data-dir={d}",
                f"--listen-client-urls=https://127.0.0.1:{self.etcd_port}",
                f"--advertise-client-urls=https://127.0.0.1:{self.etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{self.etcd_peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{self.etcd_peer_port}",
                f"--initial-cluster=k8slab=http://127.0.0.1:{self.etcd_peer_port}",
                f"--cert-file={p}/etcd.crt", f"--key-file={p}/etcd.key",
                "--client-cert-auth", f"--trusted-ca-file={self.ca_file}",
                "--log-level=warn", "--quota-backend-bytes=1073741824", "--unsafe-no-fsync",
            ]
        if component == "kube-apiserver":
            return [
                "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
                f"--secure-port={self.apiserver_port}",
                f"--etcd-servers=https://127.0.0.1:{self.etcd_port}", f"--etcd-cafile={self.ca_file}",
                f"--etcd-certfile={p}/apiserver-etcd-client.crt", f"--etcd-keyfile={p}/apiserver-etcd-client.key",
                f"--tls-cert-file={p}/apiserver.crt", f"--tls-private-key-file={p}/apiserver.key",
                f"--client-ca-file={self.ca_file}",
                "--authorization-mode=Node,RBAC",
                # PodSecurity is on by default; NodeRestriction limits what a kubelet identity may change.
                "--enable-admission-plugins=NodeRestriction",
                # The Coder CVM needs privileged pods: the cluster-wide switch is on, PSA decides per namespace.
                "--allow-privileged=true",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={p}/sa.pub", f"--service-account-signing-key-file={p}/sa.key",
                f"--kubelet-client-certificate={p}/apiserver-kubelet-client.crt",
                f"--kubelet-client-key={p}/apiserver-kubelet-client.key",
                f"--kubelet-certificate-authority={self.ca_file}",
                "--kubelet-preferred-address-types=InternalIP,Hostname",
                "--profiling=false", "--v=1",
            ]
        if component == "kube-controller-manager":
            kc = self._cm_kubeconfig
            return [
                f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
                "--bind-address=127.0.0.1", f"--secure-port={self.cm_port}",
                f"--cert-dir={self.workdir / 'cm-certs'}",
                f"--service-account-private-key-file={p}/sa.key", f"--root-ca-file={self.ca_file}",
                "--use-service-account-credentials=true", "--leader-elect=false",
                # Shorter than the default 50 s so a test can show, in reasonable time, that the
                # heartbeat keeps registered nodes Ready (HEARTBEAT_S is a third of it).
                f"--node-monitor-grace-period={NODE_GRACE_S}s",
                f"--service-cluster-ip-range={SERVICE_CIDR}", "--profiling=false", "--v=1",
            ]
        if component == "kube-scheduler":
            kc = self._sched_kubeconfig
            return [
                f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
                "--bind-address=127.0.0.1", f"--secure-port={self.scheduler_port}",
                f"--cert-dir={self.workdir / 'scheduler-certs'}", "--leader-elect=false",
                "--profiling=false", "--v=1",
            ]
        raise ValueError(component)

    def _spawn(self, component: str) -> subprocess.Popen:
        log = open(self.logs / f"{component}.log", "ab")
        try:
            # Own process group: stop() kills the component and anything it forked.
            p = subprocess.Popen([str(self.bin_dir / component), *self._flags(component)],
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True, cwd=self.workdir)
        finally:
            log.close()
        self.procs[component] = p
        self._save_state()
        return p

    def _save_state(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pids": [p.pid for p in self.procs.values() if p.poll() is None]}))
        os.replace(tmp, self.state_path)

    def _kill(self, component: str, timeout: float = 15.0) -> None:
        p = self.procs.pop(component, None)
        if p is None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        if not self._stopped:
            self._save_state()

    def log_tail(self, component: str, n: int = 3000) -> str:
        try:
            return (self.logs / f"{component}.log").read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def _wait(self, component: str, probe, what: str, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or START_TIMEOUT)
        last = ""
        while time.monotonic() < deadline:
            p = self.procs.get(component)
            if p is not None and p.poll() is not None:
                raise LabError(f"{component} exited {p.returncode} while waiting for {what}; "
                               f"log {self.logs / (component + '.log')}:\n{self.log_tail(component)}")
            try:
                if probe():
                    return
            except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
                last = str(exc)
            time.sleep(0.3)
        raise LabError(f"{component}: no {what} within {timeout or START_TIMEOUT:g}s ({last}); "
                       f"log tail:\n{self.log_tail(component)}")

    # -- a tiny API client (admin identity) --------------------------------------------------

    def _ssl(self, verify: bool = True) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file)) if verify else ssl._create_unverified_context()
        ctx.load_cert_chain(*map(str, self._admin_cert))
        return ctx

    def api(self, method: str, path: str, body=None, *, content_type: str = "application/json",
            timeout: float = 15.0, port: int | None = None, verify: bool = True) -> tuple[int, dict | str]:
        """One request to the apiserver as cluster-admin: (status, decoded JSON or text)."""
        conn = http.client.HTTPSConnection("127.0.0.1", port or self.apiserver_port,
                                           context=self._ssl(verify), timeout=timeout)
        try:
            data = json.dumps(body).encode() if body is not None and not isinstance(body, (bytes, str)) else body
            conn.request(method, path, body=data, headers={"Content-Type": content_type,
                                                           "Accept": "application/json"})
            r = conn.getresponse()
            raw = r.read().decode(errors="replace")
        finally:
            conn.close()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw

    def _ok(self, method: str, path: str, body=None, **kw) -> dict:
        status, doc = self.api(method, path, body, **kw)
        if status >= 300:
            raise LabError(f"{method} {path}: HTTP {status}: {doc if isinstance(doc, str) else doc.get('message')}")
        return doc

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "Cluster":
        for c in COMPONENTS:
            if not (self.bin_dir / c).is_file():
                raise LabError(f"{self.bin_dir / c} missing: run tests/k8slab/build.sh")
        self._save_state()
        # The reaper first: from here on, the components die with this process whatever happens.
        self._reaper = subprocess.Popen(
            [sys.executable, str(HERE / "reaper.py"), str(self.state_path), str(os.getpid()),
             reaper.proc_start(os.getpid()) or "", str(time.time() + self.max_lifetime),
             *([str(self.workdir)] if self._own_workdir else [])],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        atexit.register(self.stop)
        try:
            self._spawn("etcd")
            self._wait("etcd", self._etcd_healthy, "healthy etcd")
            self.start_apiserver()
            self._bootstrap_rbac()
            self._spawn("kube-controller-manager")
            self._spawn("kube-scheduler")
            self._wait("kube-controller-manager", lambda: self._component_healthy(self.cm_port), "/healthz")
            self._wait("kube-scheduler", lambda: self._component_healthy(self.scheduler_port), "/healthz")
            # The service-account controller (controller-manager) made the default SA: tokens work.
            self._wait("kube-controller-manager",
                       lambda: self.api("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
                       "default ServiceAccount")
        except BaseException:
            self.stop()
            raise
        self._heartbeat = threading.Thread(target=self._heartbeat_loop, name="k8slab-heartbeat", daemon=True)
        self._heartbeat.start()
        return self

    def _etcd_healthy(self) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.load_cert_chain(str(self.pki / "apiserver-etcd-client.crt"), str(self.pki / "apiserver-etcd-client.key"))
        conn = http.client.HTTPSConnection("127.0.0.1", self.etcd_port, context=ctx, timeout=5)
        try:
            conn.request("GET", "/health")
            r = conn.getresponse()
            return r.status == 200 and json.loads(r.read()).get("health") == "true"
        finally:
            conn.close()

    def _component_healthy(self, port: int) -> bool:
        # Their serving certs are self-signed in --cert-dir: only liveness is asked here.
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ssl._create_unverified_context(), timeout=5)
        try:
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            return r.status == 200 and r.read().strip() == b"ok"
        finally:
            conn.close()

    def _apiserver_ready(self) -> bool:
        status, body = self.api("GET", "/readyz", timeout=5)
        return status == 200

    def start_apiserver(self, timeout: float | None = None) -> None:
        if "kube-apiserver" in self.procs:
            return
        self._spawn("kube-apiserver")
        self._wait("kube-apiserver", self._apiserver_ready, "/readyz", timeout)
        if "kube-controller-manager" in self.procs:
            # A restart: the controllers' watches reconnect with backoff. Return only once they
            # act again (a new namespace gets its default ServiceAccount), so a test that runs
            # next sees a working cluster, not one still catching up.
            self._restarts = getattr(self, "_restarts", 0) + 1
            ns = f"k8slab-restart-{self._restarts}"
            self._ok("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            self._wait("kube-controller-manager",
                       lambda: self.api("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/default")[0] == 200,
                       "controllers acting again after the apiserver restart", timeout)
            self.api("DELETE", f"/api/v1/namespaces/{ns}")

    def stop_apiserver(self) -> None:
        self._kill("kube-apiserver")

    def restart_apiserver(self) -> None:
        self.stop_apiserver()
        self.start_apiserver()

    def _bootstrap_rbac(self) -> None:
        self.apply({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "nodecheck-k8slab:kube-apiserver-kubelet-client"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "system:kubelet-api-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": KUBELET_CLIENT_USER}],
        })

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self._heartbeat:
            self._heartbeat.join(timeout=HEARTBEAT_S + 20)
        for c in ("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
            self._kill(c)
        for c in list(self.procs):
            self._kill(c)
        try:
            self.state_path.unlink()  # tells the reaper this was a normal stop
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
        if self._own_workdir and not os.environ.get("NODECHECK_K8SLAB_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- kubectl and objects -----------------------------------------------------------------

    def kubectl(self, *args: str, kubeconfig: str | os.PathLike | None = None, input: str | None = None,
                check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess:
        cmd = [str(self.bin_dir / "kubectl"), f"--kubeconfig={kubeconfig or self.admin_kubeconfig}", *args]
        # A clean environment for kubectl's own lookups: no user ~/.kube cache shared between runs.
        env = {**os.environ, "HOME": str(self.workdir), "KUBECONFIG": ""}
        r = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=env, timeout=timeout)
        if check and r.returncode != 0:
            raise KubectlError(r.returncode, cmd, r.stdout, r.stderr)
        return r

    def apply(self, *docs: dict) -> None:
        """Server-side apply as the admin (idempotent)."""
        text = "\n---\n".join(json.dumps(d) for d in docs)
        self.kubectl("apply", "--server-side", "--field-manager=k8slab", "-f", "-", input=text)

    def create_namespace(self, name: str, labels: dict | None = None, timeout: float | None = None) -> None:
        """A namespace (labels e.g. pod-security.kubernetes.io/enforce=restricted), returned once its
        default ServiceAccount exists, so pods can be created in it right away."""
        self.apply({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": name, "labels": labels or {}}})
        self._wait("kube-controller-manager",
                   lambda: self.api("GET", f"/api/v1/namespaces/{name}/serviceaccounts/default")[0] == 200,
                   f"default ServiceAccount in {name}", timeout)

    # -- nodes (kwok-like) -------------------------------------------------------------------

    def register_node(self, name: str, *, kubelet_version: str = K8S_VERSION,
                      container_runtime: str = "containerd://2.1.4", kernel: str = "6.8.0-45-generic",
                      os_image: str = "Ubuntu 24.04.1 LTS", arch: str = "amd64", internal_ip: str | None = None,
                      labels: dict | None = None, provider_id: str | None = None, capacity: dict | None = None,
                      taints: list | None = None, annotations: dict | None = None) -> dict:
        """Create a Node through the API with a realistic status, kept Ready by the heartbeat."""
        meta_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
                       "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": arch, **(labels or {})}
        spec: dict = {}
        if provider_id:
            spec["providerID"] = provider_id
        if taints:
            spec["taints"] = taints
        self._ok("POST", "/api/v1/nodes", {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": meta_labels, "annotations": annotations or {}},
            "spec": spec,
        })
        cap = {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi", **(capacity or {})}
        now = _rfc3339()
        conditions = [{"type": t, "status": "False", "reason": r, "message": m, "lastHeartbeatTime": now,
                       "lastTransitionTime": now}
                      for t, r, m in (("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                                      ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                                      ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"))]
        conditions.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                           "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
                           "lastTransitionTime": now})
        addresses = ([{"type": "InternalIP", "address": internal_ip}] if internal_ip else []) + \
                    [{"type": "Hostname", "address": name}]
        status = {
            "capacity": cap, "allocatable": cap, "conditions": conditions, "addresses": addresses,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, name).hex, "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
                "bootID": str(uuid.uuid4()), "kernelVersion": kernel, "osImage": os_image,
                "containerRuntimeVersion": container_runtime, "kubeletVersion": kubelet_version,
                "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": arch,
            },
        }
        node = self._ok("PATCH", f"/api/v1/nodes/{name}/status", {"status": status},
                        content_type="application/merge-patch+json")
        self._ok("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name,
                                                            "uid": node["metadata"]["uid"]}]},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": _micro()},
        })
        with self._lock:
            self.nodes[name] = {"uid": node["metadata"]["uid"]}
        return node

    def register_node_for_host(self, host, **kw) -> dict:
        """A Node for a fleet-lab / ansible-lab host: same name, and its address as InternalIP, so
        SSH preflight results and Nodes match. Takes anything with `.name` and `.ip`; a fleet-lab
        profile's os-release and kernel fill nodeInfo unless given."""
        profile = getattr(getattr(host, "spec", None), "profile", None)
        if profile:
            from tests import lab as lablib
            prof = lablib.PROFILES.get(profile) or {}
            if "osrelease" in prof:
                kw.setdefault("kernel", prof["osrelease"])
            for line in prof.get("os-release", "").splitlines():
                if line.startswith("PRETTY_NAME="):
                    kw.setdefault("os_image", line.split("=", 1)[1].strip('"'))
        return self.register_node(host.name, internal_ip=host.ip, **kw)

    def delete_node(self, name: str) -> None:
        with self._lock:
            self.nodes.pop(name, None)
        status, doc = self.api("DELETE", f"/api/v1/nodes/{name}")
        if status not in (200, 202, 404):
            raise LabError(f"DELETE node {name}: HTTP {status}: {doc}")
        self.api("DELETE", f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}")

    def _heartbeat_loop(self) -> None:
        # What a kubelet does for its node: renew the Lease. The node-lifecycle controller reads
        # the Lease as the heartbeat, so Ready=True stands and no unreachable taint is added.
        while not self._stopping.wait(HEARTBEAT_S):
            with self._lock:
                names = list(self.nodes)
            for name in names:
                try:
                    self.api("PATCH", f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}",
                             {"spec": {"renewTime": _micro()}}, content_type="application/merge-patch+json",
                             timeout=5)
                except (OSError, http.client.HTTPException, ssl.SSLError):
                    pass  # the apiserver is stopped on purpose by a fault test; the next beat renews


def start_cluster(workdir: str | os.PathLike | None = None, **kw) -> Cluster:
    """Build the binaries if missing, start a control plane, return it (call .stop())."""
    bin_dir = ensure_binaries()
    return Cluster(workdir, bin_dir=bin_dir, **kw).start()
