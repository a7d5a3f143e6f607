"""The command line: thin. Each subcommand lives in nodecheck/commands/<name>.py."""

from __future__ import annotations

import importlib
import sys

import click

from . import __version__, exitcodes

# name -> (module under nodecheck.commands, attribute, the command's help up to its first blank
# line). A command's module is imported only when that command runs: `nodecheck scan` never pays
# for Kubernetes, Ansible or YAML, and `nodecheck --help` lists the commands from the first
# paragraphs kept here (tests/test_startup.py keeps each equal to the command's own help).
COMMANDS = {
    "collect": ("collect", "collect",
                "Probe this machine (or the root at --root) and write a nodecheck.snapshot/v1 JSON."),
    "scan": ("scan", "scan", "Tell whether nodes can run Sysbox, why not, and how to fix it."),
    "matrix": ("matrix", "matrix", "Read the versioned Sysbox compatibility matrix (data with a JSON Schema)."),
    "install": ("install", "install", "Install Sysbox with Ansible on the hosts that pass the preflight."),
    "k8s": ("k8s", "k8s",
            "Kubernetes: prescan Nodes from the API, check the cluster, scan nodes with the preflight pod."),
}


def _load_command(name: str) -> click.Command | None:
    module, attr, _ = COMMANDS[name]
    try:
        mod = importlib.import_module(f"nodecheck.commands.{module}")
    except ModuleNotFoundError as exc:  # a command not built yet; any other error raises
        if exc.name != f"nodecheck.commands.{module}":
            raise
        return None
    return getattr(mod, attr)


class _LazyCommands(dict):
    """The group's name -> command dict, filled on first use of a name. Bulk access (iterating,
    len, items) loads every command, so code that inspects `cli.commands` sees them all."""

    def _load(self, name) -> None:
        if not dict.__contains__(self, name) and name in COMMANDS:
            cmd = _load_command(name)
            if cmd is not None:
                self[name] = cmd

    def _load_all(self) -> None:
        for name in COMMANDS:
            self._load(name)

    def __contains__(self, name) -> bool:
        self._load(name)
        return dict.__contains__(self, name)

    def __getitem__(self, name):
        self._load(name)
        return dict.__getitem__(self, name)

    def get(self, name, default=None):
        self._load(name)
        return dict.get(self, name, default)

    def __iter__(self):
        self._load_all()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._load_all()
        return dict.__len__(self)

    def keys(self):
        self._load_all()
        return dict.keys(self)

    def items(self):
        self._load_all()
        return dict.items(self)

    def values(self):
        self._load_all()
        return dict.values(self)

    def loaded(self) -> dict:
        return dict(dict.items(self))


class _LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (see COMMANDS)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.commands = _LazyCommands(self.commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        c = self.commands
        return sorted(set(c.loaded() if isinstance(c, _LazyCommands) else c) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click builds the listing from each command's help; a stand-in carrying the first
        # paragraph gives the same line (click shortens only that paragraph) without the import.
        lazy = self.commands
        listing = lazy.loaded()
        for name, (_, _, first) in COMMANDS.items():
            listing.setdefault(name, click.Command(name, help=first))
        self.commands = listing
        try:
            super().format_commands(ctx, formatter)
        finally:
            self.commands = lazy


@click.group(
    cls=_LazyGroup,
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
