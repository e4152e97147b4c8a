"""A record trail laid out as `a4nn-commons search` lays one out: absolute run folder, cache paths, checkpoints.

Its configuration carries ``run_dir`` and ``state_path``, its data set attributes the
cache folder and molecule file, its checkpoints sit under the run folder and are
recorded as ``file://`` URIs -- everything a public answer or bundle must not reveal.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from a4nn.lineage.recorder import Recorder

SEARCH = "secure-search"


@dataclass
class SecureTrail:
    search_id: int
    architecture_ids: list[int]
    run_dir: Path
    checkpoints: list[Path]


def fill_secure_trail(recorder: Recorder, base: Path) -> SecureTrail:
    run_dir = (base / "runs" / SEARCH).resolve()
    cache = (base / "a4nn-data" / "xfel-sim-low-24px").resolve()
    attributes = {"beam": "low", "intensity": 1e14, "root": str(cache), "molecule": str(base / "mol" / "two.pdb"),
                  "path": str(cache / "images.npz"), "n_train": 32}
    dataset = recorder.register_dataset("xfel-sim-low-secure", "xfel-sim", attributes)
    config = {"pop": 2, "epochs": 2, "run_dir": str(run_dir), "state_path": str(run_dir / "nsga_state.pkl"),
              "dataset": str(cache), "ray_address": None}
    search = recorder.start_search(SEARCH, "nsga-net-macro", dataset, None, config, seed=1, code_version="t",
                                   host="secret-host.example")
    ids, saved = [], []
    for index in range(2):
        genome = recorder.register_genome(("01" * 10 + str(index)))
        arch = recorder.start_architecture(search, index, 0, genome, {"phases": []}, {"epochs": 2}, flops=1.0 + index,
                                           n_params=10, device="cpu")
        for epoch in (1, 2):
            recorder.log_epoch(arch, epoch, train_loss=1.0 / epoch, val_acc=50.0 + epoch + index, seconds=0.1)
            folder = run_dir / f"architecture-{arch:05d}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"epoch-{epoch:03d}.pt"
            path.write_bytes(f"weights {arch} {epoch}".encode() * 20)
            recorder.log_checkpoint(arch, epoch, path)
            saved.append(path)
        recorder.finish_architecture(arch, "completed", final_acc=52.0 + index, fitness=52.0 + index)
        from a4nn.commons.models.evaluate import record_evaluation

        record_evaluation(recorder.database, arch, 2, "0" * 64,  # a re-evaluation on a data set loaded from a folder
                          {"name": "images", "kind": "xfel-tiff", "split": "val", "attributes": {"root": str(cache)}},
                          {"accuracy": 50.0})
        ids.append(arch)
    recorder.finish_search(search, "completed")
    return SecureTrail(search, ids, run_dir, saved)
