"""Deployment-method advisor: which of Coder's four ways to run Docker in workspaces can
work on this node, and why not (coder-docs/docker-in-workspaces-v2)."""

from __future__ import annotations

from ..report.model import Method
from . import FAIL, PASS, UNKNOWN, WARN, Finding, worst

# The checks that are about the kernel and host, not about installing sysbox-runc on it:
# envbox bundles Sysbox but needs the same kernel (Coder docs).
_KERNEL_LEVEL = ("arch", "kernel.version", "kernel.idmap", "shiftfs", "userns", "selinux",
                 "apparmor.fusermount3", "storage.data-root", "cgroups")


def advise(facts, matrix, findings: list[Finding], verdict: str) -> dict[str, Method]:
    by_id = {f.id: f for f in findings}
    failing = [f.id for f in findings if f.status == FAIL]
    unknown = [f.id for f in findings if f.status == UNKNOWN]

    def summary(status: str, ids: list[str]) -> str:
        return f"{status} on: {', '.join(ids)}" if ids else ""

    if verdict == FAIL:
        runc = {"status": FAIL, "reason": "this node cannot run Sysbox: " + summary("fails", failing)}
    elif verdict == UNKNOWN:
        runc = {"status": UNKNOWN, "reason": "could not verify: " + summary("unknown", unknown)}
    else:
        runc = {"status": verdict, "reason": "Sysbox can be installed on this node" +
                (" (see warnings)" if verdict == WARN else "")}

    kfind = [by_id[i] for i in _KERNEL_LEVEL if i in by_id]
    kstatus = worst(f.status for f in kfind)
    kfail = [f.id for f in kfind if f.status == FAIL]
    if kstatus == FAIL:
        envbox = {"status": FAIL, "reason": "envbox needs the same kernel support as Sysbox: " + summary("fails", kfail)}
    elif kstatus == UNKNOWN:
        envbox = {"status": UNKNOWN, "reason": "kernel support unverified: " + summary("unknown", [f.id for f in kfind if f.status == UNKNOWN])}
    else:
        envbox = {"status": WARN, "reason": "possible if the cluster allows privileged pods and hostPath mounts "
                  "(the outer envbox container runs privileged; the workspace does not)"}

    podman_problems, podman_unknown = [], []
    fuse = facts.kconfig.get("FUSE_FS")
    if fuse == "n":
        podman_problems.append("kernel has no FUSE (CONFIG_FUSE_FS)")
    elif fuse is None and (facts.filesystems is None or "fuse" not in facts.filesystems):
        podman_unknown.append("FUSE support")
    if facts.selinux.mode == "enforcing":
        podman_problems.append("SELinux is enforcing (Coder docs: disable it or set permissive)")
    elif facts.selinux.mode == "unknown":
        podman_unknown.append("SELinux mode")
    if facts.userns.max_user_namespaces == 0 or facts.kconfig.get("USER_NS") == "n":
        podman_problems.append("user namespaces are disabled")
    elif facts.userns.max_user_namespaces is None and facts.kconfig.get("USER_NS") is None:
        podman_unknown.append("user namespaces")
    if podman_problems:
        podman = {"status": FAIL, "reason": "; ".join(podman_problems)}
    elif podman_unknown:
        podman = {"status": UNKNOWN, "reason": "could not verify " + ", ".join(podman_unknown)}
    else:
        podman = {"status": PASS, "reason": "FUSE, user namespaces and SELinux allow it; expose /dev/fuse to pods "
                  "with the FUSE device plugin (smarter-device-manager) and label the nodes"}

    sidecar = {"status": WARN, "reason": "always possible but insecure: a privileged Docker sidecar lets the "
               "workspace become root on the host"}
    return {name: Method(m["status"], m["reason"])
            for name, m in (("sysbox-runc", runc), ("envbox", envbox), ("rootless-podman", podman),
                            ("privileged-sidecar", sidecar))}
