"""Container runtimes, kubelet and host tools: installed or not, from where, which version.

Versions come from the package database (no `docker version` exec: the probe never runs
the node's binaries). A binary with no package is installed with an unknown version.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ..sections import Sections
from .packages import PackageFacts

# runtime name: (package names in preference order, binary names)
RUNTIMES = {
    # The engine is dockerd: a docker CLI alone (a client for a remote engine) is not Docker.
    "docker": (("docker-ce", "docker.io", "moby-engine", "docker"), ("dockerd",)),
    "containerd": (("containerd.io", "containerd"), ("containerd",)),
    "crio": (("cri-o", "crio"), ("crio",)),
    "kubelet": (("kubelet",), ("kubelet",)),
    "sysbox": (("sysbox-ce", "sysbox"), ("sysbox-runc",)),
}
TOOLS = ("rsync", "iptables", "fusermount", "fusermount3", "modprobe", "jq")


@dataclass
class Runtime:
    installed: bool | None = None
    version: str | None = None  # package version as the manager prints it
    upstream: str | None = None  # 24.0.7, 1.6.28, ...
    package: str | None = None
    source: str | None = None  # dpkg | rpm | snap | binary
    path: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class RuntimeFacts:
    runtimes: dict[str, Runtime] = field(default_factory=dict)
    tools: dict[str, str | None] = field(default_factory=dict)  # name -> path or None (absent)
    tools_known: bool = False
    docker_snap: bool | None = None
    docker_daemon_json: dict | None = None
    docker_daemon_json_error: str | None = None
    # The sysbox-ce package's own test (sysbox-pkgr postinst docker_network_valid_config): both
    # "bip" and "default-address-pools" on lines of their own in daemon.json, as jq
    # pretty-prints them. Without them the package restarts Docker to add them (and aborts if
    # containers exist). False for no daemon.json; None when it could not be read.
    docker_network_preset: bool | None = None
    kubelet_configured: bool | None = None  # /var/lib/kubelet/config.yaml exists
    # Top-level `version` of /etc/containerd/config.toml (1 when the key is absent, as
    # containerd reads it); None when the file is missing or unreadable.
    containerd_config_version: int | None = None
    # Docker 29.5+ gives containers a private time namespace (moby#52326) unless daemon.json
    # sets features.time-namespaces = false (moby#52577): "disabled", "default" (no such
    # setting, or no daemon.json at all), None when daemon.json could not be read.
    docker_time_namespaces: str | None = None
    reason: str | None = None

    def get(self, name: str) -> Runtime:
        return self.runtimes.get(name) or Runtime()

    def to_dict(self) -> dict:
        return {"runtimes": {k: v.to_dict() for k, v in self.runtimes.items()},
                "tools": self.tools, "tools_known": self.tools_known,
                "docker_snap": self.docker_snap, "docker_daemon_json": self.docker_daemon_json,
                "docker_daemon_json_error": self.docker_daemon_json_error,
                "docker_network_preset": self.docker_network_preset,
                "kubelet_configured": self.kubelet_configured,
                "containerd_config_version": self.containerd_config_version,
                "docker_time_namespaces": self.docker_time_namespaces, "reason": self.reason}


def parse_bins(text: str) -> dict[str, str | None]:
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[0]] = None if parts[1] == "-" else parts[1]
    return out


# The patterns the sysbox-ce package greps daemon.json for (egrep '^[ ]+"bip": "[0-9.]+.*"' and
# '^[ ]+"default-address-pools"'): a compact one-line file does not match, whatever its keys.
_DEB_BIP = re.compile(r'^[ ]+"bip": "[0-9.]+.*"', re.M)
_DEB_POOLS = re.compile(r'^[ ]+"default-address-pools"', re.M)
_TOML_TABLE = re.compile(r"^\s*\[")
_TOML_VERSION = re.compile(r"^\s*version\s*=\s*(\d+)\s*(?:#.*)?$")


def containerd_config_version(text: str) -> int:
    """The top-level `version = N` of a containerd config.toml (only lines before the
    first table count); a config without one is version 1 to containerd."""
    for line in text.splitlines():
        if _TOML_TABLE.match(line):
            break
        m = _TOML_VERSION.match(line)
        if m:
            return int(m.group(1))
    return 1


def parse(sections: Sections, packages: PackageFacts) -> RuntimeFacts:
    f = RuntimeFacts()
    b = sections.get("bins")
    bins = parse_bins(b.text or "") if b.ok else {}
    f.tools_known = b.complete
    if not b.complete:
        f.reason = b.why()
    f.tools = {t: bins.get(t) for t in TOOLS} if f.tools_known else {}
    snaps = (sections.text("snaps") or "").splitlines()
    snap_docker = any(s.startswith("/snap/docker/") or "/snaps/docker_" in s for s in snaps)
    docker_path = bins.get("docker") or ""
    f.docker_snap = (snap_docker or docker_path.startswith("/snap/")) if sections.get("snaps").ok else None

    for name, (pkgs, binaries) in RUNTIMES.items():
        r = Runtime()
        pkg = packages.get(*pkgs)
        path = next((bins[x] for x in binaries if bins.get(x)), None)
        r.path = path
        if pkg:
            r.installed, r.version, r.upstream, r.package, r.source = True, pkg.version, pkg.upstream, pkg.name, pkg.manager
        elif name == "docker" and snap_docker:
            r.installed, r.source = True, "snap"
        elif path:
            r.installed, r.source = True, "binary"
        elif f.tools_known and packages.known:
            r.installed = False
        f.runtimes[name] = r

    dj = sections.get("/etc/docker/daemon.json")
    if dj.ok and not dj.complete:
        f.docker_daemon_json_error = dj.why()
    elif dj.ok:
        try:
            val = json.loads(dj.text or "{}")
            f.docker_daemon_json = val if isinstance(val, dict) else None
            if not isinstance(val, dict):
                f.docker_daemon_json_error = "not a JSON object"
        except ValueError as exc:
            f.docker_daemon_json_error = f"invalid JSON: {exc}"
    if dj.ok and dj.complete:
        f.docker_network_preset = bool(_DEB_BIP.search(dj.text or "") and _DEB_POOLS.search(dj.text or ""))
    elif dj.exists is False:
        f.docker_network_preset = False
    if dj.exists is False:
        f.docker_time_namespaces = "default"
    elif f.docker_daemon_json is not None and not f.docker_daemon_json_error:
        feats = f.docker_daemon_json.get("features")
        off = isinstance(feats, dict) and feats.get("time-namespaces") is False
        f.docker_time_namespaces = "disabled" if off else "default"
    cc = sections.get("/etc/containerd/config.toml")
    if cc.ok and cc.complete:
        f.containerd_config_version = containerd_config_version(cc.text or "")
    k = sections.get("/var/lib/kubelet/config.yaml")
    f.kubelet_configured = (True if k.status in ("ok", "EACCES", "EPERM")
                            else False if k.status == "ENOENT" else None)
    return f
