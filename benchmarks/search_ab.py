"""A/B: the same seeded quick search with and without the prediction engine, per beam.

For each beam the search runs twice on the same simulated data and seed: ``--engine
a4nn`` and ``--engine none`` (standalone). Reported: epochs trained, wall time, and
the hypervolume of the Pareto front each run *selects* (its non-dominated set by the
fitness the NAS saw vs MFLOPs), measured on TRUE final accuracies: every selected
network that the engine stopped early is retrained here to the full budget, so the
comparison is not flattered by predictions. Objectives for the hypervolume:
(100 - accuracy, MFLOPs), reference point (100, 1.1 x the largest MFLOPs seen).

Target (issue 5): >= 35 % fewer epochs with hypervolume within 2 % of standalone.
Run: ``python benchmarks/search_ab.py [--beams low medium high] [--pop 8 --generations 3]``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from pymoo.indicators.hv import HV

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from a4nn.cli.main import cli
from a4nn.lineage.database import Database
from a4nn.lineage.frames import architectures_frame
from a4nn.search.data import load_dataset
from a4nn.search.evaluation import TrainSettings
from a4nn.search.network import build_network
from a4nn.search.trainer import train_network


def selected_front(frame) -> list[int]:
    rows = frame.dropna(subset=["fitness", "flops"])
    keep = []
    for row in rows.itertuples():
        dominated = ((rows.fitness >= row.fitness) & (rows.flops <= row.flops)
                     & ((rows.fitness > row.fitness) | (rows.flops < row.flops))).any()
        if not dominated:
            keep.append(row.id)
    return keep


def true_accuracy(row, data, settings: TrainSettings) -> float:
    if not row.terminated_early:
        return float(row.final_acc)
    bits = [int(b) for b in row.genome_bits]
    model = build_network(bits, n_nodes=settings.n_nodes, channels=settings.channels, n_classes=data.n_classes)
    history = train_network(model, data, settings, lambda metrics, _model: False)
    return history[-1].val_acc


def run(beam: str, engine: str, args, folder: Path) -> dict:
    url = f"sqlite:///{folder / f'{beam}-{engine}.db'}"
    start = time.perf_counter()
    result = CliRunner().invoke(cli, ["search", "--db", url, "--beam", beam, "--engine", engine, "--seed", str(args.seed),
                                      "--pop", str(args.pop), "--offspring", str(args.pop), "--generations",
                                      str(args.generations), "--checkpoints", "none", "--run-dir", str(folder / "runs")],
                                catch_exceptions=False)
    wall = time.perf_counter() - start
    assert result.exit_code == 0, result.output
    frame = architectures_frame(Database.open(url))
    return {"frame": frame, "wall_seconds": wall, "epochs": float(frame.epochs_trained.sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--beams", nargs="+", default=["low", "medium", "high"])
    parser.add_argument("--pop", type=int, default=8)
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from a4nn.cli.search import PRESETS

    preset = PRESETS["quick"]
    settings = TrainSettings(epochs=preset["epochs"], batch_size=preset["batch_size"], channels=preset["channels"],
                             n_nodes=preset["n_nodes"], seed=args.seed)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for beam in args.beams:
            data = load_dataset("xfel-sim", beam=beam, n_images=preset["n_images"], image_size=preset["image_size"],
                                seed=args.seed)
            runs = {engine: run(beam, engine, args, folder) for engine in ("a4nn", "none")}
            points = {}
            for engine, outcome in runs.items():
                frame = outcome["frame"].set_index("id")
                front = selected_front(outcome["frame"])
                points[engine] = np.array([[100 - true_accuracy(_row(frame, i), data, settings),
                                            frame.loc[i, "flops"]] for i in front])
                outcome["front"] = front
            reference = np.array([100.0, 1.1 * max(p[:, 1].max() for p in points.values())])
            hv = {engine: float(HV(ref_point=reference)(p)) for engine, p in points.items()}
            results[beam] = {
                engine: {"epochs": runs[engine]["epochs"], "wall_seconds": runs[engine]["wall_seconds"],
                         "networks": int(len(runs[engine]["frame"])), "selected_front": runs[engine]["front"],
                         "front_true_acc_flops": points[engine].tolist(), "hypervolume": hv[engine]}
                for engine in runs
            }
            results[beam]["epochs_saved_vs_standalone"] = 1 - runs["a4nn"]["epochs"] / runs["none"]["epochs"]
            results[beam]["hypervolume_ratio"] = hv["a4nn"] / hv["none"] if hv["none"] else None
            print(f"{beam}: epochs {runs['a4nn']['epochs']:.0f} vs {runs['none']['epochs']:.0f} "
                  f"({100 * results[beam]['epochs_saved_vs_standalone']:.1f}% fewer), wall "
                  f"{runs['a4nn']['wall_seconds']:.0f}s vs {runs['none']['wall_seconds']:.0f}s, "
                  f"HV ratio {results[beam]['hypervolume_ratio']:.3f}")
    path = write_result("search_ab", {"settings": vars(args), "preset": preset, "results": results,
                                      "target": {"epochs_saved": 0.35, "hypervolume_within": 0.02}})
    print(f"-> {path}")


def _row(frame, architecture_id):
    row = frame.loc[architecture_id]
    return type("Row", (), {"terminated_early": bool(row.terminated_early), "final_acc": row.final_acc,
                            "genome_bits": row.genome_bits})()


if __name__ == "__main__":
    main()
