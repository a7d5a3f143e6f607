"""A cluster prescan from Node objects alone: what the API says about each node, scored.

`parse_node(node_json)` is a pure function of one Node as the API returns it (the JSON of
`kubectl get node NAME -o json`). `to_facts` turns it into the same typed Facts the probe
produces, filled only where the Node says something: kernel release (nodeInfo.kernelVersion),
distribution (nodeInfo.osImage, os-release's PRETTY_NAME), architecture, kubelet and CRI runtime
versions. Everything else stays unknown, and `score_node` reports the checks those unknowns
decide as `unknown: needs the node probe`, never as a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from ..checks import FAIL, PASS, UNKNOWN, WARN, Finding, apply_ignore, run_checks, worst
from ..facts import Facts, gather
from ..facts.distro import DistroFacts
from ..facts.kernel import KernelFacts
from ..facts.runtimes import Runtime, RuntimeFacts
from ..report.model import NodeReport, ReleaseAdvice
from ..sections import parse as parse_sections
from ..versions import KernelVersion
from .requirements import ManagedPool, Requirements

NEEDS_PROBE = "needs the node probe (nodecheck k8s scan or the preflight pod)"
SOURCE = "kubernetes-api"

# Checks whose inputs a Node object holds (nodeInfo); every other check needs the probe.
API_DECIDED = ("arch", "distro", "kernel.version", "kubernetes.version")

# GOARCH (nodeInfo.architecture) to the Debian names the matrix uses.
_GOARCH = {"amd64": "amd64", "arm64": "arm64", "arm": "armhf", "386": "i386", "ppc64le": "ppc64el",
           "s390x": "s390x", "riscv64": "riscv64"}

# osImage is os-release's PRETTY_NAME. (pattern, os-release ID); group 1, when present, is the
# version. Ubuntu's PRETTY_NAME carries the point release ("24.04.1 LTS"), VERSION_ID does not.
_OS_IMAGES: tuple[tuple[str, str], ...] = (
    (r"^Ubuntu (\d+\.\d+)(?:\.\d+)?\b", "ubuntu"),
    (r"^Debian GNU/Linux (\d+)\b", "debian"),
    (r"^Amazon Linux (\d+)\b", "amzn"),
    (r"^Bottlerocket OS (\d+(?:\.\d+)*)", "bottlerocket"),
    (r"^Container-Optimized OS\b", "cos"),
    (r"^Red Hat Enterprise Linux CoreOS (\d+(?:\.\d+)*)", "rhcos"),
    (r"^Red Hat Enterprise Linux(?: Server)? (\d+(?:\.\d+)*)", "rhel"),
    (r"^Rocky Linux (\d+(?:\.\d+)*)", "rocky"),
    (r"^AlmaLinux (\d+(?:\.\d+)*)", "almalinux"),
    (r"^CentOS Stream (\d+)", "centos"),
    (r"^CentOS Linux (\d+)", "centos"),
    (r"^Fedora (?:Linux |CoreOS )?(\d+)", "fedora"),
    (r"^Flatcar Container Linux by Kinvolk (\d+(?:\.\d+)*)", "flatcar"),
    (r"^Talos \(v?(\d+(?:\.\d+)*)\)", "talos"),
    (r"^Azure Linux (\d+(?:\.\d+)*)", "azurelinux"),
    (r"^CBL-Mariner/Linux", "mariner"),
    (r"^SUSE Linux Enterprise Server (\d+)", "sles"),
    (r"^openSUSE Leap (\d+(?:\.\d+)*)", "opensuse-leap"),
)


def parse_os_image(text: str | None) -> tuple[str | None, str | None]:
    """`Ubuntu 24.04.1 LTS` -> ("ubuntu", "24.04"); an image it does not know -> (None, None)."""
    t = (text or "").strip()
    for pattern, distro_id in _OS_IMAGES:
        m = re.match(pattern, t)
        if m:
            return distro_id, (m.group(1) if m.groups() else None)
    return None, None


def parse_runtime(text: str | None) -> tuple[str | None, str | None]:
    """`containerd://2.1.4` -> ("containerd", "2.1.4"); `cri-o://1.30.2` -> ("cri-o", "1.30.2")."""
    m = re.fullmatch(r"([a-z0-9-]+)://v?(\S*)", (text or "").strip())
    if not m:
        return None, None
    return m.group(1), m.group(2) or None


@dataclass(frozen=True)
class ManagedMembership:
    pool: ManagedPool
    name: str  # the pool's name (the label's value)


@dataclass(frozen=True)
class NodeFacts:
    """What one Node object says, typed. None = the Node does not say."""

    name: str
    kubelet_version: str | None = None  # "v1.35.4", "v1.31.2-eks-7f9249a"
    runtime: str | None = None  # containerRuntimeVersion as given
    runtime_scheme: str | None = None  # containerd | cri-o | docker | ...
    runtime_version: str | None = None
    kernel: str | None = None
    os_image: str | None = None
    operating_system: str | None = None  # linux | windows
    goarch: str | None = None
    internal_ips: tuple[str, ...] = ()
    hostname: str | None = None  # the kubernetes.io/hostname label
    provider_id: str | None = None
    cloud: str | None = None  # providerID scheme: aws, gce, azure, ...
    instance_type: str | None = None
    gpu_count: int | None = None  # capacity nvidia.com/gpu; None when the Node has no such resource
    gpu_labelled: bool = False  # nvidia.com/gpu.present=true (GPU feature discovery)
    ready: bool | None = None
    unschedulable: bool = False
    labels: dict = field(default_factory=dict)
    problems: tuple[str, ...] = ()  # fields present but malformed

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k not in ("labels",)}
        d["internal_ips"] = list(self.internal_ips)
        d["problems"] = list(self.problems)
        return d


def parse_node(node: dict) -> NodeFacts:
    """One Node (API JSON) -> NodeFacts. Pure; tolerates missing or mistyped fields."""
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    info = status.get("nodeInfo") or {}
    labels = meta.get("labels") or {}
    problems = []

    def s(v) -> str | None:
        return v.strip() if isinstance(v, str) and v.strip() else None

    runtime = s(info.get("containerRuntimeVersion"))
    scheme, rversion = parse_runtime(runtime)
    if runtime and scheme is None:
        problems.append(f"containerRuntimeVersion {runtime!r} is not SCHEME://VERSION")
    pid = s(spec.get("providerID"))
    cloud = pid.split("://", 1)[0] if pid and "://" in pid else None
    gpu = None
    cap = status.get("capacity") or {}
    if "nvidia.com/gpu" in cap:
        raw = str(cap["nvidia.com/gpu"])
        if raw.isdigit():
            gpu = int(raw)
        else:
            problems.append(f"capacity nvidia.com/gpu {raw!r} is not a count")
    ready = None
    for c in status.get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Ready":
            ready = {"True": True, "False": False}.get(c.get("status"))
    ips = tuple(a.get("address") for a in status.get("addresses") or []
                if isinstance(a, dict) and a.get("type") == "InternalIP" and a.get("address"))
    return NodeFacts(
        name=str(meta.get("name") or "?"),
        kubelet_version=s(info.get("kubeletVersion")), runtime=runtime, runtime_scheme=scheme,
        runtime_version=rversion, kernel=s(info.get("kernelVersion")), os_image=s(info.get("osImage")),
        operating_system=s(info.get("operatingSystem")) or s(labels.get("kubernetes.io/os")),
        goarch=s(info.get("architecture")) or s(labels.get("kubernetes.io/arch")),
        internal_ips=ips, hostname=s(labels.get("kubernetes.io/hostname")), provider_id=pid, cloud=cloud,
        instance_type=s(labels.get("node.kubernetes.io/instance-type") or labels.get("beta.kubernetes.io/instance-type")),
        gpu_count=gpu, gpu_labelled=str(labels.get("nvidia.com/gpu.present", "")).lower() == "true",
        ready=ready, unschedulable=bool(spec.get("unschedulable")), labels=dict(labels), problems=tuple(problems),
    )


def managed_membership(nf: NodeFacts, req: Requirements) -> ManagedMembership | None:
    for pool in req.managed_pools:
        for key in pool.labels:
            if nf.labels.get(key):
                return ManagedMembership(pool, str(nf.labels[key]))
    return None


def to_facts(nf: NodeFacts) -> Facts:
    """Facts with only what the Node says; every other subject is the probe's 'nothing read'."""
    facts = gather(parse_sections(""))  # every subject unknown, with its own reason
    src = "node.status.nodeInfo"
    kv = KernelVersion.parse(nf.kernel) if nf.kernel else None
    arch = _GOARCH.get(nf.goarch or "", nf.goarch)
    reasons = []
    if kv is None:
        reasons.append(f"{src}.kernelVersion {'missing' if not nf.kernel else repr(nf.kernel) + ' unparsable'}")
    if not arch:
        reasons.append(f"{src}.architecture missing")
    facts.kernel = KernelFacts(release=nf.kernel if kv else None, version=kv, machine=nf.goarch, arch=arch,
                               release_source=f"{src}.kernelVersion" if kv else None,
                               reason="; ".join(reasons) or None)
    did, ver = parse_os_image(nf.os_image)
    facts.distro = DistroFacts(
        id=did, version_id=ver, name=nf.os_image, pretty_name=nf.os_image,
        reason=None if did else (f"{src}.osImage {nf.os_image!r} is not a distribution nodecheck recognises"
                                 if nf.os_image else f"{src}.osImage missing"))
    rt = RuntimeFacts(reason=f"the Node names only its kubelet and CRI runtime; {NEEDS_PROBE}")
    if nf.kubelet_version:
        v = nf.kubelet_version.lstrip("v")
        rt.runtimes["kubelet"] = Runtime(installed=True, version=nf.kubelet_version, upstream=v,
                                         package=None, source=f"{src}.kubeletVersion")
    rt.kubelet_configured = True  # a registered Node has a kubelet
    key = {"containerd": "containerd", "cri-o": "crio", "docker": "docker"}.get(nf.runtime_scheme or "")
    if key:
        rt.runtimes[key] = Runtime(installed=True, version=nf.runtime_version, upstream=nf.runtime_version,
                                   source=f"{src}.containerRuntimeVersion")
    facts.runtimes = rt
    facts.probe = {"root": None, "version": None, "complete": False, "uid": None, "problems": list(nf.problems),
                   "source": SOURCE}
    return facts


def _probe_needed(f: Finding) -> Finding:
    kw = {"caveat": ""} if hasattr(f, "caveat") else {}  # a pass-time caveat means nothing for unknown
    return replace(f, status=UNKNOWN, message=NEEDS_PROBE, remediation="", **kw)


def _decided_by_api(f: Finding, facts: Facts, release) -> bool:
    """Whether the Node's facts alone decide this finding (so it is kept as the check said)."""
    if f.id in API_DECIDED:
        return True
    k = facts.kernel.version
    sh = release.shiftfs
    if f.id == "kernel.idmap" and k is not None:
        # Decided by the kernel alone only where no shiftfs question remains.
        rootfs = sh.idmapped_rootfs_from_kernel
        return sh.idmapped_bind_mounts_from_kernel is None or bool(rootfs and k.at_least(rootfs))
    if f.id == "shiftfs" and k is not None:
        return sh.policy != "shiftfs-or-userns-remap" and sh.required(k.release) is False
    if f.id.startswith("known-issue"):
        return f.status != UNKNOWN  # a rule evaluated on the Node's facts; unknown ones need the probe
    return False


def node_findings(nf: NodeFacts, facts: Facts, req: Requirements, release) -> list[Finding]:
    """The checks only a Node object can answer (runtime as the installer sees it, managed pool,
    GPUs on a cloud VM, the OS)."""
    out = []
    if nf.operating_system and nf.operating_system != "linux":
        out.append(Finding("kubernetes.os", FAIL, f"{nf.operating_system} node: Sysbox runs on Linux nodes only",
                           "Schedule CVM workspaces on Linux nodes (nodeSelector kubernetes.io/os: linux).",
                           req.runtime_class_source))
    out.append(_runtime_finding(nf, req, release))
    m = managed_membership(nf, req)
    if m:
        labels = {"sysbox-install": "yes", "smarter-device-manager": "enabled"}
        out.append(Finding(
            "kubernetes.managed-pool", WARN,
            f"node of {m.pool.provider} pool {m.name!r} ({m.pool.label}): labels set through the API "
            "(sysbox-install, smarter-device-manager) are lost when the pool replaces the node",
            "Set the labels on the pool instead: " + m.pool.setting(m.name, labels),
            m.pool.source))
    out.append(_gpu_finding(nf, req))
    return out


def _runtime_finding(nf: NodeFacts, req: Requirements, release) -> Finding:
    cid = "kubernetes.runtime"
    if not nf.runtime_scheme:
        return Finding(cid, UNKNOWN, f"the Node reports no container runtime ({nf.runtime or 'containerRuntimeVersion empty'})")
    rule = req.runtime_rule(nf.runtime_scheme, nf.runtime or "")
    what = nf.runtime
    if rule is None:
        return Finding(cid, WARN, f"{what}: not a runtime the Sysbox Kubernetes installer knows",
                       "Use containerd or CRI-O nodes.", req.runtimes[0].source)
    if rule.status == "unsupported":
        return Finding(cid, FAIL, f"{what}: {rule.name or rule.scheme} is not supported by sysbox-deploy-k8s",
                       "Use a Kubernetes distribution on containerd or CRI-O (not k3s/k0s) for Sysbox nodes.",
                       rule.source)
    if rule.status == "unlisted":
        return Finding(cid, WARN, f"{what}: {rule.note}", "Use containerd or CRI-O nodes.", rule.source)
    if nf.runtime_scheme == "containerd":
        cmin = release.containerd_min
        from ..versions import parse_version
        have, need = parse_version(nf.runtime_version or ""), parse_version(cmin) if cmin else None
        if need and have and have >= need:
            how = f"containerd >= {cmin}: the installer configures it directly (pods use hostUsers: false)"
        elif need and have is None:
            how = f"containerd version unreadable; >= {cmin} is configured directly, older gets CRI-O"
        else:
            how = ("the installer installs its own CRI-O and switches the kubelet to it "
                   "(about a minute of pod disruption on the node)")
        return Finding(cid, PASS, f"{what}: {how}", source=rule.source)
    return Finding(cid, PASS, f"{what}: {rule.note}", source=rule.source)


def _gpu_finding(nf: NodeFacts, req: Requirements) -> Finding:
    cid = "gpu.nvidia"
    count = nf.gpu_count
    if not count and not nf.gpu_labelled:
        if count == 0:
            return Finding(cid, PASS, f"no allocatable {req.gpu_resource} on this node", source=req.gpu_source)
        return Finding(cid, UNKNOWN, f"no {req.gpu_resource} resource on the Node (no GPU, or no device plugin): "
                       f"{NEEDS_PROBE}", source=req.gpu_source)
    n = f"{count} NVIDIA GPU(s)" if count else "NVIDIA GPUs (nvidia.com/gpu.present)"
    itype = nf.instance_type or ""
    metal = any(itype.endswith(sfx) for sfx in req.bare_metal_suffixes)
    if nf.cloud in req.cloud_vm_schemes and not metal:
        where = f"a {nf.cloud} virtual machine (providerID {nf.provider_id}" + (f", {itype})" if itype else ")")
        return Finding(cid, WARN, f"{n} on {where}: GPU CVMs are supported on bare-metal clusters only (beta)",
                       "Use bare-metal GPU nodes for GPU CVMs, or run GPU workspaces without Sysbox.", req.gpu_source)
    where = (f"bare metal ({itype})" if metal else
             f"provider {nf.cloud!r}, not known to be bare metal" if nf.cloud else "no providerID: bare metal or VM unknown")
    return Finding(cid, WARN, f"{n}, {where}: GPU CVMs are beta and bare-metal only; Sysbox itself does not pass "
                   "devices through", "Use bare-metal GPU nodes for GPU CVMs.", req.gpu_source)


def score_node(node: dict, *, matrix, req: Requirements, target: str | None = None, ignore=()) -> NodeReport:
    """One report node (nodecheck.report/v1) for one Node object."""
    from ..checks.methods import advise

    nf = parse_node(node)
    facts = to_facts(nf)
    target_rel = matrix.release(target) if target else matrix.newest
    per_release, not_ruled_out, findings_target = {}, [], []
    memo: dict = {}
    for rel in matrix.releases:
        fs = []
        for f in run_checks(facts, matrix, rel, (), memo):
            if f.id == "gpu.nvidia":
                continue  # replaced by the Node's own GPU finding below
            if _decided_by_api(f, facts, rel):
                fs.append(f)
            elif f.id.startswith("known-issue"):
                fs.append(replace(f, message=f"{f.message} [{NEEDS_PROBE}]"))
            else:
                fs.append(_probe_needed(f))
        fs.extend(node_findings(nf, facts, req, rel))
        fs = apply_ignore(fs, ignore)
        per_release[str(rel.version)] = worst(f.status for f in fs)
        if not any(f.status == FAIL for f in fs):
            not_ruled_out.append(str(rel.version))
        if rel is target_rel:
            findings_target = fs
    verdict = worst(f.status for f in findings_target)
    compatible = [v for v, s in per_release.items() if s in (PASS, WARN)]
    summary = facts.summary()
    summary.update({"kubelet.version": nf.kubelet_version, "kubernetes.runtime": nf.runtime,
                    "kubernetes.internal_ip": nf.internal_ips[0] if nf.internal_ips else None,
                    "kubernetes.provider_id": nf.provider_id, "gpu.count": nf.gpu_count})
    # What a prescan can say besides: the releases the Node's facts do not rule out.
    sysbox = ReleaseAdvice(str(target_rel.version), compatible, compatible[-1] if compatible else None,
                           per_release, not_ruled_out)
    return NodeReport(node=nf.name, source=f"{SOURCE}:node/{nf.name}", verdict=verdict, checks=findings_target,
                      sysbox=sysbox, methods=advise(facts, matrix, findings_target, verdict), facts=summary,
                      kubernetes_node=nf.to_dict())
