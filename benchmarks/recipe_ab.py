"""A/B of the two search recipes (``--recipe a4nn``, the default, and ``--recipe nsga-net``) over seeds.

Method (why it is fair)
    For each beam and seed the quick preset search runs once per recipe through the
    search library (:func:`a4nn.search.run.start`, what ``a4nn-commons search`` calls)
    into its own temporary SQLite database, with everything else equal: the same seed
    (so the same simulated data set and the same first random draws), the same preset
    sizes, and the engine the CLI uses by default (``a4nn``). Only the recipe differs,
    and with it everything the recipe decides (operators, duplicates, batch size, data
    order, input transform, BatchNorm statistics, fitness of a stopped network). The
    data are simulated and a warm-up training runs before anything is timed, so neither
    run pays one-off costs; the order of the two runs alternates from seed to seed, so
    a slow phase of the shared machine does not always land on the same recipe.

    Reported per run: networks (trained architecture rows; a genome the ``a4nn`` recipe
    meets again is not trained again, so it makes no row), distinct genomes among them,
    epochs trained, networks the engine stopped early, wall time, and two fronts on
    ``(100 - accuracy, MFLOPs)`` (exact MFLOPs, the ``flops`` column, for both recipes):

    * ``seen``: the front the NAS selected, by the fitness it saw
      (:func:`a4nn.lineage.queries.front_rows`: the engine's prediction for a network it
      stopped under ``a4nn``, the last measured accuracy under ``nsga-net``, the final
      accuracy of a network that completed); the recipes value stopped networks
      differently, so this front says what each search *believed*;
    * ``completed``: the front of the networks that trained to the end, by their measured
      final accuracy: the like-for-like number (no prediction in it), though it leaves
      out the stopped networks.

    Each hypervolume uses ONE reference point per beam over all runs of that beam,
    ``(100, 1.1 x the largest MFLOPs on any of those fronts)``, so the seeds' values can
    be averaged (as ``search_ab_seeds.py`` does). "Best accuracy" is the codebase's
    "best" (:func:`a4nn.lineage.queries.best_row`: the seen front's highest fitness seen,
    the cheaper one on a tie), with its last measured accuracy and whether it was
    stopped; ``best_completed_acc`` is the best measured final accuracy of a network that
    completed. Per recipe the seeds are summarised by their mean, min, max and a
    bootstrap 95 % interval of the mean (seeds resampled). The engine's sources are
    hashed into the result (with the commit and whether ``engine/`` had uncommitted
    changes): the engine default may change between two runs of this benchmark.

Run::

    python benchmarks/recipe_ab.py                           # seeds 0 1 2, the quick preset's beam
    python benchmarks/recipe_ab.py --seeds 0 1 --beams low high
    python benchmarks/recipe_ab.py --generations 1 --pop 4 --offspring 4 --epochs 3 --result-name recipe_ab_tiny

Result: ``benchmarks/results/<result-name>.json`` (default ``recipe_ab``) and a PNG of the
hypervolumes and epochs per recipe and seed next to it.
"""
from __future__ import annotations

import argparse
import hashlib
import math
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from pymoo.indicators.hv import HV

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, write_result  # noqa: E402

RECIPE_NAMES = ("a4nn", "nsga-net")
#: per-run numbers summarised over seeds
METRICS = ("networks", "distinct_genomes", "epochs", "stopped_early", "hypervolume_seen", "hypervolume_completed",
           "best_fitness_seen", "best_acc_measured", "best_completed_acc", "wall_seconds")


# ------------------------------------------------------------ pure helpers (tested)
def distinct_genomes(bits: Iterable[Any]) -> int:
    """How many different genomes a search trained (missing genomes are not counted)."""
    return len({str(b) for b in bits if b is not None and not (isinstance(b, float) and math.isnan(b))})


def completed_front(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, float]]:
    """Non-dominated ``{acc, flops}`` of the networks that trained to the end (measured final accuracy)."""
    from a4nn.lineage.pareto import pareto_front

    points = [{"acc": float(r["final_acc"]), "flops": float(r["flops"])} for r in rows
              if not r.get("terminated_early") and r.get("status") != "failed"
              and _finite(r.get("final_acc")) and _finite(r.get("flops"))]
    return pareto_front(points, accuracy="acc", cost="flops")


def shared_reference(fronts: Iterable[Sequence[Mapping[str, Any]]]) -> list[float]:
    """``(100, 1.1 x the largest MFLOPs of any point)``: one reference for every front of a beam."""
    largest = max((float(p["flops"]) for front in fronts for p in front), default=0.0)
    return [100.0, 1.1 * largest if largest > 0 else 1.0]


def hypervolume(front: Sequence[Mapping[str, Any]], accuracy_key: str, reference: Sequence[float]) -> float:
    """Hypervolume of ``(100 - accuracy, MFLOPs)`` points against ``reference`` (0 for an empty front)."""
    points = np.array([[100.0 - float(p[accuracy_key]), float(p["flops"])] for p in front], dtype=float).reshape(-1, 2)
    return float(HV(ref_point=np.asarray(reference, dtype=float))(points)) if len(points) else 0.0


def spread(values: Sequence[float], draws: int = 10000, seed: int = 0) -> dict[str, Any]:
    """Mean, min, max and a bootstrap 95 % interval of the mean over seeds (NaNs left out)."""
    x = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if not len(x):
        return {"mean": None, "min": None, "max": None, "mean_95ci": None, "n": 0}
    picks = np.random.default_rng(seed).integers(0, len(x), size=(draws, len(x)))
    means = x[picks].mean(axis=1)
    return {"mean": float(x.mean()), "min": float(x.min()), "max": float(x.max()),
            "mean_95ci": [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))], "n": int(len(x))}


def run_metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts, both fronts and "best" of one search's architecture rows (hypervolumes come later)."""
    from a4nn.lineage.queries import best_row, front_rows

    alive = [r for r in rows if r.get("status") != "failed"]
    seen = front_rows(rows)
    best = best_row(seen)
    completed = [r for r in alive if not r.get("terminated_early") and _finite(r.get("final_acc"))]
    return {
        "networks": len(alive), "failed": len(rows) - len(alive),
        "distinct_genomes": distinct_genomes(r.get("genome_bits") for r in alive),
        "epochs": float(sum(float(r.get("epochs_trained") or 0) for r in alive)),
        "stopped_early": int(sum(bool(r.get("terminated_early")) for r in alive)),
        "completed": len(completed),
        "front_seen": [{"id": int(p["id"]), "fitness_seen": float(p["rank"]), "acc_measured": p["acc"],
                        "flops": float(p["flops"]), "stopped_early": bool(p["early"])} for p in seen],
        "front_completed": completed_front(alive),
        "best": None if best is None else {"id": int(best["id"]), "fitness_seen": float(best["rank"]),
                                           "acc_measured": best["acc"], "flops": float(best["flops"]),
                                           "stopped_early": bool(best["early"])},
        "best_fitness_seen": None if best is None else float(best["rank"]),
        "best_acc_measured": None if best is None else best["acc"],
        "best_completed_acc": max((float(r["final_acc"]) for r in completed), default=None),
    }


def add_hypervolumes(runs: list[dict[str, Any]]) -> list[float]:
    """Hypervolumes of every run of one beam on the beam's shared reference point; returns that point."""
    reference = shared_reference([run["front_seen"] for run in runs] + [run["front_completed"] for run in runs])
    for run in runs:
        run["hypervolume_seen"] = hypervolume(run["front_seen"], "fitness_seen", reference)
        run["hypervolume_completed"] = hypervolume(run["front_completed"], "acc", reference)
    return reference


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{recipe: {metric: spread over seeds}}`` for the runs of one beam."""
    out: dict[str, dict[str, Any]] = {}
    for recipe in sorted({run["recipe"] for run in runs}):
        mine = sorted((run for run in runs if run["recipe"] == recipe), key=lambda run: run["seed"])
        out[recipe] = {"seeds": [run["seed"] for run in mine],
                       **{m: spread([_num(run.get(m)) for run in mine]) for m in METRICS}}
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: Any) -> float:
    return float(value) if _finite(value) else math.nan


# ------------------------------------------------------------ running
def engine_version() -> dict[str, Any]:
    """Hash of ``engine/*.py``, HEAD and whether ``engine/`` has uncommitted changes (tuned in parallel)."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted((root / "engine").glob("*.py")))).hexdigest()[:12]

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"engine_sources_sha256": digest, "head": git("rev-parse", "HEAD") or None,
            "last_engine_commit": git("log", "-1", "--format=%H", "--", "engine") or None,
            "uncommitted_engine_changes": bool(git("status", "--porcelain", "--", "engine")),
            # the tree is shared: other uncommitted changes the run imported, by path
            "uncommitted_paths": [line.split(maxsplit=1)[-1] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]}


def read_rows(url: str) -> list[dict[str, Any]]:
    from a4nn.lineage.database import Database
    from a4nn.lineage.frames import architectures_frame

    database = Database.open(url)
    frame = architectures_frame(database)
    database.dispose()
    return frame.to_dict("records")


def engine_settings(url: str) -> dict[str, Any]:
    """The engine settings stored with the search (the default may be tuned between runs)."""
    from sqlalchemy import select

    from a4nn.lineage.database import Database
    from a4nn.lineage.models import EngineConfig, Search

    database = Database.open(url)
    with database.session() as session:
        search = session.scalars(select(Search)).one()
        config = session.get(EngineConfig, search.engine_config_id) if search.engine_config_id else None
        settings = None if config is None else {"function": config.function, "c_min": config.c_min,
                                                "e_pred": config.e_pred, "n": config.n, "r": config.r,
                                                "extra": config.extra}
    database.dispose()
    return settings


def run_one(beam: str, recipe: str, seed: int, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """One quick-preset search with ``recipe``; its metrics (no hypervolume yet) and wall time."""
    from a4nn.search.run import SearchSpec, start

    url = f"sqlite:///{folder / f'{beam}-{recipe}-seed{seed}.db'}"
    spec = SearchSpec(preset="quick", beam=beam, recipe=recipe, engine=args.engine, seed=seed, pop=args.pop,
                      offspring=args.offspring, generations=args.generations, epochs=args.epochs,
                      checkpoints="none", run_dir=folder / "runs", name=f"recipe-ab-{beam}-{recipe}-{seed}",
                      cache_dir=folder / "data")
    began = time.perf_counter()
    start(spec, url)
    wall = time.perf_counter() - began
    return {"beam": beam, "recipe": recipe, "seed": seed, "wall_seconds": wall, **run_metrics(read_rows(url)),
            "engine_settings": engine_settings(url)}


def warm_up(folder: Path) -> None:
    """Pay one-off costs (imports, first torch/scipy/pymoo calls) before anything is timed."""
    from a4nn.engine import PredictionEngine
    from a4nn.search.data import load_dataset
    from a4nn.search.evaluation import TrainSettings
    from a4nn.search.nsga import make_algorithm  # noqa: F401 - imports pymoo
    from a4nn.search.presets import PRESETS
    from a4nn.search.trainer import build_model, train_network

    quick = PRESETS["quick"]
    engine = PredictionEngine(e_pred=quick["epochs"])
    for epoch, value in enumerate([60, 70, 75, 78, 79], start=1):
        engine.observe(epoch, value)
    data = load_dataset("xfel-sim", beam="high", n_images=quick["n_images"], image_size=quick["image_size"], seed=0,
                        cache_dir=folder / "data")
    one = TrainSettings(epochs=1, batch_size=quick["batch_size"], channels=quick["channels"], n_nodes=quick["n_nodes"],
                        checkpoints="none")
    train_network(build_model([1] * 21, one, data), data, one, lambda m, _: False)


def plot(beams: dict[str, Any], path: Path) -> Path | None:
    """Hypervolume (completed and seen) and epochs per recipe and seed, one row per beam."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(len(beams), 3, figsize=(11, 3.2 * len(beams)), squeeze=False)
    for row, (beam, result) in zip(axes, beams.items()):
        seeds = sorted({run["seed"] for run in result["runs"]})
        x = np.arange(len(seeds))
        for ax, metric, title in zip(row, ("hypervolume_completed", "hypervolume_seen", "epochs"),
                                     ("hypervolume, completed networks", "hypervolume, fitness seen",
                                      "epochs trained")):
            for k, recipe in enumerate(RECIPE_NAMES):
                values = [next((r[metric] for r in result["runs"] if r["recipe"] == recipe and r["seed"] == s),
                               np.nan) for s in seeds]
                ax.bar(x + (k - 0.5) * 0.38, values, 0.38, label=recipe)
            ax.set_xticks(x, [f"seed {s}" for s in seeds])
            ax.set_title(f"{beam}: {title}", fontsize=10)
        row[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main() -> None:
    from a4nn.search.presets import ENGINES, PRESETS

    quick = PRESETS["quick"]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--beams", nargs="+", default=[quick["beam"]], choices=["low", "medium", "high"])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPE_NAMES), choices=list(RECIPE_NAMES))
    parser.add_argument("--engine", default="a4nn", choices=list(ENGINES), help="the CLI's default: a4nn")
    parser.add_argument("--pop", type=int, default=None, help="default: the quick preset's")
    parser.add_argument("--offspring", type=int, default=None)
    parser.add_argument("--generations", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--result-name", default="recipe_ab", help="benchmarks/results/<name>.json (and .png)")
    parser.add_argument("--deadline", default=None, metavar="HH:MM",
                        help="UTC time to finish by: a seed that would not (at the longest seed's pace) is left out "
                             "and the result says so")
    args = parser.parse_args()
    deadline = None
    if args.deadline:
        hour, minute = (int(v) for v in args.deadline.split(":"))
        now = datetime.now(timezone.utc)
        deadline = now.replace(hour=hour, minute=minute, second=0, microsecond=0).timestamp()
    skipped: dict[str, list[int]] = {}
    version_before = engine_version()
    beams: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        warm_up(folder)
        for beam in args.beams:
            runs, longest = [], 0.0
            for seed in args.seeds:
                from a4nn.search.data import load_dataset
                if deadline is not None and runs and time.time() + 1.1 * longest > deadline:
                    skipped.setdefault(beam, []).append(seed)
                    print(f"[{beam} seed {seed}] left out: it would end after {args.deadline} UTC", flush=True)
                    continue
                seed_began = time.perf_counter()
                # simulate (and cache) this seed's data set first, so no timed run pays for it
                load_dataset("xfel-sim", beam=beam, n_images=quick["n_images"], image_size=quick["image_size"],
                             seed=seed, cache_dir=folder / "data")
                order = args.recipes if seed % 2 == 0 else list(reversed(args.recipes))
                for recipe in order:
                    print(f"[{beam} seed {seed}] recipe {recipe} ...", flush=True)
                    run = run_one(beam, recipe, seed, args, folder)
                    runs.append(run)
                    print(f"[{beam} seed {seed}] {recipe}: {run['networks']} networks, {run['distinct_genomes']} "
                          f"distinct, {run['epochs']:.0f} epochs, {run['stopped_early']} stopped, best seen "
                          f"{run['best_fitness_seen']}, best completed {run['best_completed_acc']}, "
                          f"{run['wall_seconds']:.0f} s", flush=True)
                longest = max(longest, time.perf_counter() - seed_began)
            reference = add_hypervolumes(runs)
            beams[beam] = {"reference_point": reference, "summary": summarize(runs), "runs": runs}
    version_after = engine_version()
    settings = {**vars(args), "preset": "quick",
                "preset_values": {k: v for k, v in quick.items()},
                "pop": args.pop or quick["pop"], "offspring": args.offspring or quick["offspring"],
                "generations": args.generations or quick["generations"], "epochs": args.epochs or quick["epochs"]}
    path = write_result(args.result_name, {
        "settings": settings, "engine_version": version_after,
        "engine_changed_during_run": version_before != version_after,
        "engine_version_at_start": version_before, "beams": beams,
        "seeds_left_out_for_time": skipped,
        "method": __doc__.split("Method (why it is fair)")[1].split("Run::")[0].strip()})
    png = plot(beams, RESULTS_DIR / f"{args.result_name}.png")
    for beam, result in beams.items():
        for recipe, row in result["summary"].items():
            print(f"[{beam}] {recipe}: " + ", ".join(
                f"{m} {row[m]['mean']:.4g}" for m in METRICS if row[m]["mean"] is not None))
    print(f"-> {path}" + (f", {png}" if png else ""))


if __name__ == "__main__":
    main()
