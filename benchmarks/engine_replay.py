"""Replay of engine strategies over the complete published curves, plus engine latency.

Data: ../shared/data/icpp23/1gpu/no_early_termination/ (100 networks x 25 epochs per beam).
Strategies: faithful PENGUIN, the a4nn default, never stop, Optuna's MedianPruner and
SuccessiveHalvingPruner rules, and last-value (stop every network after 13 epochs, i.e.
about the 50 % budget the goal asks for, and hand over the last value). Metrics per beam: epochs saved, MAE of the fitness handed to the NAS vs the
true epoch-25 accuracy, Spearman rho, top-10 recall, and the Pareto front (accuracy vs
FLOPs) the fitness selects compared with the true one.

Writes benchmarks/results/engine_replay.json, engine_replay.png and engine_latency.json.
Run: ``python benchmarks/engine_replay.py``.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, write_result  # noqa: E402

from a4nn.engine import PredictionEngine
from a4nn.engine.curves import read_curves
from a4nn.engine.metrics import strategy_report
from a4nn.engine.pruners import median_rule, successive_halving_rule
from a4nn.engine.replay import replay_curves

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "icpp23" / "1gpu" / "no_early_termination"
BEAMS = {"1e14": "low", "1e15": "medium", "1e16": "high"}
BUDGET = 25


def truncated(curves, used):
    return [c[u - 1] for c, u in zip(curves, used)]


def run_beam(path: Path) -> dict:
    curve_set = read_curves(path, "icpp23")
    curves = curve_set.curves
    truth = [c[-1] for c in curves]
    results = {}
    for strategy in ("penguin", "a4nn", "a4nn_no_prior"):
        start = time.perf_counter()
        if strategy == "a4nn":  # the default: plateau + never-learns + a population prior learned in recorded order
            outcomes = replay_curves(curves, {"strategy": "a4nn", "e_pred": BUDGET}, prior=True)
        else:
            outcomes = replay_curves(curves, {"strategy": strategy.removesuffix("_no_prior")}, processes=2)
        results[strategy] = strategy_report([o.fitness for o in outcomes], truth, [o.epochs_used for o in outcomes],
                                            BUDGET, curve_set.flops)
        results[strategy]["seconds"] = time.perf_counter() - start
    full = [len(c) for c in curves]
    results["never_stop"] = strategy_report(truth, truth, full, BUDGET, curve_set.flops)
    for name, used in (("optuna_median", median_rule(curves)), ("optuna_successive_halving", successive_halving_rule(curves)),
                       ("last_value_after_13", [min(13, len(c)) for c in curves])):
        results[name] = strategy_report(truncated(curves, used), truth, used, BUDGET, curve_set.flops)
    return results


def latency() -> dict:
    """Per-call observe() time on one core (fitting calls only, 'median_observe_ms') and batch throughput."""
    curve = [95 - 40 * 0.7 ** x + 0.3 * np.sin(x) for x in range(25)]
    out = {"load_average": os.getloadavg(), "note": "wall-clock timings; inflated when the machine is shared"}
    for strategy in ("penguin", "a4nn"):
        times = []
        for _ in range(10):
            # r=0 and no plateau: never stop, so every interaction is timed
            engine = PredictionEngine(strategy=strategy, r=0.0, plateau_n=99)
            for epoch, value in enumerate(curve, start=1):
                start = time.perf_counter()
                engine.observe(epoch, value)
                times.append((time.perf_counter() - start) * 1000)
        fitted = [t for t in times if t > 0.05]
        out[strategy] = {"median_observe_ms_all_calls": statistics.median(times),"median_observe_ms": statistics.median(fitted), "p95_observe_ms": float(np.percentile(fitted, 95)),
                         "target_ms": 2.0, "published_engine_ms": 28.0}
    curves = [[90 - 40 * 0.75 ** x + np.random.default_rng(i).normal(0, 0.5) for x in range(25)] for i in range(200)]
    start = time.perf_counter()
    replay_curves(curves, {"strategy": "a4nn"}, prior=True)
    out["batch_curves_per_second_prior_sequential"] = len(curves) / (time.perf_counter() - start)
    for processes in (1, 2):
        start = time.perf_counter()
        replay_curves(curves, {"strategy": "a4nn"}, processes=processes)
        out[f"batch_curves_per_second_{processes}proc"] = len(curves) / (time.perf_counter() - start)
    return out


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    strategies = list(next(iter(results.values())))
    for beam, per in results.items():
        axes[0].scatter([100 * per[s]["epochs_saved"] for s in strategies], [per[s]["mae"] for s in strategies], label=beam)
        for s in strategies:
            axes[0].annotate(s, (100 * per[s]["epochs_saved"], per[s]["mae"]), fontsize=7)
    axes[0].set_xlabel("epochs saved (%)"); axes[0].set_ylabel("MAE of fitness vs epoch-25 accuracy (points)")
    axes[0].axhline(0.5, ls="--", c="grey"); axes[0].axvline(50, ls="--", c="grey"); axes[0].legend()
    width = 0.25
    for i, (beam, per) in enumerate(results.items()):
        axes[1].bar(np.arange(len(strategies)) + i * width, [per[s]["top10_recall"] for s in strategies], width, label=beam)
    axes[1].set_xticks(np.arange(len(strategies)) + width, strategies, rotation=30, ha="right", fontsize=8)
    axes[1].set_ylabel("top-10 recall"); axes[1].legend()
    fig.tight_layout(); fig.savefig(path, dpi=120); plt.close(fig)


def main() -> None:
    if not DATA.is_dir():
        sys.exit(f"published curves not found at {DATA}")
    results = {BEAMS[p.name.split("_")[1]]: run_beam(p) for p in sorted(DATA.glob("*.csv"))}
    strategies = list(next(iter(results.values())))
    overall = {s: {key: float(np.mean([per[s][key] for per in results.values()]))
                   for key in ("epochs_saved", "mae", "spearman", "top10_recall", "top10_recall_ties")}
               for s in strategies}
    goal = {"epochs_saved": ">= 0.5", "mae": "<= 0.5", "top10_recall": ">= 0.9"}
    path = write_result("engine_replay", {"data": str(DATA), "budget": BUDGET, "goal_default_strategy": goal,
                                          "mean_over_beams": overall, "results": results,
                                          "published_epochs_saved": {"low": 0.133, "medium": 0.341, "high": 0.305}})
    plot(results, RESULTS_DIR / "engine_replay.png")
    for beam, per in results.items():
        for name, r in per.items():
            print(f"{beam:<7} {name:<26} saved {100 * r['epochs_saved']:5.1f}%  MAE {r['mae']:.3f}  rho {r['spearman']:.3f}  "
                  f"top10 {r['top10_recall']:.1f} (ties {r['top10_recall_ties']:.1f})  pareto-jaccard {r['pareto']['jaccard']:.2f}")
    lat = latency()
    write_result("engine_latency", lat)
    print(lat)
    print(f"-> {path}")


if __name__ == "__main__":
    main()
