"""Replay of engine strategies over the complete published curves, plus engine latency.

Data: ../shared/data/icpp23/1gpu/no_early_termination/ (100 networks x 25 epochs per beam).
Strategies:

* ``penguin``: faithful PENGUIN (as in the published runs);
* ``a4nn``: the default, as a search builds it: one shared population prior fed in
  recorded order, the support guard, and the contender rule (a network whose optimistic
  final value, prior estimate + 1.5 x held-out error, reaches the 10th best fitness of
  the networks before it keeps training, so the top-10 get exact fitness);
* ``a4nn_no_contender``: the same without the contender rule (``contender_k=0``);
* ``a4nn_hopeless``: the default plus the opt-in hopeless rule (``hopeless_tolerance=1.0``:
  a network that cannot reach the top-10 stops on a coarser prior estimate);
* ``a4nn_pareto``: the default with the Pareto-aware contender rule (each network's
  MFLOPs given: it keeps training while fewer than 1 finished network dominates its
  optimistic accuracy at no more cost, i.e. while it could join the front);
* ``a4nn_search``: the engine as ``a4nn-commons search`` builds it when the
  validation-set size is unknown (``search_knobs()``: Pareto contenders plus the
  hopeless rule at twice the prior tolerance);
* ``a4nn_no_prior``: plateau + never-learns only, curves independent (process pool);
* never stop, Optuna's MedianPruner and SuccessiveHalvingPruner rules, and last-value
  (stop every network after 13 epochs, about the 50 % budget the goal asks for).

Metrics per beam (engine/metrics.py, unchanged): epochs saved, MAE of the fitness handed
to the NAS vs the true epoch-25 accuracy, Spearman rho, top-10 recall (strict and with
ties), and the Pareto front (accuracy vs FLOPs) the fitness selects vs the true one.
Per beam the JSON also describes the top of the data (``data``: how many networks reach
the true 10th best, the spread of the top-10, the resolution of the accuracies) and an
upper bound for any rule that trains its contenders to the end
(``oracle_contender_bound``: contenders known from the true final values, every other
network stopped at epoch 7, the earliest the prior rule can stop), and the
``oracle_frontier``: with the contenders known, every other network stopped at epoch
4 ... 13 on the prior's estimate (savings, MAE and recall per stop epoch), which shows
whether the goal's savings and error can be had together on a beam at all.

Writes benchmarks/results/engine_replay.json, engine_replay.png and engine_latency.json.
Run: ``python benchmarks/engine_replay.py`` (all beams and latency, ~10-15 min on 2 busy
cores). ``--beams low,medium`` replays only those beams and keeps the other beams'
results from the existing JSON (each beam records when it ran); ``--no-latency`` skips
the latency part.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, write_result  # noqa: E402

from a4nn.engine import CurvePrior, PredictionEngine
from a4nn.engine.curves import read_curves
from a4nn.engine.metrics import strategy_report
from a4nn.engine.pruners import median_rule, successive_halving_rule
from a4nn.engine.replay import replay_curves
from a4nn.search.engine_factory import search_knobs

# the published logs: $A4NN_ICPP23_DIR (README "The published A4NN logs"), else ../shared/data/icpp23
ICPP23_DIR = Path(os.environ.get("A4NN_ICPP23_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data" / "icpp23")
DATA = ICPP23_DIR / "1gpu" / "no_early_termination"
BEAMS = {"1e14": "low", "1e15": "medium", "1e16": "high"}
BUDGET = 25


def truncated(curves, used):
    return [c[u - 1] for c, u in zip(curves, used)]


#: a4nn variants replayed with a shared prior in recorded order: name -> extra engine settings
PRIOR_VARIANTS = {"a4nn": {}, "a4nn_no_contender": {"contender_k": 0}, "a4nn_hopeless": {"hopeless_tolerance": 1.0},
                  "a4nn_pareto": {"pareto_contenders": True, "contender_k": 1},
                  "a4nn_search": search_knobs()}


def describe(truth: np.ndarray, k: int = 10) -> dict:
    """What the top of a beam looks like: is its top-k decided by ties?"""
    ordered = np.sort(truth)[::-1]
    distinct = np.unique(np.round(truth, 6))
    return {"kth_best": float(ordered[k - 1]), "best": float(ordered[0]),
            "networks_at_or_above_kth_best": int(np.sum(truth >= ordered[k - 1])),
            "networks_at_best": int(np.sum(truth == ordered[0])),
            "top_k_spread": float(ordered[0] - ordered[k - 1]),
            "resolution": float(np.min(np.diff(distinct))) if len(distinct) > 1 else math.nan,
            "quantiles": {q: float(np.percentile(truth, q)) for q in (10, 25, 50, 75, 90)}}


def oracle_contender_bound(truth: np.ndarray, k: int = 10, stop_epoch: int = 7, warm_up: int = 10) -> dict:
    """Epochs saved if the true contenders (final value >= k-th best so far) trained fully and all others stopped at ``stop_epoch``."""
    known: list[float] = []
    used = []
    for i, value in enumerate(truth):
        threshold = sorted(known)[-k] if len(known) >= k else -math.inf
        used.append(BUDGET if (i < warm_up or value >= threshold) else stop_epoch)
        known.append(float(value))
    return {"stop_epoch": stop_epoch, "contenders": int(sum(u == BUDGET for u in used)),
            "epochs_saved": float(1 - sum(used) / (BUDGET * len(truth)))}


def oracle_frontier(curves: list[list[float]], k: int = 10, warm_up: int = 10, epochs: range = range(4, 14)) -> list[dict]:
    """Savings vs fitness error when the contenders are known: how good can a contender rule get here?

    For each stop epoch ``e``: the true contenders (the first ``warm_up`` networks, and
    every network whose true final value reaches the k-th best of the networks before
    it) train to the end; every other network stops at ``e`` and is handed the
    population prior's estimate, the prior having seen the *complete* curve of every
    earlier network (more than any online rule can know), capped just below the running
    k-th best it was ruled out by (so the true top-k keep their places: recall is 1). If
    no ``e`` reaches the goal's savings with its MAE, a rule that must still guess the
    contenders cannot either.
    """
    truth = [c[-1] for c in curves]
    rows = []
    for stop_epoch in epochs:
        prior = CurvePrior(length=BUDGET, min_curves=6)
        known: list[float] = []
        fitness, used = [], []
        for i, curve in enumerate(curves):
            threshold = sorted(known)[-k] if len(known) >= k else -math.inf
            if i < warm_up or truth[i] >= threshold:
                fitness.append(truth[i])
                used.append(BUDGET)
            else:  # ruled out of the running top-k, so handed a fitness below it (a rule knows the threshold)
                estimate, _ = prior.predict(curve[:stop_epoch])
                estimate = estimate if math.isfinite(estimate) else curve[stop_epoch - 1]
                fitness.append(min(estimate, threshold - 1e-6))
                used.append(stop_epoch)
            prior.add_curve(curve)
            known.append(truth[i])
        report = strategy_report(fitness, truth, used, BUDGET)
        rows.append({"stop_epoch": stop_epoch, "epochs_saved": report["epochs_saved"], "mae": report["mae"],
                     "top10_recall": report["top10_recall"]})
    return rows


def run_beam(path: Path) -> dict:
    curve_set = read_curves(path, "icpp23")
    curves = curve_set.curves
    truth = [c[-1] for c in curves]
    results = {}
    for strategy in ("penguin", *PRIOR_VARIANTS, "a4nn_no_prior"):
        start = time.perf_counter()
        if strategy in PRIOR_VARIANTS:  # a population prior (and population) learned in recorded order
            outcomes = replay_curves(curves, {"strategy": "a4nn", "e_pred": BUDGET, **PRIOR_VARIANTS[strategy]},
                                     prior=True, costs=curve_set.flops)
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


def beam_facts(path: Path) -> dict:
    curves = read_curves(path, "icpp23").curves
    truth = np.array([c[-1] for c in curves])
    return {"data": describe(truth), "oracle_contender_bound": oracle_contender_bound(truth),
            "oracle_frontier": oracle_frontier(curves),
            "ran": datetime.now(timezone.utc).isoformat(timespec="seconds")}


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
    # the default as a search runs it: a ready shared prior and a population; the network is a
    # contender throughout (prior agrees, contender rule keeps it training), so every rule runs
    rng = np.random.default_rng(0)
    prior = CurvePrior(length=25)
    for i in range(50):
        final = 85 + 10 * rng.random()
        prior.add_curve([final - 40 * 0.7 ** x + rng.normal(0, 0.3) for x in range(25)])
    top = [96 - 40 * 0.7 ** x + 0.3 * np.sin(x) for x in range(25)]
    times, stops = [], 0
    for _ in range(10):
        engine = PredictionEngine(prior=prior, plateau_n=99)
        for epoch, value in enumerate(top, start=1):
            start = time.perf_counter()
            stops += engine.observe(epoch, value).stop
            times.append((time.perf_counter() - start) * 1000)
    fitted = [t for t in times if t > 0.05]
    out["a4nn_prior_contender"] = {"median_observe_ms_all_calls": statistics.median(times),
                                   "median_observe_ms": statistics.median(fitted),
                                   "p95_observe_ms": float(np.percentile(fitted, 95)), "stops": stops,
                                   "target_ms": 2.0, "note": "50-curve prior (models cached after the first network)"}
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
    axes[0].set_yscale("symlog", linthresh=1.0)  # the strategies near the goal sit below 1 point
    axes[0].axhline(0.5, ls="--", c="grey"); axes[0].axvline(50, ls="--", c="grey"); axes[0].legend()
    width = 0.25
    for i, (beam, per) in enumerate(results.items()):
        axes[1].bar(np.arange(len(strategies)) + i * width, [per[s]["top10_recall"] for s in strategies], width, label=beam)
    axes[1].set_xticks(np.arange(len(strategies)) + width, strategies, rotation=30, ha="right", fontsize=8)
    axes[1].set_ylabel("top-10 recall"); axes[1].legend()
    fig.tight_layout(); fig.savefig(path, dpi=120); plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beams", default="low,medium,high", help="comma-separated beams to replay (others kept)")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency measurement")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        sys.exit(f"published curves not found at {DATA}")
    wanted = set(args.beams.split(","))
    files = {BEAMS[p.name.split("_")[1]]: p for p in sorted(DATA.glob("*.csv"))}
    previous_path = RESULTS_DIR / "engine_replay.json"
    previous = json.loads(previous_path.read_text()) if previous_path.exists() and wanted != set(files) else {}
    results, facts = {}, {}
    for beam, path in files.items():
        if beam in wanted:
            results[beam], facts[beam] = run_beam(path), beam_facts(path)
    strategies = list(next(iter(results.values())))
    for beam in files:
        kept = previous.get("results", {}).get(beam)
        if beam in results:
            continue
        if kept is not None and list(kept) == strategies and beam in previous.get("beams", {}):
            results[beam], facts[beam] = kept, previous["beams"][beam]
        else:
            print(f"warning: no earlier result of the current strategies for beam {beam}; it is left out")
    results = {beam: results[beam] for beam in files if beam in results}
    facts = {beam: facts[beam] for beam in results}
    overall = {s: {key: float(np.mean([per[s][key] for per in results.values()]))
                   for key in ("epochs_saved", "mae", "spearman", "top10_recall", "top10_recall_ties")}
               for s in strategies}
    goal = {"epochs_saved": ">= 0.5", "mae": "<= 0.5", "top10_recall": ">= 0.9"}
    met = {beam: {"epochs_saved": per["a4nn"]["epochs_saved"] >= 0.5, "mae": per["a4nn"]["mae"] <= 0.5,
                  "top10_recall": per["a4nn"]["top10_recall"] >= 0.9} for beam, per in results.items()}
    path = write_result("engine_replay", {"data": str(DATA), "budget": BUDGET, "goal_default_strategy": goal,
                                          "default_strategy_meets_goal": met, "beams": facts,
                                          "mean_over_beams": overall, "results": results,
                                          "published_epochs_saved": {"low": 0.133, "medium": 0.341, "high": 0.305}})
    plot(results, RESULTS_DIR / "engine_replay.png")
    for beam, per in results.items():
        for name, r in per.items():
            print(f"{beam:<7} {name:<26} saved {100 * r['epochs_saved']:5.1f}%  MAE {r['mae']:.3f}  rho {r['spearman']:.3f}  "
                  f"top10 {r['top10_recall']:.1f} (ties {r['top10_recall_ties']:.1f})  pareto-jaccard {r['pareto']['jaccard']:.2f}")
    for beam, fact in facts.items():
        print(f"{beam:<7} data {fact['data']}  oracle bound {fact['oracle_contender_bound']}")
        print(f"{beam:<7} oracle frontier (stop epoch: saved % / MAE / top-10 recall): " + ", ".join(
            f"{r['stop_epoch']}: {100 * r['epochs_saved']:.1f} / {r['mae']:.2f} / {r['top10_recall']:.1f}"
            for r in fact.get("oracle_frontier", [])))
    print("default meets goal:", met)
    if not args.no_latency:
        lat = latency()
        write_result("engine_latency", lat)
        print(lat)
    print(f"-> {path}")


if __name__ == "__main__":
    main()
