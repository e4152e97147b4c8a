"""The supervisor: every epoch through the Recorder, engine decisions, checkpoints, fitness, failures."""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from sqlalchemy import select

from _tiny import tiny_split
from a4nn.engine import PredictionEngine
from a4nn.lineage.models import Architecture, Checkpoint, Epoch, Prediction
from a4nn.search.evaluation import Candidate, EpochMetrics, SerialEvaluator, TrainSettings
from a4nn.search.supervision import EpochSupervisor, recorded_result

torch.set_num_threads(1)
BITS = (1, 1, 0, 1, 1, 0, 1) * 3


def make_candidate(recorder, index: int = 0, bits=BITS, search: str = "sup", flops: float | None = None) -> Candidate:
    search_id = recorder.start_search(search, "nsga-net-macro", config={})
    genome_id = recorder.register_genome(list(bits))
    architecture_id = recorder.start_architecture(search_id, index=index, generation=0, genome_id=genome_id,
                                                  flops=flops)
    return Candidate(search_id, 0, index, tuple(bits), genome_id, architecture_id, flops)


def metrics(epoch: int, acc: float) -> EpochMetrics:
    return EpochMetrics(epoch, 0.5, acc, 0.6, acc, 0.01)


def test_engine_stops_a_plateau_and_fitness_is_its_prediction(recorder, tmp_path: Path) -> None:
    candidate = make_candidate(recorder)
    settings = TrainSettings(epochs=20, checkpoints="none")
    supervisor = EpochSupervisor(recorder, PredictionEngine(e_pred=20, r=0.5), candidate, tmp_path, settings)
    curve = [60, 75, 82, 85, 86, 86.2, 86.1, 86.2, 86.1, 86.2, 86.1, 86.2]
    stops = []
    for epoch, acc in enumerate(curve, start=1):
        stops.append(supervisor.on_metrics(metrics(epoch, acc)))
        if stops[-1]:
            break
    assert stops[-1] and len(stops) < len(curve)
    result = supervisor.finish(1.0)
    assert result.status == "stopped" and result.terminated_early
    assert result.fitness == result.predicted_acc and abs(result.fitness - 86.1) < 1.0
    with recorder.database.session() as session:
        row = session.get(Architecture, candidate.architecture_id)
        assert (row.status, row.stop_epoch, row.epochs_trained) == ("stopped", len(stops), len(stops))
        epochs = session.scalars(select(Epoch.epoch).where(Epoch.architecture_id == row.id)).all()
        assert sorted(epochs) == [float(e) for e in range(1, len(stops) + 1)]
        predicted = session.scalars(select(Prediction).where(Prediction.architecture_id == row.id)).all()
        # no row while the engine has too few points to fit (c_min = 3)
        assert predicted and min(p.epoch for p in predicted) == 4.0 and predicted[-1].converged
        assert all(p.target_epoch == 20 for p in predicted)


def test_without_engine_fitness_is_the_last_accuracy(recorder, tmp_path: Path) -> None:
    candidate = make_candidate(recorder)
    supervisor = EpochSupervisor(recorder, None, candidate, tmp_path, TrainSettings(epochs=3, checkpoints="none"))
    assert not any(supervisor.on_metrics(metrics(e, a)) for e, a in [(1, 50.0), (2, 70.0), (3, 65.0)])
    result = supervisor.finish(2.0)
    assert (result.status, result.fitness, result.final_acc, result.terminated_early) == ("completed", 65.0, 65.0, False)


def test_unconverged_network_reports_last_accuracy(recorder, tmp_path: Path) -> None:
    candidate = make_candidate(recorder)
    supervisor = EpochSupervisor(recorder, PredictionEngine(e_pred=4, strategy="penguin"), candidate, tmp_path,
                                 TrainSettings(epochs=4, checkpoints="none"))
    for epoch, acc in enumerate([50.0, 70.0, 60.0, 90.0], start=1):
        supervisor.on_metrics(metrics(epoch, acc))
    result = supervisor.finish(1.0)
    assert result.status == "completed" and result.fitness == 90.0


def test_checkpoint_every_epoch_with_sha256(recorder, tmp_path: Path) -> None:
    data = tiny_split()
    settings = TrainSettings(epochs=2, batch_size=8, channels=4, checkpoints="epoch")
    candidate = make_candidate(recorder)
    evaluator = SerialEvaluator(recorder, lambda: None, data, settings, tmp_path)
    [result] = evaluator.evaluate([candidate])
    assert result.status == "completed" and result.epochs_trained == 2
    with recorder.database.session() as session:
        rows = session.scalars(select(Checkpoint).where(Checkpoint.architecture_id == candidate.architecture_id)
                               .order_by(Checkpoint.epoch)).all()
        assert [r.epoch for r in rows] == [1.0, 2.0]
        for row in rows:
            path = Path(row.uri.removeprefix("file://"))
            assert hashlib.sha256(path.read_bytes()).hexdigest() == row.sha256
    saved = torch.load(path, weights_only=False)
    assert saved["bits"] == list(BITS) and saved["arch"]["phases"] and "state_dict" in saved
    assert (path.parent / "arch.json").exists()


def test_final_mode_keeps_only_the_last_checkpoint(recorder, tmp_path: Path) -> None:
    data = tiny_split()
    settings = TrainSettings(epochs=2, batch_size=8, channels=4, checkpoints="final")
    candidate = make_candidate(recorder)
    SerialEvaluator(recorder, lambda: None, data, settings, tmp_path).evaluate([candidate])
    with recorder.database.session() as session:
        epochs = session.scalars(select(Checkpoint.epoch).where(Checkpoint.architecture_id == candidate.architecture_id)).all()
    assert epochs == [2.0]


def test_a_network_that_raises_is_recorded_failed_and_the_rest_still_train(recorder, tmp_path: Path) -> None:
    data = tiny_split()
    settings = TrainSettings(epochs=1, batch_size=8, channels=4, checkpoints="none")
    broken = make_candidate(recorder, index=0, bits=(1, 0, 1))  # not a 21-bit genome: the decoder raises
    good = make_candidate(recorder, index=1)
    evaluator = SerialEvaluator(recorder, lambda: None, data, settings, tmp_path)
    failed, ok = evaluator.evaluate([broken, good])
    assert failed.status == "failed" and failed.fitness is None and failed.error
    assert ok.status == "completed" and ok.fitness is not None
    with recorder.database.session() as session:
        row = session.get(Architecture, broken.architecture_id)
        assert row.status == "failed" and row.error == failed.error


def test_finished_rows_are_read_back_not_retrained(recorder, tmp_path: Path) -> None:
    data = tiny_split()
    settings = TrainSettings(epochs=1, batch_size=8, channels=4, checkpoints="none")
    candidate = make_candidate(recorder)
    assert recorded_result(recorder, candidate) is None  # still "running"
    evaluator = SerialEvaluator(recorder, lambda: None, data, settings, tmp_path)
    [first] = evaluator.evaluate([candidate])
    [again] = evaluator.evaluate([candidate])
    assert evaluator.trained == 1 and evaluator.reused == 1
    assert (again.status, again.fitness, again.epochs_trained) == (first.status, first.fitness, first.epochs_trained)


def test_unfinished_trail_is_cleared_before_retraining(recorder, tmp_path: Path) -> None:
    data = tiny_split()
    settings = TrainSettings(epochs=2, batch_size=8, channels=4, checkpoints="none")
    candidate = make_candidate(recorder)
    for epoch in (1, 2, 3, 4):  # a stale trail longer than the new run, as after a kill
        recorder.log_epoch(candidate.architecture_id, epoch, val_acc=10.0)
    SerialEvaluator(recorder, lambda: None, data, settings, tmp_path).evaluate([candidate])
    with recorder.database.session() as session:
        rows = session.scalars(select(Epoch).where(Epoch.architecture_id == candidate.architecture_id)).all()
    assert sorted(r.epoch for r in rows) == [1.0, 2.0] and all(r.val_acc != 10.0 for r in rows)
