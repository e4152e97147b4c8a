"""The Recorder's bulk loader writes the same rows as the Recorder's one-by-one path (NaN/inf rule included)."""
from __future__ import annotations

import math

import pytest
from sqlalchemy import select

from a4nn.lineage.models import Architecture, Epoch, Prediction

CURVE = [(1.0, 0.9, None, 0.8, 55.0, None), (2.0, float("nan"), None, float("inf"), 60.0, 1.5),
         (3.0, 0.5, 70.0, -math.inf, float("nan"), None)]


def _epochs(database, architecture_id: int) -> list[tuple]:
    with database.session() as session:
        return [(e.epoch, e.train_loss, e.train_acc, e.val_loss, e.val_acc, e.seconds, e.nonfinite)
                for e in session.scalars(select(Epoch).where(Epoch.architecture_id == architecture_id)
                                         .order_by(Epoch.epoch))]


def test_bulk_epochs_equal_the_recorders_own(database, recorder) -> None:
    search = recorder.start_search("s", "random-nn")
    one_by_one = recorder.start_architecture(search, index=0)
    for epoch, train_loss, train_acc, val_loss, val_acc, seconds in CURVE:
        recorder.log_epoch(one_by_one, epoch, train_loss=train_loss, train_acc=train_acc, val_loss=val_loss,
                           val_acc=val_acc, seconds=seconds)
    with recorder.transaction():
        bulk = recorder.bulk.insert_architecture({"search_id": search, "generation": 0, "index": 1,
                                                  "status": "completed", "final_acc": float("nan"), "fitness": 1.0})
        assert recorder.bulk.insert_epochs(bulk, CURVE) == 3
    assert _epochs(database, bulk) == _epochs(database, one_by_one)
    assert _epochs(database, bulk)[1][-1] == {"train_loss": "nan", "val_loss": "inf"}
    with database.session() as session:
        row = session.get(Architecture, bulk)
        assert row.final_acc is None and row.nonfinite == {"final_acc": "nan"} and row.fitness == 1.0


def test_bulk_predictions_follow_the_recorders_rule(database, recorder) -> None:
    search = recorder.start_search("s", "icpp23-import")
    architecture = recorder.start_architecture(search, index=0)
    with recorder.transaction():
        recorder.bulk.insert_predictions([{"architecture_id": architecture, "epoch": 4, "target_epoch": 25,
                                           "value": float("inf"), "function": "f", "params": [1.0, float("nan")],
                                           "converged": False, "seconds": 0.1}])
    with database.session() as session:
        (prediction,) = session.scalars(select(Prediction)).all()
        assert (prediction.value, prediction.nonfinite, prediction.params) == (None, {"value": "inf"}, [1.0, None])


def test_bulk_writes_only_inside_a_transaction(recorder) -> None:
    with pytest.raises(RuntimeError, match="transaction"):
        recorder.bulk.insert_epochs(1, CURVE)


def test_a_rolled_back_file_leaves_nothing(database, recorder) -> None:
    search = recorder.start_search("s", "random-nn")
    with pytest.raises(ValueError):
        with recorder.transaction():
            architecture = recorder.bulk.insert_architecture({"search_id": search, "generation": 0, "index": 0,
                                                              "status": "completed"})
            recorder.bulk.insert_epochs(architecture, CURVE)
            raise ValueError("the file turned out malformed")
    with database.session() as session:
        assert session.scalars(select(Architecture)).all() == [] and session.scalars(select(Epoch)).all() == []
