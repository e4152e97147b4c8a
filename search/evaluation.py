"""What the NAS hands to trainers and gets back, and the in-process evaluator.

The NSGA loop only knows the :class:`Evaluator` protocol, so the same loop drives
in-process training (:class:`SerialEvaluator`) and Ray workers.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

from a4nn.engine import PredictionEngine
from a4nn.lineage.recorder import Recorder


@dataclass(frozen=True)
class TrainSettings:
    """Everything configurable about one training run; stored as ``architectures.train_params``."""

    epochs: int = 25
    batch_size: int = 64
    lr: float = 0.025
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    cosine: bool = True
    channels: int = 24
    n_nodes: int = 4
    seed: int = 0
    num_threads: int = 1
    device: str = "cpu"
    checkpoints: str = "epoch"  # "epoch" | "final" | "none"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Candidate:
    """One network the NAS wants evaluated; its architecture row already exists."""

    search_id: int
    generation: int
    index: int
    bits: tuple[int, ...]
    genome_id: int
    architecture_id: int


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    seconds: float


@dataclass
class CandidateResult:
    candidate: Candidate
    status: str
    fitness: float | None
    final_acc: float | None
    predicted_acc: float | None
    epochs_trained: int
    terminated_early: bool
    wall_seconds: float
    error: str | None = None
    flops: float | None = None


class Evaluator(Protocol):
    def evaluate(self, candidates: Sequence[Candidate]) -> list[CandidateResult]: ...

    def close(self) -> None: ...


class SerialEvaluator:
    """Trains candidates one after another in this process, writing through the Recorder."""

    def __init__(self, recorder: Recorder, engine_factory: Callable[[], PredictionEngine | None], data,
                 settings: TrainSettings, run_dir: Path, progress: bool = True):
        self.recorder = recorder
        self.engine_factory = engine_factory
        self.data = data
        self.settings = settings
        self.run_dir = Path(run_dir)
        self.progress = progress

    def evaluate(self, candidates: Sequence[Candidate]) -> list[CandidateResult]:
        from a4nn.search.supervision import EpochSupervisor, recorded_result
        from a4nn.search.trainer import train_network
        from a4nn.search.network import build_network

        results = []
        for candidate in candidates:
            done = recorded_result(self.recorder, candidate)
            if done is not None:  # trained before a kill: never train twice
                results.append(done)
                continue
            self.recorder.clear_architecture_trail(candidate.architecture_id)
            supervisor = EpochSupervisor(self.recorder, self.engine_factory(), candidate, self.run_dir, self.settings)
            start = time.perf_counter()
            try:
                model = build_network(candidate.bits, n_nodes=self.settings.n_nodes, channels=self.settings.channels,
                                      in_channels=self.data.in_channels, n_classes=self.data.n_classes)
                train_network(model, self.data, self.settings, supervisor.on_epoch)
                results.append(supervisor.finish(time.perf_counter() - start))
            except Exception as exc:  # a broken network is a result, the search goes on
                error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                results.append(supervisor.finish(time.perf_counter() - start, error=error))
        return results

    def close(self) -> None:
        pass
