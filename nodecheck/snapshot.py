"""Snapshots: the raw probe output plus the parsed facts, so a node can be re-scored later.

The raw text is the source of truth: re-scoring parses it again with the current parsers,
so a snapshot taken today benefits from tomorrow's parser fixes.
"""

from __future__ import annotations

import datetime as _dt
import json
from importlib import resources
from pathlib import Path

import jsonschema

from . import __version__
from .facts import Facts

SCHEMA_ID = "nodecheck.snapshot/v1"


MAX_SNAPSHOT_BYTES = 64 << 20  # the probe caps what it reads; a real snapshot is well under this


class SnapshotError(Exception):
    pass


def schema() -> dict:
    return json.loads(resources.files("nodecheck").joinpath("schemas/snapshot.schema.json").read_text())


def build(node: str, raw: str, *, source: str, stderr: str = "", exit_status: int | None = 0) -> dict:
    facts = _facts(raw)
    return {
        "schema": SCHEMA_ID,
        "node": node,
        "collected_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "nodecheck_version": __version__,
        "source": source,
        "probe": {"exit_status": exit_status, "stderr": stderr[-4000:], "output": raw},
        "facts": facts.to_dict(),
    }


def load(path: str | Path) -> dict:
    from .infile import InputError, read_text

    try:
        # Regular files only, bounded, strict UTF-8: a FIFO or /dev/zero is one line, not a hang.
        text = read_text(str(path), MAX_SNAPSHOT_BYTES, "snapshot")
    except InputError as exc:
        raise SnapshotError(str(exc)) from exc
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:  # bad JSON, a 5000-digit int, `[` x 100000
        raise SnapshotError(f"{path}: not JSON: {str(exc)[:200] or type(exc).__name__}") from exc
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA_ID:
        raise SnapshotError(f"{path}: not a {SCHEMA_ID} document (schema={doc.get('schema') if isinstance(doc, dict) else None!r})")
    try:
        jsonschema.validate(doc, schema())
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise SnapshotError(f"{path}: invalid snapshot at {where}: {exc.message}") from exc
    return doc


def _facts(raw: str) -> Facts:
    # the pipeline's own parse (probe text -> sections -> facts), not a second spelling of it
    from .pipeline import facts_from_output
    return facts_from_output(raw)


def facts_of(doc: dict) -> Facts:
    """Re-parse a snapshot's raw probe output."""
    return _facts(doc["probe"]["output"])


def score(doc: dict, *, matrix, target: str | None = None, ignore=(), source: str | None = None):
    """A snapshot scored now, with this process's parsers, matrix, target and --ignore (a NodeReport)."""
    from .pipeline import score_facts
    return score_facts(doc["node"], facts_of(doc), matrix=matrix, target=target, ignore=ignore, source=source)
