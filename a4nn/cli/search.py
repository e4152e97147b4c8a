"""``a4nn-commons search``: the A4NN workflow end to end (NSGA-Net + prediction engine + lineage)."""
from __future__ import annotations

import json
import math
import socket
import time
from pathlib import Path
from typing import Any

import click

from a4nn.cli.options import db_option, open_db
from a4nn.lineage.pareto import pareto_front
from a4nn.lineage.urls import display_url

PRESETS: dict[str, dict[str, Any]] = {
    # finishes on 2 CPU cores in a few minutes and still shows the engine at work: 20 epochs, because
    # under the cosine schedule the validation curves only settle in its last third (with 12 they were
    # still climbing at the end, so no rule could stop a network that learns); 24 px pays for them.
    # 5 generations (40 networks): the first 6 train to the end to teach the engine's population
    # prior, a fixed cost that a 24-network search amortizes badly (benchmarks/search_ab.py: 31 % of the
    # epochs saved with 3 generations, 35 % with 5)
    "quick": dict(pop=8, offspring=8, generations=5, epochs=20, image_size=24, n_images=600, channels=8,
                  batch_size=32, n_nodes=4, r=1.0, beam="low", prior_curves=6),
    # Table 2 of the A4NN paper: pop 10, offspring 10, 10 generations, 25 epochs, 4 nodes, C=24, 127x127 images
    "paper": dict(pop=10, offspring=10, generations=10, epochs=25, image_size=127, n_images=2000, channels=24,
                  batch_size=64, n_nodes=4, r=0.5, beam="low", prior_curves=10),
}
ENGINES = ("a4nn", "penguin", "none")
#: options that may be changed when resuming (where and how, not what is searched)
RESUME_OVERRIDES = ("workers", "ray_address", "device", "overlap")


def _options_from_cli(ctx: click.Context, params: dict[str, Any]) -> dict[str, Any]:
    """The stored search configuration: the preset, overridden by every option given explicitly."""
    options = dict(PRESETS[params["preset"]])
    for key in ("pop", "offspring", "generations", "epochs", "channels", "image_size", "n_images", "batch_size",
                "lr", "r", "beam", "prior_curves"):
        if params.get(key) is not None:
            options[key] = params[key]
    options.update({key: params[key] for key in ("dataset", "seed", "preset", "device", "checkpoints",
                                                 "workers", "ray_address", "overlap", "precise_bn")})
    options["engine"] = params["engine_name"]
    options.setdefault("lr", 0.025)
    if options["pop"] < 2 or options["offspring"] < 1 or options["generations"] < 1 or options["epochs"] < 1:
        raise click.BadParameter("need --pop >= 2, --offspring >= 1, --generations >= 1 and --epochs >= 1")
    return options


@click.command()
@db_option
@click.option("--dataset", default="xfel-sim", show_default=True,
              help="'xfel-sim' (the embedded diffraction simulator) or a PATH: a folder with images/, .npz or .h5.")
@click.option("--beam", type=click.Choice(["low", "medium", "high"]), default=None,
              help="Beam intensity 1e14/1e15/1e16 photons/um^2/pulse (simulator; filter for real XFEL folders). "
                   "Default: low.")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="quick", show_default=True,
              help="quick: 600 simulated 24 px images, C=8, pop 8 + 8 offspring x 4, 20 epochs, low beam (minutes "
                   "on 2 cores); paper: Table 2 (pop 10, offspring 10, 10 generations, 25 epochs, 4 nodes, C=24, "
                   "127 px, r=0.5).")
@click.option("--pop", type=int, help="Population size (overrides the preset).")
@click.option("--offspring", type=int, help="Offspring per generation.")
@click.option("--generations", type=int, help="Number of generations (the first one is the random population).")
@click.option("--epochs", type=int, help="Epoch budget per network (also the engine's e_pred).")
@click.option("--channels", type=int, help="Channels C of the first phase (phases use C, 2C, 4C).")
@click.option("--image-size", type=int, help="Simulated image size in pixels.")
@click.option("--n-images", type=int, help="Simulated images (balanced classes, 80/20 split).")
@click.option("--batch-size", type=int, help="Training batch size.")
@click.option("--lr", type=float, help="Initial SGD learning rate (cosine schedule to 0).")
@click.option("--r", type=float, help="Engine convergence radius r (accuracy points).")
@click.option("--precise-bn/--no-precise-bn", default=True, show_default=True,
              help="Recompute BatchNorm statistics on the training split before each validation (smooth, "
                   "predictable validation curves; see TrainSettings.precise_bn).")
@click.option("--prior-curves", type=int,
              help="a4nn engine: networks that must train to the end before the population prior may stop one "
                   "(quick 6, paper 10).")
@click.option("--engine", "engine_name", type=click.Choice(ENGINES), default="a4nn", show_default=True,
              help="Prediction engine: a4nn (improved default), penguin (faithful PENGUIN rule) or none (standalone).")
@click.option("--workers", type=int, default=1, show_default=True, help="Parallel training slots (>1 uses Ray).")
@click.option("--ray-address", default=None, help="Address of an existing Ray cluster (implies Ray).")
@click.option("--overlap/--no-overlap", default=False, show_default=True,
              help="With Ray: start the next generation while the current one's tail still trains.")
@click.option("--device", default="auto", show_default=True, help="Torch device: auto, cpu, cuda, cuda:N.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds data, NSGA-II and training.")
@click.option("--run-dir", type=click.Path(path_type=Path), default=Path("runs"), show_default=True,
              help="Parent folder of the search's run folder (checkpoints, NSGA state).")
@click.option("--checkpoints", type=click.Choice(["epoch", "final", "none"]), default="epoch", show_default=True,
              help="Save model state every epoch, only the last one, or never.")
@click.option("--resume", "resume_id", type=int, default=None,
              help="Continue search ID after an interruption (kill -9 included); finished networks are not retrained.")
@click.option("--name", default=None, help="Search name (unique); default derived from the settings and time.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def search(ctx: click.Context, db_url: str, resume_id: int | None, name: str | None, run_dir: Path, quiet: bool,
           **params: Any) -> None:
    """Run an NSGA-Net macro search whose trainings the prediction engine cuts short.

    Every network's genome and parents, architecture, epochs, predictions and
    checkpoints go to the lineage database (--db). At the end a Pareto table
    (validation accuracy vs MFLOPs) and the epochs saved against the full budget are
    printed. A killed search continues with --resume ID; the networks it had
    finished are read back, not retrained.

    \b
    Examples:
      a4nn-commons search --preset quick
      a4nn-commons search --preset quick --engine none --beam high
      a4nn-commons search --preset paper --workers 4
      a4nn-commons search --resume 3
    """
    from a4nn import __version__
    from a4nn.lineage.models import Search
    from a4nn.lineage.recorder import Recorder
    from a4nn.search.nsga import STATE_FILE

    database = open_db(db_url, upgrade=True)
    recorder = Recorder(database)
    if resume_id is not None:
        with database.session() as session:
            row = session.get(Search, resume_id)
            if row is None:
                raise click.ClickException(f"no search with id {resume_id} in {display_url(db_url)}")
            if row.nas != "nsga-net-macro" or "run_dir" not in (row.config or {}):
                raise click.ClickException(f"search {resume_id} ({row.name}) was not started by 'a4nn-commons search'")
            options, status, search_name = dict(row.config), row.status, row.name
        for key in RESUME_OVERRIDES:  # where to train may change, what to search may not
            if ctx.get_parameter_source(key) == click.core.ParameterSource.COMMANDLINE:
                options[key] = params[key]
        if status == "completed":
            click.echo(f"search {resume_id} ({search_name}) is already complete")
            summarize(database, resume_id, options["epochs"])
            return
        click.echo(f"resuming search {resume_id} ({search_name})")
    else:
        options = _options_from_cli(ctx, params)

    from a4nn.search.engine_factory import (DEFAULT_PRIOR_CURVES, EngineFactory, chance_band,
                                            population_from_database)

    data = _load_data(options, quiet)
    engine_factory = EngineFactory(options["engine"], options["epochs"], options["r"], chance_band(data),
                                   prior_curves=options.get("prior_curves") or DEFAULT_PRIOR_CURVES,
                                   n_val=len(data.val_y))
    dataset_id = recorder.register_dataset(data.name, data.kind, data.attributes)
    engine_config_id = None
    if options["engine"] != "none":
        engine_config_id = recorder.register_engine_config(**engine_factory().settings())
    if resume_id is None:
        name = name or (f"nsga-{Path(options['dataset']).name}-{options['beam']}-{options['engine']}-s{options['seed']}"
                        f"-{time.strftime('%Y%m%dT%H%M%S')}")
        folder = (run_dir / name).resolve()
        if (folder / STATE_FILE).exists():
            raise click.ClickException(f"{folder} already holds the state of another search; pass another --run-dir")
        options["run_dir"] = str(folder)
        options["state_path"] = str(folder / STATE_FILE)
        with database.session() as session:
            from sqlalchemy import select

            existing = session.scalar(select(Search.id).where(Search.name == name))
        if existing is not None:
            raise click.ClickException(f"a search named {name!r} exists (id {existing}); "
                                       f"use --resume {existing} or another --name")
        search_id = recorder.start_search(name, "nsga-net-macro", dataset_id, engine_config_id, options,
                                          seed=options["seed"], code_version=__version__, host=socket.gethostname())
        click.echo(f"search {search_id} ({name}): {options['pop']} + {options['offspring']} x "
                   f"{options['generations'] - 1} networks, {options['epochs']} epochs each, engine {options['engine']}")
    else:
        search_id = resume_id
        recorder.set_search_status(search_id, "running")
        # the population prior learns from the complete curves recorded before the interruption
        engine_factory.teach(population_from_database(database, search_id, options["epochs"]))
    folder = Path(options["run_dir"])
    _run(recorder, database, db_url, search_id, options, data, engine_factory, folder, quiet)
    recorder.finish_search(search_id)
    summarize(database, search_id, options["epochs"])


def _load_data(options: dict[str, Any], quiet: bool):
    from a4nn.search.data import load_dataset

    return load_dataset(options["dataset"], beam=options["beam"], n_images=options["n_images"],
                        image_size=options["image_size"], seed=options["seed"], progress=not quiet)


def _run(recorder, database, db_url: str, search_id: int, options: dict[str, Any], data, engine_factory,
         folder: Path, quiet: bool) -> None:
    from a4nn.progress import progress_bar

    from a4nn.search.evaluation import SerialEvaluator, TrainSettings
    from a4nn.search.nsga import NSGANetSearch, SearchConfig

    settings = TrainSettings(epochs=options["epochs"], batch_size=options["batch_size"], lr=options.get("lr", 0.025),
                             channels=options["channels"], n_nodes=options["n_nodes"], seed=options["seed"],
                             device=options["device"], checkpoints=options["checkpoints"],
                             # a search stored before the option existed trained without it
                             precise_bn=options.get("precise_bn", False))
    parallel = (options.get("workers") or 1) > 1 or options.get("ray_address")
    if parallel:
        try:
            from a4nn.search.distributed import RayEvaluator
            from a4nn.search.ray_overlap import make_search
        except ImportError as exc:  # pragma: no cover - Ray is a declared dependency
            raise click.ClickException(f"parallel training needs Ray and a4nn.search.distributed: {exc}") from exc
        evaluator = RayEvaluator(recorder, engine_factory, data, settings, workers=options.get("workers") or None,
                                 address=options.get("ray_address"), overlap=bool(options.get("overlap")),
                                 run_dir=folder, progress=not quiet)
    else:
        evaluator = SerialEvaluator(recorder, engine_factory, data, settings, folder, progress=not quiet)
        make_search = NSGANetSearch

    config = SearchConfig(options["pop"], options["offspring"], options["generations"], options["n_nodes"],
                          options["channels"], (1, data.in_channels, *data.image_size), data.n_classes,
                          options["seed"])
    bar = progress_bar(total=options["generations"], desc=f"search {search_id}", unit="gen",
                       enabled=not quiet)  # drawn on a terminal only
    done_before = _generations_done(folder)
    bar.update(done_before)

    def on_generation(generation: int, results) -> None:
        fitness = [r.fitness for r in results if r.fitness is not None]
        bar.set_postfix(gen=generation, best=f"{max(fitness):.1f}" if fitness else "-",
                        epochs=sum(r.epochs_trained for r in results))
        bar.update(1)

    try:
        make_search(recorder, search_id, config, evaluator, folder, on_generation).run()
    except KeyboardInterrupt:
        recorder.set_search_status(search_id, "interrupted")
        click.echo(f"\ninterrupted; continue with: a4nn-commons search --resume {search_id} --db {display_url(db_url)}", err=True)
        raise
    except BaseException:
        recorder.set_search_status(search_id, "failed")
        raise
    finally:
        bar.close()
        evaluator.close()


def _generations_done(folder: Path) -> int:
    from a4nn.search.nsga import STATE_FILE

    path = folder / STATE_FILE
    if not path.exists():
        return 0
    import pickle

    try:
        with open(path, "rb") as handle:
            return int(pickle.load(handle).generation)
    except Exception:  # noqa: BLE001 - only for the progress bar; the search reports real errors
        return 0


def front_rows(frame: Any) -> list[dict]:
    """The search's Pareto front from its architectures frame, ranked by the fitness the search saw.

    A stopped network's last validation accuracy is an early-epoch value, not comparable
    with the final accuracy of one trained to the end, so the front is the NAS's own:
    fitness (the prediction for a stopped network) vs MFLOPs.
    """
    rows = []
    for r in frame.itertuples():
        if r.final_acc is None or not math.isfinite(r.final_acc) or r.flops is None or not math.isfinite(r.flops):
            continue
        fitness = float(r.fitness) if r.fitness is not None and math.isfinite(r.fitness) else float("nan")
        rows.append({"id": int(r.id), "generation": int(r.generation), "acc": float(r.final_acc),
                     "fitness": fitness, "rank": fitness if math.isfinite(fitness) else float(r.final_acc),
                     "flops": float(r.flops), "epochs": float(r.epochs_trained or 0),
                     "early": bool(r.terminated_early)})
    return pareto_front(rows, accuracy="rank")


def summarize(database, search_id: int, budget: int) -> dict[str, Any]:
    """Print the Pareto table and the epochs saved; return the same numbers."""
    from a4nn.lineage.frames import architectures_frame

    frame = architectures_frame(database, search_id)
    click.echo(f"\nPareto front of search {search_id} (fitness vs MFLOPs; fitness: the final validation accuracy, "
               f"or the engine's prediction for a network it stopped):")
    click.echo(f"{'model':>6} {'gen':>4} {'val acc %':>10} {'fitness':>8} {'MFLOPs':>10} {'epochs':>7} {'early':>6}")
    for row in front_rows(frame):
        click.echo(f"{row['id']:>6} {row['generation']:>4} {row['acc']:>10.2f} {row['fitness']:>8.2f} "
                   f"{row['flops']:>10.3f} {row['epochs']:>7.0f} {'yes' if row['early'] else 'no':>6}")
    trained = float(frame["epochs_trained"].fillna(0).sum()) if len(frame) else 0.0
    possible = budget * len(frame)
    saved = 1 - trained / possible if possible else 0.0
    early = int(frame["terminated_early"].fillna(False).astype(bool).sum()) if len(frame) else 0
    failed = int((frame["status"] == "failed").sum()) if len(frame) else 0
    click.echo(f"\n{len(frame)} networks trained ({failed} failed), {trained:.0f} of {possible} budget epochs: "
               f"{100 * saved:.1f}% epochs saved ({early} stopped early by the engine)")
    summary = {"search_id": search_id, "networks": len(frame), "failed": failed, "epochs_trained": trained,
               "epochs_budget": possible, "epochs_saved": round(saved, 4), "stopped_early": early}
    click.echo(json.dumps(summary))
    return summary
