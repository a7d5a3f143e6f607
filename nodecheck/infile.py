"""Reading an input file (--snapshot, --matrix, -i, --hosts-file) with bounds.

A FIFO or a device given as an input must not block the run or fill memory: only regular
files are read (opened non-blocking, so a FIFO fails at once instead of waiting for a
writer), at most `limit` bytes (a larger file is refused, not cut), strictly as UTF-8.
Every failure is an InputError with one line naming the file and why (the CLI: exit 64).
"""

from __future__ import annotations

import os
import stat


class InputError(ValueError):
    pass


def read_text(path: str, limit: int, what: str = "file") -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what}: {exc.strerror or exc}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path}: cannot read {what}: not a regular file")
        if st.st_size > limit:
            raise InputError(f"{path}: {what} is {st.st_size} bytes, over the {limit} byte limit")
        chunks, size = [], 0
        while True:  # st_size can lie (procfs, a growing file): the limit holds on what is read
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise InputError(f"{path}: {what} is over the {limit} byte limit")
            chunks.append(chunk)
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: {what} is not valid UTF-8 (byte {exc.start})") from exc
