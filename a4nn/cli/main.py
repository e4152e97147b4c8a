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
    "pull": "a4nn.cli.pull:pull",
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


#: The exit statuses every command keeps to (README "Exit status" repeats this table).
EXIT_OK = 0
EXIT_REJECTED = 1  # the command ran, but some input was rejected or a check failed
EXIT_ERROR = 2  # the command could not run: bad usage or option value, unusable database/server/file
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)

EXIT_STATUS_HELP = """\b
Exit status:
  0    success
  1    the command ran, but some input was rejected or a check failed
       (ingest skipped a file or stopped on --strict; verify found a
       missing, changed or extra file)
  2    the command could not run: bad usage or option value, or an
       unusable database, server, file or id (one line says which)
  130  interrupted (Ctrl-C); a search prints how to resume it
"""


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=EXIT_STATUS_HELP)
@click.version_option(__version__, prog_name="a4nn-commons")
def cli() -> None:
    """Neural architecture search that predicts, records and publishes.

    Every command that opens a lineage database takes --db URL (or the
    A4NN_DB_URL environment variable); the default is sqlite:///a4nn.db in the
    working directory.
    """


def _exit_code(value: object) -> int:
    """The status of ``SystemExit.code`` or of what ``cli.main`` returned.

    Without standalone mode click *returns* the N of ``ctx.exit(N)`` exactly as it
    returns a command's own return value, so commands return None (an int they
    returned would be taken as their status). ``sys.exit("message")`` prints the
    message and exits 1, as Python does.
    """
    if isinstance(value, int):  # bool included: sys.exit(True) is 1, as in Python
        return int(value)
    if isinstance(value, str):
        click.echo(value, err=True)
        return EXIT_REJECTED
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Console entry point: every outcome becomes one of the exit statuses above, never a traceback.

    ``standalone_mode=False`` lets this function, not click, decide the status, so the
    code a command sets with ``ctx.exit(N)`` / ``click.exceptions.Exit(N)`` (which click
    then *returns*) must be passed on, as must ``SystemExit(N)``.
    """
    try:
        returned = cli.main(args=argv, prog_name="a4nn-commons", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return EXIT_INTERRUPTED
    except click.UsageError as exc:
        exc.show()
        return EXIT_ERROR
    except click.ClickException as exc:  # a command refused to run (unknown id, name taken, ...)
        exc.show()
        return EXIT_ERROR
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except A4nnError as exc:
        click.echo(f"error: {exc}", err=True)
        return EXIT_ERROR
    except SystemExit as exc:
        return _exit_code(exc.code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    except OSError as exc:  # a file or socket the user named cannot be used: say which, no traceback
        click.echo(f"error: {exc}", err=True)
        return EXIT_ERROR
    return _exit_code(returned)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
