"""The ``a4nn-commons`` command line.

Sub-commands live in their own modules and are imported only when invoked, so that
``a4nn-commons --help`` does not pay for importing torch, ray or fastapi.
"""
from __future__ import annotations

import importlib
import sys

import click

from a4nn import __version__
from a4nn.errors import A4nnError

#: command name -> "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "db": "a4nn.cli.db:db",
    "engine": "a4nn.cli.engine:engine",
    "search": "a4nn.cli.search:search",
    "serve": "a4nn.cli.serve:serve",
    "ingest": "a4nn.cli.ingest:ingest",
    "export": "a4nn.cli.export:export",
    "verify": "a4nn.cli.export:verify",
    "generate": "a4nn.cli.ingest:generate",
    "publish": "a4nn.cli.export:publish",
    "plot": "a4nn.cli.analyze:plot",
    "report": "a4nn.cli.analyze:report",
    "similar": "a4nn.cli.analyze:similar",
    "model": "a4nn.cli.model:model",
    "refine": "a4nn.cli.model:refine",
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="a4nn-commons")
def cli() -> None:
    """Neural architecture search that predicts, records and publishes.

    Every command that opens a lineage database takes --db URL (or the
    A4NN_DB_URL environment variable); the default is sqlite:///a4nn.db in the
    working directory.
    """


def main(argv: list[str] | None = None) -> int:
    """Console entry point: domain errors become one clear line and exit code 2."""
    try:
        cli.main(args=argv, prog_name="a4nn-commons", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except A4nnError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except SystemExit as exc:  # commands that report "some input was rejected" exit 1
        return exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
