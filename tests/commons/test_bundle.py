"""Bundles: export, manifest verification, and a round trip into an empty database."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from a4nn.cli.main import main
from a4nn.commons.bundle import export_bundle, import_bundle, verify_bundle
from a4nn.errors import InputFormatError
from a4nn.lineage.database import Database
from a4nn.lineage.frames import architectures_frame, epochs_frame, predictions_frame
from a4nn.migrations.runner import upgrade_database

VOLATILE = {"id", "search_id", "genome_id", "architecture_id", "created_at", "finished_at"}


@pytest.fixture
def search(recorder, tmp_path: Path) -> int:
    dataset = recorder.register_dataset("sim-low", "xfel-sim", {"beam": "low", "n_train": 10})
    engine = recorder.register_engine_config("a-b^(c-x)", 3, 25, 3, 0.5, (0, 100), {"strategy": "penguin"})
    search = recorder.start_search("bundle-me", "nsga-net-macro", dataset, engine, {"pop": 2, "epochs": 4}, seed=5)
    parent = recorder.register_genome("0" * 21)
    child = recorder.register_genome("1" * 21)
    recorder.add_genome_parent(child, parent, "crossover", search)
    for index, genome in enumerate((parent, child)):
        arch = recorder.start_architecture(search, index=index, genome_id=genome, arch={"phases": [index]},
                                           train_params={"lr": 0.025}, flops=10.0 * (index + 1), n_params=100)
        for epoch in range(1, 5):
            recorder.log_epoch(arch, epoch, train_loss=1 / epoch, val_acc=float("nan") if epoch == 2 else 60.0 + epoch)
            recorder.log_prediction(arch, epoch, 25, float("inf") if epoch < 4 else 70.0, "a-b^(c-x)",
                                    None if epoch < 4 else [1.0, 2.0, 3.0], epoch == 4, 0.01)
        checkpoint = tmp_path / f"a{index}.pt"
        checkpoint.write_bytes(b"w" * (index + 10))
        recorder.log_checkpoint(arch, 4, checkpoint)
        recorder.finish_architecture(arch, "stopped" if index else "completed", final_acc=64.0, predicted_acc=70.0,
                                     fitness=float("nan") if index else 64.0, terminated_early=bool(index),
                                     stop_epoch=4 if index else None, wall_seconds=3.0)
    recorder.finish_search(search)
    return search


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in frame.columns if c in VOLATILE]).reset_index(drop=True)


def test_round_trip_into_an_empty_database(database, search, tmp_path: Path) -> None:
    bundle = export_bundle(database, search, tmp_path / "bundle", with_checkpoints="final")
    assert verify_bundle(bundle) == []
    for name in ("architectures", "epochs", "predictions", "genomes", "genome_parents"):
        assert (bundle / f"{name}.parquet").is_file() and (bundle / f"{name}.csv").is_file()
    assert len(list((bundle / "checkpoints").iterdir())) == 2
    assert json.loads((bundle / "search.json").read_text())["exported_by"]["python"]

    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    upgrade_database(other_url)
    other = Database.open(other_url)
    new_search = import_bundle(other, bundle)
    pd.testing.assert_frame_equal(comparable(architectures_frame(database, search)), comparable(architectures_frame(other, new_search)))
    pd.testing.assert_frame_equal(comparable(epochs_frame(database, search_id=search)), comparable(epochs_frame(other, search_id=new_search)))
    pd.testing.assert_frame_equal(comparable(predictions_frame(database, search_id=search)),
                                  comparable(predictions_frame(other, search_id=new_search)))
    again = architectures_frame(other, new_search)
    assert math.isnan(again.loc[1, "fitness"]) and again.loc[1, "nonfinite"] == {"fitness": "nan"}
    assert import_bundle(other, bundle) == new_search  # idempotent: the same search, nothing added
    assert len(epochs_frame(other)) == 8


def test_verify_names_changed_missing_and_extra_files(database, search, tmp_path: Path, capsys) -> None:
    bundle = export_bundle(database, search, tmp_path / "b")
    (bundle / "epochs.csv").write_text("tampered\n")
    (bundle / "genomes.csv").unlink()
    (bundle / "notes.txt").write_text("extra")
    problems = verify_bundle(bundle)
    assert problems == ["changed: epochs.csv", "missing: genomes.csv", "not in manifest: notes.txt"]
    assert main(["verify", str(bundle)]) == 1
    with pytest.raises(InputFormatError, match="manifest"):
        import_bundle(database, bundle)


def test_export_cli_refuses_a_non_empty_folder(database_url, search, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli"
    assert main(["export", str(search), "--out", str(out), "--db", database_url]) == 0
    assert main(["verify", str(out)]) == 0
    assert main(["export", str(search), "--out", str(out), "--db", database_url]) == 2
    assert "not empty" in capsys.readouterr().err
