"""A small search history written through the Recorder for the analyzer tests and the notebook test.

Two searches on the low beam (one with the prediction engine, one standalone) and one
engine search on the high beam. Curves follow a−b^(c−x) plus deterministic noise; the
real :class:`PredictionEngine` decides when to stop, so predictions, fitted parameters,
converged flags and stop epochs are what a search would record. One network fails,
genomes have crossover/mutation parents.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from a4nn.engine import PredictionEngine
from a4nn.lineage.recorder import Recorder

BUDGET = 10
ENGINE_SEARCH = "analyzer-engine-low"
STANDALONE_SEARCH = "analyzer-standalone-low"
HIGH_SEARCH = "analyzer-engine-high"
GENOMES = [
    "000110111000001100100", "000110111000001100101", "000110111000011100100", "101001000000010100111",
    "100111000000011011011", "011000011010010000000", "000110111001001100100", "111111111111111111111",
]


@dataclass
class AnalyzerTrail:
    searches: dict[str, int] = field(default_factory=dict)
    models: dict[str, list[int]] = field(default_factory=dict)
    failed: int = -1
    best: int = -1


def _curve(plateau: float, speed: float, epochs: int, seed: int, noise_scale: float) -> list[float]:
    noise = np.random.default_rng(seed).normal(0, noise_scale, epochs)
    return [float(plateau - (plateau - 50.0) * math.exp(-speed * e) + n) for e, n in zip(range(epochs), noise)]


def _train(recorder: Recorder, search: int, index: int, genome: int, curve: list[float], engine: bool,
           flops: float) -> tuple[int, bool]:
    model = recorder.start_architecture(search, index, generation=index // 4, genome_id=genome,
                                        train_params={"epochs": BUDGET, "lr": 0.025}, flops=flops, n_params=1000 + index)
    predictor = PredictionEngine(function="a-b^(c-x)", c_min=3, e_pred=BUDGET, n=3, r=0.5) if engine else None
    stopped, prediction = False, None
    for epoch, value in enumerate(curve, start=1):
        recorder.log_epoch(model, epoch, train_acc=min(value + 3, 100.0), val_acc=value, train_loss=1.0 / epoch,
                           seconds=2.0 + 0.1 * index)
        if predictor is not None:
            decision = predictor.observe(epoch, value)
            recorder.log_prediction(model, epoch, BUDGET, decision.prediction, decision.function, decision.params,
                                    decision.converged, 0.01)
            if decision.converged and epoch < BUDGET:  # converging at the last epoch saves nothing
                stopped, prediction = True, decision.prediction
                break
    last = epoch
    recorder.finish_architecture(model, "stopped" if stopped else "completed", final_acc=curve[last - 1],
                                 predicted_acc=prediction, fitness=prediction if stopped else curve[last - 1],
                                 terminated_early=stopped, stop_epoch=last if stopped else None,
                                 wall_seconds=sum(2.0 + 0.1 * index for _ in range(last)))
    return model, stopped


def fill_analyzer_trail(recorder: Recorder) -> AnalyzerTrail:
    """Write the fixture history (one transaction, for speed) and return the ids the tests refer to."""
    with recorder.transaction():
        return _fill(recorder)


def _fill(recorder: Recorder) -> AnalyzerTrail:
    trail = AnalyzerTrail()
    low = recorder.register_dataset("analyzer-low", "xfel-sim", {"beam": "low", "intensity": 1e14})
    high = recorder.register_dataset("analyzer-high", "xfel-sim", {"beam": "high", "intensity": 1e16})
    config = recorder.register_engine_config("a-b^(c-x)", 3, BUDGET, 3, 0.5, (0, 100), {"strategy": "penguin"})
    genomes = [recorder.register_genome(bits) for bits in GENOMES]
    recorder.add_genome_parent(genomes[1], genomes[0], "mutation")
    recorder.add_genome_parent(genomes[2], genomes[0], "crossover")
    recorder.add_genome_parent(genomes[2], genomes[3], "crossover")
    specs = [  # (plateau, speed, noise) per network; smooth fast learners converge early, noisy ones run full
        (92.0, 0.9, 0.15), (95.0, 1.2, 0.15), (88.0, 0.25, 0.15), (97.0, 1.0, 0.15), (80.0, 0.15, 3.0),
        (90.0, 1.1, 0.15), (93.0, 0.8, 2.5),
    ]
    for name, dataset, engine in ((ENGINE_SEARCH, low, True), (STANDALONE_SEARCH, low, False),
                                  (HIGH_SEARCH, high, True)):
        search = recorder.start_search(name, "nsga-net-macro", dataset, config if engine else None,
                                       {"epochs": BUDGET, "pop": 4}, seed=3)
        trail.searches[name] = search
        trail.models[name] = []
        offset = 0.0 if dataset == low else 4.0
        for index, (plateau, speed, noise) in enumerate(specs):
            curve = _curve(min(plateau + offset, 99.5), speed, BUDGET, index + 10 * len(trail.searches), noise)
            model, _ = _train(recorder, search, index, genomes[index], curve, engine, flops=300.0 + 97.0 * index)
            trail.models[name].append(model)
        recorder.finish_search(search, "completed")
    # one failed network in the engine search, after two epochs
    search = trail.searches[ENGINE_SEARCH]
    failed = recorder.start_architecture(search, len(specs), generation=1, genome_id=genomes[7],
                                         train_params={"epochs": BUDGET}, flops=2000.0)
    recorder.log_epoch(failed, 1, val_acc=50.0, seconds=1.0)
    recorder.log_epoch(failed, 2, val_acc=float("nan"), train_loss=float("inf"), seconds=1.0)
    recorder.finish_architecture(failed, "failed", error="loss became inf at epoch 2")
    trail.models[ENGINE_SEARCH].append(failed)
    trail.failed = failed
    trail.best = trail.models[ENGINE_SEARCH][3]
    return trail


def build_database(folder) -> tuple[str, AnalyzerTrail]:
    """A fresh SQLite file holding the fixture history: (URL, trail); shared by read-only tests."""
    from a4nn.lineage.database import Database
    from a4nn.migrations.runner import upgrade_database

    url = f"sqlite:///{folder / 'analyzer.db'}"
    upgrade_database(url)
    database = Database.open(url)
    try:
        return url, fill_analyzer_trail(Recorder(database))
    finally:
        database.dispose()
