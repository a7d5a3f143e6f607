"""`diff()`: what changed from one matrix to another, one line per changed fact (`matrix diff`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from packaging.version import Version

from .model import Matrix

__all__ = ["diff"]


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
