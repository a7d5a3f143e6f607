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
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        # A torn last line from a killed run would glue onto our first line: end it.
        size = os.fstat(self._fd).st_size
        if size:
            with open(path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    os.write(self._fd, b"\n")

    def write(self, node: dict) -> None:
        line = json.dumps(node, sort_keys=False, separators=(",", ":"), default=str) + "\n"
        data = line.encode()
        while data:
            n = os.write(self._fd, data)
            data = data[n:]
        os.fsync(self._fd)

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
