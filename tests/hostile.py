"""Helpers for the hostile-input suite (tests/test_hostile_*.py): the CLI as a subprocess,
and real filesystems that misbehave (a full tmpfs, a read-only mount) built by the tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
HOSTS = ROOT / "tests/fixtures/hosts"
GOOD = HOSTS / "ubuntu-24.04/root"  # passes 0.7.1: any worse verdict under attack is the attack's doing


def nodecheck(*args, timeout: float = 60, env=None, input=None):  # noqa: A002 - subprocess's word
    e = dict(os.environ, NODECHECK_NO_PROGRESS="1", **(env or {}))
    e.pop("NODE_NAME", None)
    return subprocess.run([sys.executable, "-m", "nodecheck.cli", *map(str, args)], capture_output=True,
                          text=True, env=e, cwd=ROOT, timeout=timeout, input=input)


def one_line_error(p) -> str:
    """The stderr of a refused run: one line, no traceback."""
    assert "Traceback" not in p.stderr, p.stderr
    lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    assert lines, "no error message"
    return "\n".join(lines)


def copy_root(dst: Path, src: Path = GOOD) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


@contextlib.contextmanager
def tmpfs(path: Path, *options: str):
    """A real tmpfs at `path` (needs root): `size=16k` fills up, `ro` refuses writes."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    opts = ",".join(options) or "size=1m"
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "nodecheck-test", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
