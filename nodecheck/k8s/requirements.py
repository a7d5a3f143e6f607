"""matrix/kubernetes.yaml as typed objects: the cluster-level facts the API checks compare against.

Found next to the Sysbox matrix (the repo's matrix/ or the packaged nodecheck/data/matrix/), and
validated against matrix/kubernetes.schema.json, like the Sysbox matrix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from ..matrix import MatrixError, default_path, load_compiled, schema_path

SCHEMA = "nodecheck.kubernetes-requirements/v1"


@dataclass(frozen=True)
class RuntimeRule:
    scheme: str
    status: str  # supported | unsupported | unlisted
    source: str
    version_contains: str | None = None
    name: str | None = None
    note: str = ""

    def matches(self, scheme: str, version: str) -> bool:
        return scheme == self.scheme and (self.version_contains is None or self.version_contains in version)


def _labels_text(labels: Mapping[str, str], style: str) -> str:
    pairs = list(labels.items()) or [("LABEL", "VALUE")]
    if style == "space":
        return " ".join(f"{k}={v}" for k, v in pairs)
    if style == "yaml":
        return ", ".join(f"{k}: {v}" for k, v in pairs)
    return ",".join(f"{k}={v}" for k, v in pairs)


@dataclass(frozen=True)
class ManagedPool:
    provider: str
    label: str
    how_to_label: str  # with {pool} and {labels}
    source: str
    also_labels: tuple[str, ...] = ()
    provider_id_scheme: str | None = None
    labels_style: str = "csv"

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.label, *self.also_labels)

    def setting(self, pool: str | None, labels: Mapping[str, str]) -> str:
        """What to set on the pool instead of labelling its nodes through the API."""
        return self.how_to_label.format(pool=pool or "POOL", labels=_labels_text(labels, self.labels_style))


@dataclass(frozen=True)
class Membership:
    """A node's managed pool (or cloud instance group) and how to label it so the labels survive."""

    provider: str
    pool: str | None  # None: a cloud instance in no managed pool
    label: str | None  # the label that said so (None: the providerID did)
    setting: str
    source: str


@dataclass(frozen=True)
class SidecarInjector:
    product: str
    webhook_name_suffixes: tuple[str, ...]
    source: str
    note: str = ""


@dataclass(frozen=True)
class HostPathRow:
    caching: bool
    shiftfs_autoload: bool | None  # None: N/A (caching off)
    mounts: tuple[tuple[str, str], ...]  # (host path, ro|rw)

    def label(self) -> str:
        auto = "N/A" if self.shiftfs_autoload is None else ("on" if self.shiftfs_autoload else "off")
        return f"caching {'on' if self.caching else 'off'}, shiftfs auto-load {auto}"


@dataclass(frozen=True)
class Requirements:
    min_version: str
    min_version_source: str
    runtimes: tuple[RuntimeRule, ...]
    managed_pools: tuple[ManagedPool, ...]
    cloud_instance_schemes: dict
    cloud_instance_how_to_label: str
    cloud_instance_source: str
    gpu_resource: str
    gpu_present_label: str | None
    cloud_vm_schemes: tuple[str, ...]
    bare_metal_suffixes: tuple[str, ...]
    gpu_source: str
    sidecar_injectors: tuple[SidecarInjector, ...]
    runtime_class: str
    runtime_class_handler: str
    runtime_class_selector: dict
    runtime_class_source: str
    cvm_privileged: bool
    cvm_rows: tuple[HostPathRow, ...]
    cvm_source: str

    def runtime_rule(self, scheme: str, version: str) -> RuntimeRule | None:
        # The most specific rule first (one with version_contains), then the plain scheme.
        rules = sorted(self.runtimes, key=lambda r: r.version_contains is None)
        return next((r for r in rules if r.matches(scheme, version)), None)

    def managed_pool(self, labels: Mapping[str, str], provider_id: str | None,
                     want: Mapping[str, str]) -> Membership | None:
        """The managed pool a node is in (by its pool labels, in the matrix's order), else the
        cloud instance group its providerID names; None for a node of neither. `want`: the labels
        the admin should set there instead."""
        for pool in self.managed_pools:
            for key in pool.labels:
                if labels.get(key):
                    return Membership(pool.provider, str(labels[key]), key, pool.setting(str(labels[key]), want),
                                      pool.source)
        scheme = (provider_id or "").split(":", 1)[0] if "://" in (provider_id or "") else ""
        if scheme in self.cloud_instance_schemes:
            return Membership(self.cloud_instance_schemes[scheme], None, None,
                              self.cloud_instance_how_to_label.format(labels=_labels_text(want, "csv")),
                              self.cloud_instance_source)
        return None

    def cvm_row(self, caching: bool, shiftfs_autoload: bool) -> HostPathRow:
        for row in self.cvm_rows:
            if row.caching == caching and (row.shiftfs_autoload is None or row.shiftfs_autoload == shiftfs_autoload):
                return row
        raise MatrixError(f"no CVM host-path row for caching={caching} shiftfs_autoload={shiftfs_autoload}")


def default_file() -> Path:
    return default_path().parent / "kubernetes.yaml"


def schema_file() -> Path:
    return schema_path().parent / "kubernetes.schema.json"


def read_validated(p: Path):
    """The YAML's data, validated against kubernetes.schema.json (raises MatrixError)."""
    import jsonschema
    import yaml

    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
        schema = json.loads(schema_file().read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise MatrixError(f"{p}: cannot read the Kubernetes requirements: {exc}") from exc
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        raise MatrixError(f"{p}: {'/'.join(map(str, e.path)) or '(top)'}: {e.message}")
    return data


@lru_cache(maxsize=4)
def load(path: str | None = None) -> Requirements:
    # The bundled file is validated when compiled (python -m nodecheck.matrix --compile), so a
    # scan (the hostpaths check reads cvm_rows) needs neither YAML nor jsonschema (issue 15).
    p = Path(path) if path else default_file()
    data = load_compiled(p, schema_file()) if not path else None
    if data is None:
        data = read_validated(p)
    gpu, rc, cvm = data["gpu"], data["runtime_class"], data["cvm_pod"]
    return Requirements(
        min_version=data["min_version"]["value"], min_version_source=data["min_version"]["source"],
        runtimes=tuple(RuntimeRule(r["scheme"], r["status"], r["source"], r.get("version_contains"),
                                   r.get("name"), r.get("note", "")) for r in data["container_runtimes"]),
        managed_pools=tuple(ManagedPool(m["provider"], m["label"], m["how_to_label"], m["source"],
                                        tuple(m.get("also_labels", ())), m.get("provider_id_scheme"),
                                        m.get("labels_style", "csv"))
                            for m in data["managed_pools"]),
        cloud_instance_schemes=dict(data.get("cloud_instances", {}).get("provider_id_schemes", {})),
        cloud_instance_how_to_label=data.get("cloud_instances", {}).get("how_to_label", "--node-labels={labels}"),
        cloud_instance_source=data.get("cloud_instances", {}).get("source", ""),
        gpu_resource=gpu["resource"], gpu_present_label=gpu.get("present_label"),
        cloud_vm_schemes=tuple(gpu["cloud_vm_provider_schemes"]),
        bare_metal_suffixes=tuple(gpu["bare_metal_instance_type_suffixes"]), gpu_source=gpu["source"],
        sidecar_injectors=tuple(SidecarInjector(s["product"], tuple(s["webhook_name_suffixes"]), s["source"],
                                                s.get("note", "")) for s in data["sidecar_injectors"]),
        runtime_class=rc["name"], runtime_class_handler=rc["handler"],
        runtime_class_selector=dict(rc["node_selector"]), runtime_class_source=rc["source"],
        cvm_privileged=cvm["privileged"],
        cvm_rows=tuple(HostPathRow(r["caching"], r["shiftfs_autoload"], tuple(r["mounts"].items()))
                       for r in cvm["host_paths"]),
        cvm_source=cvm["source"],
    )
