"""The driver-side half of training: record every epoch, ask the engine, decide to stop.

Split from the trainer so that the same supervisor runs in-process or on the Ray
driver while a worker trains: :meth:`EpochSupervisor.on_metrics` needs no model.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from sqlalchemy import select

from a4nn.engine import PredictionEngine
from a4nn.lineage.models import Architecture
from a4nn.lineage.recorder import Recorder
from a4nn.search.evaluation import Candidate, CandidateResult, EpochMetrics, TrainSettings


class EpochSupervisor:
    """Per-architecture state: the engine, the last decision, the record trail."""

    def __init__(self, recorder: Recorder, engine: PredictionEngine | None, candidate: Candidate, run_dir: Path,
                 settings: TrainSettings):
        self.recorder = recorder
        self.engine = engine
        self.candidate = candidate
        self.settings = settings
        self.checkpoint_dir = Path(run_dir) / "checkpoints" / f"arch-{candidate.architecture_id}"
        self.last: EpochMetrics | None = None
        self.prediction: float | None = None
        self.converged = False
        self.stopped = False

    def on_metrics(self, metrics: EpochMetrics) -> bool:
        """Record one epoch and return the engine's stop decision."""
        self.last = metrics
        self.recorder.log_epoch(self.candidate.architecture_id, metrics.epoch, train_loss=metrics.train_loss,
                                train_acc=metrics.train_acc, val_loss=metrics.val_loss, val_acc=metrics.val_acc,
                                seconds=metrics.seconds)
        if self.engine is None:
            return False
        decision = self.engine.observe(metrics.epoch, metrics.val_acc)
        self.recorder.log_prediction(self.candidate.architecture_id, metrics.epoch, self.engine.e_pred,
                                     decision.prediction, decision.function, decision.params, decision.converged,
                                     decision.fit_seconds)
        self.prediction = decision.prediction if math.isfinite(decision.prediction) else None
        self.converged = decision.converged
        self.stopped = decision.stop and metrics.epoch < self.settings.epochs
        return decision.stop

    def save_checkpoint(self, model: torch.nn.Module, epoch: int, final: bool) -> Path | None:
        mode = self.settings.checkpoints
        if mode == "none" or (mode == "final" and not final):
            return None
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        path = self.checkpoint_dir / f"epoch-{epoch:03d}.pt"
        torch.save({"state_dict": model.state_dict(), "bits": list(self.candidate.bits),
                    "arch": {"n_nodes": self.settings.n_nodes, "channels": self.settings.channels}}, path)
        return path

    def record_checkpoint(self, epoch: int, path: Path) -> None:
        self.recorder.log_checkpoint(self.candidate.architecture_id, epoch, path)

    def on_epoch(self, metrics: EpochMetrics, model: torch.nn.Module) -> bool:
        stop = self.on_metrics(metrics)
        final = stop or metrics.epoch >= self.settings.epochs
        path = self.save_checkpoint(model, metrics.epoch, final)
        if path is not None:
            self.record_checkpoint(metrics.epoch, path)
        return stop

    def finish(self, wall_seconds: float, error: str | None = None) -> CandidateResult:
        """Close the architecture row; fitness is the prediction if converged, else the last accuracy."""
        final_acc = self.last.val_acc if self.last else None
        if error is not None:
            status, fitness = "failed", None
        else:
            status = "stopped" if self.stopped else "completed"
            fitness = self.prediction if (self.converged and self.prediction is not None) else final_acc
        epochs = self.last.epoch if self.last else 0
        self.recorder.finish_architecture(self.candidate.architecture_id, status, final_acc=final_acc,
                                          predicted_acc=self.prediction, fitness=fitness,
                                          terminated_early=self.stopped, stop_epoch=epochs if self.stopped else None,
                                          wall_seconds=wall_seconds, error=error, epochs_trained=epochs)
        return CandidateResult(self.candidate, status, fitness, final_acc, self.prediction, epochs, self.stopped,
                               wall_seconds, error)


def recorded_result(recorder: Recorder, candidate: Candidate) -> CandidateResult | None:
    """The stored outcome of an architecture that already finished (resume), else None."""
    with recorder.database.session() as session:
        row = session.scalar(select(Architecture).where(Architecture.id == candidate.architecture_id))
    if row is None or row.status not in ("completed", "stopped", "failed"):
        return None
    return CandidateResult(candidate, row.status, row.fitness, row.final_acc, row.predicted_acc,
                           int(row.epochs_trained or 0), bool(row.terminated_early), row.wall_seconds or 0.0,
                           row.error, row.flops)
