"""The driver-side half of training: record every epoch, ask the engine, decide to stop.

Split from the trainer so that the same supervisor runs in-process or on the Ray
driver while a worker trains: :meth:`EpochSupervisor.on_metrics` needs no model and
:meth:`EpochSupervisor.record_checkpoint` records a file some worker saved with
:meth:`EpochSupervisor.save_checkpoint` (a supervisor built with ``recorder=None``
only saves files).
"""
from __future__ import annotations

import inspect
import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from sqlalchemy import select

from a4nn.lineage.models import Architecture
from a4nn.lineage.recorder import Recorder
from a4nn.lineage.status import FINISHED, ArchitectureStatus
from a4nn.search.evaluation import Candidate, CandidateResult, EpochMetrics, TrainSettings


def checkpoint_dir(run_dir: Path, architecture_id: int) -> Path:
    """Where the checkpoints of one architecture live inside a run folder."""
    return Path(run_dir) / "checkpoints" / f"arch-{architecture_id}"


class EpochSupervisor:
    """Per-architecture state: the engine, the last decision, the record trail."""

    def __init__(self, recorder: Recorder | None, engine: Any | None, candidate: Candidate, run_dir: Path,
                 settings: TrainSettings):
        self.recorder = recorder
        self.engine = engine
        if engine is not None and hasattr(engine, "reset"):
            # a factory that hands back a shared engine must not leak the last curve; the cost is
            # the network's MFLOPs, which a Pareto-aware contender rule ranks it by
            if "cost" in inspect.signature(engine.reset).parameters:
                engine.reset(cost=candidate.flops)
            else:
                engine.reset()
        self.candidate = candidate
        self.settings = settings
        self.checkpoint_dir = checkpoint_dir(run_dir, candidate.architecture_id)
        self.last: EpochMetrics | None = None
        self.prediction: float | None = None
        self.converged = False
        self.stopped = False

    # ----------------------------------------------------------- driver side
    def on_metrics(self, metrics: EpochMetrics) -> bool:
        """Record one epoch, feed the engine, log its prediction; return its stop decision."""
        assert self.recorder is not None, "a file-only supervisor cannot record epochs"
        self.last = metrics
        architecture_id = self.candidate.architecture_id
        self.recorder.log_epoch(architecture_id, metrics.epoch, train_loss=metrics.train_loss,
                                train_acc=metrics.train_acc, val_loss=metrics.val_loss, val_acc=metrics.val_acc,
                                seconds=metrics.seconds)
        if self.engine is None:
            return False
        decision = self.engine.observe(metrics.epoch, metrics.val_acc)
        if getattr(decision, "predicted", True):  # no row where no fit was attempted
            self.recorder.log_prediction(architecture_id, metrics.epoch, self.engine.e_pred, decision.prediction,
                                         decision.function, list(decision.params) if decision.params else None,
                                         decision.converged, decision.fit_seconds)
        self.prediction = decision.prediction if math.isfinite(decision.prediction) else None
        self.converged = bool(decision.converged)
        stop = bool(decision.stop) and metrics.epoch < self.settings.epochs
        self.stopped = stop
        return stop

    def record_checkpoint(self, epoch: int, path: str | Path) -> None:
        """Record a saved checkpoint (sha256 and size are computed by the Recorder)."""
        assert self.recorder is not None, "a file-only supervisor cannot record checkpoints"
        self.recorder.log_checkpoint(self.candidate.architecture_id, epoch, str(path))

    def finish(self, wall_seconds: float, error: str | None = None) -> CandidateResult:
        """Close the architecture row; fitness is the prediction if converged, else the last accuracy."""
        assert self.recorder is not None, "a file-only supervisor cannot finish an architecture"
        final_acc = self.last.val_acc if self.last else None
        if final_acc is not None and not math.isfinite(final_acc):
            final_acc = None
        if error is not None:
            status, fitness = ArchitectureStatus.FAILED, None
        else:
            status = ArchitectureStatus.STOPPED if self.stopped else ArchitectureStatus.COMPLETED
            fitness = self.prediction if (self.converged and self.prediction is not None) else final_acc
            if self.settings.stopped_fitness == "last":  # NSGA-Net/the A4NN fork: the last measured accuracy
                fitness = final_acc
        epochs = self.last.epoch if self.last else 0
        full = status == ArchitectureStatus.COMPLETED and epochs >= self.settings.epochs
        if full and hasattr(self.engine, "complete"):
            self.engine.complete()  # a full curve teaches the search's population prior
        self.recorder.finish_architecture(self.candidate.architecture_id, status, final_acc=final_acc,
                                          predicted_acc=self.prediction, fitness=fitness,
                                          terminated_early=self.stopped and error is None,
                                          stop_epoch=epochs if (self.stopped and error is None) else None,
                                          wall_seconds=wall_seconds, error=error, epochs_trained=epochs)
        return CandidateResult(self.candidate, status, fitness, final_acc, self.prediction, epochs,
                               self.stopped and error is None, wall_seconds, error)

    # ----------------------------------------------------------- worker side
    def save_checkpoint(self, model: torch.nn.Module, epoch: int, final: bool) -> Path | None:
        """Save ``state_dict`` + architecture JSON per the settings; None when nothing is due.

        Written to a temporary name and renamed, so a kill never leaves a truncated
        file behind a recorded sha256.
        """
        mode = self.settings.checkpoints
        if mode == "none" or (mode == "final" and not final):
            return None
        from a4nn.search.network import describe_network

        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        arch = describe_network(list(self.candidate.bits), self.settings.n_nodes)
        arch_path = self.checkpoint_dir / "arch.json"
        if not arch_path.exists():
            arch_path.write_text(json.dumps({"arch": arch, "train_params": self.settings.to_dict(),
                                             "genome_id": self.candidate.genome_id,
                                             "architecture_id": self.candidate.architecture_id}, indent=2))
        path = self.checkpoint_dir / f"epoch-{epoch:03d}.pt"
        temporary = path.with_suffix(".pt.tmp")
        torch.save({"state_dict": model.state_dict(), "bits": list(self.candidate.bits), "epoch": epoch,
                    "arch": arch, "channels": self.settings.channels, "n_nodes": self.settings.n_nodes}, temporary)
        os.replace(temporary, path)
        return path

    def on_epoch(self, metrics: EpochMetrics, model: torch.nn.Module) -> bool:
        """In-process training: record, decide, then checkpoint (the final one knows it is final)."""
        stop = self.on_metrics(metrics)
        final = stop or metrics.epoch >= self.settings.epochs
        path = self.save_checkpoint(model, metrics.epoch, final)
        if path is not None:
            self.record_checkpoint(metrics.epoch, path)
        return stop


def recorded_result(recorder: Recorder, candidate: Candidate) -> CandidateResult | None:
    """The stored outcome of an architecture that already finished (resume), else None."""
    with recorder.database.session() as session:
        row = session.scalar(select(Architecture).where(Architecture.id == candidate.architecture_id))
        if row is None or row.status not in FINISHED:
            return None
        return CandidateResult(candidate, row.status, row.fitness, row.final_acc, row.predicted_acc,
                               int(row.epochs_trained or 0), bool(row.terminated_early), row.wall_seconds or 0.0,
                               row.error, row.flops)
