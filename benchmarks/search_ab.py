"""A/B: the same seeded quick search with and without the prediction engine, per beam.

For each beam the search runs twice through the search library (:func:`a4nn.search.run.start`,
what ``a4nn-commons search`` calls) on the same simulated data and seed: ``--engine a4nn`` (or ``--engine penguin``) and ``--engine none`` (standalone).
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
One seed compares two different searches, whose fronts differ mostly by luck; the
seeds are put together by ``search_ab_seeds.py`` (``search_ab_seeds.json``).
Results: ``search_ab.json`` and ``search_ab_seed<S>.json`` are the quick preset (5
generations) with seed 0 and seed S; ``search_ab_contender_z1.5*.json`` the same with
the earlier contender margin of 1.5 held-out errors; ``search_ab_g3.json`` and
``search_ab_g3_seed1.json`` the earlier 3-generation preset (``--generations 3 [--seed 1]
--result-name ...``).
``search_ab_budget.json`` is the error-budget default with a fixed safety factor of 2,
``search_ab_learned.json`` the default with the learned safety factor and the calibrated
extrapolation rule (seed 0, ``--standalone-cache`` runs); ``search_ab_local.json`` and
``search_ab_local_seed1.json`` the default whose error budget charges each stop at the factor of
stops as sure as it; ``search_ab_plateau.json`` and ``search_ab_plateau_seed1.json`` the default
with the bounded plateau rule (seeds 0 and 1; ``search_ab_seeds.py --seeds 0 1 --name search_ab_plateau``).
``search_ab_stale.json``: the default with the calibrated stale rule (seed 0;
``search_ab_seeds.py --seeds 0 --name search_ab_stale``).
Run: ``python benchmarks/search_ab.py [--beams low medium high] [--pop 8 --generations 5 ...]``.

The standalone run does not depend on the engine, so ``--standalone-cache DIR`` keeps
it (``DIR/<beam>-none-<settings hash>.db`` plus its wall time) and later runs with the
same settings reuse it; ``--only-standalone`` just fills that cache. One beam per
command then fits in a few minutes (``--merge`` collects the beams in one file)::

    python benchmarks/search_ab.py --beams low --only-standalone --standalone-cache /tmp/ab
    python benchmarks/search_ab.py --beams low --standalone-cache /tmp/ab --merge   # then medium, high

A cached run is only as good as the code that made it: the determinism check below
compares every genome both runs trained to the end, so a stale cache shows up as
mismatches. Each engine run also records the engine settings stored for the search,
a hash of the ``engine/`` sources (plus whether they had uncommitted changes) and the
rule that stopped each network.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from pymoo.indicators.hv import HV

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from a4nn.engine.metrics import pareto_front  # noqa: E402
from a4nn.lineage.database import Database  # noqa: E402
from a4nn.lineage.frames import architectures_frame  # noqa: E402
from a4nn.search.data import load_dataset  # noqa: E402
from a4nn.search.evaluation import TrainSettings  # noqa: E402
from a4nn.search.presets import ENGINES, PRESETS, STANDALONE  # noqa: E402
from a4nn.search.run import SearchSpec, start  # noqa: E402
from a4nn.search.trainer import build_model, train_network  # noqa: E402


#: settings that do not change what a search trains (left out of cache keys and merge checks)
NOT_SEARCH_SETTINGS = ("beams", "merge", "jobs", "standalone_cache", "only_standalone", "result_name", "retrain",
                       "keep_engine_db")


def standalone_key(beam: str, args: argparse.Namespace) -> str:
    """Cache key of a standalone run: every setting that changes its trainings (engine knobs do not)."""
    keep = {k: v for k, v in vars(args).items()
            if k not in NOT_SEARCH_SETTINGS and k not in ("engine", "r", "prior_curves")}
    # the training code and its default settings are part of the key: a change there (say, to
    # how it validates) retrains; the determinism check in compare() catches what this misses
    root = Path(__file__).resolve().parents[1] / "search"
    code = b"".join((root / f).read_bytes() for f in ("trainer.py", "network.py"))
    trainer = hashlib.sha256(code + json.dumps(TrainSettings().to_dict(), sort_keys=True).encode()).hexdigest()
    return hashlib.sha256(json.dumps({"beam": beam, "trainer": trainer, **keep}, sort_keys=True).encode()).hexdigest()[:12]


def cached_standalone(beam: str, args: argparse.Namespace, folder: Path) -> dict:
    """The standalone run of ``beam``: read back from ``--standalone-cache`` or run (and cached there)."""
    if not args.standalone_cache:
        return run_search(beam, "none", args, folder)
    cache = Path(args.standalone_cache)
    cache.mkdir(parents=True, exist_ok=True)
    stem = f"{beam}-none-{standalone_key(beam, args)}"
    db, meta = cache / f"{stem}.db", cache / f"{stem}.json"
    if db.exists() and meta.exists():
        print(f"[{beam}] standalone read back from {db}", flush=True)
        return {**read_search(f"sqlite:///{db}"), "wall_seconds": json.loads(meta.read_text())["wall_seconds"],
                "cached": str(db)}
    run = run_search(beam, "none", args, folder)
    copy_sqlite(folder / f"{beam}-none.db", db)
    meta.write_text(json.dumps({"wall_seconds": run["wall_seconds"], "settings": vars(args), "beam": beam}))
    # where it is kept, as for a run read back: search_ab_seeds.py replays the engine over it from there
    return {**run, "cached": str(db)}


def copy_sqlite(source: Path, target: Path) -> None:
    """Copy a SQLite database with the backup API (a plain file copy would miss the WAL's pages)."""
    import sqlite3

    partial = target.with_suffix(".partial")
    with sqlite3.connect(source) as src, sqlite3.connect(partial) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    partial.replace(target)


def read_search(url: str) -> dict:
    database = Database.open(url)
    frame = architectures_frame(database)
    database.dispose()
    frame = frame[frame.status != "failed"].copy()
    return {"frame": frame, "epochs": float(frame.epochs_trained.sum()), "networks": int(len(frame)),
            "stopped_early": int(frame.terminated_early.sum())}


def run_search(beam: str, engine: str, args: argparse.Namespace, folder: Path) -> dict:
    url = f"sqlite:///{folder / f'{beam}-{engine}.db'}"
    spec = SearchSpec(beam=beam, engine=engine, seed=args.seed, pop=args.pop, offspring=args.offspring,
                      generations=args.generations, epochs=args.epochs, n_images=args.n_images,
                      image_size=args.image_size, channels=args.channels, checkpoints="none",
                      run_dir=folder / "runs", name=f"ab-{beam}-{engine}", r=args.r, prior_curves=args.prior_curves,
                      cache_dir=data_dir(folder))
    began = time.perf_counter()
    start(spec, url)
    wall = time.perf_counter() - began
    run = {**read_search(url), "wall_seconds": wall}
    if engine != "none":
        run.update(engine_record(url, args))
        if args.keep_engine_db:  # for a look at the engine's decisions afterwards (the run folder is temporary)
            kept = Path(args.keep_engine_db) / f"{beam}-{engine}-seed{args.seed}.db"
            kept.parent.mkdir(parents=True, exist_ok=True)
            copy_sqlite(folder / f"{beam}-{engine}.db", kept)
            run["kept_db"] = str(kept)
    return run


def engine_record(url: str, args: argparse.Namespace) -> dict:
    """What decided: the stored engine settings, the engine code's version, and why each network stopped.

    The stop rule is read from the last prediction of a stopped network: ``prior`` when
    the population prior decided, else never-learns when every epoch stayed inside the
    chance band, else plateau (the engine does not store its reason text).
    """
    import subprocess

    from sqlalchemy import select

    from a4nn.lineage.models import Architecture, EngineConfig, Epoch, Prediction, Search

    database = Database.open(url)
    stopped_by: dict[str, int] = {}
    with database.session() as session:
        search = session.scalars(select(Search)).one()
        config = session.get(EngineConfig, search.engine_config_id)
        settings = {"function": config.function, "c_min": config.c_min, "e_pred": config.e_pred, "n": config.n,
                    "r": config.r, "extra": config.extra}
        # the never-learns rule's band as the engine recorded it (engine_configs.extra["stops"])
        never = next((rule for rule in (config.extra or {}).get("stops", []) if rule.get("rule") == "never-learns"), {})
        level = never.get("level") if never.get("level") is not None else 100.0 / max(int(never.get("n_classes") or 2), 1)
        tolerance = never.get("tolerance")
        for row in session.scalars(select(Architecture).where(Architecture.terminated_early.is_(True))):
            last = session.scalars(select(Prediction.function).where(Prediction.architecture_id == row.id)
                                   .order_by(Prediction.epoch.desc())).first()
            values = session.scalars(select(Epoch.val_acc).where(Epoch.architecture_id == row.id)).all()
            if last == "prior":
                rule = "prior"
            elif tolerance is not None and all(abs(v - level) <= tolerance for v in values):
                rule = "never-learns"
            else:
                rule = "hopeless or other"
            stopped_by[rule] = stopped_by.get(rule, 0) + 1
    database.dispose()
    root = Path(__file__).resolve().parents[1]
    sources = sorted((root / "engine").glob("*.py"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    try:
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "engine"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        commit = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%h", "--", "engine"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        status, commit = "", ""
    version = {"engine_sources_sha256": digest, "last_engine_commit": commit or None,
               "uncommitted_engine_changes": bool(status)}
    return {"engine_settings": settings, "engine_version": version, "stopped_by": stopped_by}


def data_dir(folder: Path) -> Path:
    """Where this run's simulated data sets are cached (inside its temporary folder)."""
    return folder / "data"


def warm_up(settings: TrainSettings, args: argparse.Namespace, folder: Path) -> None:
    """Pay one-off costs (imports, first torch/scipy calls) before anything is timed."""
    from a4nn.engine import PredictionEngine
    from a4nn.search.nsga import make_algorithm  # noqa: F401 - imports pymoo

    engine = PredictionEngine(e_pred=args.epochs)
    for epoch, value in enumerate([60, 70, 75, 78, 79], start=1):
        engine.observe(epoch, value)
    data = load_dataset("xfel-sim", beam="high", n_images=args.n_images, image_size=args.image_size, seed=args.seed,
                        cache_dir=data_dir(folder))
    one = TrainSettings(**{**settings.to_dict(), "epochs": 1})
    train_network(build_model([1] * 21, one, data), data, one, lambda m, _: False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    quick = PRESETS["quick"]
    parser.add_argument("--beams", nargs="+", default=["low", "medium", "high"], choices=["low", "medium", "high"])
    parser.add_argument("--engine", default="a4nn", choices=[e for e in ENGINES if e != STANDALONE])
    parser.add_argument("--pop", type=int, default=quick["pop"])
    parser.add_argument("--offspring", type=int, default=quick["offspring"])
    parser.add_argument("--generations", type=int, default=quick["generations"])
    parser.add_argument("--epochs", type=int, default=quick["epochs"])
    parser.add_argument("--n-images", type=int, default=quick["n_images"])
    parser.add_argument("--image-size", type=int, default=quick["image_size"])
    parser.add_argument("--channels", type=int, default=quick["channels"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--r", type=float, default=quick["r"], help="engine convergence radius (points)")
    parser.add_argument("--prior-curves", type=int, default=quick["prior_curves"],
                        help="complete curves the a4nn engine's population prior needs before it may stop")
    parser.add_argument("--jobs", type=int, default=1,
                        help="beams run in parallel processes (one CPU thread each); 1 on a 2-core machine")
    parser.add_argument("--result-name", default="search_ab", help="benchmarks/results/<name>.json")
    parser.add_argument("--standalone-cache", default=None,
                        help="folder keeping standalone runs for reuse by runs with the same settings")
    parser.add_argument("--only-standalone", action="store_true",
                        help="only run (and cache) the standalone searches; needs --standalone-cache")
    parser.add_argument("--merge", action="store_true",
                        help="keep other beams' results from an existing search_ab.json made with the same settings")
    parser.add_argument("--keep-engine-db", default=None,
                        help="folder to copy each engine run's lineage database to (<beam>-<engine>-seed<S>.db)")
    parser.add_argument("--no-retrain", dest="retrain", action="store_false",
                        help="do not retrain stopped front networks missing from the standalone run")
    args = parser.parse_args()
    if args.only_standalone and not args.standalone_cache:
        parser.error("--only-standalone needs --standalone-cache")
    if args.jobs > 1 and len(args.beams) > 1:
        results = run_beams_in_parallel(args)
        if args.only_standalone:
            return None
        return write_summary({**previous_results(args), **results} if args.merge else results, args)
    torch.set_num_threads(1)
    settings = TrainSettings(epochs=args.epochs, batch_size=quick["batch_size"], channels=args.channels,
                             n_nodes=quick["n_nodes"], seed=args.seed, checkpoints="none")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        warm_up(settings, args, folder)
        for beam in args.beams:
            # simulate (and cache) the data first, so neither timed run pays for it
            load_dataset("xfel-sim", beam=beam, n_images=args.n_images, image_size=args.image_size, seed=args.seed,
                         cache_dir=data_dir(folder))
            if args.only_standalone:
                print(f"[{beam}] standalone ...", flush=True)
                cached_standalone(beam, args, folder)
                continue
            print(f"[{beam}] engine {args.engine} ...", flush=True)
            engine = run_search(beam, args.engine, args, folder)
            print(f"[{beam}] standalone ...", flush=True)
            standalone = cached_standalone(beam, args, folder)
            results[beam] = compare(beam, engine, standalone, args, settings, folder)
            r = results[beam]
            print(f"[{beam}] epochs {r['engine']['epochs']:.0f} vs {r['standalone']['epochs']:.0f} "
                  f"({100 * r['epochs_saved']:.1f}% fewer); wall {r['engine']['wall_seconds']:.0f}s vs "
                  f"{r['standalone']['wall_seconds']:.0f}s; HV ratio {r['hypervolume_ratio']:.4f}", flush=True)
    if args.only_standalone:
        return
    if args.merge:
        results = {**previous_results(args), **results}
    write_summary(results, args)


def run_beams_in_parallel(args: argparse.Namespace) -> dict:
    """Each beam in its own process (this script with ``--beams B``); their results merged."""
    import subprocess

    from _common import RESULTS_DIR

    procs = {}
    for beam in args.beams:
        command = [sys.executable, __file__, "--beams", beam, "--jobs", "1", "--result-name",
                   f"{args.result_name}-{beam}"]
        for key, value in vars(args).items():  # every search setting; the rest is handled here
            if key not in NOT_SEARCH_SETTINGS:
                command += [f"--{key.replace('_', '-')}", str(value)]
        if not args.retrain:
            command.append("--no-retrain")
        if args.standalone_cache:
            command += ["--standalone-cache", str(args.standalone_cache)]
        if args.keep_engine_db:
            command += ["--keep-engine-db", str(args.keep_engine_db)]
        if args.only_standalone:
            command.append("--only-standalone")
        procs[beam] = subprocess.Popen(command)
    results = {}
    for beam, process in procs.items():
        if process.wait() != 0:
            raise SystemExit(f"the {beam} beam run failed (exit {process.returncode})")
        if args.only_standalone:
            continue
        part = RESULTS_DIR / f"{args.result_name}-{beam}.json"
        results[beam] = json.loads(part.read_text())["results"][beam]
        part.unlink()
    return results


def write_summary(results: dict, args: argparse.Namespace) -> None:
    """Summary over beams, written to ``benchmarks/results/<result-name>.json``."""
    saved = [r["epochs_saved"] for r in results.values()]
    ratios = [r["hypervolume_ratio"] for r in results.values() if r["hypervolume_ratio"] is not None]
    summary = {"mean_epochs_saved": float(np.mean(saved)), "min_hypervolume_ratio": float(min(ratios)) if ratios else None,
               "meets_epochs_target": all(s >= 0.35 for s in saved),
               "meets_hypervolume_target": all(abs(1 - h) <= 0.02 or h > 1 for h in ratios)}
    settings = {**vars(args), "beams": list(results)}  # with --merge: every beam in the file, not just this run's
    path = write_result(args.result_name, {"settings": settings, "engine": args.engine, "results": results,
                                      "summary": summary,
                                      "target": {"epochs_saved": 0.35, "hypervolume_within": 0.02},
                                      "method": __doc__.split("Method (why it is fair)")[1].split("Target")[0].strip()})
    print(json.dumps(summary))
    print(f"-> {path}")


def previous_results(args: argparse.Namespace) -> dict:
    """Per-beam results of an earlier run with identical settings (other than the beams)."""
    from _common import RESULTS_DIR

    path = RESULTS_DIR / f"{args.result_name}.json"
    if not path.exists():
        return {}
    old = json.loads(path.read_text())
    same = lambda settings: {k: v for k, v in settings.items() if k not in NOT_SEARCH_SETTINGS}
    return old.get("results", {}) if same(old.get("settings", {})) == same(vars(args)) else {}


def compare(beam: str, engine: dict, standalone: dict, args: argparse.Namespace, settings: TrainSettings,
            folder: Path) -> dict:
    """True-accuracy fronts of both runs and their hypervolumes (see the module docstring)."""
    e, s = engine["frame"], standalone["frame"]
    full_in_standalone = dict(zip(s.genome_bits, s.final_acc))
    # determinism check: genomes trained to the full budget in both runs
    both = [(row.genome_bits, row.final_acc) for row in e.itertuples()
            if not row.terminated_early and row.genome_bits in full_in_standalone]
    mismatches = sum(abs(acc - full_in_standalone[bits]) > 1e-9 for bits, acc in both)

    seen = e.fitness.to_numpy(float)
    front = e.iloc[sorted(pareto_front(seen, e.flops.to_numpy(float)))]
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
                                    seed=args.seed, cache_dir=data_dir(folder))
            bits = [int(b) for b in row.genome_bits]
            history = train_network(build_model(bits, settings, data), data, settings, lambda m, _: False)
            true_acc.append(history[-1].val_acc)
            sources["retrained"] += 1
        else:
            true_acc.append(np.nan)
            sources["missing"] += 1
    engine_points = np.column_stack([100 - np.asarray(true_acc, float), front.flops.to_numpy(float)])
    engine_points = engine_points[np.isfinite(engine_points).all(axis=1)]
    s_front = s.iloc[sorted(pareto_front(s.final_acc.to_numpy(float), s.flops.to_numpy(float)))]
    standalone_points = np.column_stack([100 - s_front.final_acc.to_numpy(float), s_front.flops.to_numpy(float)])
    reference = np.array([100.0, 1.1 * max(engine_points[:, 1].max(initial=0), standalone_points[:, 1].max())])
    hv_engine = float(HV(ref_point=reference)(engine_points)) if len(engine_points) else 0.0
    hv_standalone = float(HV(ref_point=reference)(standalone_points))
    seen_points = np.column_stack([100 - front.fitness.to_numpy(float), front.flops.to_numpy(float)])
    describe = lambda run: {k: run[k] for k in ("epochs", "wall_seconds", "networks", "stopped_early", "cached",
                                                "engine_settings", "engine_version", "stopped_by") if k in run}
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
