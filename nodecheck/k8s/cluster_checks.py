"""The cluster-level requirements of Coder's CVM docs, checked against a live API server.

Each check is a pure function of API JSON (so it is tested on what a real apiserver returns)
plus `run`, which makes the calls. Nothing is created: the CVM pod goes through a server-side
dry-run (`?dryRun=All`), which runs authentication, RBAC, PodSecurity admission and every
validating/mutating webhook, and persists nothing.

  cluster.kubernetes-version  the server's version vs the docs' minimum (and the installer's list)
  cluster.pod-admission       would a CVM supervisor pod (privileged + the docs' hostPaths) be admitted
  cluster.sidecar-injector    a cluster-wide proxy injector (Istio, Linkerd) that Coder does not support
  cluster.runtime-class       the sysbox-runc RuntimeClass: present, right handler, nodes labelled running
  cluster.gpu                 GPU nodes on a managed cloud's VMs (GPU CVMs are bare-metal only)

An identity that may not make a call gets `unknown` for that check with the server's sentence
(never a guess); an API that cannot be reached at all is an ApiError for the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..checks import FAIL, PASS, UNKNOWN, WARN, Finding, worst
from .client import FORBIDDEN, NOT_FOUND, ApiError, Connection, list_all
from .nodes import parse_node
from .requirements import HostPathRow, Requirements

CVM_CONTAINER = "cvm-supervisor"
DEFAULT_CVM_IMAGE = "docker.io/codercom/enterprise-base:ubuntu"


# --- pure checks -----------------------------------------------------------------------------

def kubernetes_version(version_doc: dict, req: Requirements, release) -> Finding:
    cid = "cluster.kubernetes-version"
    git = str(version_doc.get("gitVersion") or "")
    m = re.match(r"v?(\d+)\.(\d+)", git)
    if not m:
        return Finding(cid, UNKNOWN, f"the API server's /version has no usable gitVersion ({git!r})",
                       source=req.min_version_source)
    have = (int(m.group(1)), int(m.group(2)))
    need = tuple(int(x) for x in req.min_version.split("."))
    minor = f"{have[0]}.{have[1]}"
    if have < need:
        return Finding(cid, FAIL, f"Kubernetes {git} is below {req.min_version}, the minimum the Coder CVM docs state",
                       f"Upgrade the cluster to Kubernetes >= {req.min_version}.", req.min_version_source)
    minors = release.kubernetes.minors
    if minors and minor not in minors:
        return Finding(cid, WARN, f"Kubernetes {git} meets the docs' minimum {req.min_version}, but {minor} is not in "
                       f"Sysbox {release.version}'s installer list ({', '.join(minors)}); the installer checks each "
                       "node's kubelet (kubernetes.version per node)",
                       "Pick a Sysbox release whose installer accepts this minor (`nodecheck matrix list`).",
                       release.kubernetes.source)
    return Finding(cid, PASS, f"Kubernetes {git} >= {req.min_version} (Coder CVM docs)"
                   + (f"; {minor} is accepted by Sysbox {release.version}'s installer" if minors else ""),
                   source=req.min_version_source)


def cvm_pod(namespace: str, row: HostPathRow, req: Requirements, image: str = DEFAULT_CVM_IMAGE) -> dict:
    """A pod shaped like Coder's CVM supervisor: privileged, with the host paths of the docs'
    table for the chosen Caching / shiftfs auto-load setting. Only ever sent with dryRun=All."""
    mounts, volumes = [], []
    for path, mode in row.mounts:
        name = "host" + path.replace("/", "-")
        volumes.append({"name": name, "hostPath": {"path": path, "type": "Directory"}})
        mounts.append({"name": name, "mountPath": path, "readOnly": mode == "ro"})
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "nodecheck-cvm-dry-run-", "namespace": namespace,
                     "labels": {"app.kubernetes.io/name": "nodecheck", "app.kubernetes.io/component": "cvm-dry-run"}},
        "spec": {
            "automountServiceAccountToken": False,
            "containers": [{"name": CVM_CONTAINER, "image": image,
                            "securityContext": {"privileged": req.cvm_privileged}, "volumeMounts": mounts}],
            "volumes": volumes,
        },
    }


@dataclass
class Admission:
    """The apiserver's answer to the dry-run create."""

    allowed: bool | None  # None: the identity could not ask (RBAC), or the namespace is missing
    pod: dict | None = None  # the pod as admitted (after mutating webhooks)
    error: str = ""  # the server's message when refused
    kind: str = ""  # rbac | missing-namespace | refused


def classify_refusal(exc: ApiError) -> Admission:
    text = exc.detail or exc.message
    if exc.kind == FORBIDDEN and "cannot create resource" in text:
        return Admission(None, error=text, kind="rbac")
    if exc.kind == NOT_FOUND:
        return Admission(None, error=text, kind="missing-namespace")
    return Admission(False, error=text, kind="refused")


def pod_admission(adm: Admission, namespace: str, row: HostPathRow, req: Requirements) -> Finding:
    cid = "cluster.pod-admission"
    shape = f"a privileged pod with hostPaths {', '.join(f'{p} ({m})' for p, m in row.mounts)} ({row.label()})"
    if adm.kind == "rbac":
        return Finding(cid, UNKNOWN, f"cannot test {shape} in namespace {namespace!r}: this identity may not create "
                       f"pods there ({adm.error})",
                       f"Run with an identity that may create pods in {namespace} (a dry-run creates nothing), "
                       "e.g. the one Coder's provisioner uses.", req.cvm_source)
    if adm.kind == "missing-namespace":
        return Finding(cid, FAIL, f"namespace {namespace!r} does not exist ({adm.error})",
                       "Create the workspace namespace first, or pass the right one with --workspace-namespace.",
                       req.cvm_source)
    if adm.allowed:
        return Finding(cid, PASS, f"namespace {namespace!r} admits {shape} (server-side dry-run: PodSecurity and "
                       "admission webhooks passed; nothing was created)", source=req.cvm_source)
    return Finding(cid, FAIL, f"namespace {namespace!r} refuses {shape}: {adm.error}",
                   f"Allow privileged pods and hostPath mounts in {namespace}: label it "
                   "pod-security.kubernetes.io/enforce=privileged, and exempt it from any policy webhook named above.",
                   req.cvm_source)


@dataclass(frozen=True)
class Injector:
    product: str
    configuration: str
    webhook: str


def find_injectors(webhook_configs: list[dict], req: Requirements) -> list[Injector]:
    out = []
    for cfg in webhook_configs:
        cname = str((cfg.get("metadata") or {}).get("name") or "?")
        for wh in cfg.get("webhooks") or []:
            wname = str(wh.get("name") or "")
            for inj in req.sidecar_injectors:
                if any(wname.endswith(sfx) for sfx in inj.webhook_name_suffixes):
                    out.append(Injector(inj.product, cname, wname))
    return out


def sidecar_injector(injectors: list[Injector] | None, adm: Admission | None, req: Requirements,
                     forbidden: str = "") -> Finding:
    cid = "cluster.sidecar-injector"
    src = req.sidecar_injectors[0].source
    injected = []
    if adm is not None and adm.pod:
        spec = adm.pod.get("spec") or {}
        injected = [c.get("name") for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
                    if c.get("name") != CVM_CONTAINER]
    if injectors is None and not injected:
        return Finding(cid, UNKNOWN, f"cannot list mutating webhooks: {forbidden}",
                       "Grant list on mutatingwebhookconfigurations (admissionregistration.k8s.io), or check by hand: "
                       "kubectl get mutatingwebhookconfigurations", src)
    if injectors or injected:
        found = "; ".join(f"{i.product} (MutatingWebhookConfiguration {i.configuration}, webhook {i.webhook})"
                          for i in injectors or [])
        extra = (f"; the dry-run CVM pod came back with injected containers: {', '.join(injected)}" if injected else "")
        return Finding(cid, WARN, f"a cluster-wide sidecar injector is installed: {found or 'unnamed'}{extra}. "
                       "Coder does not support legacy cluster-wide proxies such as Istio with CVMs",
                       "Disable injection for the workspace namespace (e.g. label it istio-injection=disabled) "
                       "and check that the CVM pod comes back without a proxy container.", src)
    return Finding(cid, PASS, "no sidecar-injector mutating webhook (Istio, Linkerd)"
                   + ("; the dry-run CVM pod came back unmodified" if adm is not None and adm.pod else ""),
                   source=src)


def runtime_class(rc: dict | None, nodes: list[dict] | None, req: Requirements, forbidden: str = "") -> Finding:
    cid = "cluster.runtime-class"
    name, src = req.runtime_class, req.runtime_class_source
    if forbidden:
        return Finding(cid, UNKNOWN, f"cannot read RuntimeClass {name}: {forbidden}",
                       "Grant get on runtimeclasses (node.k8s.io) and list on nodes.", src)
    if rc is None:
        return Finding(cid, WARN, f"RuntimeClass {name} is not installed yet (sysbox-deploy-k8s creates it; "
                       f"workspaces with runtimeClassName {name} cannot start until then)",
                       "Install Sysbox on the nodes (`nodecheck install`, or the sysbox-deploy-k8s DaemonSet).", src)
    handler = rc.get("handler")
    if handler != req.runtime_class_handler:
        return Finding(cid, FAIL, f"RuntimeClass {name} has handler {handler!r}, not {req.runtime_class_handler!r}: "
                       "pods would not run under Sysbox",
                       f"kubectl delete runtimeclass {name} and re-apply the upstream one.", src)
    selector = ((rc.get("scheduling") or {}).get("nodeSelector")) or {}
    if selector != req.runtime_class_selector:
        want = ",".join(f"{k}={v}" for k, v in req.runtime_class_selector.items())
        return Finding(cid, WARN, f"RuntimeClass {name} schedules on {selector or 'any node'}, not {want}: pods may "
                       "land on nodes where Sysbox is not running", f"Set scheduling.nodeSelector to {want}.", src)
    if nodes is None:
        return Finding(cid, UNKNOWN, f"RuntimeClass {name} is right, but the nodes cannot be listed", source=src)
    matching = [parse_node(n).name for n in nodes
                if all(((n.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in selector.items())]
    sel = ",".join(f"{k}={v}" for k, v in selector.items())
    if not matching:
        return Finding(cid, FAIL, f"RuntimeClass {name} selects nodes labelled {sel}, and no node is: pods with "
                       f"runtimeClassName {name} cannot be scheduled",
                       "Check the sysbox-deploy-k8s pods on the labelled nodes (kubectl -n kube-system logs -l "
                       "sysbox-install=yes); they label a node running when Sysbox is installed.", src)
    shown = ", ".join(matching[:10]) + (f" and {len(matching) - 10} more" if len(matching) > 10 else "")
    return Finding(cid, PASS, f"RuntimeClass {name} (handler {handler}) selects {len(matching)} node(s) labelled "
                   f"{sel}: {shown}", source=src)


def gpu_nodes(nodes: list[dict] | None, req: Requirements) -> Finding:
    from .nodes import _gpu_finding
    cid = "cluster.gpu"
    if nodes is None:
        return Finding(cid, UNKNOWN, "cannot list nodes", source=req.gpu_source)
    cloud_gpu, gpu = [], []
    for n in nodes:
        nf = parse_node(n)
        if nf.gpu_count or nf.gpu_labelled:
            gpu.append(nf.name)
            if "virtual machine" in _gpu_finding(nf, req).message:
                cloud_gpu.append(nf.name)
    if cloud_gpu:
        return Finding(cid, WARN, f"{len(cloud_gpu)} GPU node(s) are cloud VMs ({', '.join(cloud_gpu[:10])}): GPU "
                       "CVMs are supported on bare-metal clusters only (beta)",
                       "Use bare-metal GPU nodes for GPU CVMs.", req.gpu_source)
    if gpu:
        return Finding(cid, WARN, f"{len(gpu)} GPU node(s) ({', '.join(gpu[:10])}), none known to be a cloud VM: "
                       "GPU CVMs are beta and bare-metal only", source=req.gpu_source)
    return Finding(cid, PASS, f"no node advertises {req.gpu_resource} (GPU nodes without the NVIDIA device "
                   "plugin are not visible from the API)", source=req.gpu_source)


# --- the calls -------------------------------------------------------------------------------

@dataclass
class ClusterResult:
    server: str
    version: dict
    namespace: str
    row: HostPathRow
    checks: list[Finding] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return worst(f.status for f in self.checks)


def _try(fn):
    """(value, None) or (None, the server's sentence) when RBAC forbids the call."""
    try:
        return fn(), ""
    except ApiError as exc:
        if exc.kind == FORBIDDEN:
            return None, exc.detail or exc.message
        raise


def dry_run_cvm_pod(conn: Connection, namespace: str, row: HostPathRow, req: Requirements,
                    image: str = DEFAULT_CVM_IMAGE) -> Admission:
    body = cvm_pod(namespace, row, req, image)
    try:
        pod = conn.request("POST", f"/api/v1/namespaces/{namespace}/pods",
                           query={"dryRun": "All", "fieldValidation": "Strict"}, body=body)
    except ApiError as exc:
        if exc.kind in (FORBIDDEN, NOT_FOUND) or (exc.status and 400 <= exc.status < 500):
            return classify_refusal(exc)
        raise
    return Admission(True, pod=pod)


def run(conn: Connection, *, namespace: str, caching: bool, shiftfs_autoload: bool, matrix, req: Requirements,
        target: str | None = None, image: str = DEFAULT_CVM_IMAGE) -> ClusterResult:
    """Every cluster check. ApiError (unreachable, TLS, unauthorized) propagates: nothing is
    reported from a cluster that stopped answering half-way."""
    release = matrix.release(target) if target else matrix.newest
    version = conn.get("/version")
    row = req.cvm_row(caching, shiftfs_autoload)
    res = ClusterResult(conn.server, version, namespace, row)
    res.checks.append(kubernetes_version(version, req, release))
    adm = dry_run_cvm_pod(conn, namespace, row, req, image)
    res.checks.append(pod_admission(adm, namespace, row, req))
    hooks, why = _try(lambda: list_all(conn, "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"))
    res.checks.append(sidecar_injector(find_injectors(hooks, req) if hooks is not None else None, adm, req, why))
    nodes, nodes_why = _try(lambda: list_all(conn, "/api/v1/nodes"))
    try:
        rc, rc_why = _try(lambda: conn.get(f"/apis/node.k8s.io/v1/runtimeclasses/{req.runtime_class}"))
    except ApiError as exc:
        if exc.kind != NOT_FOUND:
            raise
        rc, rc_why = None, ""
    res.checks.append(runtime_class(rc, nodes, req, rc_why))
    res.checks.append(gpu_nodes(nodes, req) if nodes is not None else
                      Finding("cluster.gpu", UNKNOWN, f"cannot list nodes: {nodes_why}", source=req.gpu_source))
    return res


def to_doc(res: ClusterResult, *, matrix, target: str | None, context: str | None, source: str) -> dict:
    import datetime as _dt

    from .. import __version__
    return {
        "schema": "nodecheck.k8s-cluster/v1",
        "nodecheck_version": __version__,
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "matrix_version": matrix.version,
        "target": str(matrix.release(target).version if target else matrix.newest.version),
        "server": res.server, "context": context, "config_source": source,
        "kubernetes_version": res.version.get("gitVersion"),
        "workspace_namespace": res.namespace,
        "cvm_pod": {"caching": res.row.caching, "shiftfs_autoload": res.row.shiftfs_autoload,
                    "host_paths": {p: m for p, m in res.row.mounts}},
        "verdict": res.verdict,
        "checks": [f.to_dict() for f in res.checks],
    }
