"""`nodecheck collect`: probe one node and write a snapshot (raw probe output + facts)."""

from __future__ import annotations

import click

from .. import exitcodes, snapshot
from ..transport import local
from ._common import SECONDS, check_root, dump_yaml, node_name, output_options, root_option, write_json, write_text


@click.command(epilog="Exit codes: 0 snapshot written from a complete probe run; 3 the probe timed out, "
                      "failed or read only part of the node (what was read is still written); 64 usage error; "
                      "74 the output file could not be written; 130 interrupted.")
@root_option
@output_options(("json", "yaml"), default="json",
                file_help="Write the snapshot to PATH, atomically (default: stdout).")
@click.option("--timeout", default=60.0, show_default=True, type=SECONDS,
              help="Hard deadline for the probe, in seconds.")
@click.option("--node", "node", metavar="NAME", help="Node name to record (default: the root's hostname).")
def collect(root: str, output: str, output_file: str | None, timeout: float, node: str | None) -> int:
    """Probe this machine (or the root at --root) and write a nodecheck.snapshot/v1 JSON.

    The snapshot holds the probe's raw output and the facts parsed from it, so the node
    can be scored later with `nodecheck scan --snapshot FILE`, without touching it again.
    Read-only: nothing on the node is changed.
    """
    check_root(root)
    from ..outfile import check_target
    check_target(output_file, "--output-file")  # refused before probing, never replaced after
    run = local.run(root, timeout=timeout)
    if run.timed_out:
        click.echo(f"nodecheck: probe timed out after {timeout:g}s", err=True)
        return exitcodes.UNKNOWN
    source = "local:/" if root == "/" else f"root:{root}"
    doc = snapshot.build(node or node_name(root), run.stdout, source=source,
                         stderr=run.stderr, exit_status=run.exit_status)
    if output == "yaml":
        write_text(dump_yaml(doc), output_file)
    else:
        write_json(doc, output_file)
    if run.exit_status != 0 or not doc["facts"]["probe"]["complete"]:
        click.echo(f"nodecheck: probe exited {run.exit_status}; snapshot written with what was read: "
                   + "; ".join(doc["facts"]["probe"]["problems"]), err=True)
        return exitcodes.UNKNOWN
    return exitcodes.PASS
