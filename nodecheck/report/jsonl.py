"""JSON Lines streaming: one `nodecheck.report/v1` node object per line, per host.

Each line is written with a single `write` to a file opened O_APPEND, then flushed and
fsynced, so a run killed at any moment (SIGKILL included) loses only the hosts still
in flight; at worst the last line is torn, and readers here ignore a torn last line.
"""

from __future__ import annotations

import json
import os
from typing import Iterator


def node_name(node: dict) -> str | None:
    n = node.get("node", node.get("name"))
    return n if isinstance(n, str) else None


class JsonlWriter:
    """Append-only writer; safe to call from one thread (the fleet's caller)."""

    def __init__(self, path: str):
        from ..outfile import open_append

        self.path = path
        # A regular file only (a device, FIFO or symlink is refused, exit 64), created 0600.
        self._fd = open_append(path)
        # A torn last line from a killed run would glue onto our first line: end it.
        size = os.fstat(self._fd).st_size
        if size:
            with open(path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    os.write(self._fd, b"\n")

    def write(self, node) -> None:
        """Append one line (a NodeReport or its JSON form); an OSError (ENOSPC, EIO) propagates
        for the caller to report once."""
        from .model import node_dict

        line = json.dumps(node_dict(node), sort_keys=False, separators=(",", ":"), default=str) + "\n"
        data = line.encode()
        start = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            while data:
                n = os.write(self._fd, data)
                data = data[n:]
            os.fsync(self._fd)
        except OSError:
            # A half-written line (disk full mid-line) is cut off again, so the lines already
            # written stay a clean file; best effort: the disk may refuse even that.
            try:
                os.ftruncate(self._fd, start)
            except OSError:
                pass
            raise

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_nodes(path: str) -> Iterator[dict]:
    """Every complete, valid JSON object line; torn or invalid lines are skipped."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError:
            continue  # a torn line from a killed run
        if isinstance(obj, dict):
            yield obj


def done_names(path: str) -> set[str]:
    """Names of the hosts already in the file (for --resume)."""
    return {n for n in (node_name(o) for o in read_nodes(path)) if n}


def _node_validator():
    import jsonschema

    from importlib import resources

    report = json.loads(resources.files("nodecheck").joinpath("schemas/report.schema.json").read_text())
    schema = {"$schema": report.get("$schema"), "$defs": report["$defs"], "$ref": "#/$defs/node"}
    return jsonschema.Draft202012Validator(schema)


def _consistent(node: dict) -> bool:
    """A line's verdict must follow from its own checks (or be unknown with an error), so a
    hand-written `{"verdict": "pass", "checks": []}` is not taken as a pass."""
    from ..vocab import worst

    if node.get("error") is not None:
        return node.get("verdict") == "unknown"
    checks = node.get("checks") or []
    return bool(checks) and node.get("verdict") == worst(c["status"] for c in checks)


def resumable(path: str, *, matrix_version: str, target: str) -> tuple[dict[str, dict], set[str]]:
    """(name -> node) for lines a --resume may keep, and the names of lines it must rescan.

    Kept: valid `nodecheck.report/v1` node objects, consistent with their checks, scored for
    this run's target release and matrix version (written by `scan --output-file`). Anything
    else (a line for another --sysbox, an older matrix, a forged or hand-edited line) is
    rescanned, never merged. The last kept line for a name wins (a rescan appends)."""
    validator = _node_validator()
    kept: dict[str, dict] = {}
    rejected: set[str] = set()
    for obj in read_nodes(path):
        name = node_name(obj)
        if not name:
            continue
        ok = (validator.is_valid(obj) and _consistent(obj)
              and obj.get("matrix_version") == matrix_version
              and isinstance(obj.get("sysbox"), dict) and obj["sysbox"].get("target") == target)
        if ok:
            obj.pop("matrix_version", None)
            kept[name] = obj
        else:
            rejected.add(name)
    return kept, rejected
