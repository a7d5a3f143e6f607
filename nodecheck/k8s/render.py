"""The preflight pod's Kubernetes manifests: the one source for `nodecheck k8s render` and `deploy/`.

Everything about the pod (its mounts, security context, resources, the Job and the
DaemonSet) is defined here as plain data. `deploy/` (the kustomize tree) is *generated*
from it with `python -m nodecheck.k8s.render --write-deploy deploy` and a test checks that
the committed tree is byte-identical to a fresh generation and that `kubectl kustomize`
of it equals `nodecheck k8s render`. There is no second copy to drift.

Host mounts: the probe (nodecheck/probe/probe.sh) reads every path under `--root /host`,
so each host directory it needs is mounted read-only at `/host<path>`, mirroring the host
layout. A mount is listed only when the probe reads something under it (see `MOUNTS` for
which checks need which mount). Paths that do not exist on every node are *optional
components*, each with a strict hostPath `type` (Directory/File): an untyped hostPath
whose source is missing is created on the host by containerd and CRI-O (a write to the
node), and `DirectoryOrCreate` is a write by definition, so neither is ever used here.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from .. import __version__

APP = "nodecheck"
DEFAULT_NAMESPACE = "nodecheck"
DEFAULT_IMAGE = f"nodecheck:{__version__}"
UID = 65532  # the image's numeric non-root user (Dockerfile USER), same as distroless "nonroot"
GID = 65532
HOST = "/host"

# The image's entrypoint, exactly (Dockerfile ENTRYPOINT).
ENTRYPOINT = ["nodecheck", "scan", "--root", HOST, "-o", "json"]

# `nodecheck scan` exits 0/1/2/3 for the worst verdict pass/warn/fail/unknown. For a Job
# a verdict is a *completed* scan: a non-zero exit would make the Job retry and never
# complete on a failing node. The shell (the image has it for the probe anyway) runs the
# entrypoint unchanged and maps 0-3 to success; anything else (usage error 64, a crash,
# a signal) stays a failure. The verdict itself is in the one-line JSON on stdout.
SCAN_WRAPPER = ["/bin/sh", "-c", '"$@"; rc=$?; if [ "$rc" -le 3 ]; then exit 0; fi; exit "$rc"', "nodecheck-scan"]

# The NFD variant (`--nfd`): NFD's worker reads local feature files from this host
# directory and nfd-master turns them into node labels. Directory, not DirectoryOrCreate:
# NFD must be installed first (its worker creates the directory); on a node without it the
# pod fails visibly ("hostPath type check failed") instead of creating paths on the host.
NFD_FEATURES_DIR = "/etc/kubernetes/node-feature-discovery/features.d"
NFD_MOUNT = "/nfd/features.d"
NFD_FILE = f"{NFD_MOUNT}/nodecheck-sysbox"
# The DaemonSet rescans this often and the file expires after NFD_EXPIRY, so labels stay
# while the DaemonSet runs and disappear within a day of deleting it (or of a node whose
# scan stops working): never a stale "pass".
NFD_INTERVAL_S = 6 * 3600
NFD_EXPIRY = "24h"

RESOURCES = {
    "requests": {"cpu": "10m", "memory": "64Mi"},
    "limits": {"cpu": "500m", "memory": "256Mi"},
}


@dataclass(frozen=True)
class Mount:
    """One read-only hostPath, mounted at /host<path>."""

    path: str  # on the host
    type: str  # hostPath type: Directory or File (never empty, never ...OrCreate)
    needed_for: str  # which probe reads / checks need it (README table)

    @property
    def name(self) -> str:
        return "host" + (self.path.replace("/", "-").replace(".", "-").replace("_", "-") or "-root")

    @property
    def mount_path(self) -> str:
        return HOST + self.path


# Present on every Linux node: part of the base.
MOUNTS: list[Mount] = [
    Mount("/proc", "Directory",
          "kernel release/arch (`proc/sys/kernel/osrelease`, `arch`), `/proc/config.gz`, `/proc/modules`, "
          "`/proc/filesystems`, `/proc/cmdline` (SELinux/AppArmor boot flags), userns sysctls "
          "(`proc/sys/kernel/unprivileged_userns_clone`, `proc/sys/user/max_user_namespaces`, "
          "`proc/sys/kernel/apparmor_restrict_unprivileged_userns`), `/proc/cgroups`, "
          "`/proc/driver/nvidia/version`, `/proc/cpuinfo`, and the host mount table `/proc/1/mountinfo` "
          "(data-root filesystem; readable without capabilities unless /proc has `hidepid`)"),
    Mount("/sys", "Directory",
          "SELinux runtime mode (`sys/fs/selinux/enforce`), AppArmor (`sys/module/apparmor/parameters/enabled`, "
          "`sys/kernel/security/lsm`, `sys/kernel/security/apparmor`), cgroup v2 controllers "
          "(`sys/fs/cgroup/cgroup.controllers`), PCI devices and GPU driver binding (`sys/bus/pci/devices`), "
          "`sys/module/nvidia/version`, DMI bare-metal/VM (`sys/devices/virtual/dmi/id`), `sys/hypervisor/type`"),
    Mount("/dev", "Directory", "NVIDIA device nodes (`/dev/nvidia*`) of the host, not of the pod"),
    Mount("/etc", "Directory",
          "distro (`os-release`, `lsb-release`, every `*-release` and `*_version`), SELinux boot mode "
          "(`selinux/config`), AppArmor `apparmor.d/fusermount3`, runtime config (`docker/daemon.json`, "
          "`containerd/config.toml`, its version lines only; `crio/crio.conf` is not read), `subuid`"),
    Mount("/boot", "Directory", "kernel config `boot/config-<release>`"),
    Mount("/usr", "Directory",
          "`usr/lib/os-release` fallback, `usr/lib/modules/<release>` (kernel config, `modules.builtin`, "
          "shiftfs module: `/lib/modules` on merged-/usr nodes), `usr/lib/ostree-boot`, "
          "`usr/lib/kernel` and `usr/src/linux*` (RT and headers trees), the rpm database "
          "`usr/lib/sysimage/rpm`, tool presence in `usr/bin`, `usr/sbin`, `usr/local/bin`, `usr/local/sbin`"),
    Mount("/bin", "Directory", "tool presence (docker, containerd, rsync, iptables, fusermount, ...) on hosts "
          "where `/bin` is not a symlink to `usr/bin`"),
    Mount("/sbin", "Directory", "tool presence (`modprobe`, `iptables`, ...) on hosts where `/sbin` is not "
          "a symlink to `usr/sbin`"),
]

# Present only on some nodes: opt-in components (`--with NAME`, kustomize `components/NAME`).
# Each is typed, so choosing one for a node that lacks the path fails the pod visibly
# (ContainerCreating: "hostPath type check failed") instead of writing to the node.
OPTIONAL: dict[str, tuple[str, list[Mount]]] = {
    "libmodules": ("nodes without merged /usr (/lib is not a symlink to usr/lib: Ubuntu 18.04, upgraded "
                   "Debian/Ubuntu); merged-/usr nodes get /usr/lib/modules from the /usr mount", [
        Mount("/lib/modules", "Directory",
              "kernel config `lib/modules/<release>/config` and `build/.config`, `modules.builtin`, "
              "the shiftfs module file (on merged-/usr nodes the same files come from `/usr`)"),
    ]),
    "dpkg": ("Debian/Ubuntu nodes: package versions", [
        Mount("/var/lib/dpkg", "Directory",
              "package versions from `var/lib/dpkg/status` (docker-ce, containerd.io, sysbox-ce, cri-o, kubelet, "
              "fuse, rsync, iptables, jq, snapd)"),
    ]),
    "rpm": ("RHEL-family nodes with the rpm database in /var/lib/rpm", [
        Mount("/var/lib/rpm", "Directory",
              "rpm database presence (querying it needs `rpm` in the image, which it does not ship: see README)"),
    ]),
    "snap": ("Ubuntu nodes with snapd: the Docker-as-a-snap check", [
        Mount("/snap", "Directory", "installed snaps (`snap/*/current`), `snap/bin` tool presence"),
        Mount("/var/lib/snapd/snaps", "Directory", "snap packages (`var/lib/snapd/snaps/*.snap`)"),
    ]),
    "nvidia": ("GPU nodes with the GPU Operator's containerised driver", [
        Mount("/run/nvidia", "Directory", "operator-managed driver root `run/nvidia/driver`"),
    ]),
    "kubelet": ("kubeadm-style nodes: the kubelet's config file", [
        Mount("/var/lib/kubelet/config.yaml", "File",
              "kubelet config `var/lib/kubelet/config.yaml` (cgroup driver); only this file, never the "
              "kubelet directory (it holds other pods' secrets)"),
    ]),
    "optbin": ("Flatcar and other nodes with tools in /opt/bin", [
        Mount("/opt/bin", "Directory", "tool presence in `opt/bin`"),
    ]),
}


def labels(component: str) -> dict:
    return {"app.kubernetes.io/name": APP, "app.kubernetes.io/component": component}


def mounts_for(with_: list[str] | tuple[str, ...] = ()) -> list[Mount]:
    out = list(MOUNTS)
    for name in with_:
        if name not in OPTIONAL:
            raise ValueError(f"unknown component {name!r} (known: {', '.join(OPTIONAL)})")
        out += OPTIONAL[name][1]
    return out


def volume(m: Mount) -> dict:
    return {"name": m.name, "hostPath": {"path": m.path, "type": m.type}}


def volume_mount(m: Mount) -> dict:
    # recursiveReadOnly: the hostPaths are rbind mounts (containerd/CRI-O), so /sys carries
    # submounts (selinuxfs, securityfs, cgroup2); IfPossible makes those read-only too on
    # runtimes and kernels that can (K8s >= 1.30, kernel >= 5.12) and is plain readOnly otherwise.
    return {"name": m.name, "mountPath": m.mount_path, "readOnly": True, "recursiveReadOnly": "IfPossible"}


def container_security_context() -> dict:
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": GID,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def node_name_env() -> list[dict]:
    # The report is named after the Kubernetes node (as `kubectl get nodes` shows it), not
    # the host's /etc/hostname, which need not match; nodecheck reads NODE_NAME first.
    return [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]


def nfd_args() -> list[str]:
    return ["--nfd-features-file", NFD_FILE, "--nfd-expiry", NFD_EXPIRY]


def nfd_volume() -> dict:
    return {"name": "nfd-features", "hostPath": {"path": NFD_FEATURES_DIR, "type": "Directory"}}


def nfd_security_context() -> dict:
    # The one deviation of the NFD variant: features.d is root-owned (0755), and a pod
    # without capabilities cannot chown, so the only way to create the file there is to be
    # its owner, UID 0. Everything else stays: no capabilities at all (root without
    # CAP_DAC_OVERRIDE cannot write what DAC forbids root), no privilege escalation, a
    # read-only root filesystem and read-only host mounts; only features.d is writable.
    sc = container_security_context()
    sc.update({"runAsNonRoot": False, "runAsUser": 0, "runAsGroup": 0})
    return sc


def scan_container(image: str, with_=(), nfd: bool = False) -> dict:
    c = {
        "name": "scan",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(SCAN_WRAPPER),
        "args": list(ENTRYPOINT) + (nfd_args() if nfd else []),
        "env": node_name_env(),
        "resources": copy.deepcopy(RESOURCES),
        "securityContext": nfd_security_context() if nfd else container_security_context(),
        # readOnlyRootFilesystem: the parsers need a scratch dir (the distro parser lays the
        # probe's release files out in a temporary root), so /tmp is a small memory emptyDir.
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}] + [volume_mount(m) for m in mounts_for(with_)],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if nfd:
        c["volumeMounts"].append({"name": "nfd-features", "mountPath": NFD_MOUNT, "readOnly": False})
    return c


def refresh_container(image: str, with_=()) -> dict:
    """NFD DaemonSet: rescan every NFD_INTERVAL_S so the expiring feature file is renewed."""
    c = scan_container(image, with_, nfd=True)
    c["name"] = "refresh"
    c["command"] = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep " + str(NFD_INTERVAL_S)
                    + ' & wait $!; "$@" >/dev/null; done', "nodecheck-refresh"]
    return c


def idle_container(image: str) -> dict:
    # The DaemonSet's pod must stay up after the scan (its init container) or it restarts
    # forever; this waits for SIGTERM without holding any host mount.
    return {
        "name": "idle",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"],
        "resources": {"requests": {"cpu": "1m", "memory": "8Mi"}, "limits": {"cpu": "10m", "memory": "16Mi"}},
        "securityContext": container_security_context(),
    }


def pod_spec(containers: list[dict], with_=(), init: list[dict] | None = None, restart: str = "Always",
             nfd: bool = False) -> dict:
    spec = {
        "serviceAccountName": APP,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "hostPID": False,
        "hostIPC": False,
        "hostNetwork": False,
        "restartPolicy": restart,
        "nodeSelector": {"kubernetes.io/os": "linux"},
        # Every taint, so control-plane and tainted (e.g. GPU, not-ready-for-sysbox) nodes are scanned too.
        "tolerations": [{"operator": "Exists"}],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": GID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if init:
        spec["initContainers"] = init
    spec["containers"] = containers
    spec["volumes"] = [{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}] + [
        volume(m) for m in mounts_for(with_)]
    if nfd:
        spec["volumes"].append(nfd_volume())
    return spec


def namespace(ns: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": ns,
        "labels": {
            "app.kubernetes.io/name": APP,
            # hostPath volumes are the one thing "restricted" forbids (and "baseline" too):
            # enforce baseline-minus-hostPath is impossible, so enforce privileged and *warn/audit*
            # against restricted so every other deviation is reported (README: exceptions).
            "pod-security.kubernetes.io/enforce": "privileged",
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/audit": "restricted",
        },
    }}


def service_account(ns: str) -> dict:
    # No Role/RoleBinding anywhere: the pod reads its node's files and prints; it never
    # talks to the API, and the token is not even mounted.
    return {"apiVersion": "v1", "kind": "ServiceAccount", "automountServiceAccountToken": False,
            "metadata": {"name": APP, "namespace": ns, "labels": {"app.kubernetes.io/name": APP}}}


def daemonset(ns: str, image: str, with_=(), nfd: bool = False) -> dict:
    lab = labels("daemonset")
    main = refresh_container(image, with_) if nfd else idle_container(image)
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": APP, "namespace": ns, "labels": dict(lab)},
            "spec": {
                "selector": {"matchLabels": dict(lab)},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "100%"}},
                "template": {
                    "metadata": {"labels": dict(lab),
                                 "annotations": {"kubectl.kubernetes.io/default-container": "scan"}},
                    "spec": pod_spec([main], with_, init=[scan_container(image, with_, nfd)], nfd=nfd),
                }}}


NODES_PLACEHOLDER = 1


def job(ns: str, image: str, nodes: int = NODES_PLACEHOLDER, with_=(), nfd: bool = False) -> dict:
    lab = labels("job")
    spec = pod_spec([scan_container(image, with_, nfd)], with_, restart="Never", nfd=nfd)
    # One pod per node: required anti-affinity on hostname, like NFD's one-shot worker Job.
    spec["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": dict(lab)}, "topologyKey": "kubernetes.io/hostname"}]}}
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": APP, "namespace": ns, "labels": dict(lab)},
            "spec": {
                # parallelism = completions = the number of nodes to scan (set by the user).
                "parallelism": nodes,
                "completions": nodes,
                "backoffLimit": 2,
                # A node count larger than the schedulable nodes leaves pods Pending: give up.
                "activeDeadlineSeconds": 900,
                "ttlSecondsAfterFinished": 3600,
                "template": {"metadata": {"labels": dict(lab)}, "spec": spec},
            }}


def documents(kind: str = "daemonset", image: str = DEFAULT_IMAGE, ns: str = DEFAULT_NAMESPACE,
              nodes: int = NODES_PLACEHOLDER, with_=(), nfd: bool = False) -> list[dict]:
    if kind not in ("daemonset", "job"):
        raise ValueError(f"kind must be daemonset or job, not {kind!r}")
    if nodes < 1:
        raise ValueError("nodes must be >= 1")
    work = daemonset(ns, image, with_, nfd) if kind == "daemonset" else job(ns, image, nodes, with_, nfd)
    return [namespace(ns), service_account(ns), work]


def dump(docs: list[dict]) -> str:
    return "---\n".join(yaml.safe_dump(d, sort_keys=False, default_flow_style=False, width=1000) for d in docs)


def render(kind: str = "daemonset", image: str = DEFAULT_IMAGE, ns: str = DEFAULT_NAMESPACE,
           nodes: int = NODES_PLACEHOLDER, with_=(), nfd: bool = False) -> str:
    """Multi-document YAML, ready for `kubectl apply -f -`."""
    return dump(documents(kind, image, ns, nodes, with_, nfd))


# --- deploy/ (kustomize) generation -------------------------------------------------------

GENERATED = ("# Generated by `python -m nodecheck.k8s.render --write-deploy deploy` from\n"
             "# nodecheck/k8s/render.py: edit that file, not this one (a test checks they match).\n")


def _component(name: str) -> dict:
    patches = []
    for kind, container_path in (("DaemonSet", "initContainers"), ("Job", "containers")):
        ops = []
        for m in OPTIONAL[name][1]:
            ops.append({"op": "add", "path": "/spec/template/spec/volumes/-", "value": volume(m)})
            ops.append({"op": "add", "path": f"/spec/template/spec/{container_path}/0/volumeMounts/-",
                        "value": volume_mount(m)})
        patches.append({"target": {"kind": kind, "name": APP}, "patch": yaml.safe_dump(ops, sort_keys=False)})
    return {"apiVersion": "kustomize.config.k8s.io/v1alpha1", "kind": "Component", "patches": patches}


def deploy_files(image: str = DEFAULT_IMAGE) -> dict[str, str]:
    """Relative path -> content of the whole deploy/ kustomize tree (except README.md)."""
    ns = DEFAULT_NAMESPACE
    name, tag = image.rsplit(":", 1)

    def y(doc) -> str:
        return GENERATED + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=1000)

    files = {
        "base/namespace.yaml": y(namespace(ns)),
        "base/serviceaccount.yaml": y(service_account(ns)),
        "base/daemonset.yaml": y(daemonset(ns, image)),
        "base/kustomization.yaml": y({
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": ["namespace.yaml", "serviceaccount.yaml", "daemonset.yaml"],
            "images": [{"name": name, "newTag": tag}],
        }),
        "overlays/job/job.yaml": y(job(ns, image)),
        "overlays/job/kustomization.yaml": y({
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": ["../../base", "job.yaml"],
            # The Job replaces the DaemonSet. Set parallelism = completions = your node
            # count with the replacement below (or `nodecheck k8s render --job --nodes N`).
            "patches": [
                {"patch": yaml.safe_dump({"$patch": "delete", "apiVersion": "apps/v1", "kind": "DaemonSet",
                                          "metadata": {"name": APP, "namespace": ns}}, sort_keys=False)},
                {"target": {"kind": "Job", "name": APP}, "patch": yaml.safe_dump([
                    {"op": "replace", "path": "/spec/parallelism", "value": NODES_PLACEHOLDER},
                    {"op": "replace", "path": "/spec/completions", "value": NODES_PLACEHOLDER},
                ], sort_keys=False)},
            ],
        }),
    }
    for comp in OPTIONAL:
        files[f"components/{comp}/kustomization.yaml"] = y(_component(comp))
    return files


def write_deploy(directory: str | Path) -> list[Path]:
    out = []
    for rel, text in deploy_files().items():
        p = Path(directory) / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        out.append(p)
    return out


def mount_table_markdown() -> str:
    """The README's mount table, from the same data."""
    rows = ["| Host path | Mounted at | hostPath type | Part of | Needed for |", "|---|---|---|---|---|"]
    for m in MOUNTS:
        rows.append(f"| `{m.path}` | `{m.mount_path}` | {m.type} | base | {m.needed_for} |")
    for comp, (_why, ms) in OPTIONAL.items():
        for m in ms:
            rows.append(f"| `{m.path}` | `{m.mount_path}` | {m.type} | `--with {comp}` | {m.needed_for} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) == 3 and sys.argv[1] == "--write-deploy":
        for p in write_deploy(sys.argv[2]):
            print(p)
    elif len(sys.argv) == 2 and sys.argv[1] == "--mount-table":
        sys.stdout.write(mount_table_markdown())
    else:
        sys.exit("usage: python -m nodecheck.k8s.render --write-deploy DIR | --mount-table")
