"""Options and helpers shared by every command that touches a lineage database."""
from __future__ import annotations

from typing import Callable, TypeVar

import click

from a4nn.lineage.database import DEFAULT_URL, ENV_VAR, Database, create_db_engine, resolve_url

F = TypeVar("F", bound=Callable)


def db_option(function: F) -> F:
    """``--db URL``: the lineage database (``$A4NN_DB_URL``, else ``sqlite:///a4nn.db``)."""
    return click.option(
        "--db",
        "db_url",
        envvar=ENV_VAR,
        default=DEFAULT_URL,
        show_default=True,
        metavar="URL",
        help=f"Lineage database URL (sqlite:///PATH or postgresql://USER@HOST/DB); also ${ENV_VAR}.",
    )(function)


def open_db(db_url: str | None, *, upgrade: bool = False, must_exist: bool = False) -> Database:
    """Open the database for a command; ``upgrade=True`` first creates/updates the schema.

    Writers that start new work on a fresh default database (search, ingest) pass
    ``upgrade=True`` so the first run needs no separate ``db upgrade``; every other
    command refuses a schema that is behind with a message naming ``db upgrade``, and
    never creates a database file. ``must_exist=True`` is for writers that continue
    recorded work (``search --resume``): they may upgrade a database but not make one.
    """
    url = resolve_url(db_url)
    if must_exist:
        create_db_engine(url, create=False).dispose()  # DatabaseNotFoundError for a missing SQLite file
    if upgrade:
        from a4nn.migrations.runner import upgrade_database

        upgrade_database(url)
    return Database.open(url)
