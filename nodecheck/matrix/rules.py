"""The condition language of matrix rules: which facts a condition may read, and how a
`when:` condition evaluates against a node's flat facts (three-valued: unknown facts give None).

A condition is data in matrix/sysbox.yaml (schema $defs.condition); the fact names are `FACTS`
(a test keeps them equal to schema.json's $defs.fact).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..versions import cmp_release, parse_version

__all__ = ["FACTS", "STRING_FACTS", "VERSION_FACTS", "Condition", "Rule", "release_only"]

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
        raw = lookup(facts, self.fact)  # type: ignore[arg-type]
        if raw is None or raw == "":
            return None
        return compare(self.fact, self.op, raw, self.value)  # type: ignore[arg-type]

    def __str__(self) -> str:
        if self.kind == "leaf":
            v = "[" + ", ".join(self.value) + "]" if isinstance(self.value, tuple) else self.value
            return f"{self.fact} {self.op} {v}"
        joiner = " and " if self.kind == "all" else " or "
        return "(" + joiner.join(str(c) for c in self.children) + ")"


def lookup(facts: Mapping[str, Any], name: str) -> Any:
    for key in _ALIASES.get(name, (name,)):
        if facts.get(key) not in (None, ""):
            return facts[key]
    return None


def compare(fact: str, op: str, raw: Any, value: str | tuple[str, ...]) -> bool | None:
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
        cmps.append(cmp_release(have, want))
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
        cond = release_only(self.when)
        if cond is None:
            return True
        return cond.evaluate({"sysbox.release": str(release)}) is not False

    @property
    def facts(self) -> set[str]:
        return self.when.facts()


def release_only(c: Condition) -> Condition | None:
    """The part of a condition that reads only sysbox.release (other leaves dropped as unknown)."""
    if c.kind == "leaf":
        return c if c.fact == "sysbox.release" else None
    kids = tuple(k for k in (release_only(x) for x in c.children) if k is not None)
    if not kids:
        return None
    if c.kind == "any" and len(kids) != len(c.children):
        return None  # another branch could match whatever the release is
    return Condition(c.kind, children=kids)
