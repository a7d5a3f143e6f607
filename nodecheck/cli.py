"""The command line: thin. Each subcommand lives in nodecheck/commands/<name>.py."""

from __future__ import annotations

import importlib
import sys

import click

from . import __version__, exitcodes

# (module under nodecheck.commands, attribute): each is a click command or group.
COMMANDS = [
    ("collect", "collect"),
    ("scan", "scan"),
    ("matrix", "matrix"),
    ("install", "install"),
    ("k8s", "k8s"),
]


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=exitcodes.HELP,
)
@click.version_option(__version__, prog_name="nodecheck")
def cli() -> None:
    """Can these Linux nodes run the Sysbox container runtime?

    Collect facts from a node (locally, over SSH, or from a pod that mounts the host at
    /host), score them against the versioned Sysbox compatibility matrix, and roll Sysbox
    out with Ansible to the nodes that pass. Scanning never changes a node.
    """


for _module, _attr in COMMANDS:
    try:
        _mod = importlib.import_module(f"nodecheck.commands.{_module}")
    except ModuleNotFoundError as exc:  # a command not built yet; any other error raises
        if exc.name != f"nodecheck.commands.{_module}":
            raise
        continue
    cli.add_command(getattr(_mod, _attr))


def main(argv: list[str] | None = None) -> int:
    """Entry point: click's own exit codes are remapped to the documented table."""
    try:
        rv = cli.main(args=argv, prog_name="nodecheck", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        exc.show()
        return exitcodes.USAGE
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code if exc.exit_code not in (0, 1) else exitcodes.USAGE
    except click.Abort:
        click.echo("Aborted.", err=True)
        return exitcodes.INTERRUPTED
    except KeyboardInterrupt:
        return exitcodes.INTERRUPTED
    except Exception:  # noqa: BLE001 - a bug: say so, keep the documented exit code
        import traceback
        traceback.print_exc()
        click.echo("nodecheck: internal error (a bug: please report it with the trace above)", err=True)
        return exitcodes.UNKNOWN
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
