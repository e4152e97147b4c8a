"""The A/B of ``search_ab.py`` over several seeds, and what the seeds say together.

Why: one seeded A/B compares two *different* searches. As soon as one fitness differs,
NSGA-II breeds other offspring, and the fronts of 40-network searches differ by which
cheap architecture each happened to meet. The hypervolume is mostly set by the front's
cheapest member, so the standalone search's own hypervolume changes by a factor of up to
two from one seed to the next (``standalone_spread`` below). "Within 2 %" on one seed is
then far below what the measurement resolves. Averaged over seeds, the engine's effect
on the fronts can be told apart from the luck of the draw.

For each beam, over the seeds:

* ``epochs_saved``: per seed, their mean and minimum;
* the hypervolume of every front (engine: its selected networks at their TRUE final
  accuracy, exactly as ``search_ab.py`` reports them; standalone: measured), recomputed
  on ONE reference point per beam, ``(100, 1.1 x the largest MFLOPs of any of these
  fronts)``, so the seeds' values can be averaged (each seed's file uses its own);
* ``hypervolume_ratio_of_means``: mean engine HV / mean standalone HV, with a bootstrap
  95 % interval over the seeds (resampled in pairs, since a seed fixes the data and the
  first generation of both runs);
* ``standalone_spread``: the standalone HV's min, max and coefficient of variation over
  the seeds: the noise floor any single-seed ratio sits on;
* ``fixed_population`` (where the standalone run's database is at hand, ``--standalone-cache``):
  the engine the search builds (``EngineFactory``, same data, knobs and prior) replayed over
  the standalone search's own networks in their training order. The front it selects by
  the fitness the NAS would have seen is measured on their true final accuracies against
  the true front of the same networks. The two runs cannot diverge here, so this ratio
  isolates what the engine's fitness does to the choice of networks, free of search luck
  (it cannot show how the search would have moved instead).

Run (each seed's A/B is a ``search_ab.py`` process; flags after ``--`` go to it)::

    python benchmarks/search_ab_seeds.py --seeds 0 1 2 -- --standalone-cache /tmp/ab --jobs 3
    python benchmarks/search_ab_seeds.py --seeds 0 1 2 --summarize-only   # from the per-seed files

Per-seed results: ``<name>.json`` for seed 0, ``<name>_seed<S>.json`` otherwise
(``search_ab.json``, ``search_ab_seed1.json``, ...); the summary: ``<name>_seeds.json``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pymoo.indicators.hv import HV

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, write_result  # noqa: E402

TARGET_SAVED, TARGET_WITHIN = 0.35, 0.02


def seed_result_name(name: str, seed: int) -> str:
    """The per-seed file's name, as the earlier single-seed results were named."""
    return name if seed == 0 else f"{name}_seed{seed}"


def front_points(front: Sequence[dict], accuracy_key: str) -> np.ndarray:
    """``(100 - accuracy, MFLOPs)`` rows of a front as ``search_ab.py`` stores it."""
    return np.array([[100.0 - float(p[accuracy_key]), float(p["flops"])] for p in front], dtype=float).reshape(-1, 2)


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    return float(HV(ref_point=reference)(points)) if len(points) else 0.0


def bootstrap_ratio(engine: np.ndarray, standalone: np.ndarray, draws: int = 10000, seed: int = 0) -> list[float]:
    """95 % interval of mean(engine) / mean(standalone) over seeds resampled in pairs."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(engine), size=(draws, len(engine)))
    ratios = engine[picks].mean(axis=1) / standalone[picks].mean(axis=1)
    return [float(np.quantile(ratios, 0.025)), float(np.quantile(ratios, 0.975))]


def fixed_population(settings: dict[str, Any], beam: str, standalone_db: str,
                     engine_settings: dict[str, Any]) -> dict[str, float] | None:
    """The search's engine replayed over a finished standalone search's networks (see the module doc).

    None when this code's engine is not the one the A/B ran (``engine_settings``, as stored
    with the search): a replay with other knobs would be put down to the wrong run.
    """
    import tempfile

    from sqlalchemy import select

    from a4nn.lineage.database import Database
    from a4nn.lineage.models import Search
    from a4nn.search.data import load_dataset
    from a4nn.engine.metrics import pareto_front
    from a4nn.search.engine_factory import EngineFactory, chance_band, population_from_database

    epochs = int(settings["epochs"])
    with tempfile.TemporaryDirectory() as tmp:
        data = load_dataset("xfel-sim", beam=beam, n_images=settings["n_images"], image_size=settings["image_size"],
                            seed=settings["seed"], cache_dir=tmp)
    factory = EngineFactory("a4nn", epochs, settings["r"], chance_band(data), prior_curves=settings["prior_curves"],
                            n_val=len(data.val_y))
    built = factory().settings()
    if {k: built[k] for k in ("function", "c_min", "e_pred", "n", "r", "extra")} != engine_settings:
        return None
    database = Database.open(f"sqlite:///{standalone_db}")
    with database.session() as session:
        search_id = session.scalars(select(Search.id)).one()
    population = population_from_database(database, search_id, epochs)
    database.dispose()
    fitness, used = [], 0
    for curve, cost in zip(population.curves, population.curve_costs):
        engine = factory()
        engine.reset(cost=cost)
        for epoch, value in enumerate(curve, start=1):
            decision = engine.observe(epoch, value)
            if decision.stop and epoch < epochs:
                break
        used += epoch
        if decision.stop and epoch < epochs:
            fitness.append(decision.prediction)
        else:
            engine.complete()
            fitness.append(curve[-1])
    final = np.array([curve[-1] for curve in population.curves], dtype=float)
    flops = np.array(population.curve_costs, dtype=float)
    reference = np.array([100.0, 1.1 * flops.max()])
    points = lambda rows: np.column_stack([100.0 - final[rows], flops[rows]])
    chosen = sorted(pareto_front(np.array(fitness), flops))
    return {"networks": len(final), "epochs_saved": 1.0 - used / (epochs * len(final)),
            "hypervolume_ratio": hypervolume(points(chosen), reference)
            / hypervolume(points(sorted(pareto_front(final, flops))), reference)}


def summarize(per_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Per-beam summary of several ``search_ab.py`` result files (``{seed: file's "results"}``)."""
    beams = sorted(set.intersection(*(set(results) for results in per_seed.values())))
    seeds = sorted(per_seed)
    summary: dict[str, Any] = {}
    for beam in beams:
        runs = [per_seed[s][beam] for s in seeds]
        fronts = [(front_points(r["engine"]["front"], "true_acc"), front_points(r["standalone"]["front"], "acc"))
                  for r in runs]
        largest = max(float(points[:, 1].max()) for pair in fronts for points in pair if len(points))
        reference = np.array([100.0, 1.1 * largest])
        engine_hv = np.array([hypervolume(e, reference) for e, _ in fronts])
        standalone_hv = np.array([hypervolume(s, reference) for _, s in fronts])
        saved = np.array([float(r["epochs_saved"]) for r in runs])
        ratio = float(engine_hv.mean() / standalone_hv.mean())
        summary[beam] = {
            "seeds": seeds,
            "epochs_saved": saved.tolist(), "mean_epochs_saved": float(saved.mean()),
            "min_epochs_saved": float(saved.min()),
            "reference_point": reference.tolist(),
            "hypervolume_engine": engine_hv.tolist(), "hypervolume_standalone": standalone_hv.tolist(),
            "hypervolume_ratio_per_seed": (engine_hv / standalone_hv).tolist(),
            "hypervolume_ratio_of_means": ratio,
            "hypervolume_ratio_95ci": bootstrap_ratio(engine_hv, standalone_hv),
            "standalone_spread": {"min": float(standalone_hv.min()), "max": float(standalone_hv.max()),
                                  "cv": float(standalone_hv.std(ddof=1) / standalone_hv.mean())
                                  if len(seeds) > 1 else None},
            "meets_epochs_target_on_mean": bool(saved.mean() >= TARGET_SAVED),
            "seeds_meeting_epochs_target": int((saved >= TARGET_SAVED).sum()),
            "meets_hypervolume_target_on_mean": bool(ratio >= 1 - TARGET_WITHIN),
            "seeds_meeting_both": int(((saved >= TARGET_SAVED)
                                       & (engine_hv / standalone_hv >= 1 - TARGET_WITHIN)).sum()),
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--name", default="search_ab", help="result name of the per-seed files and the summary")
    parser.add_argument("--summarize-only", action="store_true", help="read the per-seed files, run nothing")
    args, forwarded = parser.parse_known_args()
    forwarded = [a for a in forwarded if a != "--"]
    script = Path(__file__).resolve().parent / "search_ab.py"
    per_seed: dict[int, dict] = {}
    settings: dict[int, dict] = {}
    for seed in args.seeds:
        name = seed_result_name(args.name, seed)
        if not args.summarize_only:
            command = [sys.executable, str(script), "--seed", str(seed), "--result-name", name, *forwarded]
            if subprocess.run(command).returncode != 0:
                raise SystemExit(f"the A/B of seed {seed} failed")
        path = RESULTS_DIR / f"{name}.json"
        if not path.exists():
            raise SystemExit(f"{path}: no result for seed {seed} (run it first, or leave out --summarize-only)")
        stored = json.loads(path.read_text())
        per_seed[seed], settings[seed] = stored["results"], stored["settings"]
    summary = summarize(per_seed)
    for beam, row in summary.items():  # the same networks, no divergence: needs the cached standalone runs
        cached = {seed: per_seed[seed][beam]["standalone"].get("cached") for seed in args.seeds}
        if all(path and Path(path).exists() for path in cached.values()):
            replays = [fixed_population(settings[seed], beam, cached[seed],
                                        per_seed[seed][beam]["engine"]["engine_settings"]) for seed in args.seeds]
            if any(replay is None for replay in replays):
                print(f"[{beam}] no replay over the standalone networks: the A/B ran another engine than this code's")
                continue
            ratios = [r["hypervolume_ratio"] for r in replays]
            row["fixed_population"] = {"per_seed": replays, "mean_hypervolume_ratio": float(np.mean(ratios)),
                                       "min_hypervolume_ratio": float(np.min(ratios)),
                                       "mean_epochs_saved": float(np.mean([r["epochs_saved"] for r in replays]))}
    out = write_result(f"{args.name}_seeds", {
        "seeds": args.seeds, "per_seed_files": [f"{seed_result_name(args.name, s)}.json" for s in args.seeds],
        "beams": summary, "target": {"epochs_saved": TARGET_SAVED, "hypervolume_within": TARGET_WITHIN},
        "method": __doc__.split("For each beam, over the seeds:")[1].split("Run (")[0].strip()})
    for beam, row in summary.items():
        low, high = row["hypervolume_ratio_95ci"]
        print(f"[{beam}] epochs saved {100 * row['mean_epochs_saved']:.1f} % (min {100 * row['min_epochs_saved']:.1f}); "
              f"HV ratio of means {row['hypervolume_ratio_of_means']:.3f} (95 % CI {low:.2f}-{high:.2f}); "
              f"standalone HV spread cv {row['standalone_spread']['cv']}"
              + (f"; same networks: HV ratio {row['fixed_population']['mean_hypervolume_ratio']:.3f} "
                 f"(min {row['fixed_population']['min_hypervolume_ratio']:.3f})" if "fixed_population" in row else ""))
    print(f"-> {out}")


if __name__ == "__main__":
    main()
