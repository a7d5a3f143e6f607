"""Writing output files without destroying anything that was at the path.

nodecheck often runs as root (the preflight pod, `--become` fleets on the controller), so a
careless rename can replace `/dev/full`, a FIFO another tool reads, or the file a symlink
points at. The rules, for every output path (`--output-file`, `--junit`,
`--nfd-features-file`, `collect --output-file`, `k8s render --output-file`):

- An existing path that is not a regular file (a symlink, FIFO, device, socket or directory)
  is refused with a usage error (exit 64) before anything is written; `-` means stdout.
- Whole documents are written to a fresh temp file in the same directory (O_EXCL, mode 0600)
  and renamed over the target, so a killed run never leaves half a document.
- JSON Lines are appended to a regular file opened O_NOFOLLOW (mode 0600 when created).
- A write that fails (ENOSPC, EROFS, EACCES, ...) is one line naming the file and the reason,
  exit 74 (EX_IOERR); what was already written stays.

The lstat-then-rename check is not race-free against a local attacker swapping the path in
between (renameat2 RENAME_NOREPLACE cannot replace a regular file either); it protects
against mistakes and against paths that are special when the run starts.
"""

from __future__ import annotations

import os
import stat

import click

from . import exitcodes

MODE = 0o600  # reports name hosts, users and kernel versions: readable by the owner only


class OutputRefused(click.UsageError):
    """The path holds something that is not a regular file: never replaced (exit 64)."""


class OutputWriteError(click.ClickException):
    """The file could not be written (disk full, read-only, permission): exit 74."""

    exit_code = exitcodes.OUTPUT_ERROR

    def __init__(self, path: str, exc: OSError):
        reason = exc.strerror or str(exc)
        super().__init__(f"cannot write {path}: {reason}")


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_target(path: str, option: str = "output") -> None:
    """Refuse (exit 64) a path that exists and is not a regular file; `-` (stdout) is fine."""
    if path in (None, "-"):
        return
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputRefused(f"{option} {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise OutputRefused(f"{option} {path} is {_kind(st.st_mode)}: refusing to replace it; "
                            "give a regular file path (or - for stdout)")


def atomic_write(path: str, data: bytes, option: str = "output") -> None:
    """Write `data` to `path` through a temp file + rename (mode 0600); refuse special targets."""
    check_target(path, option)
    import tempfile  # only a run that writes a file needs it (~4 ms of a scan's start-up)

    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise OutputWriteError(path, exc) from exc
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        check_target(path, option)  # narrow the window: still not special just before the rename
        os.replace(tmp, path)
    except OSError as exc:
        _unlink(tmp)
        raise OutputWriteError(path, exc) from exc
    except BaseException:
        _unlink(tmp)
        raise


def open_append(path: str, option: str = "--output-file") -> int:
    """An O_APPEND fd on a regular file (created 0600); refuse special targets without blocking."""
    check_target(path, option)
    try:
        # O_NOFOLLOW: a symlink planted after the check fails with ELOOP; O_NONBLOCK: a FIFO
        # planted after it fails with ENXIO instead of waiting for a reader.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, MODE)
    except OSError as exc:
        if exc.errno in (getattr(os, "ELOOP", 40), 6):  # ELOOP, ENXIO
            raise OutputRefused(f"{option} {path} is not a regular file: refusing to write it") from exc
        raise OutputWriteError(path, exc) from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OutputRefused(f"{option} {path} is not a regular file: refusing to write it")
    os.set_blocking(fd, True)
    return fd


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
