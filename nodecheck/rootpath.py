"""Reading a file of a node mounted at a root (`--root /host`) without leaving the root.

An absolute symlink on the node (`etc/hostname -> /run/hostname`) means the node's own
/run, not the controller's: it is re-rooted under the root; `..` stops at the root, as the
kernel does at `/` (the same rules `distro` and NFD apply to a host prefix). Reads are
bounded: regular files only, opened non-blocking (a FIFO never blocks), and at most `limit`
bytes (a huge or endless file is never read whole).
"""

from __future__ import annotations

import os
import stat

MAX_LINKS = 40  # as Linux's ELOOP limit


class RootPathError(OSError):
    pass


def resolve(root: str, path: str) -> str:
    """The controller path of node path `path` under `root`, every link resolved inside it."""
    root = os.path.abspath(root)
    todo = [p for p in path.split("/") if p]
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop(0)
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue  # clamped at the root
        here = os.path.join(root, *done, part)
        try:
            st = os.lstat(here)
        except FileNotFoundError:
            done.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > MAX_LINKS:
                raise RootPathError(40, "Too many levels of symbolic links", path)
            target = os.readlink(here)
            if target.startswith("/"):
                done = []
            todo = [p for p in target.split("/") if p] + todo
            continue
        done.append(part)
    return os.path.join(root, *done)


def read_bounded(root: str, path: str, limit: int = 65536) -> bytes:
    """At most `limit` bytes of a regular file of the node; OSError if not readable or not regular."""
    real = resolve(root, path)
    fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_NOCTTY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RootPathError(0, "not a regular file", path)
        return os.read(fd, limit)
    finally:
        os.close(fd)
