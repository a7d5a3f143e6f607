"""The preflight pod's log -> the document it printed: pure functions of the log text.

A pod log is untrusted text (the node's kubelet serves it; a node being scanned may be
compromised), and it is stdout and stderr interleaved. These functions find the one JSON
document the pod printed, check it against the published schema, and say exactly what is
wrong when it is not there: the caller turns that into an `unknown` row, never a guess.

- Job mode (`nodecheck k8s scan`): the pod runs `nodecheck collect --root /host`, whose
  stdout is one `nodecheck.snapshot/v1` document (indented JSON). The controller re-parses
  the raw probe output with its own parsers and scores it with its own matrix, exactly as
  the SSH fleet does, so `--sysbox`, `--matrix` and `--ignore` mean the same in every mode.
- DaemonSet mode (`--use-daemonset`): the init container ran `nodecheck scan --root /host
  --format json`; its one line is a `nodecheck.report/v1` report holding this one node.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import jsonschema

SNAPSHOT = "nodecheck.snapshot/v1"
REPORT = "nodecheck.report/v1"
MAX_LOG_BYTES = 16 * 1024 * 1024  # a probe run is ~60 KiB; a bigger log is not ours to parse


@dataclass(frozen=True)
class Parsed:
    doc: dict | None  # the validated document, or None
    problem: str  # why there is none ("" when doc is set)


@lru_cache(maxsize=None)
def _schema(name: str) -> dict:
    return json.loads(resources.files("nodecheck").joinpath(f"schemas/{name}").read_text())


def _documents(text: str):
    """Every JSON object that starts at the beginning of a line, in order."""
    dec = json.JSONDecoder()
    pos = 0
    while True:
        i = text.find("{", pos)
        if i < 0:
            return
        if i == 0 or text[i - 1] == "\n":
            try:
                obj, end = dec.raw_decode(text, i)
            except ValueError:
                pos = i + 1
                continue
            if isinstance(obj, dict):
                yield obj
            pos = end
        else:
            pos = i + 1


def _find(text: str, schema_id: str) -> tuple[dict | None, str]:
    if not text.strip():
        return None, "the pod's log is empty"
    if len(text) > MAX_LOG_BYTES:
        return None, f"the pod's log is larger than {MAX_LOG_BYTES} bytes"
    found = [d for d in _documents(text) if d.get("schema") == schema_id]
    if not found:
        tail = " ".join(text.strip().splitlines()[-1:])[:200]
        return None, f"the pod's log holds no {schema_id} document (last line: {tail!r})"
    if len(found) > 1:
        return None, f"the pod's log holds {len(found)} {schema_id} documents, expected one"
    return found[0], ""


def _invalid(exc: jsonschema.ValidationError, schema_id: str) -> str:
    where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
    return f"the pod's {schema_id} document is invalid at {where}: {exc.message[:200]}"


def snapshot_from_log(text: str) -> Parsed:
    doc, problem = _find(text, SNAPSHOT)
    if doc is None:
        return Parsed(None, problem)
    try:
        jsonschema.validate(doc, _schema("snapshot.schema.json"))
    except jsonschema.ValidationError as exc:
        return Parsed(None, _invalid(exc, SNAPSHOT))
    return Parsed(doc, "")


def report_node_from_log(text: str) -> Parsed:
    """The single node of the report the DaemonSet's scan container printed."""
    doc, problem = _find(text, REPORT)
    if doc is None:
        return Parsed(None, problem)
    try:
        jsonschema.validate(doc, _schema("report.schema.json"))
    except jsonschema.ValidationError as exc:
        return Parsed(None, _invalid(exc, REPORT))
    nodes = doc.get("nodes") or []
    if len(nodes) != 1:
        return Parsed(None, f"the pod's report describes {len(nodes)} nodes, expected one")
    return Parsed(nodes[0], "")
