"""A reader never creates a database file; writers (ingest, db upgrade) still do.

SQLite makes an empty file (and -wal/-shm) on the first connect to a missing path, so
a mistyped --db used to leave ``nothere.db`` behind and then fail with "no a4nn
schema". Now every reader refuses in one line that says how to get a database.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from cli_helpers import TINY_ICPP, TINY_ICPP_NAME, assert_clean_failure, run_console

READERS = [
    ["report", "1"],
    ["plot", "pareto", "--out", "p.png"],
    ["similar", "1"],
    ["serve", "--port", "0"],
    ["export", "1", "--out", "bundle"],
    ["db", "current"],
]
HOW = "a4nn-commons search --preset quick"


@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0] if c[0] != "db" else "db current")
def test_a_reader_on_a_missing_database_fails_in_one_line_and_leaves_no_file(command: list[str], tmp_path: Path) -> None:
    result = run_console([*command, "--db", "sqlite:///nothere.db"], cwd=tmp_path)
    assert_clean_failure(result, 2, "no lineage database", "nothere.db", HOW)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_resume_on_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    """search --resume is a writer that continues recorded work: it may upgrade a database, not make one."""
    result = run_console(["search", "--resume", "1", "--db", "sqlite:///nothere.db"], cwd=tmp_path)
    assert_clean_failure(result, 2, "no lineage database", "nothere.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_default_database_is_not_created_by_a_reader(tmp_path: Path) -> None:
    result = run_console(["report", "1"], cwd=tmp_path)
    assert_clean_failure(result, 2, "no lineage database", "a4nn.db", HOW)
    assert not list(tmp_path.glob("a4nn.db*"))


def test_the_environment_variable_is_honoured_the_same_way(tmp_path: Path) -> None:
    result = run_console(["similar", "1"], cwd=tmp_path, env={"A4NN_DB_URL": f"sqlite:///{tmp_path / 'env.db'}"})
    assert_clean_failure(result, 2, "no lineage database", "env.db")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", [["db", "upgrade"], ["ingest", "logs", "--quiet"]], ids=["db upgrade", "ingest"])
def test_writers_still_create_the_database(command: list[str], tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / TINY_ICPP_NAME).write_text(TINY_ICPP)
    result = run_console([*command, "--db", "sqlite:///new.db"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "new.db").is_file()
    assert run_console(["db", "current", "--db", "sqlite:///new.db"], cwd=tmp_path).returncode == 0


def test_library_readers_create_nothing(tmp_path: Path) -> None:
    from a4nn.commons import analyzer
    from a4nn.errors import DatabaseNotFoundError, SchemaOutOfDateError
    from a4nn.lineage.database import Database

    url = f"sqlite:///{tmp_path / 'missing.db'}"
    with pytest.raises(DatabaseNotFoundError, match="no lineage database") as caught:
        Database.open(url)
    assert isinstance(caught.value, SchemaOutOfDateError)  # what handles "no schema yet" handles "no file yet"
    with pytest.raises(DatabaseNotFoundError):
        analyzer.load(url)
    from a4nn.api.app import create_app

    with pytest.raises(DatabaseNotFoundError):
        create_app(url)
    assert not list(tmp_path.iterdir())


def test_a_writer_through_the_library_still_creates(tmp_path: Path) -> None:
    from a4nn.lineage.database import Database
    from a4nn.migrations.runner import upgrade_database

    url = f"sqlite:///{tmp_path / 'made.db'}"
    upgrade_database(url)
    Database.open(url).dispose()
    assert (tmp_path / "made.db").is_file()
