"""Options and output helpers shared by the commands."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import click


def root_option(f):
    return click.option(
        "--root", "root", default="/", show_default=True, metavar="DIR",
        help="Probe the node mounted at DIR (e.g. /host in a pod, or a fixture tree). "
             "Every path is read under it; the kernel release comes from DIR/proc.",
    )(f)


def check_root(root: str) -> str:
    if not Path(root).is_dir():
        raise click.BadParameter(f"{root!r} is not a directory", param_hint="--root")
    return root


def node_name(root: str) -> str:
    """The node's name: the root's /etc/hostname, else this machine's hostname under /."""
    if root == "/":
        return os.environ.get("NODE_NAME") or socket.gethostname()
    if os.environ.get("NODE_NAME"):  # set from the downward API in the pod
        return os.environ["NODE_NAME"]
    try:
        name = Path(root, "etc/hostname").read_text(encoding="utf-8", errors="replace").strip()
        if name:
            return name.split()[0][:253]
    except OSError:
        pass
    return f"root:{root}"


def write_json(doc: dict, output: str | None, *, compact: bool = False) -> None:
    """Write to a file atomically (a killed run never leaves half a document), or stdout."""
    text = json.dumps(doc, separators=(",", ":")) if compact else json.dumps(doc, indent=2)
    if output in (None, "-"):
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    path = Path(output)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise click.FileError(str(path), hint=exc.strerror) from exc


def load_matrix(path: str | None, target: str | None):
    """The matrix (and the target release checked against it), or a usage error naming why."""
    from ..matrix import MatrixError, load

    try:
        matrix = load(path)
        if target:
            matrix.release(target)
    except MatrixError as exc:
        raise click.BadParameter(str(exc), param_hint="--matrix/--sysbox") from exc
    return matrix
