"""A/B: the same seeded quick search with and without the prediction engine, per beam.

For each beam the search runs twice through the CLI on the same simulated data and
seed: ``--engine a4nn`` (or ``--engine penguin``) and ``--engine none`` (standalone).
Reported per run: epochs trained, wall time, networks, and the hypervolume of the
Pareto front measured on TRUE final accuracies.

Method (why it is fair)
    The engine run's front is the set of networks it *selected*: non-dominated by
    the fitness the NAS saw (the prediction for stopped networks) vs MFLOPs. A
    network stopped early has no measured final accuracy, so its true one is
    obtained as follows. Training is deterministic per genome (weights seeded from
    seed + genome, batches from the seed, the cosine schedule always spans the full
    budget, one CPU thread), so a genome the standalone run also trained has
    exactly the curve it would have had: its standalone final accuracy is looked
    up. Otherwise it is retrained here to the full budget (``--no-retrain`` skips
    that and reports coverage instead). The standalone front is non-dominated by
    measured final accuracy. Both fronts go into one hypervolume over
    ``(100 - true accuracy, MFLOPs)`` with reference point ``(100, 1.1 x the
    largest MFLOPs of either front)``. The determinism the look-up relies on is
    checked: genomes trained to the full budget in both runs must agree exactly.

Target (issue 5): >= 35 % fewer epochs with hypervolume within 2 % of standalone.
Run: ``python benchmarks/search_ab.py [--beams low medium high] [--pop 8 --generations 3 ...]``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner
from pymoo.indicators.hv import HV

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from a4nn.cli.main import cli  # noqa: E402
from a4nn.cli.search import PRESETS  # noqa: E402
from a4nn.lineage.database import Database  # noqa: E402
from a4nn.lineage.frames import architectures_frame  # noqa: E402
from a4nn.search.data import load_dataset  # noqa: E402
from a4nn.search.evaluation import TrainSettings  # noqa: E402
from a4nn.search.trainer import build_model, train_network  # noqa: E402


def non_dominated(acc: np.ndarray, flops: np.ndarray) -> np.ndarray:
    """Indices not dominated in (higher acc, lower flops)."""
    keep = []
    for i in range(len(acc)):
        dominated = np.any((acc >= acc[i]) & (flops <= flops[i]) & ((acc > acc[i]) | (flops < flops[i])))
        if not dominated:
            keep.append(i)
    return np.asarray(keep, dtype=int)


def run_search(beam: str, engine: str, args: argparse.Namespace, folder: Path) -> dict:
    url = f"sqlite:///{folder / f'{beam}-{engine}.db'}"
    command = ["search", "--db", url, "--beam", beam, "--engine", engine, "--seed", str(args.seed),
               "--pop", str(args.pop), "--offspring", str(args.offspring), "--generations", str(args.generations),
               "--epochs", str(args.epochs), "--n-images", str(args.n_images), "--image-size", str(args.image_size),
               "--channels", str(args.channels), "--checkpoints", "none", "--run-dir", str(folder / "runs"),
               "--name", f"ab-{beam}-{engine}", "--quiet"]
    start = time.perf_counter()
    result = CliRunner().invoke(cli, command, catch_exceptions=False)
    wall = time.perf_counter() - start
    if result.exit_code != 0:
        raise RuntimeError(result.output)
    database = Database.open(url)
    frame = architectures_frame(database)
    database.dispose()
    frame = frame[frame.status != "failed"].copy()
    return {"frame": frame, "wall_seconds": wall, "epochs": float(frame.epochs_trained.sum()),
            "networks": int(len(frame)), "stopped_early": int(frame.terminated_early.sum())}


def warm_up(settings: TrainSettings, args: argparse.Namespace) -> None:
    """Pay one-off costs (imports, first torch/scipy calls) before anything is timed."""
    from a4nn.engine import PredictionEngine
    from a4nn.search.nsga import make_algorithm  # noqa: F401 - imports pymoo

    engine = PredictionEngine(e_pred=args.epochs)
    for epoch, value in enumerate([60, 70, 75, 78, 79], start=1):
        engine.observe(epoch, value)
    data = load_dataset("xfel-sim", beam="high", n_images=args.n_images, image_size=args.image_size, seed=args.seed)
    one = TrainSettings(**{**settings.to_dict(), "epochs": 1})
    train_network(build_model([1] * 21, one, data), data, one, lambda m, _: False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    quick = PRESETS["quick"]
    parser.add_argument("--beams", nargs="+", default=["low", "medium", "high"], choices=["low", "medium", "high"])
    parser.add_argument("--engine", default="a4nn", choices=["a4nn", "penguin"])
    parser.add_argument("--pop", type=int, default=quick["pop"])
    parser.add_argument("--offspring", type=int, default=quick["offspring"])
    parser.add_argument("--generations", type=int, default=quick["generations"])
    parser.add_argument("--epochs", type=int, default=quick["epochs"])
    parser.add_argument("--n-images", type=int, default=quick["n_images"])
    parser.add_argument("--image-size", type=int, default=quick["image_size"])
    parser.add_argument("--channels", type=int, default=quick["channels"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--merge", action="store_true",
                        help="keep other beams' results from an existing search_ab.json made with the same settings")
    parser.add_argument("--no-retrain", dest="retrain", action="store_false",
                        help="do not retrain stopped front networks missing from the standalone run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = TrainSettings(epochs=args.epochs, batch_size=quick["batch_size"], channels=args.channels,
                             n_nodes=quick["n_nodes"], seed=args.seed, checkpoints="none")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        import os

        os.environ["A4NN_DATA_DIR"] = str(folder / "data")
        warm_up(settings, args)
        for beam in args.beams:
            # simulate (and cache) the data first, so neither timed run pays for it
            load_dataset("xfel-sim", beam=beam, n_images=args.n_images, image_size=args.image_size, seed=args.seed)
            print(f"[{beam}] engine {args.engine} ...", flush=True)
            engine = run_search(beam, args.engine, args, folder)
            print(f"[{beam}] standalone ...", flush=True)
            standalone = run_search(beam, "none", args, folder)
            results[beam] = compare(beam, engine, standalone, args, settings)
            r = results[beam]
            print(f"[{beam}] epochs {r['engine']['epochs']:.0f} vs {r['standalone']['epochs']:.0f} "
                  f"({100 * r['epochs_saved']:.1f}% fewer); wall {r['engine']['wall_seconds']:.0f}s vs "
                  f"{r['standalone']['wall_seconds']:.0f}s; HV ratio {r['hypervolume_ratio']:.4f}", flush=True)
    if args.merge:
        results = {**previous_results(args), **results}
    saved = [r["epochs_saved"] for r in results.values()]
    ratios = [r["hypervolume_ratio"] for r in results.values() if r["hypervolume_ratio"] is not None]
    summary = {"mean_epochs_saved": float(np.mean(saved)), "min_hypervolume_ratio": float(min(ratios)) if ratios else None,
               "meets_epochs_target": all(s >= 0.35 for s in saved),
               "meets_hypervolume_target": all(abs(1 - h) <= 0.02 or h > 1 for h in ratios)}
    path = write_result("search_ab", {"settings": vars(args), "engine": args.engine, "results": results,
                                      "summary": summary,
                                      "target": {"epochs_saved": 0.35, "hypervolume_within": 0.02},
                                      "method": __doc__.split("Method (why it is fair)")[1].split("Target")[0].strip()})
    print(json.dumps(summary))
    print(f"-> {path}")


def previous_results(args: argparse.Namespace) -> dict:
    """Per-beam results of an earlier run with identical settings (other than the beams)."""
    from _common import RESULTS_DIR

    path = RESULTS_DIR / "search_ab.json"
    if not path.exists():
        return {}
    old = json.loads(path.read_text())
    same = lambda settings: {k: v for k, v in settings.items() if k not in ("beams", "merge")}
    return old.get("results", {}) if same(old.get("settings", {})) == same(vars(args)) else {}


def compare(beam: str, engine: dict, standalone: dict, args: argparse.Namespace, settings: TrainSettings) -> dict:
    """True-accuracy fronts of both runs and their hypervolumes (see the module docstring)."""
    e, s = engine["frame"], standalone["frame"]
    full_in_standalone = dict(zip(s.genome_bits, s.final_acc))
    # determinism check: genomes trained to the full budget in both runs
    both = [(row.genome_bits, row.final_acc) for row in e.itertuples()
            if not row.terminated_early and row.genome_bits in full_in_standalone]
    mismatches = sum(abs(acc - full_in_standalone[bits]) > 1e-9 for bits, acc in both)

    seen = e.fitness.to_numpy(float)
    front = e.iloc[non_dominated(seen, e.flops.to_numpy(float))]
    data = None
    true_acc, sources = [], {"measured": 0, "standalone_lookup": 0, "retrained": 0, "missing": 0}
    for row in front.itertuples():
        if not row.terminated_early:
            true_acc.append(row.final_acc)
            sources["measured"] += 1
        elif row.genome_bits in full_in_standalone:
            true_acc.append(full_in_standalone[row.genome_bits])
            sources["standalone_lookup"] += 1
        elif args.retrain:
            if data is None:
                data = load_dataset("xfel-sim", beam=beam, n_images=args.n_images, image_size=args.image_size,
                                    seed=args.seed)
            bits = [int(b) for b in row.genome_bits]
            history = train_network(build_model(bits, settings, data), data, settings, lambda m, _: False)
            true_acc.append(history[-1].val_acc)
            sources["retrained"] += 1
        else:
            true_acc.append(np.nan)
            sources["missing"] += 1
    engine_points = np.column_stack([100 - np.asarray(true_acc, float), front.flops.to_numpy(float)])
    engine_points = engine_points[np.isfinite(engine_points).all(axis=1)]
    s_front = s.iloc[non_dominated(s.final_acc.to_numpy(float), s.flops.to_numpy(float))]
    standalone_points = np.column_stack([100 - s_front.final_acc.to_numpy(float), s_front.flops.to_numpy(float)])
    reference = np.array([100.0, 1.1 * max(engine_points[:, 1].max(initial=0), standalone_points[:, 1].max())])
    hv_engine = float(HV(ref_point=reference)(engine_points)) if len(engine_points) else 0.0
    hv_standalone = float(HV(ref_point=reference)(standalone_points))
    seen_points = np.column_stack([100 - front.fitness.to_numpy(float), front.flops.to_numpy(float)])
    describe = lambda run: {k: run[k] for k in ("epochs", "wall_seconds", "networks", "stopped_early")}
    return {
        "engine": {**describe(engine), "front": [{"id": int(r.id), "bits": r.genome_bits, "flops": float(r.flops),
                                                 "fitness_seen": float(r.fitness), "true_acc": float(a),
                                                 "stopped_early": bool(r.terminated_early)}
                                                for r, a in zip(front.itertuples(), true_acc)],
                   "hypervolume_true": hv_engine,
                   "hypervolume_as_seen": float(HV(ref_point=reference)(seen_points))},
        "standalone": {**describe(standalone), "front": [{"id": int(r.id), "bits": r.genome_bits,
                                                         "flops": float(r.flops), "acc": float(r.final_acc)}
                                                        for r in s_front.itertuples()],
                       "hypervolume": hv_standalone},
        "true_accuracy_sources": sources,
        "determinism_check": {"genomes_full_in_both": len(both), "mismatches": int(mismatches)},
        "reference_point": reference.tolist(),
        "epochs_saved": 1 - engine["epochs"] / standalone["epochs"],
        "wall_saved": 1 - engine["wall_seconds"] / standalone["wall_seconds"],
        "hypervolume_ratio": hv_engine / hv_standalone if hv_standalone else None,
    }


if __name__ == "__main__":
    main()
