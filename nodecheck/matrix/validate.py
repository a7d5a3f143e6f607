"""Finding and reading a matrix file, and validating it: JSON Schema 2020-12 (matrix/schema.json),
bounds a hostile file cannot get past (size, YAML alias expansion, depth), then the semantic
checks a schema cannot express (sorted unique releases, artifacts' arches, versions that parse).

jsonschema and PyYAML are imported where used: a run that loads the compiled bundled matrix
needs neither, and they cost ~0.1 s of start-up together.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from .model import MatrixError
from .rules import VERSION_FACTS

__all__ = ["DATA_MATRIX", "ENV", "REPO_MATRIX", "default_path", "read_raw", "read_text", "schema_path",
           "validate_text"]

ENV = "NODECHECK_MATRIX"
_PKG = Path(__file__).resolve().parent.parent
REPO_MATRIX = _PKG.parent / "matrix"  # a checkout (or an editable install)
DATA_MATRIX = _PKG / "data" / "matrix"  # a wheel (setup.py copies matrix/ there)


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
    for d in (REPO_MATRIX, DATA_MATRIX):
        if (d / "sysbox.yaml").is_file():
            return d / "sysbox.yaml"
    raise MatrixError(f"no matrix found: set {ENV}, or install {REPO_MATRIX / 'sysbox.yaml'} "
                      f"or {DATA_MATRIX / 'sysbox.yaml'}")


def schema_path() -> Path:
    """The packaged schema (never one next to a user's file: a copy must not weaken it)."""
    for d in (REPO_MATRIX, DATA_MATRIX):
        if (d / "schema.json").is_file():
            return d / "schema.json"
    raise MatrixError(f"matrix schema not found under {REPO_MATRIX} or {DATA_MATRIX}")


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
    return validate_text(p, read_text(p))


def read_text(p: Path) -> str:
    from ..infile import InputError, read_text

    try:
        return read_text(str(p), MAX_MATRIX_BYTES, "matrix")  # a FIFO, /dev/zero, bad UTF-8: one line
    except InputError as exc:
        raise MatrixError(str(exc)) from exc


def validate_text(p: Path, text: str) -> dict[str, Any]:
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
