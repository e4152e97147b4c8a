"""A small but complete record trail written through the Recorder, shared by bundle and Dataverse tests.

It has everything a bundle must carry faithfully: a data set with attributes, an
engine configuration, genomes with crossover/mutation parents, a failed network,
an early-terminated network, epochs with a NaN loss, predictions with an inf value
and a non-finite fitted parameter, checkpoints on disk, and a second search that a
filter must leave out.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from a4nn.lineage.recorder import Recorder

SEARCH_NAME = "fixture-search"
OTHER_SEARCH = "other-search"


@dataclass
class Trail:
    search_id: int
    other_search_id: int
    architecture_ids: list[int]
    checkpoint_dir: Path


def fill_trail(recorder: Recorder, folder: Path) -> Trail:
    """Write the fixture trail; checkpoint files go to ``folder``."""
    low = recorder.register_dataset("xfel-sim-low", "xfel-sim", {"beam": "low", "intensity": 1e14, "n_train": 64})
    high = recorder.register_dataset("xfel-sim-high", "xfel-sim", {"beam": "high", "intensity": 1e16})
    engine = recorder.register_engine_config("a-b^(c-x)", 3, 25, 3, 0.5, (0, 100), {"strategy": "penguin"})
    search = recorder.start_search(SEARCH_NAME, "nsga-net-macro", low, engine, {"pop": 3, "gens": 2, "lr": 0.025},
                                   seed=7, code_version="0.1.0+test", host="node-1")
    bits = ["0" * 21, "1" * 21, "01" * 10 + "1", "10" * 10 + "0"]
    genomes = [recorder.register_genome(b) for b in bits]
    recorder.add_genome_parent(genomes[2], genomes[0], "crossover", search)
    recorder.add_genome_parent(genomes[2], genomes[1], "crossover", search)
    recorder.add_genome_parent(genomes[3], genomes[2], "mutation", search)
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    specs = [(0, 0, genomes[0]), (0, 1, genomes[1]), (1, 0, genomes[2]), (1, 1, genomes[3])]
    for generation, index, genome in specs:
        arch_id = recorder.start_architecture(search, index, generation, genome,
                                              {"phases": [[1, 0, 1], [0]], "channels": 24}, {"epochs": 4, "lr": 0.025},
                                              flops=12.5 + index, n_params=1000 + 10 * index, device="cpu")
        ids.append(arch_id)
    # network 0: complete, with a NaN train loss at epoch 1.5 and checkpoints per epoch
    for epoch, acc in ((1, 60.0), (1.5, 65.0), (2, 70.0), (3, 74.0), (4, 76.5)):
        recorder.log_epoch(ids[0], epoch, train_loss=float("nan") if epoch == 1.5 else 1.0 / epoch,
                           train_acc=acc - 1, val_loss=0.5 / epoch, val_acc=acc, seconds=0.1)
    for epoch in (2, 4):
        path = folder / f"a0_e{epoch}.pt"
        path.write_bytes(f"weights-{epoch}".encode() * 50)
        recorder.log_checkpoint(ids[0], epoch, path)
    recorder.finish_architecture(ids[0], "completed", final_acc=76.5, fitness=76.5, wall_seconds=3.2)
    # network 1: stopped early by the engine; one prediction is inf with a non-finite parameter
    for epoch, acc in ((1, 50.0), (2, 58.0), (3, 63.0), (4, 66.0)):
        recorder.log_epoch(ids[1], epoch, train_loss=1.2 / epoch, val_acc=acc, seconds=0.2)
    recorder.log_prediction(ids[1], 3, 25, float("inf"), "a-b^(c-x)", [float("inf"), 2.0, 0.5], False, 0.01)
    recorder.log_prediction(ids[1], 4, 25, 80.25, "a-b^(c-x)", [82.0, 1.5, 0.25], True, 0.02)
    path = folder / "a1_e4.pt"
    path.write_bytes(b"final-weights" * 40)
    recorder.log_checkpoint(ids[1], 4, path)
    recorder.finish_architecture(ids[1], "stopped", final_acc=66.0, predicted_acc=80.25, fitness=80.25,
                                 terminated_early=True, stop_epoch=4, wall_seconds=2.0)
    # network 2: failed, fitness recorded as -inf
    recorder.log_epoch(ids[2], 1, train_loss=float("inf"), val_acc=10.0)
    recorder.finish_architecture(ids[2], "failed", fitness=float("-inf"), error="CUDA out of memory")
    # network 3: still running (never finished)
    recorder.log_epoch(ids[3], 1, train_loss=2.0, val_acc=30.0)
    recorder.finish_search(search, "completed")

    other = recorder.start_search(OTHER_SEARCH, "random-nn", high, None, {"n": 1}, seed=1)
    other_arch = recorder.start_architecture(other, 0, 0, genomes[1], {"layers": 3}, {}, flops=900.0, n_params=5)
    recorder.log_epoch(other_arch, 1, val_acc=99.5)
    recorder.finish_architecture(other_arch, "completed", final_acc=99.5, fitness=99.5)
    return Trail(search, other, ids, folder)
