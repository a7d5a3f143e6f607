"""Options and output helpers shared by the commands."""

from __future__ import annotations

import json
import os
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
        return os.environ.get("NODE_NAME") or os.uname().nodename  # = gethostname(), without importing socket
    if os.environ.get("NODE_NAME"):  # set from the downward API in the pod
        return os.environ["NODE_NAME"]
    from ..rootpath import read_bounded

    try:
        # Links re-rooted inside the root, a FIFO or /dev/zero never read (nodecheck/rootpath.py).
        name = read_bounded(root, "etc/hostname", 4096).decode("utf-8", errors="replace").strip()
        if name:
            name = "".join(c for c in name.split()[0] if c.isprintable())[:253]
            if name:
                return name
    except OSError:
        pass
    return f"root:{root}"


def write_json(doc: dict, output: str | None, *, compact: bool = False) -> None:
    """Write to a file atomically (a killed run never leaves half a document), or stdout."""
    text = json.dumps(doc, separators=(",", ":")) if compact else json.dumps(doc, indent=2)
    write_text(text + "\n", output)


def write_text(text: str, output: str | None, option: str = "--output-file") -> None:
    """Write to a file atomically (a killed run never leaves half a document), or stdout.

    A path holding a device, FIFO, symlink or directory is refused (exit 64), never replaced;
    a failed write is one line, exit 74 (nodecheck/outfile.py)."""
    if output in (None, "-"):
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from ..outfile import atomic_write

    atomic_write(output, text.encode("utf-8"), option)


class Seconds(click.ParamType):
    """A finite number of seconds in [1, 86400]: `nan` would disable the deadline, `inf` break it."""

    name = "seconds"

    def convert(self, value, param, ctx):
        import math

        try:
            v = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(v) or not 1 <= v <= 86400:
            self.fail(f"{value!r} is not between 1 and 86400 seconds", param, ctx)
        return v


SECONDS = Seconds()
PORT = click.IntRange(1, 65535)


def load_matrix(path: str | None, target: str | None):
    """The matrix (and the target release checked against it), or a usage error naming why."""
    import re

    from ..matrix import MatrixError, load

    # A release is a version and nothing else: '0.7.1; rm -rf /' must not pass as 0.7.1.
    if target is not None and not re.fullmatch(r"v?[0-9]{1,4}(\.[0-9]{1,4}){1,2}", target):
        raise click.BadParameter(f"{target[:80]!r} is not a release like 0.7.1", param_hint="--sysbox")
    try:
        matrix = load(path)
        if target:
            matrix.release(target)
    except MatrixError as exc:
        raise click.BadParameter(str(exc), param_hint="--matrix/--sysbox") from exc
    return matrix


# --- Output flags: one scheme for every command -------------------------------------------
# `-o/--output FORMAT` chooses the format, as in kubectl (`-o json|yaml|wide`);
# `--output-file PATH` chooses where a file goes. Before this scheme `-o` took a file name,
# so `-o json` silently wrote a file called `json`: a value of -o that is not a format is a
# usage error that points at --output-file, never a file. `--format` (the first spelling)
# stays as a hidden alias of -o so scripts and pod manifests keep working.

class OutputFormat(click.ParamType):
    """A format name from a fixed list; anything else (a path) is a usage error naming --output-file."""

    name = "format"

    def __init__(self, choices: tuple[str, ...], has_file: bool):
        self.choices = tuple(choices)
        self.has_file = has_file

    def get_metavar(self, param, ctx=None) -> str:  # click >= 8.2 passes ctx
        return "|".join(self.choices)

    def convert(self, value, param, ctx):
        v = str(value).strip().lower()
        if v in self.choices:
            return v
        hint = ""
        if self.has_file:
            hint = f"; to write to a file use --output-file {value}"
        self.fail(f"{value!r} is not an output format (choose {', '.join(self.choices)}){hint}", param, ctx)


def output_options(formats: tuple[str, ...], *, default: str | None = None, file_help: str | None = None,
                   help: str | None = None):  # noqa: A002 - click's own word
    """Decorator: `-o/--output FORMAT` (+ hidden `--format` alias) and, with file_help,
    `--output-file PATH`. The command receives `output` (a format or None when the command
    picks by TTY) and, with file_help, `output_file`."""
    typ = OutputFormat(formats, has_file=file_help is not None)

    def alias(ctx, param, value):
        if value is None:
            return None
        if ctx.params.get("output") not in (None, value):
            raise click.UsageError("-o/--output and --format disagree; use -o/--output only")
        ctx.meta["nodecheck.format_alias"] = value
        return value

    def primary(ctx, param, value):
        if value is None:
            value = ctx.meta.get("nodecheck.format_alias")
        elif ctx.meta.get("nodecheck.format_alias") not in (None, value):
            raise click.UsageError("-o/--output and --format disagree; use -o/--output only")
        return value if value is not None else default

    def deco(f):
        if file_help is not None:
            f = click.option("--output-file", "output_file", metavar="PATH", help=file_help)(f)
        f = click.option("--format", "format_alias", type=typ, hidden=True, expose_value=False,
                         callback=alias, help="Alias of -o/--output.")(f)
        return click.option("-o", "--output", "output", type=typ, callback=primary,
                            help=help or ("Output format: " + ", ".join(formats)
                                          + (f" (default: {default})." if default else ".")))(f)
    return deco


def dump_yaml(doc) -> str:
    import yaml

    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False)


def ignore_option(f):
    return click.option(
        "--ignore", multiple=True, metavar="CHECK_ID",
        help="Demote this check's fail or unknown to warn, marked ignored in the report (repeatable, "
             "comma-separated, or `all`), like kubeadm's --ignore-preflight-errors. Unknown check ids "
             "are a usage error.")(f)


def check_ignore(ignore, matrix) -> tuple[str, ...]:
    """The --ignore ids, split on commas; a usage error names any id no check has, since a
    typo would otherwise ignore nothing and the gate would fail (or pass) for the wrong reason."""
    ids = tuple(i.strip() for v in ignore for i in v.split(",") if i.strip())
    if not ids:
        return ids  # nothing to check: the checks are not even imported yet (issue 15)
    from ..checks import check_ids

    valid = check_ids(matrix)
    known = {v.lower() for v in valid} | {"all"}
    bad = [i for i in ids if i.lower() not in known]
    if bad:
        raise click.BadParameter(
            f"no check has the id {', '.join(map(repr, bad))}; valid: all, {', '.join(valid)}",
            param_hint="--ignore")
    return ids


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str):
    """'90m', '24h', '7d', '45s' or '0' -> timedelta (None for 0); anything else a usage error."""
    import datetime as dt
    import re

    t = str(text).strip().lower()
    if t in ("0", "0s", "never"):
        return None
    m = re.fullmatch(r"([0-9]+)([smhd])", t)
    if not m or int(m.group(1)) == 0:
        raise click.BadParameter(f"{text!r} is not a duration like 90m, 24h or 7d (0 = never)")
    return dt.timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
