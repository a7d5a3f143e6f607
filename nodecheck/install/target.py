"""Which install path a host takes: a plain Docker host (.deb, containerd.io pin, services)
or a Kubernetes node (the Kubernetes path, e.g. sysbox-deploy-k8s).

The decision is made once, in the preflight, from the probe's facts, and carried to the
roles as the host fact `nodecheck_target_kind`; the plain-host roles (containerd_pin,
sysbox) run only for DOCKER_HOST unless the user forces them. A host with a kubelet must
not get the .deb and a containerd.io downgrade: Sysbox's Kubernetes installer brings its
own runtime (CRI-O) and a pinned containerd.io under a running kubelet breaks the node.
"""

from __future__ import annotations

from dataclasses import dataclass

DOCKER_HOST = "docker-host"
KUBERNETES_NODE = "kubernetes-node"
UNKNOWN = "unknown"
KINDS = (DOCKER_HOST, KUBERNETES_NODE, UNKNOWN)


@dataclass(frozen=True)
class TargetKind:
    kind: str  # one of KINDS
    why: str

    def to_dict(self) -> dict:
        return {"kind": self.kind, "why": self.why}


def target_kind(facts) -> TargetKind:
    """From a `nodecheck.facts.Facts`: a kubelet installed or configured makes a Kubernetes node.

    "unknown" when the probe could not tell (no package database and no binary list, or an
    unreadable /var/lib/kubelet/config.yaml): the plain-host path is not taken on a guess.
    """
    rt = facts.runtimes
    kubelet = rt.get("kubelet")
    configured = rt.kubelet_configured
    if kubelet.installed or configured:
        bits = []
        if kubelet.installed:
            where = kubelet.package or kubelet.path or kubelet.source or "installed"
            bits.append(f"kubelet {kubelet.upstream or kubelet.version or '(version unknown)'} ({where})")
        if configured:
            bits.append("/var/lib/kubelet/config.yaml exists")
        return TargetKind(KUBERNETES_NODE, "; ".join(bits))
    if kubelet.installed is False and configured is False:
        return TargetKind(DOCKER_HOST, "no kubelet (package, binary or /var/lib/kubelet/config.yaml)")
    unread = []
    if kubelet.installed is None:
        unread.append("whether a kubelet is installed" + (f" ({rt.reason})" if rt.reason else ""))
    if configured is None:
        unread.append("/var/lib/kubelet/config.yaml")
    return TargetKind(UNKNOWN, "could not read " + " or ".join(unread))
