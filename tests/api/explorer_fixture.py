"""A small recorded search for the explorer's browser tests and its screenshot.

Three generations of ten NSGA-Net macro networks with genomes, crossover parents,
per-epoch curves, engine predictions (some converged, one out of range), early stops,
checkpoint files on disk and one failed network; plus a second search left running, so
a test can add networks to it and watch its page update.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from a4nn.lineage.database import Database
from a4nn.lineage.models import Evaluation
from a4nn.lineage.recorder import Recorder
from a4nn.migrations.runner import upgrade_database

SEARCH = "explorer-search"
LIVE_SEARCH = "live-search"
EPOCHS = 8
GENERATIONS = 3
PER_GENERATION = 10


@dataclass
class Recorded:
    url: str
    search_id: int
    live_search_id: int
    model_ids: list[int]
    checkpoint_dir: Path


def _curve(rng: np.random.Generator, top: float, epochs: int) -> list[float]:
    steps = np.arange(1, epochs + 1)
    return list(np.round(top - (top - 45) * np.exp(-0.45 * steps) + rng.normal(0, 0.4, epochs), 3))


def record(folder: Path) -> Recorded:
    """Write the trail into a fresh SQLite database under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'explorer.db'}"
    upgrade_database(url)
    database = Database.open(url)
    recorder = Recorder(database)
    rng = np.random.default_rng(5)
    dataset = recorder.register_dataset("xfel-sim-low", "xfel-sim", {"beam": "low", "intensity": 1e14})
    engine = recorder.register_engine_config("a-b^(c-x)", 3, EPOCHS, 3, 0.5, (0, 100), {"strategy": "penguin"})
    search = recorder.start_search(SEARCH, "nsga-net-macro", dataset, engine,
                                   {"epochs": EPOCHS, "pop": PER_GENERATION, "n_nodes": 4}, seed=3, host="test")
    checkpoints = folder / "checkpoints"
    checkpoints.mkdir(exist_ok=True)
    ids: list[int] = []
    previous: list[int] = []
    for generation in range(GENERATIONS):
        current = []
        for index in range(PER_GENERATION):
            bits = "".join(rng.choice(["0", "1"], 21))
            genome = recorder.register_genome(bits)
            if previous:
                for parent in rng.choice(previous, 2, replace=False):
                    recorder.add_genome_parent(genome, int(parent), "crossover", search)
            current.append(genome)
            flops = float(np.round(rng.uniform(20, 400), 3))
            arch = recorder.start_architecture(search, index, generation, genome, {}, {"epochs": EPOCHS},
                                               flops=flops, n_params=int(rng.integers(2e4, 4e5)), device="cpu")
            ids.append(arch)
            if generation == 1 and index == 9:  # one failed network: no accuracy, not on the scatter
                recorder.log_epoch(arch, 1, val_acc=12.0)
                recorder.finish_architecture(arch, "failed", error="CUDA out of memory")
                continue
            top = float(rng.uniform(70, 92)) + 2 * generation
            early = index % 3 == 0
            stop = 4 + index % 2 if early else EPOCHS
            curve = _curve(rng, top, EPOCHS)[:stop]
            for epoch, value in enumerate(curve, start=1):
                recorder.log_epoch(arch, epoch, train_loss=1.0 / epoch, train_acc=min(100.0, value + 2), val_loss=0.8 / epoch,
                                   val_acc=value, seconds=0.5)
                if epoch >= 3:
                    converged = early and epoch == stop
                    value_predicted = 250.0 if (index == 1 and epoch == 3) else round(top + rng.normal(0, 0.5), 3)
                    recorder.log_prediction(arch, epoch, EPOCHS, value_predicted, "a-b^(c-x)", [top, 2.0, 0.5],
                                            converged, 0.01)
            path = checkpoints / f"m{arch}_e{stop}.pt"
            path.write_bytes(rng.bytes(256))
            recorder.log_checkpoint(arch, stop, path)
            predicted = round(top, 3) if early else None
            recorder.finish_architecture(arch, "stopped" if early else "completed", final_acc=curve[-1],
                                         predicted_acc=predicted, fitness=predicted if early else curve[-1],
                                         terminated_early=early, stop_epoch=stop if early else None,
                                         epochs_trained=stop, wall_seconds=stop * 0.5)
        previous = current
    recorder.finish_search(search, "completed")
    with database.session() as session:  # a stored re-evaluation, as `a4nn-commons model evaluate` writes it
        session.add(Evaluation(architecture_id=ids[10], epoch=4.0, dataset={"name": "xfel-sim-high", "kind": "xfel-sim",
                                                                            "split": "val", "attributes": {}},
                               metrics={"accuracy": 71.25, "loss": 0.61, "n_images": 64}))
        session.commit()
    live = recorder.start_search(LIVE_SEARCH, "nsga-net-macro", dataset, engine, {"epochs": EPOCHS}, seed=4)
    for index in range(2):
        add_live_network(recorder, live, index, 80.0 + index)
    database.dispose()
    return Recorded(url, search, live, ids, checkpoints)


def add_live_network(recorder: Recorder, search_id: int, index: int, accuracy: float) -> int:
    """One complete network of the running search (what a search's evaluator writes)."""
    genome = recorder.register_genome(format(index + 1, "021b"))
    arch = recorder.start_architecture(search_id, index, 0, genome, {}, {}, flops=50.0 + 10 * index, n_params=1000)
    recorder.log_epoch(arch, 1, val_acc=accuracy)
    recorder.finish_architecture(arch, "completed", final_acc=accuracy, fitness=accuracy, epochs_trained=EPOCHS)
    return arch
