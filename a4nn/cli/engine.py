"""``a4nn-commons engine``: replay prediction strategies over recorded learning curves."""
from __future__ import annotations

from pathlib import Path

import click

from a4nn.cli.options import db_option, open_db


@click.group()
def engine() -> None:
    """The learning-curve prediction engine."""


@engine.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--strategy", "strategies", multiple=True, default=("penguin", "a4nn"), show_default=True,
              type=click.Choice(["penguin", "a4nn", "none"]), help="Strategies to compare (repeat the option).")
@click.option("--format", "fmt", type=click.Choice(["auto", "icpp23", "long"]), default="auto", show_default=True,
              help="Curve layout: icpp23 logs, or long (network, epoch, value) tables.")
@click.option("--e-pred", type=float, default=None, help="Epoch the engine predicts (default: curve length).")
@click.option("--c-min", type=int, default=3, show_default=True)
@click.option("-n", "n", type=int, default=3, show_default=True, help="Predictions that must agree.")
@click.option("-r", "r", type=float, default=0.5, show_default=True, help="Agreement tolerance (points).")
@click.option("--processes", type=int, default=None, help="Worker processes (default: all cores).")
@click.option("--population/--no-population", "population", default=True, show_default=True,
              help="a4nn: the engines share the population of finished curves (replayed in recorded order).")
@click.option("--classes", type=int, default=2, show_default=True,
              help="a4nn: number of classes (places the never-learns level at 100/classes).")
@click.option("--n-val", type=int, default=None,
              help="a4nn: validation-set size (error budget and plateau radius: one validation image).")
def replay(paths: tuple[Path, ...], strategies: tuple[str, ...], fmt: str, e_pred, c_min: int, n: int, r: float,
           processes, population: bool, classes: int, n_val) -> None:
    """Replay strategies over the curves in CSV/Parquet PATHS and print a summary table.

    \b
    Accepted layouts (--format auto picks by columns):
      icpp23  the published A4NN logs: arch, epoch (0-based), val_accs[, flops]
      long    one row per (network, epoch): a network column (architecture_id,
              arch, model or id), epoch, a value column (val_acc, value or acc)
              [, flops]; an export bundle's epochs.parquet is of this kind.

    Strategies: penguin (faithful PENGUIN), a4nn (default: self-calibrating
    rules learned from the finished curves, contender vetoes), none (never stop). The "true" value of a
    curve is its last point; the table shows the share of epochs saved, the mean
    absolute error of the fitness the NAS would have seen, Spearman's rho against
    the truth and the recall of the true top-10.
    """
    from a4nn.engine.curves import read_curves
    from a4nn.engine.metrics import strategy_report
    from a4nn.engine.replay import replay_curves
    from a4nn.engine.strategies import build

    click.echo(f"{'file':<40} {'strategy':<9} {'nets':>5} {'saved %':>8} {'MAE':>7} {'rho':>6} {'top10':>6}")
    for path in paths:
        curve_set = read_curves(path, fmt)
        budget = max(len(c) for c in curve_set.curves)
        truth = [c[-1] for c in curve_set.curves]
        for strategy in strategies:
            built = build(strategy, n=n, r=r, c_min=c_min, n_classes=classes, n_val=n_val)
            kwargs = dict(strategy=built, c_min=c_min, n=n, r=r, e_pred=e_pred if e_pred is not None else budget)
            outcomes = replay_curves(curve_set.curves, kwargs, processes=processes, progress=True,
                                     population=population and built.uses_population)
            report = strategy_report([o.fitness for o in outcomes], truth, [o.epochs_used for o in outcomes], budget)
            click.echo(f"{Path(path).name[:40]:<40} {strategy:<9} {report['networks']:>5} {100 * report['epochs_saved']:>8.1f} "
                       f"{report['mae']:>7.3f} {report['spearman']:>6.3f} {report['top10_recall']:>6.2f}")


@engine.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--search", "search_id", type=int, default=None, help="Index the curves of this recorded search instead.")
@db_option
@click.option("--format", "fmt", type=click.Choice(["auto", "icpp23", "long"]), default="auto", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Result folder (created).")
@click.option("--fraction", "fractions", type=float, multiple=True, default=(0.03, 0.05, 0.10, 0.25, 0.50),
              show_default=True, help="Share of the budget to fit on (repeat the option).")
@click.option("--family", "families", multiple=True, help="Only these families (default: all registered).")
@click.option("--classes", type=int, default=2, show_default=True, help="Number of classes (chance level).")
def families(paths: tuple[Path, ...], search_id, db_url: str, fmt: str, out: Path, fractions: tuple[float, ...],
             families: tuple[str, ...], classes: int) -> None:
    """Which curve family predicts which kind of curve: fit every family on the first k epochs.

    \b
    Per family, curve class (never-learns, diverges, learns-late, plateaus,
    learns-fast; the rules are in a4nn.engine.family_index) and fraction of the
    budget: error of the predicted final value, fit failures and fit time.
    Writes OUT/fits.parquet, summary.csv, summary.json (best family per class),
    families.png and MANIFEST.json.
    """
    from a4nn.engine.curves import curves_from_search, read_curves
    from a4nn.engine.family_index import index_families, summarize, write_index

    if bool(paths) == (search_id is not None):
        raise click.UsageError("give curve files or --search ID (not both)")
    if any(not 0 < f < 1 for f in fractions):
        raise click.BadParameter("fractions must lie strictly between 0 and 1", param_hint="--fraction")
    if search_id is not None:
        database = open_db(db_url)
        try:
            sets = [curves_from_search(database, search_id)]
        finally:
            database.dispose()
    else:
        sets = [read_curves(path, fmt) for path in paths]
    curves = [curve for curve_set in sets for curve in curve_set.curves]
    rows = index_families(curves, families or None, fractions, classes)
    folder = write_index(rows, out, ", ".join(s.source for s in sets))
    summary = summarize(rows)
    click.echo(f"{len(curves)} curves, {len(rows)} fits -> {folder}")
    click.echo(f"{'class':<13} {'fraction':>8} {'best family':<12} {'MAE':>7} {'failures':>8}")
    for (kind, fraction), group in summary.dropna(subset=["mae"]).groupby(["curve_class", "fraction"]):
        best = group.sort_values("mae").iloc[0]
        click.echo(f"{kind:<13} {fraction:>8.2f} {best['family']:<12} {best['mae']:>7.2f} {int(best['failures']):>8}")
