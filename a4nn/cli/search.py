"""``a4nn-commons search``: the A4NN workflow end to end (NSGA-Net + prediction engine + lineage)."""
from __future__ import annotations

import json
import platform
import socket
import time
from dataclasses import replace
from pathlib import Path

import click

from a4nn.cli.options import db_option, open_db

PRESETS = {
    # finishes on 2 CPU cores in minutes and still shows the engine at work
    "quick": dict(pop=8, offspring=8, generations=3, epochs=12, image_size=32, n_images=600, channels=8,
                  batch_size=32, n_nodes=4, r=1.0),
    # Table 2 of the A4NN paper: pop 10, offspring 10, 10 generations, 25 epochs, 4 nodes, C=24, 127x127 images
    "paper": dict(pop=10, offspring=10, generations=10, epochs=25, image_size=127, n_images=2000, channels=24,
                  batch_size=64, n_nodes=4, r=0.5),
}


def _pareto(rows: list[dict]) -> list[dict]:
    front = []
    for row in rows:
        dominated = any(o["acc"] >= row["acc"] and o["flops"] <= row["flops"] and (o["acc"] > row["acc"] or o["flops"] < row["flops"])
                        for o in rows)
        if not dominated:
            front.append(row)
    return sorted(front, key=lambda r: r["flops"])


@click.command()
@db_option
@click.option("--dataset", default="xfel-sim", show_default=True, help="'xfel-sim' (simulated diffraction) or a path: folder with images/, .npz, .h5.")
@click.option("--beam", type=click.Choice(["low", "medium", "high"]), default="low", show_default=True, help="Beam intensity (1e14/1e15/1e16).")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="quick", show_default=True, help="Size preset; explicit options override it.")
@click.option("--pop", type=int, help="Population size.")
@click.option("--offspring", type=int, help="Offspring per generation.")
@click.option("--generations", type=int, help="Number of generations.")
@click.option("--epochs", type=int, help="Epoch budget per network (also the engine's e_pred).")
@click.option("--channels", type=int, help="Channels C of the first phase.")
@click.option("--image-size", type=int, help="Simulated image size in pixels.")
@click.option("--n-images", type=int, help="Simulated images (80/20 split).")
@click.option("--engine", "engine_name", type=click.Choice(["a4nn", "penguin", "none"]), default="a4nn", show_default=True,
              help="Prediction engine strategy: improved default, faithful PENGUIN, or none (standalone NAS).")
@click.option("--workers", type=int, default=1, show_default=True, help="Parallel training slots (>1 uses Ray).")
@click.option("--ray-address", default=None, help="Address of an existing Ray cluster.")
@click.option("--device", default="auto", show_default=True, help="Torch device: auto, cpu, cuda, cuda:N.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--run-dir", type=click.Path(path_type=Path), default=Path("runs"), show_default=True, help="Checkpoints and NSGA state go here.")
@click.option("--checkpoints", type=click.Choice(["epoch", "final", "none"]), default="final", show_default=True)
@click.option("--resume", "resume_id", type=int, default=None, help="Resume search ID after an interruption.")
@click.option("--name", default=None, help="Search name (unique); default derived from the settings and time.")
def search(db_url: str, dataset: str, beam: str, preset: str, pop, offspring, generations, epochs, channels, image_size,
           n_images, engine_name: str, workers: int, ray_address, device: str, seed: int, run_dir: Path,
           checkpoints: str, resume_id, name) -> None:
    """Run an NSGA-Net macro search whose trainings the prediction engine cuts short.

    Every network's genome, architecture, epochs, predictions and checkpoints go to
    the lineage database; a final Pareto table (accuracy vs MFLOPs) and the epochs
    saved are printed. A killed search continues with --resume ID.
    """
    from sqlalchemy import select
    from tqdm import tqdm

    from a4nn import __version__
    from a4nn.engine import PredictionEngine
    from a4nn.lineage.models import Search
    from a4nn.lineage.recorder import Recorder
    from a4nn.search.data import load_dataset
    from a4nn.search.evaluation import SerialEvaluator, TrainSettings
    from a4nn.search.nsga import NSGANetSearch, SearchConfig

    database = open_db(db_url, upgrade=True)
    recorder = Recorder(database)
    if resume_id is not None:
        with database.session() as session:
            row = session.get(Search, resume_id)
            if row is None:
                raise click.ClickException(f"no search with id {resume_id}")
            options = dict(row.config)
        click.echo(f"resuming search {resume_id} ({row.name})")
    else:
        options = dict(PRESETS[preset])
        overrides = dict(pop=pop, offspring=offspring, generations=generations, epochs=epochs, channels=channels,
                         image_size=image_size, n_images=n_images)
        options.update({k: v for k, v in overrides.items() if v is not None})
        options.update(dataset=dataset, beam=beam, engine=engine_name, seed=seed, preset=preset,
                       device=device, checkpoints=checkpoints, workers=workers, ray_address=ray_address)
    data = load_dataset(options["dataset"], beam=options["beam"], n_images=options["n_images"],
                        image_size=options["image_size"], seed=options["seed"], progress=True)
    settings = TrainSettings(epochs=options["epochs"], batch_size=options["batch_size"], channels=options["channels"],
                             n_nodes=options["n_nodes"], seed=options["seed"], device=options["device"],
                             checkpoints=options["checkpoints"])

    def engine_factory() -> PredictionEngine | None:
        if options["engine"] == "none":
            return None
        return PredictionEngine(strategy=options["engine"], e_pred=options["epochs"], r=options["r"])

    dataset_id = recorder.register_dataset(data.name, data.kind, data.attributes)
    engine_config_id = None
    if options["engine"] != "none":
        engine_config_id = recorder.register_engine_config(**engine_factory().settings())  # type: ignore[union-attr]
    if resume_id is None:
        name = name or f"nsga-{options['dataset']}-{options['beam']}-{options['engine']}-s{seed}-{time.strftime('%Y%m%dT%H%M%S')}"
        folder = (run_dir / name).resolve()
        if (folder / "nsga_state.pkl").exists():
            raise click.ClickException(f"{folder} already holds the state of another search; pass a different --run-dir")
        options["run_dir"] = str(folder)
        with database.session() as session:
            existing = session.scalar(select(Search.id).where(Search.name == name))
        if existing is not None:
            raise click.ClickException(f"a search named {name!r} exists (id {existing}); use --resume {existing} or another --name")
        search_id = recorder.start_search(name, "nsga-net-macro", dataset_id, engine_config_id, options, seed=seed,
                                          code_version=__version__, host=socket.gethostname())
    else:
        search_id = resume_id
        recorder.set_search_status(search_id, "running")
    folder = Path(options["run_dir"])

    if options.get("workers", 1) > 1 or options.get("ray_address"):
        try:
            from a4nn.search.distributed import RayEvaluator
        except ImportError as exc:
            raise click.ClickException(f"parallel training needs the Ray evaluator: {exc}") from exc
        evaluator = RayEvaluator(recorder, engine_factory, data, settings, workers=options.get("workers", 1),
                                 address=options.get("ray_address"), run_dir=folder)
    else:
        evaluator = SerialEvaluator(recorder, engine_factory, data, settings, folder)

    config = SearchConfig(options["pop"], options["offspring"], options["generations"], options["n_nodes"],
                          options["channels"], (1, data.in_channels, *data.image_size), data.n_classes, options["seed"])
    bar = tqdm(total=options["generations"], desc=f"search {search_id}", unit="gen")

    def on_generation(generation: int, results) -> None:
        best = max((r.fitness for r in results if r.fitness is not None), default=float("nan"))
        bar.set_postfix(best_fitness=f"{best:.1f}", trained=len(results))
        bar.update(1)

    try:
        NSGANetSearch(recorder, search_id, config, evaluator, folder, on_generation).run()
    except KeyboardInterrupt:
        recorder.set_search_status(search_id, "interrupted")
        click.echo(f"\ninterrupted; continue with: a4nn-commons search --resume {search_id} --db {db_url}", err=True)
        raise
    finally:
        bar.close()
        evaluator.close()
    recorder.finish_search(search_id)
    _summarize(database, search_id, options["epochs"])


def _summarize(database, search_id: int, budget: int) -> None:
    from a4nn.lineage.frames import architectures_frame

    frame = architectures_frame(database, search_id)
    rows = [{"id": int(r.id), "acc": float(r.final_acc), "fitness": float(r.fitness) if r.fitness == r.fitness else float("nan"),
             "flops": float(r.flops), "epochs": float(r.epochs_trained or 0), "early": bool(r.terminated_early)}
            for r in frame.itertuples() if r.final_acc == r.final_acc and r.final_acc is not None]
    click.echo(f"\nPareto front of search {search_id} (accuracy vs MFLOPs):")
    click.echo(f"{'model':>6} {'val acc %':>10} {'fitness':>8} {'MFLOPs':>10} {'epochs':>7} {'early':>6}")
    for row in _pareto(rows):
        click.echo(f"{row['id']:>6} {row['acc']:>10.2f} {row['fitness']:>8.2f} {row['flops']:>10.2f} {row['epochs']:>7.0f} {str(row['early']):>6}")
    trained = float(frame["epochs_trained"].fillna(0).sum())
    possible = budget * len(frame)
    saved = 1 - trained / possible if possible else 0.0
    early = int(frame["terminated_early"].sum())
    click.echo(f"\n{len(frame)} networks, {trained:.0f} of {possible} budget epochs trained: "
               f"{100 * saved:.1f}% epochs saved ({early} stopped early by the engine)")
    click.echo(json.dumps({"search_id": search_id, "networks": len(frame), "epochs_trained": trained,
                           "epochs_budget": possible, "epochs_saved": round(saved, 4)}))
