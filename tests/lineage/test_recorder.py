"""The Recorder's contract: deduplication, idempotent re-logging, non-finite flags, denormalized columns."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from sqlalchemy import func, select

from a4nn.lineage.frames import architectures_frame, epochs_frame, learning_curves, predictions_frame
from a4nn.lineage.models import Architecture, Checkpoint, EngineConfig, Epoch, Genome, GenomeParent, Prediction


def count(database, model) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def search_id(recorder) -> int:
    dataset = recorder.register_dataset("xfel-sim-low", "xfel-sim", {"beam": "low", "image_size": 32})
    engine = recorder.register_engine_config("a-b^(c-x)", 3, 25, 3, 0.5, (0, 100))
    return recorder.start_search("unit", "nsga-net-macro", dataset, engine, {"pop": 4}, seed=7)


def test_registrations_are_deduplicated(recorder, database) -> None:
    assert recorder.register_dataset("d", "xfel-sim", {"beam": "high"}) == recorder.register_dataset("d", "xfel-sim")
    first = recorder.register_engine_config("a-b^(c-x)", 3, 25, 3, 0.5)
    assert recorder.register_engine_config("a-b^(c-x)", 3, 25.0, 3, 0.5, [0, 100]) == first
    assert recorder.register_engine_config("a-b^(c-x)", 4, 25, 3, 0.5) != first
    bits = [[0, 0, 0, 1, 1, 0, 1], [0] * 7, [1] * 7]
    assert recorder.register_genome(bits) == recorder.register_genome("0001101" + "0" * 7 + "1" * 7)
    assert count(database, EngineConfig) == 2
    assert count(database, Genome) == 1
    assert recorder.start_search("s", "nas") == recorder.start_search("s", "nas")


def test_bad_genome_is_rejected(recorder) -> None:
    with pytest.raises(ValueError, match="bit string"):
        recorder.register_genome("0102")


def test_relogging_an_epoch_replaces_it(recorder, database, search_id) -> None:
    arch = recorder.start_architecture(search_id, index=0)
    assert recorder.start_architecture(search_id, index=0) == arch
    recorder.log_epoch(arch, 1, val_acc=50.0)
    recorder.log_epoch(arch, 1, val_acc=55.0, train_loss=0.3)
    recorder.log_epoch(arch, 1.5, val_acc=60.0)
    assert count(database, Epoch) == 2
    frame = epochs_frame(database, [arch])
    assert frame["val_acc"].tolist() == [55.0, 60.0]
    assert frame["epoch"].tolist() == [1.0, 1.5]


def test_nonfinite_values_are_null_plus_flag_and_restored(recorder, database, search_id) -> None:
    arch = recorder.start_architecture(search_id, index=1)
    recorder.log_epoch(arch, 1, val_acc=float("nan"), val_loss=float("inf"), train_loss=-math.inf)
    recorder.log_prediction(arch, 1, 25, float("inf"), "a-b^(c-x)", [1.0, float("nan"), 2.0], False, 0.01)
    with database.session() as session:
        row = session.scalars(select(Epoch)).one()
        assert row.val_acc is None and row.val_loss is None
        assert row.nonfinite == {"val_acc": "nan", "val_loss": "inf", "train_loss": "-inf"}
        prediction = session.scalars(select(Prediction)).one()
        assert prediction.value is None and prediction.nonfinite == {"value": "inf"}
        assert prediction.params == [1.0, None, 2.0]
    frame = epochs_frame(database, [arch])
    assert math.isnan(frame.loc[0, "val_acc"]) and frame.loc[0, "val_loss"] == math.inf
    assert frame.loc[0, "train_loss"] == -math.inf
    assert predictions_frame(database, [arch]).loc[0, "value"] == math.inf


def test_finish_fills_denormalized_columns(recorder, database, search_id) -> None:
    genome = recorder.register_genome("1" * 21)
    parent = recorder.register_genome("0" * 21)
    recorder.add_genome_parent(genome, parent, "crossover", search_id)
    recorder.add_genome_parent(genome, parent, "crossover", search_id)
    assert count(database, GenomeParent) == 1
    arch = recorder.start_architecture(search_id, index=2, generation=1, genome_id=genome, flops=123.4, n_params=999)
    for epoch in (1, 2, 3):
        recorder.log_epoch(arch, epoch, val_acc=80 + epoch)
    recorder.finish_architecture(arch, "stopped", final_acc=83.0, predicted_acc=88.0, fitness=88.0,
                                 terminated_early=True, stop_epoch=3, wall_seconds=12.0)
    frame = architectures_frame(database, search_id)
    row = frame.set_index("id").loc[arch]
    assert row["epochs_trained"] == 3 and row["terminated_early"]
    assert row["fitness"] == 88.0 and row["beam"] == "low" and row["genome_bits"] == "1" * 21
    with pytest.raises(ValueError):
        recorder.finish_architecture(arch, "exploded")
    curves = learning_curves(database, search_id)
    assert curves[arch].tolist() == [81.0, 82.0, 83.0]


def test_checkpoint_sha256_and_size(recorder, database, search_id, tmp_path: Path) -> None:
    arch = recorder.start_architecture(search_id, index=3)
    path = tmp_path / "state.pt"
    path.write_bytes(b"weights" * 100)
    digest = recorder.log_checkpoint(arch, 1, path)
    recorder.log_checkpoint(arch, 1, path)
    with database.session() as session:
        row = session.scalars(select(Checkpoint)).one()
    assert row.sha256 == digest and len(digest) == 64 and row.size_bytes == 700
    assert row.uri.startswith("file://")


def test_bulk_epochs_upsert(recorder, database, search_id) -> None:
    arch = recorder.start_architecture(search_id, index=4)
    rows = [{"architecture_id": arch, "epoch": e / 2, "val_acc": float(e)} for e in range(1, 81)]
    assert recorder.bulk_epochs(rows) == 80
    recorder.bulk_epochs(rows)
    assert count(database, Epoch) == 80


def test_architectures_cascade_their_epochs(recorder, database, search_id) -> None:
    arch = recorder.start_architecture(search_id, index=5)
    recorder.log_epoch(arch, 1, val_acc=1.0)
    with database.session() as session:
        session.delete(session.get(Architecture, arch))
    assert count(database, Epoch) == 0
