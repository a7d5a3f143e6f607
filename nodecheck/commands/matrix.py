"""`nodecheck matrix list|show|validate|diff`: read the Sysbox compatibility matrix."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from .. import exitcodes
from .. import matrix as mx
from ._common import dump_yaml, output_options


class MatrixUsageError(click.ClickException):
    exit_code = exitcodes.USAGE


def _load(path: str | None) -> mx.Matrix:
    try:
        return mx.load(path)
    except mx.MatrixError as exc:
        raise MatrixUsageError(str(exc)) from exc


def _console():  # noqa: ANN202 - rich is imported lazily
    from rich.console import Console

    return Console(no_color=bool(os.environ.get("NO_COLOR")), highlight=False, soft_wrap=False)


def _minors(minors: tuple[str, ...]) -> str:
    if not minors:
        return "-"
    nums = [int(m.split(".")[1]) for m in minors]
    if nums == list(range(nums[0], nums[0] + len(nums))) and len(nums) > 1:
        return f"{minors[0]}–{minors[-1]}"
    return ", ".join(minors)


def _sha_known(r: mx.Release) -> str:
    parts = []
    for arch in r.archs:
        arts = r.artifacts_for(arch)
        known = sum(1 for a in arts if a.sha256)
        parts.append(f"{arch} {'yes' if known == len(arts) and arts else ('partly' if known else 'no')}")
    return ", ".join(parts)


MATRIX_OPT = click.option("--matrix", "matrix_path", type=click.Path(dir_okay=False), default=None,
                          help="Matrix file (default: $NODECHECK_MATRIX or the bundled matrix/sysbox.yaml).")
FORMAT_OPT = output_options(("table", "json", "yaml"), default="table")


@click.group("matrix")
def matrix() -> None:
    """Read the versioned Sysbox compatibility matrix (data with a JSON Schema)."""


@matrix.command("list")
@MATRIX_OPT
@FORMAT_OPT
def list_cmd(matrix_path: str | None, output: str) -> None:
    """One line per Sysbox release: date, archs, K8s minors, containerd pin, SHA256 known."""
    m = _load(matrix_path)
    if output in ("json", "yaml"):
        rows = [{"release": str(r.version), "date": r.date.isoformat(), "archs": list(r.archs),
                 "k8s_minors": list(r.k8s_minors),
                 "containerd_pin": r.containerd_pin.version if r.containerd_pin else None,
                 "sha256": {a.filename: a.sha256 for a in r.artifacts}} for r in m.releases]
        doc = {"matrix_version": m.version, "releases": rows}
        click.echo(json.dumps(doc, indent=2) if output == "json" else dump_yaml(doc), nl=output == "json")
        return
    from rich.table import Table

    t = Table(title=f"Sysbox CE compatibility matrix {m.version}", title_justify="left")
    for col in ("release", "date", "archs", "K8s minors", "containerd pin", "sha256 known"):
        t.add_column(col, no_wrap=col in ("release", "date"))
    for r in m.releases:
        t.add_row(str(r.version), r.date.isoformat(), ", ".join(r.archs), _minors(r.k8s_minors),
                  (r.containerd_pin.version if r.containerd_pin and r.containerd_pin.version else "-"),
                  _sha_known(r))
    _console().print(t)
    if m.never_released:
        click.echo(f"Never released: {', '.join(m.never_released)}")


def _show_text(m: mx.Matrix, r: mx.Release) -> str:
    out: list[str] = []
    add = out.append
    add(f"Sysbox CE {r.version}  (released {r.date.isoformat()}"
        f"{', tag ' + r.tag_commit if r.tag_commit else ''}; matrix {m.version})")
    add(f"  source: {r.source}")
    for n in r.notes:
        add(f"  note: {n}")
    if r.highlights:
        add("Highlights:")
        out.extend(f"  - {h}" for h in r.highlights)
    add("Distros (min kernel is enforced: the stricter of docs and .deb preinst):")
    for d in r.distros:
        vers = ", ".join(d.versions) if d.versions else "any"
        extra = []
        if d.min_kernel_docs or d.min_kernel_preinst:
            extra.append(f"docs {d.min_kernel_docs or '-'} / preinst {d.min_kernel_preinst or '-'}")
        if not d.listed_in_docs:
            extra.append("not in docs")
        add(f"  {d.id} {vers}{' (' + d.codename + ')' if d.codename else ''}: {d.support}, "
            f"k8s {d.kubernetes}, min kernel {d.min_kernel or 'not stated'}"
            + (f" [{'; '.join(extra)}]" if extra else ""))
        if d.note:
            add(f"      {d.note}")
    add(f"Architectures: {', '.join(r.archs)}")
    add(f"cgroups: v1 {'yes' if r.cgroup_v1 else 'no'}, v2 {'yes' if r.cgroup_v2 else 'no'}")
    s = r.shiftfs
    add(f"shiftfs: {s.policy}; required below {s.required_below_kernel or '-'}, recommended below "
        f"{s.recommended_below_kernel or '-'}; ID-mapped bind mounts from {s.idmapped_bind_mounts_from_kernel or '-'}, "
        f"rootfs from {s.idmapped_rootfs_from_kernel or '-'}")
    if s.note:
        add(f"  {s.note}")
    k = r.kubernetes
    add(f"Kubernetes (installer whitelist): {_minors(k.minors)}"
        + (f"; docs say {_minors(k.docs_minors)}" if k.docs_minors else "")
        + (f"; EOL {_minors(k.eol_minors)}" if k.eol_minors else ""))
    add(f"  installer image: {k.installer_image or 'unknown'}")
    if k.note:
        add(f"  {k.note}")
    rk = r.runtimes["kubernetes"]
    c = rk.get("containerd")
    add(f"  runtime: CRI-O installed by {rk['crio_installed_by']}"
        + (f"; containerd >= {c['min_version']} used natively (containerd {c['userns_bug_from']}–"
           f"{c['userns_bug_to']} have a userns bug)" if c else ""))
    rd = r.runtimes["docker"]
    add(f"Docker: snap {'supported' if rd['snap_supported'] else 'NOT supported'}; userns-remap {rd['userns_remap']}")
    p = r.deb_preinst
    add(f".deb preinst: enforces distro minimums: {'yes' if p['enforces_distro_minimums'] else 'NO'}; "
        f"unsupported distros fail below {p['unsupported_distro_min_kernel']}")
    if p.get("note"):
        add(f"  {p['note']}")
    add("Artifacts:")
    for a in r.artifacts:
        add(f"  {a.arch}{' ' + '-'.join(a.distro) if a.distro else ''}: {a.filename}")
        add(f"      sha256: {a.sha256 or 'unknown'}")
        out.extend(f"      {u}" for u in a.urls)
        if a.note:
            add(f"      note: {a.note}")
    pin = r.containerd_pin
    if pin:
        add(f"containerd pin: {pin.package}={pin.version} in the {pin.where}" if pin.version
            else f"containerd pin: none ({pin.note})")
    if r.rules:
        add("Known problems that can apply:")
        for rule in r.rules:
            add(f"  [{rule.severity}] {rule.id}: {rule.message}")
            add(f"      when {rule.when}; fix: {rule.fix}")
            add(f"      source: {rule.source}")
    return "\n".join(out)


@matrix.command("show")
@click.argument("release")
@MATRIX_OPT
@output_options(("text", "json", "yaml"), default="text")
def show_cmd(release: str, matrix_path: str | None, output: str) -> None:
    """Everything the matrix says about one RELEASE (e.g. 0.6.5)."""
    m = _load(matrix_path)
    try:
        r = m.release(release)
    except mx.MatrixError as exc:
        raise MatrixUsageError(str(exc)) from exc
    if output in ("json", "yaml"):
        doc: dict[str, Any] = {
            "matrix_version": m.version,
            "release": r.raw,
            "rules": [x for x in m.raw["rules"] if x["id"] in {y.id for y in r.rules}],
        }
        click.echo(json.dumps(doc, indent=2) if output == "json" else dump_yaml(doc), nl=output == "json")
    else:
        click.echo(_show_text(m, r))


@matrix.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
def validate_cmd(file: str) -> None:
    """Validate FILE against the matrix schema (exit 0 valid, 64 invalid)."""
    m = _load(file)
    click.echo(f"{file}: valid (schema {m.schema}, matrix_version {m.version}, "
               f"{len(m.releases)} releases {m.releases[0].version}–{m.newest.version})")


@matrix.command("diff")
@click.argument("a", type=click.Path(dir_okay=False))
@click.argument("b", type=click.Path(dir_okay=False))
def diff_cmd(a: str, b: str) -> int:
    """What changed from matrix file A to matrix file B.

    Exit codes as diff(1): 0 no differences, 1 they differ, 64 a file is missing or invalid.
    """
    lines = mx.diff(_load(a), _load(b))
    if not lines:
        click.echo("no differences")
    for line in lines:
        click.echo(line)
    return 1 if lines else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(matrix())
