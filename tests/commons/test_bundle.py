"""Bundles: contents, manifest verification, filters, and a faithful, transactional round trip."""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from a4nn.cli.export import export, verify
from a4nn.cli.main import main
from a4nn.commons.bundle import export_bundle, import_bundle, verify_bundle
from a4nn.errors import A4nnError, InputFormatError
from a4nn.lineage.database import Database
from a4nn.lineage.frames import architectures_frame, epochs_frame, predictions_frame
from a4nn.lineage.models import (Checkpoint, Dataset, EngineConfig, Genome, GenomeParent, Publication, Search)
from a4nn.lineage.recorder import Recorder
from a4nn.migrations.runner import upgrade_database
from trail_fixture import OTHER_SEARCH, SEARCH_NAME, Trail, fill_trail

VOLATILE = {"id", "search_id", "genome_id", "architecture_id", "created_at", "finished_at"}
TABLE_FILES = [f"{name}.{ext}" for name in ("architectures", "epochs", "predictions", "genomes", "genome_parents",
                                            "checkpoints") for ext in ("parquet", "csv")]


@pytest.fixture
def trail(recorder: Recorder, tmp_path: Path) -> Trail:
    return fill_trail(recorder, tmp_path / "weights")


@pytest.fixture
def empty_target(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'target.db'}"
    upgrade_database(url)
    target = Database.open(url)
    yield target
    target.dispose()


def snapshot(database: Database, search_names: list[str]) -> dict[str, Any]:
    """Everything the record trail of some searches holds, minus surrogate ids and timestamps."""
    with database.engine.connect() as connection:
        searches = connection.execute(select(Search).where(Search.name.in_(search_names)).order_by(Search.name)).all()
        ids = [s.id for s in searches]
        genomes = {g.id: g for g in connection.execute(select(Genome)).all()}
        datasets = {d.id: (d.name, d.kind, d.beam, d.attributes) for d in connection.execute(select(Dataset)).all()}
        engines = {e.id: (e.function, e.c_min, e.e_pred, e.n, e.r, e.bounds, e.extra, e.content_hash)
                   for e in connection.execute(select(EngineConfig)).all()}
        parents = sorted((genomes[p.child_id].hash, genomes[p.parent_id].hash, p.operator)
                         for p in connection.execute(select(GenomeParent)).all())
        checkpoints = connection.execute(select(Checkpoint.architecture_id, Checkpoint.epoch, Checkpoint.sha256,
                                                Checkpoint.size_bytes, Checkpoint.format)).all()
    # host is not compared: the host name stays on the machine that ran the search (issue 23)
    search_rows = [(s.name, s.nas, datasets.get(s.dataset_id), engines.get(s.engine_config_id), s.config, s.seed,
                    s.status, s.code_version) for s in searches]
    architectures = architectures_frame(database, ids)
    key_of = {r.id: (r.search_name, r.generation, r.index) for r in architectures.itertuples()}
    architectures["genome_hash"] = [genomes[g].hash if pd.notna(g) else None for g in architectures["genome_id"]]

    def keyed(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame["key"] = [key_of[a] for a in frame["architecture_id"]]
        frame = frame[frame["architecture_id"].isin(list(key_of))]
        return frame.drop(columns=[c for c in frame.columns if c in VOLATILE]).sort_values(["key", "epoch"]) \
            .reset_index(drop=True)

    frames = {
        "architectures": architectures.drop(columns=[c for c in architectures.columns if c in VOLATILE])
        .sort_values(["search_name", "generation", "index"]).reset_index(drop=True),
        "epochs": keyed(epochs_frame(database, list(key_of))),
        "predictions": keyed(predictions_frame(database, list(key_of))),
    }
    return {"searches": search_rows, "parents": parents, "frames": frames,
            "checkpoints": sorted((key_of[c.architecture_id], c.epoch, c.sha256, c.size_bytes, c.format)
                                  for c in checkpoints if c.architecture_id in key_of)}


def assert_same_trail(source: dict[str, Any], target: dict[str, Any]) -> None:
    assert source["searches"] == target["searches"]
    assert source["parents"] == target["parents"]
    assert source["checkpoints"] == target["checkpoints"]
    for name in ("architectures", "epochs", "predictions"):
        pd.testing.assert_frame_equal(source["frames"][name], target["frames"][name], check_dtype=False)


def test_bundle_holds_tables_metadata_readme_and_manifest(database, trail: Trail, tmp_path: Path) -> None:
    result = export_bundle(database, trail.search_id, tmp_path / "bundle", "per-epoch")
    bundle = result.folder
    names = set(result.manifest["files"])
    assert set(TABLE_FILES) <= names
    assert {"search.json", "engine_config.json", "README.md"} <= names
    assert sorted(n for n in names if n.startswith("checkpoints/")) == [
        f"checkpoints/{SEARCH_NAME}/g000_i0000_e2.pt", f"checkpoints/{SEARCH_NAME}/g000_i0000_e4.pt",
        f"checkpoints/{SEARCH_NAME}/g000_i0001_e4.pt"]
    assert verify_bundle(bundle).ok

    doc = json.loads((bundle / "search.json").read_text())
    search = doc["searches"][0]
    assert (search["name"], search["seed"], search["config"], search["code_version"]) == \
        (SEARCH_NAME, 7, {"pop": 3, "gens": 2, "lr": 0.025}, "0.1.0+test")
    assert search["dataset"] == {"name": "xfel-sim-low", "kind": "xfel-sim", "beam": "low",
                                 "attributes": {"beam": "low", "intensity": 1e14, "n_train": 64}}
    environment = doc["exported_by"]["environment"]
    assert environment["python"] and environment["platform"] and "pandas" in environment["packages"]
    assert json.loads((bundle / "engine_config.json").read_text())[SEARCH_NAME]["extra"] == {"strategy": "penguin"}

    epochs = pd.read_parquet(bundle / "epochs.parquet")
    assert len(epochs) == len(pd.read_csv(bundle / "epochs.csv")) == 11
    nan_row = epochs[(epochs["index"] == 0) & (epochs["epoch"] == 1.5)].iloc[0]
    assert math.isnan(nan_row["train_loss"]) and json.loads(nan_row["nonfinite"]) == {"train_loss": "nan"}
    predictions = pd.read_parquet(bundle / "predictions.parquet")
    assert predictions["value"].tolist()[0] == math.inf
    models = pd.read_parquet(bundle / "architectures.parquet")
    assert models[models["status"] == "failed"]["fitness"].tolist() == [-math.inf]
    assert set(pd.read_parquet(bundle / "genome_parents.parquet")["operator"]) == {"crossover", "mutation"}
    readme = (bundle / "README.md").read_text()
    assert "pd.read_parquet" in readme and "final_acc" in readme and "genome_hash" in readme

    with database.engine.connect() as connection:
        publications = connection.execute(select(Publication.target, Publication.url, Publication.search_id)).all()
    assert publications == [("bundle", bundle.resolve().as_uri(), trail.search_id)]


def test_round_trip_into_an_empty_database_has_identical_rows(database, trail: Trail, empty_target,
                                                             tmp_path: Path) -> None:
    bundle = export_bundle(database, SEARCH_NAME, tmp_path / "bundle", "per-epoch").folder
    imported = import_bundle(empty_target, bundle)
    assert (imported.architectures, imported.epochs, imported.predictions, imported.checkpoints) == (4, 11, 2, 3)
    assert_same_trail(snapshot(database, [SEARCH_NAME]), snapshot(empty_target, [SEARCH_NAME]))
    frame = architectures_frame(empty_target)
    failed = frame[frame["status"] == "failed"].iloc[0]
    assert failed["fitness"] == -math.inf and failed["nonfinite"] == {"fitness": "-inf"}
    running = frame[frame["status"] == "running"].iloc[0]
    assert running["final_acc"] is None or math.isnan(running["final_acc"])

    with empty_target.engine.connect() as connection:
        assert connection.execute(select(Search.host)).scalars().all() == [None]  # never published
    again = import_bundle(empty_target, bundle)  # idempotent: same search, nothing added
    assert again.search_ids == imported.search_ids
    assert len(epochs_frame(empty_target)) == 11


def _start_time(text: str | None) -> datetime | None:
    """An exported start time as UTC (SQLite exports it naive, PostgreSQL with its offset)."""
    if text is None:
        return None
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def test_start_times_round_trip_not_recorded_included(database, empty_target, tmp_path: Path) -> None:
    """No start time (an ICPP'23 import) exports as null and imports as NULL; a recorded one comes back as it
    was, not as the time of the import."""
    recorder = Recorder(database)
    recorded = datetime(2026, 11, 1, 8, 30, tzinfo=timezone.utc)
    undated = recorder.start_search("undated", "icpp23-import", config={"started_at": None, "ingested_at": "x"},
                                    status="completed", started_at=None)
    dated = recorder.start_search("dated", "nsga-net-macro", started_at=recorded)
    for search in (undated, dated):
        arch = recorder.start_architecture(search, 0, 0, flops=10.0)
        recorder.log_epoch(arch, 1, val_acc=50.0)
        recorder.finish_architecture(arch, "completed", final_acc=50.0, fitness=50.0)
    for name, expected in (("undated", None), ("dated", recorded)):
        bundle = export_bundle(database, name, tmp_path / name).folder
        exported = json.loads((bundle / "search.json").read_text())["searches"][0]
        assert "started_at" in exported and _start_time(exported["started_at"]) == expected
        import_bundle(empty_target, bundle)
        with empty_target.engine.connect() as connection:
            stored = connection.execute(select(Search.started_at).where(Search.name == name)).scalar_one()
        assert _start_time(None if stored is None else stored.isoformat()) == expected
        again = export_bundle(empty_target, name, tmp_path / f"{name}-again", record=False).folder
        assert _start_time(json.loads((again / "search.json").read_text())["searches"][0]["started_at"]) == expected


def test_final_checkpoints_only_copy_each_networks_last(database, trail: Trail, tmp_path: Path) -> None:
    result = export_bundle(database, trail.search_id, tmp_path / "b", "final")
    copied = sorted(n for n in result.manifest["files"] if n.startswith("checkpoints/"))
    assert [Path(n).name for n in copied] == ["g000_i0000_e4.pt", "g000_i0001_e4.pt"]
    table = pd.read_parquet(result.folder / "checkpoints.parquet")
    assert len(table) == 3 and (table["file"] == "").sum() == 1  # epoch 2 listed, not copied


def test_filter_exports_matching_models_with_their_genome_parents(database, trail: Trail, empty_target,
                                                                  tmp_path: Path) -> None:
    result = export_bundle(database, None, tmp_path / "f", filter_text="beam=low&acc>60")
    models = pd.read_parquet(result.folder / "architectures.parquet")
    assert models[["search", "generation", "index"]].values.tolist() == [[SEARCH_NAME, 0, 0], [SEARCH_NAME, 0, 1]]
    assert set(pd.read_parquet(result.folder / "epochs.parquet")["index"]) == {0, 1}
    assert result.search_ids == [trail.search_id]
    high = export_bundle(database, None, tmp_path / "h", filter_text="acc>=99")
    assert pd.read_parquet(high.folder / "architectures.parquet")["search"].tolist() == [OTHER_SEARCH]
    imported = import_bundle(empty_target, result.folder)
    assert imported.architectures == 2
    with pytest.raises(A4nnError, match="matches no models"):
        export_bundle(database, None, tmp_path / "none", filter_text="acc>100")
    with pytest.raises(A4nnError, match="unknown field"):
        export_bundle(database, None, tmp_path / "bad", filter_text="colour=red")


def test_import_is_one_transaction(database, trail: Trail, empty_target, tmp_path: Path, monkeypatch) -> None:
    bundle = export_bundle(database, trail.search_id, tmp_path / "bundle").folder

    def explode(*_args, **_kwargs):
        raise RuntimeError("disk full halfway")

    monkeypatch.setattr(Recorder, "bulk_predictions", explode)
    with pytest.raises(RuntimeError, match="halfway"):
        import_bundle(empty_target, bundle)
    with empty_target.engine.connect() as connection:
        for model in (Search, Genome, Dataset, EngineConfig):
            assert connection.execute(select(model.id)).first() is None, model.__tablename__


def test_import_refuses_tampered_bundles_and_unrelated_same_named_searches(database, trail: Trail, empty_target,
                                                                           tmp_path: Path) -> None:
    bundle = export_bundle(database, trail.search_id, tmp_path / "bundle").folder
    Recorder(empty_target).start_search(SEARCH_NAME, "random-nn", None, None, {"other": True}, seed=99)
    with pytest.raises(A4nnError, match="different search"):
        import_bundle(empty_target, bundle)
    (bundle / "epochs.csv").write_text("tampered\n")
    with pytest.raises(InputFormatError, match="changed: epochs.csv"):
        import_bundle(empty_target, bundle)


def test_verify_names_missing_changed_and_extra_files(database, trail: Trail, tmp_path: Path) -> None:
    bundle = export_bundle(database, trail.search_id, tmp_path / "b", "final").folder
    runner = CliRunner()
    assert runner.invoke(verify, [str(bundle)]).exit_code == 0
    (bundle / "epochs.csv").write_text("tampered\n")
    (bundle / "genomes.csv").unlink()
    (bundle / "notes.txt").write_text("extra")
    (bundle / ".dataverse.json").write_text("{}")  # publisher state is not part of the bundle
    report = verify_bundle(bundle)
    assert (report.missing, report.changed, report.extra) == (["genomes.csv"], ["epochs.csv"], ["notes.txt"])
    result = runner.invoke(verify, [str(bundle)])
    assert result.exit_code == 1
    for name in ("missing: genomes.csv", "changed: epochs.csv", "not in manifest: notes.txt"):
        assert name in result.output
    (bundle / "MANIFEST.json").unlink()
    assert "MANIFEST.json is missing" in runner.invoke(verify, [str(bundle)]).output


def test_export_cli_by_name_and_by_filter(database_url, trail: Trail, tmp_path: Path, capsys) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(export, [SEARCH_NAME, "--out", str(out), "--db", database_url, "--with-checkpoints", "final"])
    assert result.exit_code == 0, result.output
    assert "4 networks" in result.output and "2 checkpoint files" in result.output
    assert runner.invoke(verify, [str(out)]).exit_code == 0
    filtered = runner.invoke(export, ["--filter", "beam=high", "--out", str(tmp_path / "hi"), "--db", database_url])
    assert filtered.exit_code == 0 and "1 networks" in filtered.output
    # the top-level CLI turns domain errors into one line and exit code 2
    assert main(["export", str(trail.search_id), "--out", str(out), "--db", database_url]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert main(["export", "no-such-search", "--out", str(tmp_path / "x"), "--db", database_url]) == 2
    assert "no search with id or name 'no-such-search'" in capsys.readouterr().err


def test_export_random_nn_format(database_url, trail: Trail, tmp_path: Path) -> None:
    pytest.importorskip("a4nn.commons.random_nn_format")
    out = tmp_path / "rnn"
    result = CliRunner().invoke(export, [str(trail.search_id), "--out", str(out), "--db", database_url,
                                         "--format", "random-nn"])
    assert result.exit_code == 0, result.output
    assert len(list(out.iterdir())) == 4
