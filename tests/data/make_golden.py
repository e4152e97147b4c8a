"""Builds tests/data/golden_0001.sqlite: a database at the FIRST revision with a few rows.

Run once when the first revision is created; never regenerate it at a later revision
(the point of the file is to stay old, so upgrade tests exercise every migration).
"""
from __future__ import annotations

import sys
from pathlib import Path

from a4nn.lineage.database import Database
from a4nn.lineage.recorder import Recorder
from a4nn.migrations.runner import upgrade_database


def main(path: Path) -> None:
    url = f"sqlite:///{path}"
    upgrade_database(url, "0001")
    recorder = Recorder(Database.open(url, require_current=False))
    dataset = recorder.register_dataset("xfel-sim-low", "xfel-sim", {"beam": "low", "intensity": 1e14})
    engine = recorder.register_engine_config("a-b^(c-x)", 3, 25, 3, 0.5, (0, 100), {"strategy": "penguin"})
    search = recorder.start_search("golden", "nsga-net-macro", dataset, engine, {"pop": 2}, seed=1)
    parent = recorder.register_genome("0" * 21)
    child = recorder.register_genome("1" + "0" * 20)
    recorder.add_genome_parent(child, parent, "mutation", search)
    arch = recorder.start_architecture(search, 0, 0, child, {"phases": []}, {"lr": 0.025}, 12.5, 1000)
    for epoch, acc in enumerate([60.0, 80.0, float("nan"), 91.25], start=1):
        recorder.log_epoch(arch, epoch, train_loss=0.5, train_acc=acc, val_loss=0.4, val_acc=acc, seconds=1.0)
    recorder.log_prediction(arch, 4, 25, float("inf"), "a-b^(c-x)", [1.0, 2.0, 3.0], False, 0.001)
    recorder.finish_architecture(arch, "completed", final_acc=91.25, fitness=91.25)
    recorder.finish_search(search)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
