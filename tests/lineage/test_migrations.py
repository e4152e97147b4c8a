"""The migrations and the models describe the same schema, and old databases upgrade."""
from __future__ import annotations

import shutil
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

from a4nn.errors import SchemaOutOfDateError
from a4nn.lineage.database import VERSION_TABLE, Database, create_db_engine, current_revision
from a4nn.lineage.models import Base
from a4nn.migrations.runner import downgrade_database, head_revision, upgrade_database

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden_0001.sqlite"


def table_rows(url: str) -> dict[str, list[tuple]]:
    """Every row of every lineage table present in the database, in id order."""
    engine = create_db_engine(url)
    present = set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        rows = {t.name: [tuple(row) for row in connection.execute(text(f'SELECT * FROM "{t.name}" ORDER BY id'))]
                for t in Base.metadata.sorted_tables if t.name in present}
    engine.dispose()
    return rows


def started_at_nullable(url: str) -> bool:
    engine = create_db_engine(url)
    nullable = {column["name"]: column["nullable"] for column in inspect(engine).get_columns("searches")}["started_at"]
    engine.dispose()
    return nullable


def foreign_key_problems(url: str) -> list[tuple]:
    """SQLite's foreign_key_check rows (nothing to check elsewhere: PostgreSQL never leaves a dangling key)."""
    engine = create_db_engine(url)
    with engine.connect() as connection:
        problems = ([tuple(row) for row in connection.execute(text("PRAGMA foreign_key_check"))]
                    if engine.dialect.name == "sqlite" else [])
    engine.dispose()
    return problems


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
    rows_before = table_rows(url)
    assert before["epochs"] > 0 and before["architectures"] > 0 and before["genome_parents"] > 0
    assert "evaluations" not in old_tables and "architecture_parents" not in old_tables  # added by 0003

    upgrade_database(url)  # one transaction through 0002, 0003 and 0004 (which rebuilds searches on SQLite)

    database = Database.open(url)
    assert current_revision(database.engine) == head_revision()
    with database.engine.connect() as connection:
        after = {t.name: connection.execute(text(f'SELECT count(*) FROM "{t.name}"')).scalar() for t in Base.metadata.sorted_tables}
        acc = connection.execute(text("SELECT final_acc FROM architectures ORDER BY id LIMIT 1")).scalar()
        assert connection.execute(text("PRAGMA foreign_key_check")).all() == []
    database.dispose()
    assert {name: count for name, count in after.items() if name in before} == before
    assert after["evaluations"] == after["architecture_parents"] == 0
    assert acc == pytest.approx(91.25)
    # every row as it was, genome_parents.search_id included (ON DELETE SET NULL would have cleared it)
    assert {name: rows for name, rows in table_rows(url).items() if name in rows_before} == rows_before


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


def _insert(connection, table: str, **values) -> int:
    columns = ", ".join(f'"{name}"' for name in values)
    marks = ", ".join(f":{name}" for name in values)
    return connection.execute(text(f'INSERT INTO "{table}" ({columns}) VALUES ({marks}) RETURNING id'), values).scalar_one()


def fill_revision_0003(url: str) -> None:
    """Rows in searches and in every table that points at it or below it, written in the 0003 schema's columns."""
    now = "2026-12-01 10:00:00+00:00"
    engine = create_db_engine(url)
    with engine.begin() as connection:
        dataset = _insert(connection, "datasets", name="sim-low", kind="xfel-sim", beam="low",
                          attributes='{"beam": "low"}', created_at=now)
        engine_config = _insert(connection, "engine_configs", function="a-b^(c-x)", c_min=3, e_pred=25.0, n=3, r=0.5,
                                bounds="[0, 100]", extra="{}", content_hash="c" * 64, created_at=now)
        genomes = [_insert(connection, "genomes", encoding="nsga-net-macro/v1", bits=bits, hash=str(i) * 64)
                   for i, bits in enumerate(["0" * 21, "1" * 21, "01" * 10 + "0"])]
        searches = [_insert(connection, "searches", name=name, nas="nsga-net-macro", dataset_id=dataset,
                            engine_config_id=engine, config='{"epochs": 4}', seed=seed, status="completed",
                            started_at=now, finished_at=now, code_version="0.1", host=None)
                    for name, engine, seed in (("with-engine", engine_config, 1), ("standalone", None, 2))]
        architectures = []
        for position, (search, genome) in enumerate(zip([searches[0], searches[0], searches[1]], genomes)):
            architectures.append(_insert(
                connection, "architectures", search_id=search, genome_id=genome, generation=0, index=position,
                arch="{}", train_params='{"epochs": 4}', flops=10.0 + position, n_params=1000, status="completed",
                epochs_trained=4.0, terminated_early=False, stop_epoch=None, final_acc=90.0 + position,
                predicted_acc=None, fitness=90.0 + position, wall_seconds=1.0, device="cpu", error=None,
                nonfinite=None, created_at=now, finished_at=now))
            for epoch in range(1, 5):
                _insert(connection, "epochs", architecture_id=architectures[-1], epoch=float(epoch), train_loss=0.5,
                        train_acc=80.0, val_loss=0.4, val_acc=85.0 + epoch, seconds=1.0, nonfinite=None)
        _insert(connection, "predictions", architecture_id=architectures[0], epoch=3.0, target_epoch=25.0, value=95.0,
                function="a-b^(c-x)", params="[1, 2, 3]", converged=True, seconds=0.01, nonfinite=None)
        _insert(connection, "checkpoints", architecture_id=architectures[0], epoch=4.0, uri="ckpt/0.pt",
                sha256="d" * 64, size_bytes=10, format="state_dict", created_at=now)
        _insert(connection, "genome_parents", child_id=genomes[1], parent_id=genomes[0], operator="mutation",
                search_id=searches[0])
        _insert(connection, "publications", search_id=searches[0], target="bundle", persistent_id=None, url=None,
                manifest="{}", created_at=now)
        _insert(connection, "evaluations", architecture_id=architectures[1], epoch=4.0, dataset_id=dataset,
                dataset='{"name": "sim-low"}', metrics='{"accuracy": 88.0}', checkpoint_sha256=None, created_at=now)
        _insert(connection, "architecture_parents", child_id=architectures[2], parent_id=architectures[0],
                operator="refine", epoch=4.0, search_id=searches[1])
    engine.dispose()


def test_revision_0004_rebuilds_searches_without_losing_a_row(empty_database_url: str) -> None:
    """0003 -> 0004 keeps every row of searches and of each table below it, links included.

    On SQLite 0004 rebuilds ``searches``; with foreign keys on, that drop would cascade into
    architectures (and so epochs, predictions, checkpoints, evaluations, architecture_parents)
    and clear genome_parents / publications / architecture_parents.search_id.
    """
    url = empty_database_url
    upgrade_database(url, "0003")
    fill_revision_0003(url)
    before = table_rows(url)
    assert all(before[name] for name in before if name != "searches") and len(before["searches"]) == 2
    assert not started_at_nullable(url)

    upgrade_database(url)

    engine = create_db_engine(url)
    assert current_revision(engine) == "0004" == head_revision()
    engine.dispose()
    assert started_at_nullable(url)
    assert table_rows(url) == before
    assert foreign_key_problems(url) == []


def test_revision_0004_leaves_foreign_keys_on_for_the_connection_that_ran_it(tmp_path: Path) -> None:
    """The rebuild turns SQLite foreign keys off for itself only: a caller's own connection gets them back."""
    from alembic import command

    from a4nn.migrations.runner import alembic_config

    url = f"sqlite:///{tmp_path / 'own.sqlite'}"
    upgrade_database(url, "0003")
    fill_revision_0003(url)
    before = table_rows(url)
    engine = create_db_engine(url)
    config = alembic_config(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()
    assert table_rows(url) == before and started_at_nullable(url)


def test_revision_0004_downgrade_fills_start_times_and_upgrades_again(database_url: str) -> None:
    """Down to 0003 every NULL start gets the config's ingested_at, else finished_at, else 1970-01-01 UTC."""
    from a4nn.lineage.models import Search
    from a4nn.lineage.recorder import Recorder

    database = Database.open(database_url)
    recorder = Recorder(database)
    ingested = recorder.start_search("ingested", "icpp23-import", config={"ingested_at": "2026-11-30T12:00:00+00:00"},
                                     status="completed", started_at=None)
    finished = recorder.start_search("finished", "random-nn", config={"ingested_at": "not a time"}, started_at=None)
    recorder.finish_search(finished)
    unknown = recorder.start_search("unknown", "random-nn", started_at=None)
    timed = recorder.start_search("timed", "nsga-net-macro")
    parent = recorder.start_architecture(ingested, 0, 0)
    child = recorder.start_architecture(timed, 0, 0)
    recorder.log_epoch(parent, 1, val_acc=50.0)
    recorder.add_genome_parent(recorder.register_genome("1" * 21), recorder.register_genome("0" * 21), "mutation", unknown)
    with database.engine.begin() as connection:
        connection.execute(text("INSERT INTO architecture_parents (child_id, parent_id, operator, search_id) "
                                "VALUES (:c, :p, 'refine', :s)"), {"c": child, "p": parent, "s": ingested})

    def start_times() -> dict[str, datetime | None]:
        with database.engine.connect() as connection:
            rows = connection.execute(select(Search.name, Search.started_at, Search.finished_at)).all()
        return {name: _utc(started) for name, started, _ in rows} | {"finished_at": _utc(
            next(done for name, _, done in rows if name == "finished"))}

    at_head = start_times()
    assert at_head["ingested"] is at_head["finished"] is at_head["unknown"] is None and at_head["timed"] is not None
    children = {name: rows for name, rows in table_rows(database_url).items() if name != "searches"}
    database.dispose()

    downgrade_database(database_url, "0003")
    assert not started_at_nullable(database_url)
    filled = start_times()
    assert filled["ingested"] == datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
    assert filled["finished"] == filled["finished_at"] is not None
    assert filled["unknown"] == datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert filled["timed"] == at_head["timed"]
    after_downgrade = table_rows(database_url)
    assert {name: rows for name, rows in after_downgrade.items() if name != "searches"} == children
    assert foreign_key_problems(database_url) == []

    upgrade_database(database_url)
    assert started_at_nullable(database_url)
    assert table_rows(database_url) == after_downgrade
    assert foreign_key_problems(database_url) == []


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands DateTime(timezone=True) back naive (stored as UTC), PostgreSQL aware."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
