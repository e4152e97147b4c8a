"""A tiny but real recorded search (trained networks, per-epoch checkpoints) for the model-reuse tests.

The data are a seeded NPZ file (two classes told apart by the brightness of the image
centre, as tests/search/_tiny.py makes them), loaded through the project's own NPZ
loader so the data set's attributes carry channels, image size, classes and the
normalization, exactly as a search on a user's file would record them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from a4nn.lineage.database import Database
from a4nn.lineage.recorder import Recorder


SIZE = 16


@dataclass
class Recorded:
    url: str
    database: Database
    search_id: int
    model_ids: list[int]
    npz: Path
    run_dir: Path


def write_npz(path: Path, n: int = 60, size: int = SIZE, seed: int = 0, channels: int = 1) -> Path:
    """Raw (non-negative, count-like) images whose centre is brighter for class 1."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.poisson(3.0, size=(n, channels, size, size)).astype(np.float32)
    c = size // 4
    x[y == 1, :, c:-c, c:-c] *= 1.5
    np.savez(path, x=x, y=y)
    return path


def record_search(folder: Path, epochs: int = 3, checkpoints: str = "epoch", name: str = "reuse") -> Recorded:
    """Run a 3 + 2 network NSGA-Net search without the engine; every epoch checkpointed."""
    from a4nn.migrations.runner import upgrade_database
    from a4nn.search.data import load_npz
    from a4nn.search.evaluation import SerialEvaluator, TrainSettings
    from a4nn.search.nsga import NSGANetSearch, SearchConfig

    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'lineage.db'}"
    upgrade_database(url)
    database = Database.open(url)
    recorder = Recorder(database)
    npz = write_npz(folder / "data.npz")
    data = load_npz(npz)
    dataset_id = recorder.register_dataset(data.name, data.kind, data.attributes)
    settings = TrainSettings(epochs=epochs, batch_size=16, channels=4, n_nodes=4, seed=0, checkpoints=checkpoints)
    config = {"pop": 3, "offspring": 2, "generations": 2, "epochs": epochs, "channels": 4, "n_nodes": 4,
              "image_size": SIZE, "seed": 0, "dataset": str(npz), "engine": "none", "batch_size": 16, "checkpoints": checkpoints}
    run_dir = folder / "runs" / name
    config["run_dir"] = str(run_dir)
    search_id = recorder.start_search(name, "nsga-net-macro", dataset_id, None, config, seed=0,
                                      code_version="0.1.0+test")
    evaluator = SerialEvaluator(recorder, lambda: None, data, settings, run_dir)
    search_config = SearchConfig(3, 2, 2, 4, 4, data.input_shape, data.n_classes, 0)
    results = NSGANetSearch(recorder, search_id, search_config, evaluator, run_dir).run()
    recorder.finish_search(search_id)
    ids = sorted({r.candidate.architecture_id for r in results})
    return Recorded(url, database, search_id, ids, npz, run_dir)
