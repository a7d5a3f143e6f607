"""`load()`: the typed `Matrix` from a matrix file (or the compiled bundled one).

With no path and no $NODECHECK_MATRIX the bundled matrix is built from its compiled form when
that is fresh; a file named with --matrix or $NODECHECK_MATRIX is always validated in full.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from packaging.version import Version

from .compiled import compiled_data
from .model import (Artifact, ContainerdPin, Distro, FsEntry, Gpu, KernelThreshold, Kubernetes, Matrix, Release,
                    Shiftfs)
from .rules import Condition, Rule, release_only
from .validate import ENV, default_path, read_raw, read_text, validate_text

__all__ = ["load"]


def load(path: str | Path | None = None) -> Matrix:
    """Load and validate a matrix file (default: see `default_path`). Raises MatrixError.

    With no path and no $NODECHECK_MATRIX, the bundled matrix is built from its compiled form
    when that was compiled from exactly these YAML and schema bytes; otherwise (a stale or
    missing compiled file, a user's file) the YAML is parsed and validated in full."""
    if path is None and not os.environ.get(ENV):
        p = default_path()
        text = read_text(p)
        data = compiled_data(p, text)
        return _build(data if data is not None else validate_text(p, text), p)
    p = Path(path) if path is not None else default_path()
    data = read_raw(p)
    return _build(data, p)


def _t(x: list | None) -> tuple:
    return tuple(x) if x is not None else ()


def _build(data: Mapping[str, Any], path: Path | None) -> Matrix:
    rules = tuple(
        Rule(id=r["id"], severity=r["severity"], scope=r.get("scope", "any"),
             when=Condition.from_dict(r["when"]), message=r["message"], fix=r["fix"],
             source=r["source"], see_also=_t(r.get("see_also")), note=r.get("note"))
        for r in data["rules"]
    )
    # Each rule's release-only condition is derived once, not once per release (Rule.applies_to_release
    # does both steps; this is the same test, ~15x fewer condition walks for 14 releases).
    by_release = tuple((x, release_only(x.when)) for x in rules)
    releases = tuple(_build_release(r, by_release) for r in data["releases"])
    fs = data["filesystems"]
    avail: dict[str, bool] = {}
    for e in data["shiftfs_availability"]:
        for d in e["distro_ids"]:
            avail[d] = e["available"]
    return Matrix(
        version=data["matrix_version"], schema=data["schema"], path=path, releases=releases,
        kernel_thresholds=tuple(
            KernelThreshold(id=t["id"], kernel=t["kernel"], meaning=t["meaning"], source=t["source"],
                            releases=t.get("releases"), see_also=_t(t.get("see_also")), note=t.get("note"))
            for t in data["kernel_thresholds"]),
        no_idmap_filesystems=tuple(_fs(e) for e in fs["no_idmap"]),
        data_root=fs["data_root"],
        host_tools=tuple(h["name"] for h in data["host_tools"]),
        shiftfs_availability=avail,
        userns=data["userns"],
        selinux_supported=data["selinux"]["supported"],
        selinux_source=data["selinux"]["source"],
        gpu=Gpu(supported=data["gpu"]["supported"], source=data["gpu"]["source"],
                see_also=_t(data["gpu"].get("see_also")), note=data["gpu"].get("note")),
        architectures=tuple(data["architectures"]["supported"]),
        rules=rules,
        never_released=tuple(n["version"] for n in data.get("never_released", [])),
        raw=data,
    )


def _fs(e: Mapping[str, Any]) -> FsEntry:
    return FsEntry(fs_types=tuple(e["fs_types"]), reason=e["reason"], source=e["source"],
                   magic=e.get("magic"), idmappable_from_kernel=e.get("idmappable_from_kernel"),
                   see_also=_t(e.get("see_also")), note=e.get("note"))


def _build_release(r: Mapping[str, Any], rules: tuple[tuple[Rule, Condition | None], ...]) -> Release:
    v = Version(r["version"])
    release_fact = {"sysbox.release": str(v)}
    sh, k8s, pin = r["shiftfs"], r["kubernetes"], r["containerd_pin"]
    notes = tuple(x for x in (r.get("note"), r.get("date_note"), r.get("distros_note")) if x)
    return Release(
        version=v,
        date=date.fromisoformat(r["date"]),
        tag_commit=r["tag_commit"],
        highlights=_t(r.get("highlights")),
        distros=tuple(
            Distro(id=d["id"], versions=tuple(d["versions"]) if d["versions"] is not None else None,
                   support=d["support"], kubernetes=d["kubernetes"], min_kernel=d["min_kernel"],
                   source=d["source"], codename=d.get("codename"),
                   min_kernel_docs=d.get("min_kernel_docs"), min_kernel_preinst=d.get("min_kernel_preinst"),
                   listed_in_docs=d.get("listed_in_docs", True), see_also=_t(d.get("see_also")),
                   note=d.get("note"))
            for d in r["distros"]),
        archs=tuple(r["architectures"]["values"]),
        cgroup_v1=r["cgroups"]["v1"], cgroup_v2=r["cgroups"]["v2"],
        shiftfs=Shiftfs(policy=sh["policy"], required_below_kernel=sh["required_below_kernel"],
                        recommended_below_kernel=sh["recommended_below_kernel"],
                        idmapped_bind_mounts_from_kernel=sh["idmapped_bind_mounts_from_kernel"],
                        idmapped_rootfs_from_kernel=sh["idmapped_rootfs_from_kernel"],
                        functional_checks=sh["functional_checks"], source=sh["source"],
                        see_also=_t(sh.get("see_also")), note=sh.get("note")),
        kubernetes=Kubernetes(installer_image=k8s["installer_image"], minors=tuple(k8s["minors"]),
                              source=k8s["source"],
                              docs_minors=tuple(k8s["docs_minors"]) if "docs_minors" in k8s else None,
                              eol_minors=tuple(k8s["eol_minors"]) if "eol_minors" in k8s else None,
                              see_also=_t(k8s.get("see_also")), note=k8s.get("note")),
        runtimes=r["runtimes"],
        deb_preinst=r["deb_preinst"],
        artifacts=tuple(
            Artifact(arch=a["arch"], filename=a["filename"], urls=tuple(a["urls"]), sha256=a["sha256"],
                     source=a["source"],
                     distro=(a["distro"]["id"], a["distro"]["version_id"]) if "distro" in a else None,
                     alt_filenames=_t(a.get("alt_filenames")), see_also=_t(a.get("see_also")),
                     note=a.get("note"))
            for a in r["artifacts"]),
        containerd_pin=ContainerdPin(package=pin["package"], version=pin["version"], where=pin["where"],
                                     source=pin["source"], see_also=_t(pin.get("see_also")),
                                     note=pin.get("note")),
        rules=tuple(x for x, cond in rules if cond is None or cond.evaluate(release_fact) is not False),
        source=r["source"],
        archs_source=r["architectures"]["source"],
        cgroups_source=r["cgroups"]["source"],
        notes=notes,
        raw=r,
    )
