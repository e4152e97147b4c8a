"""What the NAS hands to trainers and gets back, and the in-process evaluator.

The NSGA loop only knows the :class:`Evaluator` protocol, so the same loop drives
in-process training (:class:`SerialEvaluator`) and Ray workers
(:class:`a4nn.search.distributed.RayEvaluator`). These names are a contract with the
Ray evaluator: change them only together.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from a4nn.errors import A4nnError
from a4nn.lineage.recorder import Recorder

CHECKPOINT_MODES = ("epoch", "final", "none")
#: what the NAS gets for a network the engine stopped: its predicted final accuracy (A4NN) or the last measured one
STOPPED_FITNESS = ("prediction", "last")


class SettingsError(A4nnError):
    """A training setting that cannot work (no epochs, negative learning rate, unknown mode)."""


@dataclass(frozen=True)
class TrainSettings:
    """Everything configurable about one training run; stored as ``architectures.train_params``.

    Defaults are NSGA-Net's macro-search training (SGD 0.025, momentum 0.9, weight
    decay 3e-4, cosine schedule, gradient clip 5) with the A4NN paper's 25 epochs.

    ``precise_bn`` (on by default; NSGA-Net's trainer does not do it): before each
    validation the BatchNorm running statistics are recomputed over the training split
    with the epoch's final weights (PyTorch's ``swa_utils.update_bn``, "precise BN" in
    Wu & Johnson, *Rethinking "Batch" in BatchNorm*, 2021). The running averages
    otherwise lag weights that change fast, and on small data sets the validation curve
    then measures that lag: on the quick preset's simulated data (few batches an epoch)
    validation accuracy jumped between "one class everywhere" and far better from epoch
    to epoch until the learning rate decayed, while the same weights with recomputed
    statistics gave a smooth curve (README, "precise BatchNorm"). Learning-curve
    prediction needs the smooth one. Training itself is unchanged (train-mode BatchNorm
    uses batch statistics); the extra forward pass over the training split costs part of
    an epoch.
    """

    epochs: int = 25
    batch_size: int = 64
    lr: float = 0.025
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    cosine: bool = True
    precise_bn: bool = True      # re-estimate BatchNorm statistics on the training split before validating
    channels: int = 24
    n_nodes: int = 4
    seed: int = 0
    num_threads: int = 1
    device: str = "cpu"          # "cpu", "cuda", "cuda:0"; "auto" resolves at run time
    checkpoints: str = "epoch"   # "epoch" | "final" | "none"
    shuffle: bool = True         # reshuffle the training split every epoch (NSGA-Net's loaders do not)
    stopped_fitness: str = "prediction"  # a stopped network's fitness: the engine's prediction, or "last" accuracy
    # initial weights seeded per trained network (its architecture id) instead of per genome: under NSGA-Net's
    # recipe a genome met again is retrained from another initialisation, as the original's are
    init_per_network: bool = False

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1 (got {self.epochs})")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1 (got {self.batch_size})")
        if self.lr <= 0:
            problems.append(f"lr must be > 0 (got {self.lr})")
        if self.channels < 1 or self.n_nodes < 1:
            problems.append(f"channels and n_nodes must be >= 1 (got {self.channels}, {self.n_nodes})")
        if self.grad_clip <= 0:
            problems.append(f"grad_clip must be > 0 (got {self.grad_clip})")
        if self.checkpoints not in CHECKPOINT_MODES:
            problems.append(f"checkpoints must be one of {', '.join(CHECKPOINT_MODES)} (got {self.checkpoints!r})")
        if self.stopped_fitness not in STOPPED_FITNESS:
            problems.append(f"stopped_fitness must be one of {', '.join(STOPPED_FITNESS)} (got {self.stopped_fitness!r})")
        if problems:
            raise SettingsError("bad training settings: " + "; ".join(problems))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Candidate:
    """One network the NAS wants evaluated; its architecture row already exists."""

    search_id: int
    generation: int
    index: int                  # position in the generation
    bits: tuple[int, ...]       # flat genome
    genome_id: int
    architecture_id: int        # created through Recorder.start_architecture by the driver
    flops: float | None = None  # MFLOPs, the NAS's second objective (the engine's Pareto contender rule uses it)


@dataclass
class EpochMetrics:
    """One validated epoch (``epoch`` is 1-based, as stored in the epochs table)."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    seconds: float


@dataclass
class CandidateResult:
    """The outcome the NAS sees; ``fitness`` is the prediction if converged, else the last accuracy."""

    candidate: Candidate
    status: str                 # an ArchitectureStatus: completed | stopped (early) | failed
    fitness: float | None
    final_acc: float | None
    predicted_acc: float | None
    epochs_trained: int
    terminated_early: bool
    wall_seconds: float
    error: str | None = None
    flops: float | None = None


class Evaluator(Protocol):
    """Trains candidates somewhere and returns their results in the candidates' order."""

    def evaluate(self, candidates: Sequence[Candidate]) -> list[CandidateResult]: ...

    def close(self) -> None: ...


def error_text(exc: BaseException) -> str:
    """One line naming the exception, as stored in ``architectures.error``."""
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


class SerialEvaluator:
    """Trains candidates one after another in this process, writing through the Recorder.

    A candidate whose architecture row is already finished (a resumed search) is read
    back, never trained twice; an unfinished one has its partial trail cleared first,
    so a retrain leaves no stale or duplicated epoch rows.
    """

    def __init__(self, recorder: Recorder, engine_factory: Callable[[], Any], data: Any,
                 settings: TrainSettings, run_dir: Path, progress: bool = False,
                 on_result: Callable[[CandidateResult], None] | None = None):
        self.recorder = recorder
        self.engine_factory = engine_factory
        self.data = data
        self.settings = settings
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.on_result = on_result
        self.trained = 0   # networks trained by this evaluator (resume tests count them)
        self.reused = 0    # finished networks read back from the database

    def evaluate(self, candidates: Sequence[Candidate]) -> list[CandidateResult]:
        from a4nn.search.supervision import recorded_result

        results = []
        bar = None
        if self.progress and candidates:
            from a4nn.progress import progress_bar

            bar = progress_bar(total=len(candidates), desc=f"  generation {candidates[0].generation}", unit="net",
                               leave=False)
        try:
            for candidate in candidates:
                done = recorded_result(self.recorder, candidate)
                if done is not None:  # trained before a kill: never train twice
                    self.reused += 1
                    result = done
                else:
                    result = self._train(candidate)
                    self.trained += 1
                results.append(result)
                if self.on_result:
                    self.on_result(result)
                if bar is not None:
                    bar.set_postfix(acc=f"{result.final_acc:.1f}" if result.final_acc is not None else "failed",
                                    epochs=result.epochs_trained)
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        return results

    def _train(self, candidate: Candidate) -> CandidateResult:
        from a4nn.search.supervision import EpochSupervisor
        from a4nn.search.trainer import build_model, train_network

        self.recorder.clear_architecture_trail(candidate.architecture_id)
        supervisor = EpochSupervisor(self.recorder, self.engine_factory(), candidate, self.run_dir, self.settings)
        start = time.perf_counter()
        try:
            model = build_model(candidate.bits, self.settings, self.data, network=candidate.architecture_id)
            train_network(model, self.data, self.settings, supervisor.on_epoch)
        except Exception as exc:  # a broken network is a result, the search goes on
            return supervisor.finish(time.perf_counter() - start, error=error_text(exc))
        return supervisor.finish(time.perf_counter() - start)

    def close(self) -> None:
        """Nothing to release: training happened in this process."""
