"""Opening a lineage database: URL resolution, engine set-up, schema version checks.

One place decides how a URL becomes a working SQLAlchemy engine so that every
command, the API and the tests behave alike: SQLite gets WAL, a busy timeout and
foreign keys; ``postgresql://`` is routed to psycopg 3; anything unusable becomes a
:class:`~a4nn.errors.DatabaseError` with one clear line instead of a traceback.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from a4nn.errors import DatabaseError, DatabaseNotFoundError, SchemaOutOfDateError
from a4nn.lineage.urls import display_url

DEFAULT_URL = "sqlite:///a4nn.db"
ENV_VAR = "A4NN_DB_URL"
VERSION_TABLE = "a4nn_alembic_version"
#: the Alembic revision the ORM models in lineage/models.py map. Stated here rather than read from
#: migrations/ so that lineage never imports the migrations package (which imports lineage); a new
#: revision bumps it, and tests/test_layers.py fails until the two agree.
SCHEMA_REVISION = "0004"
SQLITE_BUSY_TIMEOUT_MS = 30_000
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
#: what a reader says when there is no database yet: the two ways to get one
HOW_TO_GET_ONE = ("make one with `a4nn-commons search --preset quick` or `a4nn-commons ingest PATH` "
                  "(an empty one: `a4nn-commons db upgrade`), or point --db / $A4NN_DB_URL at an existing one")


def resolve_url(url: str | None = None) -> str:
    """The database URL: explicit argument, else ``$A4NN_DB_URL``, else ``sqlite:///a4nn.db``."""
    return url or os.environ.get(ENV_VAR) or DEFAULT_URL


def normalize_url(url: str) -> URL:
    """Parse ``url`` and pick our drivers (psycopg 3 for PostgreSQL); reject other backends."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(f"not a database URL: {display_url(url)!r} (expected e.g. {DEFAULT_URL} or postgresql://user@host/db)") from exc
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise DatabaseError(
            f"unsupported database URL scheme {parsed.drivername!r} in {parsed.render_as_string(hide_password=True)}; "
            f"use sqlite:///PATH or postgresql://USER@HOST/DB"
        )
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001 - DBAPI types
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()


def sqlite_file(url: URL) -> Path | None:
    """The file behind a SQLite URL, or None for in-memory and ``file:`` URI databases."""
    database = url.database
    if not database or database == ":memory:" or str(url.query.get("uri", "")).lower() in ("true", "1"):
        return None
    return Path(database).expanduser().resolve()


def create_db_engine(url: str, *, create: bool = True) -> Engine:
    """A SQLAlchemy engine for ``url`` with the per-backend settings this project relies on.

    ``create=False`` is for readers: SQLite makes an empty file (and its ``-wal``/``-shm``
    companions) on the first connect to a missing path, so a mistyped ``--db`` would
    leave litter behind and then fail on the empty schema; instead a missing file
    raises :class:`DatabaseNotFoundError` saying how to get a database.
    """
    parsed = normalize_url(url)
    kwargs: dict = {"future": True}
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_file(parsed)
        if path is not None:
            folder = path.parent
            if not folder.is_dir():
                raise DatabaseError(f"cannot open {_describe(parsed)}: folder {folder} does not exist")
            if not create and not path.exists():
                raise DatabaseNotFoundError(f"no lineage database at {path} ({_describe(parsed)}); {HOW_TO_GET_ONE}")
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ArgumentError, ImportError) as exc:
        raise DatabaseError(f"cannot use {parsed.render_as_string(hide_password=True)}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        _configure_sqlite(engine)
    return engine


def _describe(url: URL | str) -> str:
    return display_url(url)


def _first_line(exc: BaseException) -> str:
    message = str(getattr(exc, "orig", None) or exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__


def probe(engine: Engine) -> None:
    """Connect once so that an unreachable server or a non-database file fails here, clearly."""
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                connection.execute(text("SELECT count(*) FROM sqlite_master"))
            else:
                connection.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError) as exc:
        raise DatabaseError(f"cannot open database {_describe(engine.url)}: {_first_line(exc)}") from exc


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision stamped in the database, or None for an empty database."""
    if not inspect(engine).has_table(VERSION_TABLE):
        return None
    with engine.connect() as connection:
        row = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).first()
    return row[0] if row else None


class Database:
    """An open lineage database: an engine, a session factory and its URL.

    Use :meth:`open`, which refuses a schema that is behind the code, so that no
    command writes rows into tables that are missing columns.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self.url = engine.url
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str | None = None, *, require_current: bool = True) -> "Database":
        """Open ``url``; with ``require_current`` (readers) it must exist at the head revision.

        A reader never creates a database: a missing SQLite file raises
        :class:`DatabaseNotFoundError` and leaves no file behind. Writers create or
        upgrade the schema first (``a4nn.migrations.runner.upgrade_database``).
        """
        engine = create_db_engine(resolve_url(url), create=not require_current)
        probe(engine)
        if require_current:
            check_current(engine)
        return cls(engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block succeeds and rolls back when it raises."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


def check_current(engine: Engine) -> None:
    """Raise :class:`SchemaOutOfDateError` unless the database is at the code's head revision."""
    found = current_revision(engine)
    head = SCHEMA_REVISION
    if found == head:
        return
    where = _describe(engine.url)
    if found is None:
        raise SchemaOutOfDateError(
            f"{where} has no a4nn schema; run `a4nn-commons db upgrade --db {where}` first"
        )
    raise SchemaOutOfDateError(
        f"{where} is at schema revision {found}, the code needs {head}; run `a4nn-commons db upgrade --db {where}`"
    )
