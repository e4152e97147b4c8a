"""``a4nn-commons search``: the A4NN workflow end to end (NSGA-Net + prediction engine + lineage).

Only options and output live here: the search itself (presets, resume, evaluator
choice, status on Ctrl-C, the summary) is :mod:`a4nn.search.run`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from a4nn.cli.options import db_option, open_db
from a4nn.lineage.urls import display_url, url_password
from a4nn.search.presets import ENGINES, PRESET_KEYS, PRESETS, RESUME_OVERRIDES
from a4nn.search.recipes import DEFAULT_RECIPE, RECIPES

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
@click.option("--recipe", type=click.Choice(sorted(RECIPES)), default=DEFAULT_RECIPE, show_default=True,
              help="a4nn: this project's operators and training (reuses trained genomes, log1p input, precise BN, "
                   "predicted fitness for stopped networks); nsga-net: the original's (polynomial mutation, "
                   "crossover always, retrains repeats, batch 128, no shuffle, raw input, plain BN, last accuracy, "
                   "FLOPs to 4 decimals). See a4nn.search.recipes.")
@click.option("--prior-curves", type=int,
              help="a4nn engine: networks that must train to the end before the population prior may stop one "
                   "(quick 6, paper 10).")
@click.option("--error-target", type=click.FloatRange(min=0.0, min_open=True),
              help="a4nn engine: the mean expected error (points) of the fitness handed to the NAS that its stops may "
                   "spend (default 0.5; larger saves more epochs, see a4nn.engine.strategies).")
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
@click.option("--resume", "resume_id", default=None, metavar="ID|NAME",
              help="Continue a search (by id or name) after an interruption (kill -9 included); finished networks "
                   "are not retrained.")
@click.option("--name", default=None, help="Search name (unique); default derived from the settings and time.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def search(ctx: click.Context, db_url: str, resume_id: str | None, name: str | None, run_dir: Path, quiet: bool,
           **params: Any) -> None:
    """Run an NSGA-Net macro search whose trainings the prediction engine cuts short.

    Every network's genome and parents, architecture, epochs, predictions and
    checkpoints go to the lineage database (--db). At the end a Pareto table
    (fitness the search saw vs MFLOPs) and the epochs saved against the full budget
    are printed. A killed search continues with --resume ID; the networks it had
    finished are read back, not retrained.

    \b
    Examples:
      a4nn-commons search --preset quick
      a4nn-commons search --preset quick --engine none --beam high
      a4nn-commons search --preset paper --workers 4
      a4nn-commons search --resume 3
    """
    from a4nn.search import run
    from a4nn.search.data.loaders import default_cache_dir

    cache_dir = default_cache_dir()  # $A4NN_DATA_DIR or ./a4nn-data, resolved once here and passed down
    observer = _Progress(quiet)
    if resume_id is None:
        spec = run.SearchSpec(**{key: params[key] for key in PRESET_KEYS}, preset=params["preset"],
                              dataset=params["dataset"], precise_bn=params["precise_bn"], recipe=params["recipe"],
                              engine=params["engine_name"], workers=params["workers"],
                              ray_address=params["ray_address"], overlap=params["overlap"], device=params["device"],
                              seed=params["seed"], checkpoints=params["checkpoints"], name=name, run_dir=run_dir,
                              cache_dir=cache_dir)
        try:
            spec.options()
        except run.SpecError:
            raise click.BadParameter("need --pop >= 2, --offspring >= 1, --generations >= 1 and --epochs >= 1")
    database = open_db(db_url, upgrade=True, must_exist=resume_id is not None)  # resuming never creates
    try:
        if resume_id is None:
            result = run.start(spec, database, observer=observer, progress=not quiet)
        else:
            # where to train may change, what to search may not
            overrides = {key: params[key] for key in RESUME_OVERRIDES
                         if ctx.get_parameter_source(key) == click.core.ParameterSource.COMMANDLINE}
            result = run.resume(resume_id, database, overrides, observer=observer, progress=not quiet,
                                cache_dir=cache_dir)
    except run.NotFoundError:
        what = f"id {resume_id}" if str(resume_id).isdigit() else f"name {resume_id!r}"
        raise click.ClickException(f"no search with {what} in {display_url(db_url)}")
    except run.NotResumableError as exc:
        raise click.ClickException(f"search {exc.search_id} ({exc.name}) was not started by 'a4nn-commons search'")
    except run.RunFolderInUseError as exc:
        raise click.ClickException(f"{exc.folder} already holds the state of another search; pass another --run-dir")
    except run.SearchExistsError as exc:
        raise click.ClickException(f"a search named {exc.name!r} exists (id {exc.search_id}); "
                                   f"use --resume {exc.search_id} or another --name")
    except run.SearchInterrupted as exc:
        hidden = " (password hidden: type it in, or keep the URL in $A4NN_DB_URL)" if url_password(db_url) else ""
        click.echo(f"\ninterrupted; continue with: a4nn-commons search --resume {exc.search_id} "
                   f"--db {display_url(db_url)}{hidden}", err=True)
        raise
    if result.already_complete:
        click.echo(f"search {result.search_id} ({result.name}) is already complete")
    print_summary(result.summary)


class _Progress:
    """The CLI's view of a running search: one line when it starts, a bar over generations."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar = None

    def resuming(self, search_id: int, name: str) -> None:
        click.echo(f"resuming search {search_id} ({name})")

    def started(self, context: Any) -> None:
        from a4nn.progress import progress_bar

        options = context.options
        if not context.resumed:
            click.echo(f"search {context.search_id} ({context.name}): {options['pop']} + {options['offspring']} x "
                       f"{options['generations'] - 1} networks, {options['epochs']} epochs each, "
                       f"engine {options['engine']}, recipe {options.get('recipe', 'a4nn')}")
        self.bar = progress_bar(total=options["generations"], desc=f"search {context.search_id}", unit="gen",
                                enabled=not self.quiet)  # drawn on a terminal only
        self.bar.update(context.generations_done)

    def generation(self, generation: int, results: list) -> None:
        fitness = [r.fitness for r in results if r.fitness is not None]
        self.bar.set_postfix(gen=generation, best=f"{max(fitness):.1f}" if fitness else "-",
                             epochs=sum(r.epochs_trained for r in results))
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _number(value: float | None) -> float | int:
    """A whole number of epochs prints as one (800, not 800.0)."""
    if value is None:
        return 0
    return int(value) if float(value).is_integer() else value


def print_summary(summary: Any) -> dict[str, Any]:
    """Print the Pareto table and the epochs saved (a :class:`~a4nn.lineage.queries.SearchSummary`)."""
    click.echo(f"\nPareto front of search {summary.search_id} (fitness vs MFLOPs; fitness: the final validation "
               f"accuracy, or the engine's prediction for a network it stopped):")
    click.echo(f"{'model':>6} {'gen':>4} {'val acc %':>10} {'fitness':>8} {'MFLOPs':>10} {'epochs':>7} {'early':>6}")
    for row in summary.front:
        click.echo(f"{row['id']:>6} {row['generation']:>4} {row['acc']:>10.2f} {row['fitness']:>8.2f} "
                   f"{row['flops']:>10.3f} {row['epochs']:>7.0f} {'yes' if row['early'] else 'no':>6}")
    possible = _number(summary.epochs_budget)
    saved = summary.epochs_saved or 0.0
    click.echo(f"\n{summary.networks} networks trained ({summary.failed} failed), {summary.epochs_trained:.0f} of "
               f"{possible} budget epochs: {100 * saved:.1f}% epochs saved ({summary.stopped_early} stopped early "
               f"by the engine)")
    line = {"search_id": summary.search_id, "networks": summary.networks, "failed": summary.failed,
            "epochs_trained": summary.epochs_trained, "epochs_budget": possible, "epochs_saved": round(saved, 4),
            "stopped_early": summary.stopped_early}
    click.echo(json.dumps(line))
    return line
