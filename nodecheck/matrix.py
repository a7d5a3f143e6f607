"""The versioned Sysbox compatibility matrix: load, validate and query matrix/sysbox.yaml.

The matrix is data (YAML) validated against matrix/schema.json (JSON Schema 2020-12). `load()`
returns a frozen `Matrix`; the bundled matrix is validated once, when `python -m nodecheck.matrix
--compile` writes matrix/sysbox.compiled.json (a test and the wheel build refuse a stale one), so a
run loads that JSON and skips YAML parsing and schema validation (~0.3 s a run); a file named
with --matrix or $NODECHECK_MATRIX is always validated in full. checks read releases, thresholds and rules from it. Rule conditions are
data too: `Rule.evaluate(facts)` evaluates them against a flat fact mapping (names in `FACTS`).
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

# jsonschema, PyYAML and packaging.specifiers are imported where used: a run that loads the
# compiled bundled matrix needs none of them, and they cost ~0.1 s of start-up together.

__all__ = [
    "FACTS", "VERSION_FACTS", "Artifact", "ContainerdPin", "Distro", "FsEntry", "KernelThreshold",
    "Kubernetes", "Matrix", "MatrixError", "Release", "Rule", "Shiftfs", "default_path", "diff",
    "load", "parse_version", "schema_path",
]

ENV = "NODECHECK_MATRIX"
_PKG = Path(__file__).resolve().parent
_REPO_MATRIX = _PKG.parent / "matrix"
_DATA_MATRIX = _PKG / "data" / "matrix"

# Fact names a rule condition may read (mirrors $defs.fact in schema.json; a test keeps them equal).
FACTS: dict[str, str] = {
    "kernel.version": "running kernel (`uname -r`); the facts key `kernel.release` is accepted too",
    "distro.id": "os-release ID",
    "distro.version_id": "os-release VERSION_ID",
    "arch": "Debian architecture name (amd64, arm64, ...)",
    "runtime.containerd.version": "containerd version on the node",
    "runtime.docker.version": "Docker Engine version on the node",
    "kubelet.version": "kubelet version (leading v ignored)",
    "sysbox.release": "the Sysbox release being scored",
    "runtime.docker.time_namespaces": "Docker's time-namespace feature: default, or disabled in daemon.json",
    "runtime.containerd.config_version": "top-level version of /etc/containerd/config.toml (1 when unset)",
    "userns.clone_sysctl": "whether /proc/sys/kernel/unprivileged_userns_clone exists: present or absent",
    "modules.shiftfs_loaded": "whether the shiftfs module is loaded (/proc/modules): yes or no",
    "workspace.runc.version": "runc inside the workspace image (not visible to a node scan)",
    "workspace.containerd.version": "containerd.io inside the workspace image (not visible to a node scan)",
}
STRING_FACTS = frozenset({"distro.id", "arch", "runtime.docker.time_namespaces", "userns.clone_sysctl",
                          "modules.shiftfs_loaded"})
VERSION_FACTS = frozenset(FACTS) - STRING_FACTS
_ALIASES = {"kernel.version": ("kernel.version", "kernel.release")}


class MatrixError(Exception):
    """The matrix file is missing, unreadable or invalid, or a lookup failed."""


# --------------------------------------------------------------------------------------------
# versions
# --------------------------------------------------------------------------------------------
_NUM = re.compile(r"^v?(\d+(?:\.\d+)*)")


@lru_cache(maxsize=4096, typed=True)  # Versions are immutable; scoring asks for the same few strings often
def parse_version(text: str | int | float | None) -> Version | None:
    """A PEP 440 version from a release, kernel, containerd or kubelet string; None if unreadable.

    A leading `v` is dropped; strings PEP 440 cannot read ("6.8.0-45-generic") fall back to their
    leading dotted numbers ("6.8.0").
    """
    if text is None:
        return None
    s = str(text).strip()
    if s[:1] in ("v", "V"):
        s = s[1:]
    try:
        return Version(s)
    except InvalidVersion:
        m = _NUM.match(s)
        return Version(m.group(1)) if m else None


@lru_cache(maxsize=256)
def _specifier_set(text: str):
    """A PEP 440 specifier, parsed once: each node asks for the same few per release (never
    mutated by its users; packaging.specifiers is imported on first use)."""
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(text)


def _cmp_versions(fact: Version, value: Version) -> int:
    """Compare on as many release components as `value` gives (kernel 6.17.2 == "6.17").

    A value with a pre/post/dev part (e.g. "1.1.0-rc.1") compares as a full PEP 440 version.
    """
    if value.pre is None and value.post is None and value.dev is None:
        n = len(value.release)
        a = (fact.release + (0,) * n)[:n]
        b = value.release
    else:
        a, b = fact, value  # type: ignore[assignment]
    return (a > b) - (a < b)


# --------------------------------------------------------------------------------------------
# dataclasses
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Condition:
    """A leaf comparison or an `all`/`any` group (see schema $defs.condition)."""

    kind: str  # "leaf" | "all" | "any"
    fact: str | None = None
    op: str | None = None
    value: str | tuple[str, ...] | None = None
    children: tuple[Condition, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Condition:
        if "all" in d:
            return cls("all", children=tuple(cls.from_dict(c) for c in d["all"]))
        if "any" in d:
            return cls("any", children=tuple(cls.from_dict(c) for c in d["any"]))
        v = d["value"]
        return cls("leaf", fact=d["fact"], op=d["op"], value=tuple(v) if isinstance(v, list) else v)

    def facts(self) -> set[str]:
        if self.kind == "leaf":
            return {self.fact}  # type: ignore[arg-type]
        return set().union(*(c.facts() for c in self.children))

    def evaluate(self, facts: Mapping[str, Any]) -> bool | None:
        """True/False, or None when a fact it needs is unknown (Kleene three-valued logic)."""
        if self.kind == "all":
            results = [c.evaluate(facts) for c in self.children]
            if False in results:
                return False
            return None if None in results else True
        if self.kind == "any":
            results = [c.evaluate(facts) for c in self.children]
            if True in results:
                return True
            return None if None in results else False
        raw = _lookup(facts, self.fact)  # type: ignore[arg-type]
        if raw is None or raw == "":
            return None
        return _compare(self.fact, self.op, raw, self.value)  # type: ignore[arg-type]

    def __str__(self) -> str:
        if self.kind == "leaf":
            v = "[" + ", ".join(self.value) + "]" if isinstance(self.value, tuple) else self.value
            return f"{self.fact} {self.op} {v}"
        joiner = " and " if self.kind == "all" else " or "
        return "(" + joiner.join(str(c) for c in self.children) + ")"


def _lookup(facts: Mapping[str, Any], name: str) -> Any:
    for key in _ALIASES.get(name, (name,)):
        if facts.get(key) not in (None, ""):
            return facts[key]
    return None


def _compare(fact: str, op: str, raw: Any, value: str | tuple[str, ...]) -> bool | None:
    if fact in STRING_FACTS:
        s = str(raw).strip().lower()
        vals = [value] if isinstance(value, str) else list(value)
        vals = [x.lower() for x in vals]
        if op in ("==", "in"):
            return s in vals
        if op in ("!=", "not_in"):
            return s not in vals
        return None  # ordering on string facts is rejected by the schema
    have = parse_version(raw)
    if have is None:
        return None
    vals = [value] if isinstance(value, str) else list(value)
    cmps = []
    for v in vals:
        want = parse_version(v)
        if want is None:
            return None
        cmps.append(_cmp_versions(have, want))
    c = cmps[0]
    return {
        "==": c == 0, "!=": c != 0, "<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0,
        "in": 0 in cmps, "not_in": 0 not in cmps,
    }[op]


@dataclass(frozen=True)
class Rule:
    """A known-broken (or caveat) combination; `when` is data evaluated against node facts."""

    id: str
    severity: str  # fail | warn | info
    scope: str  # any | docker | kubernetes
    when: Condition
    message: str
    fix: str
    source: str
    see_also: tuple[str, ...] = ()
    note: str | None = None

    def evaluate(self, facts: Mapping[str, Any]) -> bool | None:
        """Does the rule match these facts? None if a fact it needs is unknown."""
        return self.when.evaluate(facts)

    def applies_to_release(self, release: str | Version) -> bool:
        """Could the rule match a node running `release` (only `sysbox.release` conditions read)?"""
        cond = _release_only(self.when)
        if cond is None:
            return True
        return cond.evaluate({"sysbox.release": str(release)}) is not False

    @property
    def facts(self) -> set[str]:
        return self.when.facts()


def _release_only(c: Condition) -> Condition | None:
    """The part of a condition that reads only sysbox.release (other leaves dropped as unknown)."""
    if c.kind == "leaf":
        return c if c.fact == "sysbox.release" else None
    kids = tuple(k for k in (_release_only(x) for x in c.children) if k is not None)
    if not kids:
        return None
    if c.kind == "any" and len(kids) != len(c.children):
        return None  # another branch could match whatever the release is
    return Condition(c.kind, children=kids)


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
        return Version(str(release)) in _specifier_set(self.releases)

    def met_by(self, kernel: str) -> bool | None:
        have = parse_version(kernel)
        return None if have is None else _cmp_versions(have, self.version) >= 0


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
            if have is not None and want is not None and _cmp_versions(have, want) == 0:
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
        return _cmp_versions(have, Version(self.required_below_kernel)) < 0  # type: ignore[arg-type]


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
                     if "releases" not in h or v in _specifier_set(h["releases"]))

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
                    if have is not None and _cmp_versions(have, Version(e.idmappable_from_kernel)) >= 0:
                        return None
                return e
        return None


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _loader():
    """Safe loader without timestamp resolution: dates stay "YYYY-MM-DD" strings."""
    import yaml

    class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    _Loader.yaml_implicit_resolvers = {
        k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return _Loader


def default_path() -> Path:
    """$NODECHECK_MATRIX, else the repo's matrix/sysbox.yaml, else nodecheck/data/matrix/sysbox.yaml."""
    env = os.environ.get(ENV)
    if env:
        return Path(env)
    for d in (_REPO_MATRIX, _DATA_MATRIX):
        if (d / "sysbox.yaml").is_file():
            return d / "sysbox.yaml"
    raise MatrixError(f"no matrix found: set {ENV}, or install {_REPO_MATRIX / 'sysbox.yaml'} "
                      f"or {_DATA_MATRIX / 'sysbox.yaml'}")


def schema_path() -> Path:
    """The packaged schema (never one next to a user's file: a copy must not weaken it)."""
    for d in (_REPO_MATRIX, _DATA_MATRIX):
        if (d / "schema.json").is_file():
            return d / "schema.json"
    raise MatrixError(f"matrix schema not found under {_REPO_MATRIX} or {_DATA_MATRIX}")


@lru_cache(maxsize=4)
def _validator(path: str):
    import jsonschema

    schema = json.loads(Path(path).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


MAX_MATRIX_BYTES = 4 << 20
MAX_NODES = 200_000  # the bundled matrix expands to a few thousand nodes
MAX_DEPTH = 64


def _check_expansion(p: Path, root) -> None:
    """Refuse a YAML alias bomb (a 112 KB file expanding to 10^9 nodes) or absurd nesting
    before anything walks the expanded data: the size is counted on the composed graph, where
    an alias is a shared node, each node's expanded size computed once (linear time)."""
    if root is None:
        return
    import yaml

    size: dict[int, int] = {}
    stack = [(root, 0, False)]
    while stack:
        node, depth, children_done = stack.pop()
        if depth > MAX_DEPTH:
            raise MatrixError(f"{p}: nested deeper than {MAX_DEPTH} levels")
        if id(node) in size:
            continue
        kids = []
        if isinstance(node, yaml.SequenceNode):
            kids = node.value
        elif isinstance(node, yaml.MappingNode):
            kids = [n for kv in node.value for n in kv]
        if children_done or not kids:
            size[id(node)] = 1 + sum(size.get(id(k), 1) for k in kids)
            if size[id(node)] > MAX_NODES:
                raise MatrixError(f"{p}: expands to more than {MAX_NODES} YAML nodes (an alias bomb?)")
            continue
        stack.append((node, depth, True))
        stack.extend((k, depth + 1, False) for k in kids if id(k) not in size)


def read_raw(path: str | Path) -> dict[str, Any]:
    """Parse the YAML and validate it (schema + semantic checks); returns the plain data."""
    p = Path(path)
    return _validate_text(p, _read_matrix_text(p))


def _read_matrix_text(p: Path) -> str:
    from .infile import InputError, read_text

    try:
        return read_text(str(p), MAX_MATRIX_BYTES, "matrix")  # a FIFO, /dev/zero, bad UTF-8: one line
    except InputError as exc:
        raise MatrixError(str(exc)) from exc


def _validate_text(p: Path, text: str) -> dict[str, Any]:
    import yaml

    try:
        _check_expansion(p, yaml.compose(text, Loader=_loader()))  # noqa: S506 - SafeLoader subclass
        data = yaml.load(text, Loader=_loader())  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        raise MatrixError(f"{p}: not valid YAML: {exc}") from exc
    except (ValueError, RecursionError) as exc:  # a 5000-digit int, nesting deeper than the stack
        raise MatrixError(f"{p}: not a usable matrix: {str(exc)[:200] or type(exc).__name__}") from exc
    if not isinstance(data, dict):
        raise MatrixError(f"{p}: $: the matrix must be a mapping, got {type(data).__name__}")
    errors = sorted(_validator(str(schema_path())).iter_errors(data),
                    key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        lines = [f"{p}: {_describe(e)}" for e in errors[:10]]
        if len(errors) > 10:
            lines.append(f"... and {len(errors) - 10} more errors")
        raise MatrixError("invalid matrix:\n  " + "\n  ".join(lines))
    _semantic_checks(p, data)
    return data


def _describe(e) -> str:  # a jsonschema.ValidationError
    """`$.json.path: message`; for oneOf/anyOf, the deepest sub-error names the real problem."""
    best = e
    if e.context:
        deepest = max(e.context, key=lambda x: len(x.absolute_path))
        if len(deepest.absolute_path) > len(e.absolute_path):
            best = deepest
    msg = best.message if len(best.message) <= 300 else best.message[:300] + "..."
    return f"{best.json_path}: {msg}"


def _semantic_checks(p: Path, data: Mapping[str, Any]) -> None:
    def fail(where: str, msg: str) -> None:
        raise MatrixError(f"invalid matrix:\n  {p}: {where}: {msg}")

    prev: Version | None = None
    seen: set[Version] = set()
    for i, r in enumerate(data["releases"]):
        v = Version(r["version"])
        if v in seen:
            fail(f"$.releases[{i}].version", f"duplicate release {r['version']}")
        if prev is not None and v < prev:
            fail(f"$.releases[{i}].version", f"releases must be sorted oldest to newest ({r['version']} after {prev})")
        seen.add(v)
        prev = v
        for j, a in enumerate(r["artifacts"]):
            if a["arch"] not in r["architectures"]["values"]:
                fail(f"$.releases[{i}].artifacts[{j}].arch", f"{a['arch']} is not among the release's architectures")
    for i, n in enumerate(data.get("never_released", [])):
        if Version(n["version"]) in seen:
            fail(f"$.never_released[{i}].version", f"{n['version']} is also listed as a release")
    ids: set[str] = set()
    for i, rule in enumerate(data["rules"]):
        if rule["id"] in ids:
            fail(f"$.rules[{i}].id", f"duplicate rule id {rule['id']!r}")
        ids.add(rule["id"])
        _check_condition(rule["when"], f"$.rules[{i}].when", fail)
    tids: set[str] = set()
    for i, t in enumerate(data["kernel_thresholds"]):
        if t["id"] in tids:
            fail(f"$.kernel_thresholds[{i}].id", f"duplicate threshold id {t['id']!r}")
        tids.add(t["id"])
        if "releases" in t:
            from packaging.specifiers import SpecifierSet

            try:
                SpecifierSet(t["releases"])
            except Exception:  # noqa: BLE001 - InvalidSpecifier
                fail(f"$.kernel_thresholds[{i}].releases", f"not a PEP 440 specifier: {t['releases']!r}")
    for i, h in enumerate(data.get("host_tools", [])):
        if "releases" in h:
            from packaging.specifiers import SpecifierSet

            try:
                SpecifierSet(h["releases"])
            except Exception:  # noqa: BLE001 - InvalidSpecifier
                fail(f"$.host_tools[{i}].releases", f"not a PEP 440 specifier: {h['releases']!r}")


def _check_condition(c: Mapping[str, Any], where: str, fail: Any) -> None:
    for key in ("all", "any"):
        if key in c:
            for k, sub in enumerate(c[key]):
                _check_condition(sub, f"{where}.{key}[{k}]", fail)
            return
    if c["fact"] in VERSION_FACTS:
        for v in ([c["value"]] if isinstance(c["value"], str) else c["value"]):
            try:
                Version(v)
            except InvalidVersion:
                fail(f"{where}.value", f"{v!r} is not a version")


def load(path: str | Path | None = None) -> Matrix:
    """Load and validate a matrix file (default: see `default_path`). Raises MatrixError.

    With no path and no $NODECHECK_MATRIX, the bundled matrix is built from its compiled form
    when that was compiled from exactly these YAML and schema bytes; otherwise (a stale or
    missing compiled file, a user's file) the YAML is parsed and validated in full."""
    if path is None and not os.environ.get(ENV):
        p = default_path()
        text = _read_matrix_text(p)
        data = _compiled_data(p, text)
        return _build(data if data is not None else _validate_text(p, text), p)
    p = Path(path) if path is not None else default_path()
    data = read_raw(p)
    return _build(data, p)


# --------------------------------------------------------------------------------------------
# the compiled bundled matrix
# --------------------------------------------------------------------------------------------
COMPILED_NAME = "sysbox.compiled.json"
COMPILED_FORMAT = "nodecheck.matrix-compiled/v1"


def compiled_path(yaml_path: Path) -> Path:
    return yaml_path.with_name(COMPILED_NAME)


def _digests(text: str, schema: Path | None = None) -> dict[str, str]:
    # Staleness, not tampering, is the question (whoever can edit the compiled file can edit the
    # YAML next to it), so CRC-32 and length do: hashlib alone costs ~4 ms of start-up. The schema
    # is part of the key: data valid under an older schema need not be valid under this one.
    def key(b: bytes) -> str:
        return f"{len(b)}:{zlib.crc32(b):08x}"

    return {"yaml_key": key(text.encode("utf-8")), "schema_key": key((schema or schema_path()).read_bytes())}


def _compiled_data(p: Path, text: str, schema: Path | None = None) -> dict[str, Any] | None:
    """The validated data compiled from exactly `text` (and this schema), else None."""
    try:
        doc = json.loads(compiled_path(p).read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != COMPILED_FORMAT:
            return None
        if {k: doc.get(k) for k in ("yaml_key", "schema_key")} != _digests(text, schema):
            return None
        data = doc.get("data")
        return data if isinstance(data, dict) else None
    except (OSError, ValueError, MatrixError):
        return None


def compiled_path_for(yaml_path: Path) -> Path:
    """Where a bundled YAML's compiled form lives: <stem>.compiled.json beside it."""
    return yaml_path.with_name(yaml_path.stem + ".compiled.json")


def load_compiled(yaml_path: Path, schema: Path) -> Any | None:
    """Another bundled YAML's validated data (e.g. matrix/kubernetes.yaml) from its compiled
    form, when that was compiled from exactly these YAML and schema bytes; else None (the
    caller then parses and validates the YAML itself). Only for the bundled copies: a user's
    file (beside $NODECHECK_MATRIX) is always validated."""
    if yaml_path.resolve().parent not in (_REPO_MATRIX, _DATA_MATRIX):
        return None
    try:
        text = yaml_path.read_text(encoding="utf-8")
        doc = json.loads(compiled_path_for(yaml_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != COMPILED_FORMAT or "data" not in doc:
        return None
    if {k: doc.get(k) for k in ("yaml_key", "schema_key")} != _digests(text, schema):
        return None
    return doc["data"]


def _compiled_doc(name: str, text: str, data: Any, schema: Path | None = None) -> str:
    doc = {"format": COMPILED_FORMAT,
           "note": f"generated by `python -m nodecheck.matrix --compile` from {name}; do not edit",
           **_digests(text, schema), "data": data}
    return json.dumps(doc, indent=1, ensure_ascii=False, sort_keys=False) + "\n"


def compile_text(p: Path, text: str) -> str:
    """The compiled form of a matrix YAML text: validated in full first (raises MatrixError)."""
    return _compiled_doc(p.name, text, _validate_text(p, text))


def _write(out: Path, text: str) -> None:
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)


def compile_bundled() -> list[Path]:
    """Validate the bundled matrix/sysbox.yaml and matrix/kubernetes.yaml in full and (re)write
    their compiled forms next to them."""
    from .k8s import requirements

    p = _REPO_MATRIX / "sysbox.yaml"
    _write(compiled_path(p), compile_text(p, _read_matrix_text(p)))
    k = _REPO_MATRIX / "kubernetes.yaml"
    ktext = k.read_text(encoding="utf-8")
    kdata = requirements.read_validated(k)
    _write(compiled_path_for(k), _compiled_doc(k.name, ktext, kdata, requirements.schema_file()))
    return [compiled_path(p), compiled_path_for(k)]


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
    by_release = tuple((x, _release_only(x.when)) for x in rules)
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
        notes=notes,
        raw=r,
    )


# --------------------------------------------------------------------------------------------
# diff
# --------------------------------------------------------------------------------------------
def _flatten(node: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(node, list) and node and all(isinstance(x, dict) for x in node):
        for i, x in enumerate(node):
            _flatten(x, f"{prefix}[{_item_key(x, i)}]", out)
    else:
        out[prefix] = node


def _item_key(x: Mapping[str, Any], i: int) -> str:
    if "id" in x and "versions" in x:  # distro
        return f"{x['id']} {','.join(x['versions']) if x['versions'] else '*'}"
    if "arch" in x and "filename" in x:  # artifact
        return f"{x['arch']} {x['filename']}"
    for k in ("id", "name", "version", "distro_id"):
        if k in x:
            return f"{x[k]}{' ' + x['version_id'] if k == 'distro_id' and 'version_id' in x else ''}"
    if "fs_types" in x:
        return ",".join(x["fs_types"])
    return str(i)


def _diff_maps(a: Mapping[str, Any], b: Mapping[str, Any], label: str) -> list[str]:
    fa: dict[str, Any] = {}
    fb: dict[str, Any] = {}
    _flatten(a, "", fa)
    _flatten(b, "", fb)
    lines = []
    for k in sorted(set(fa) | set(fb)):
        if k not in fb:
            lines.append(f"{label}: {k} removed (was {fa[k]!r})")
        elif k not in fa:
            lines.append(f"{label}: {k} added: {fb[k]!r}")
        elif fa[k] != fb[k]:
            lines.append(f"{label}: {k}: {fa[k]!r} -> {fb[k]!r}")
    return lines


def diff(a: Matrix, b: Matrix) -> list[str]:
    """Human-readable differences from matrix `a` to matrix `b` (empty list if none)."""
    lines: list[str] = []
    if a.version != b.version:
        lines.append(f"matrix_version: {a.version} -> {b.version}")
    ra = {str(r.version): r for r in a.releases}
    rb = {str(r.version): r for r in b.releases}
    for v in sorted(set(ra) - set(rb), key=Version):
        lines.append(f"release {v} removed")
    for v in sorted(set(rb) - set(ra), key=Version):
        lines.append(f"release {v} added")
    for v in sorted(set(ra) & set(rb), key=Version):
        lines += _diff_maps(ra[v].raw, rb[v].raw, f"release {v}")
    ga = {k: v for k, v in a.raw.items() if k not in ("releases", "matrix_version", "urls")}
    gb = {k: v for k, v in b.raw.items() if k not in ("releases", "matrix_version", "urls")}
    lines += _diff_maps(ga, gb, "global")
    return lines


if __name__ == "__main__":  # pragma: no cover - a developer's command
    import sys

    if sys.argv[1:] != ["--compile"]:
        sys.exit("usage: python -m nodecheck.matrix --compile")
    print("\n".join(map(str, compile_bundled())))
