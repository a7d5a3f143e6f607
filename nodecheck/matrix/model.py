"""The typed matrix: a `Matrix` of `Release`s, each fact a field with its `source` URL.

Frozen dataclasses built once by `build.py` from validated data; checks, the install plan and
the reports read these fields, never the raw YAML mapping (`raw` stays for `matrix show` and
`diff`, which print the data as written).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from packaging.version import Version

from ..versions import cmp_release, parse_version, specifier_set
from .rules import Rule

__all__ = ["Artifact", "ContainerdPin", "Distro", "FsEntry", "Gpu", "KernelThreshold", "Kubernetes", "Matrix",
           "Gpu", "MatrixError", "Release", "Shiftfs"]


class MatrixError(Exception):
    """The matrix file is missing, unreadable or invalid, or a lookup failed."""


@dataclass(frozen=True)
class KernelThreshold:
    id: str
    kernel: str
    meaning: str
    source: str
    releases: str | None = None  # PEP 440 specifier, e.g. ">=0.6.1"
    see_also: tuple[str, ...] = ()
    note: str | None = None

    @property
    def version(self) -> Version:
        return Version(self.kernel)

    def applies_to(self, release: str | Version) -> bool:
        if self.releases is None:
            return True
        return Version(str(release)) in specifier_set(self.releases)

    def met_by(self, kernel: str) -> bool | None:
        have = parse_version(kernel)
        return None if have is None else cmp_release(have, self.version) >= 0


@dataclass(frozen=True)
class FsEntry:
    fs_types: tuple[str, ...]
    reason: str
    source: str
    magic: str | None = None
    idmappable_from_kernel: str | None = None
    see_also: tuple[str, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class Distro:
    id: str
    versions: tuple[str, ...] | None  # None = any version
    support: str  # supported | wip | ee-only | unsupported
    kubernetes: str
    min_kernel: str | None  # enforced: the stricter of docs and preinst
    source: str
    codename: str | None = None
    min_kernel_docs: str | None = None
    min_kernel_preinst: str | None = None
    listed_in_docs: bool = True
    see_also: tuple[str, ...] = ()
    note: str | None = None

    def matches(self, distro_id: str, version_id: str | None) -> bool:
        if distro_id.lower() != self.id:
            return False
        if self.versions is None:
            return True
        if version_id is None:
            return False
        have = parse_version(version_id)
        for v in self.versions:
            want = parse_version(v)
            if have is not None and want is not None and cmp_release(have, want) == 0:
                return True
        return False


@dataclass(frozen=True)
class Shiftfs:
    policy: str  # shiftfs-or-userns-remap | required-below-idmap
    required_below_kernel: str | None
    recommended_below_kernel: str | None
    idmapped_bind_mounts_from_kernel: str | None
    idmapped_rootfs_from_kernel: str | None
    functional_checks: bool
    source: str
    see_also: tuple[str, ...] = ()
    note: str | None = None

    def required(self, kernel: str) -> bool | None:
        """Is shiftfs required on this kernel (0.4.x: unless Docker userns-remap is used)?"""
        if self.policy == "shiftfs-or-userns-remap":
            return True
        have = parse_version(kernel)
        if have is None:
            return None
        return cmp_release(have, Version(self.required_below_kernel)) < 0  # type: ignore[arg-type]


@dataclass(frozen=True)
class Kubernetes:
    installer_image: str | None
    minors: tuple[str, ...]  # the installer whitelist (authoritative)
    source: str
    docs_minors: tuple[str, ...] | None = None
    eol_minors: tuple[str, ...] | None = None
    see_also: tuple[str, ...] = ()
    note: str | None = None

    def supports(self, kubelet_version: str) -> bool | None:
        v = parse_version(kubelet_version)
        if v is None:
            return None
        return f"{v.release[0]}.{(v.release + (0,))[1]}" in self.minors


@dataclass(frozen=True)
class Artifact:
    arch: str
    filename: str
    urls: tuple[str, ...]
    sha256: str | None
    source: str
    distro: tuple[str, str] | None = None  # (id, version_id) for 0.3/0.4 distro-specific packages
    alt_filenames: tuple[str, ...] = ()
    see_also: tuple[str, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class ContainerdPin:
    package: str
    version: str | None  # None = no pin needed (#544 fixed in 0.5.2)
    where: str
    source: str
    see_also: tuple[str, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class Gpu:
    supported: bool  # device/GPU passthrough by Sysbox itself
    source: str
    see_also: tuple[str, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class Release:
    version: Version
    date: date
    tag_commit: str | None
    highlights: tuple[str, ...]
    distros: tuple[Distro, ...]
    archs: tuple[str, ...]
    cgroup_v1: bool
    cgroup_v2: bool
    shiftfs: Shiftfs
    kubernetes: Kubernetes
    runtimes: Mapping[str, Any] = field(compare=False, repr=False)
    deb_preinst: Mapping[str, Any] = field(compare=False, repr=False)
    artifacts: tuple[Artifact, ...] = ()
    containerd_pin: ContainerdPin | None = None
    rules: tuple[Rule, ...] = ()  # known-broken rules that can apply to this release
    source: str = ""
    archs_source: str = ""
    cgroups_source: str = ""
    notes: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __str__(self) -> str:
        return str(self.version)

    @property
    def k8s_minors(self) -> tuple[str, ...]:
        return self.kubernetes.minors

    @property
    def containerd_min(self) -> str | None:
        """Minimum containerd for the native K8s path (0.7.0+), else None (CRI-O always)."""
        c = self.runtimes["kubernetes"].get("containerd")
        return c["min_version"] if c else None

    def distro(self, distro_id: str, version_id: str | None) -> Distro | None:
        for d in self.distros:
            if d.matches(distro_id, version_id):
                return d
        return None

    def min_kernel(self, distro_id: str, version_id: str | None) -> Version | None:
        d = self.distro(distro_id, version_id)
        return Version(d.min_kernel) if d and d.min_kernel else None

    def supports_arch(self, arch: str) -> bool:
        return arch in self.archs

    def artifacts_for(self, arch: str) -> tuple[Artifact, ...]:
        return tuple(a for a in self.artifacts if a.arch == arch)

    def artifact(self, arch: str, distro_id: str | None = None, version_id: str | None = None) -> Artifact | None:
        """The .deb for an arch (0.4.x: also pick the distro-specific package)."""
        for a in self.artifacts_for(arch):
            if a.distro is None:
                return a
            if distro_id and a.distro[0] == distro_id.lower() and version_id and \
                    parse_version(a.distro[1]) == parse_version(version_id):
                return a
        return None

    @property
    def sources(self) -> tuple[str, ...]:
        """Every URL cited by this release's facts and its applicable rules, de-duplicated."""
        urls: list[str] = []
        _collect_urls(self.raw, urls)
        for r in self.rules:
            for u in (r.source, *r.see_also):
                if u not in urls:
                    urls.append(u)
        return tuple(urls)


def _collect_urls(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "source" and isinstance(v, str):
                if v not in out:
                    out.append(v)
            elif k == "see_also" and isinstance(v, list):
                out.extend(u for u in v if u not in out)
            else:
                _collect_urls(v, out)
    elif isinstance(node, list):
        for x in node:
            _collect_urls(x, out)


@dataclass(frozen=True)
class Matrix:
    version: str  # matrix_version
    schema: str
    path: Path | None
    releases: tuple[Release, ...]  # oldest -> newest
    kernel_thresholds: tuple[KernelThreshold, ...]
    no_idmap_filesystems: tuple[FsEntry, ...]
    data_root: Mapping[str, Any] = field(compare=False, repr=False)
    host_tools: tuple[str, ...] = ()
    shiftfs_availability: Mapping[str, bool] = field(default_factory=dict, compare=False)
    userns: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    selinux_supported: bool = False
    selinux_source: str = ""
    gpu: Gpu = Gpu(supported=False, source="")
    architectures: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    never_released: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def newest(self) -> Release:
        return self.releases[-1]

    def host_tools_for(self, release: str | Version) -> tuple[Mapping[str, Any], ...]:
        """The host_tools entries a release needs (an entry without `releases` applies to all)."""
        v = Version(str(release))
        return tuple(h for h in self.raw.get("host_tools", [])
                     if "releases" not in h or v in specifier_set(h["releases"]))

    @property
    def versions(self) -> tuple[str, ...]:
        return tuple(str(r.version) for r in self.releases)

    def release(self, v: str | Version) -> Release:
        want = parse_version(str(v))
        for r in self.releases:
            if want is not None and r.version == want:
                return r
        extra = f" ({v} was never released)" if want is not None and str(want) in self.never_released else ""
        raise MatrixError(f"no Sysbox release {v!s} in matrix {self.version}{extra}; "
                          f"valid: {', '.join(self.versions)}")

    def threshold(self, threshold_id: str) -> KernelThreshold:
        for t in self.kernel_thresholds:
            if t.id == threshold_id:
                return t
        raise MatrixError(f"no kernel threshold {threshold_id!r}; valid: "
                          + ", ".join(t.id for t in self.kernel_thresholds))

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise MatrixError(f"no rule {rule_id!r}")

    def shiftfs_available(self, distro_id: str) -> bool | None:
        return self.shiftfs_availability.get(distro_id.lower())

    def no_idmap_fs(self, fs_type: str, kernel: str | None = None) -> FsEntry | None:
        """The entry saying `fs_type` cannot be ID-mapped (on this kernel), or None."""
        for e in self.no_idmap_filesystems:
            if fs_type in e.fs_types:
                if e.idmappable_from_kernel and kernel:
                    have = parse_version(kernel)
                    if have is not None and cmp_release(have, Version(e.idmappable_from_kernel)) >= 0:
                        return None
                return e
        return None
