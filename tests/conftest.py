"""Shared fixtures: fresh lineage databases on SQLite and, when configured, PostgreSQL.

``A4NN_TEST_POSTGRES_URL`` (CI sets it) adds a PostgreSQL variant of every
database-backed test; each test gets its own throw-away schema, selected through the
connection's ``search_path`` so migrations and queries need no schema awareness.
"""
from __future__ import annotations

import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
#: the published A4NN ICPP'23 logs (TauferLab/Reproducibility_A4NN_ICPP23, folder icpp_training_results/);
#: $A4NN_ICPP23_DIR points at a copy anywhere, else ../shared/data/icpp23 beside the repository
ICPP23_ENV = "A4NN_ICPP23_DIR"
ICPP23_DIR = Path(os.environ[ICPP23_ENV]).expanduser() if os.environ.get(ICPP23_ENV) else SHARED_DIR / "data" / "icpp23"
POSTGRES_ENV = "A4NN_TEST_POSTGRES_URL"

# A shell starts a background job (`pytest ... &`) with SIGINT ignored, and Python then installs no
# KeyboardInterrupt handler; children inherit the ignore. The Ctrl-C tests need SIGINT delivered, so the
# session restores Python's default handler (subprocesses then start with the default disposition).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# The suite loads native extensions with threads of their own (Ray's core worker and gRPC, torch's
# thread pools, Playwright's greenlets). Once every test has passed and pytest has printed its summary,
# CPython's finalization can still crash in one of them: CI saw "Segmentation fault" (exit 139) after
# "1117 passed, 3 skipped". No test's outcome depends on that teardown, so the run ends with pytest's own
# exit status and skips it. A4NN_TEST_FULL_FINALIZE=1 keeps the normal finalization (to chase such a crash).
FULL_FINALIZE_ENV = "A4NN_TEST_FULL_FINALIZE"
_FINISHED_SESSION = pytest.StashKey[pytest.Session]()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    session.config.stash[_FINISHED_SESSION] = session


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_FINISHED_SESSION, None)
    if os.environ.get(FULL_FINALIZE_ENV) == "1" or session is None:
        return
    status = int(session.exitstatus)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get(POSTGRES_ENV) else [])


def _postgres_admin_url() -> str:
    url = make_url(os.environ[POSTGRES_ENV])
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A URL into a fresh PostgreSQL schema, dropped afterwards (skips without the env var)."""
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"{POSTGRES_ENV} not set")
    admin_url = _postgres_admin_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty database on each configured backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lineage.db'}"
    return request.getfixturevalue("postgres_schema_url")


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """A URL to a database upgraded to the head revision."""
    from a4nn.migrations.runner import upgrade_database

    upgrade_database(empty_database_url)
    return empty_database_url


@pytest.fixture
def database(database_url: str):
    """An open :class:`a4nn.lineage.database.Database` at head revision."""
    from a4nn.lineage.database import Database

    db = Database.open(database_url)
    yield db
    db.dispose()


@pytest.fixture
def recorder(database):
    from a4nn.lineage.recorder import Recorder

    return Recorder(database)


@pytest.fixture
def icpp23_dir() -> Path:
    """The published A4NN logs: $A4NN_ICPP23_DIR, else ../shared/data/icpp23 (skips when absent)."""
    if not ICPP23_DIR.is_dir():
        pytest.skip(f"published A4NN logs not found at {ICPP23_DIR} (set {ICPP23_ENV} to the folder holding "
                    f"1gpu/ and 4gpu/, see README 'The published A4NN logs')")
    return ICPP23_DIR
