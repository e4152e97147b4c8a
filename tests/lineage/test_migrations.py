"""The migrations and the models describe the same schema, and old databases upgrade."""
from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from a4nn.errors import SchemaOutOfDateError
from a4nn.lineage.database import VERSION_TABLE, Database, create_db_engine, current_revision
from a4nn.lineage.models import Base
from a4nn.migrations.runner import downgrade_database, head_revision, upgrade_database

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden_0001.sqlite"


def test_autogenerate_finds_no_difference(database_url: str) -> None:
    engine = create_db_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"


def test_own_version_table_and_named_constraints(database_url: str) -> None:
    engine = create_db_engine(database_url)
    inspector = inspect(engine)
    assert inspector.has_table(VERSION_TABLE)
    assert not inspector.has_table("alembic_version")
    for table in Base.metadata.sorted_tables:
        for unique in inspector.get_unique_constraints(table.name):
            assert unique["name"] and unique["name"].startswith("uq_"), (table.name, unique)
        for foreign in inspector.get_foreign_keys(table.name):
            assert foreign["name"] and foreign["name"].startswith("fk_"), (table.name, foreign)
    engine.dispose()


def test_open_refuses_empty_and_outdated_schema(empty_database_url: str) -> None:
    with pytest.raises(SchemaOutOfDateError, match="db upgrade"):
        Database.open(empty_database_url)
    upgrade_database(empty_database_url)
    Database.open(empty_database_url).dispose()
    downgrade_database(empty_database_url, "base")
    with pytest.raises(SchemaOutOfDateError, match="db upgrade"):
        Database.open(empty_database_url)


def test_golden_database_from_first_revision_upgrades_with_rows_intact(tmp_path: Path) -> None:
    copy = tmp_path / "golden.sqlite"
    shutil.copy(GOLDEN, copy)
    url = f"sqlite:///{copy}"
    engine = create_db_engine(url)
    assert current_revision(engine) == "0001"
    old_tables = set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        before = {t.name: connection.execute(text(f'SELECT count(*) FROM "{t.name}"')).scalar()
                  for t in Base.metadata.sorted_tables if t.name in old_tables}
    engine.dispose()
    assert before["epochs"] > 0 and before["architectures"] > 0
    assert "evaluations" not in old_tables and "architecture_parents" not in old_tables  # added by 0003

    upgrade_database(url)

    database = Database.open(url)
    assert current_revision(database.engine) == head_revision()
    with database.engine.connect() as connection:
        after = {t.name: connection.execute(text(f'SELECT count(*) FROM "{t.name}"')).scalar() for t in Base.metadata.sorted_tables}
        acc = connection.execute(text("SELECT final_acc FROM architectures ORDER BY id LIMIT 1")).scalar()
    database.dispose()
    assert {name: count for name, count in after.items() if name in before} == before
    assert after["evaluations"] == after["architecture_parents"] == 0
    assert acc == pytest.approx(91.25)


def test_golden_file_is_a_real_sqlite_database() -> None:
    with sqlite3.connect(GOLDEN) as connection:
        assert connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone() == ("0001",)


def test_revision_0003_evaluations_and_refine_edges(database_url: str) -> None:
    """0003 adds evaluations and architecture_parents (network -> network edges such as ``refine``)."""
    from a4nn.lineage.recorder import Recorder

    database = Database.open(database_url)
    recorder = Recorder(database)
    search = recorder.start_search("s", "nsga-net-macro")
    parent = recorder.start_architecture(search, 0, 0)
    child = recorder.start_architecture(search, 1, 0)
    with database.engine.begin() as connection:
        connection.execute(text("INSERT INTO architecture_parents (child_id, parent_id, operator, epoch) "
                                "VALUES (:c, :p, 'refine', 4)"), {"p": parent, "c": child})
        connection.execute(text("INSERT INTO evaluations (architecture_id, epoch, dataset, metrics, created_at) "
                                "VALUES (:a, 2, '{}', '{\"accuracy\": 50}', '2026-12-01 00:00:00+00:00')"),
                           {"a": child})
    inspector = inspect(database.engine)
    assert {"fk_evaluations_architecture_id_architectures", "fk_evaluations_dataset_id_datasets"} <= {
        fk["name"] for fk in inspector.get_foreign_keys("evaluations")}
    assert {"fk_architecture_parents_child_id_architectures", "fk_architecture_parents_parent_id_architectures"} <= {
        fk["name"] for fk in inspector.get_foreign_keys("architecture_parents")}
    with database.engine.begin() as connection:  # deleting the network deletes its evaluations and edges
        connection.execute(text("DELETE FROM architectures WHERE id = :c"), {"c": child})
        assert connection.execute(text("SELECT count(*) FROM evaluations")).scalar() == 0
        assert connection.execute(text("SELECT count(*) FROM architecture_parents")).scalar() == 0
    database.dispose()
    downgrade_database(database_url, "0002")
    engine = create_db_engine(database_url)
    assert not inspect(engine).has_table("evaluations") and not inspect(engine).has_table("architecture_parents")
    engine.dispose()
    upgrade_database(database_url)
