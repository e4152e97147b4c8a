"""``a4nn-commons plot | report | similar``: the analyzer on the command line."""
from __future__ import annotations

from pathlib import Path

import click

from a4nn.cli.options import db_option, open_db

KINDS = {
    "curve": "learning curve of --model with the engine's predictions, fitted curves and stop epoch",
    "fates": "all curves of one --search coloured by fate (stopped early / ran full / failed)",
    "pareto": "fitness seen vs MFLOPs with the Pareto front (stopped networks as triangles), per beam and search "
              "(all, or --search ...)",
    "saved": "epochs saved per search, standalone vs engine (paper Figure 7)",
    "stops": "distribution of stop epochs and share converged (paper Figure 8)",
    "walltime": "wall time per search (paper Figure 9)",
    "architecture": "decoded graph of --model's genome (phases, nodes, skip connections)",
    "matching": "connection bits shared by the --top best networks (by fitness seen)",
}


def _load(db_url: str, searches: tuple[str, ...]):
    from a4nn.commons.analyzer import load_database

    database = open_db(db_url)
    try:
        return load_database(database, list(searches) or None)
    finally:
        database.dispose()


@click.command()
@db_option
@click.argument("kind", type=click.Choice(list(KINDS)))
@click.option("--search", "searches", multiple=True, metavar="ID|NAME",
              help="Search id or name; repeat for several (default: all searches).")
@click.option("--model", "model_id", type=int, help="Model (architecture) id, for 'curve' and 'architecture'.")
@click.option("--top", type=int, default=10, show_default=True, help="Networks shown by 'matching'.")
@click.option("--run-times", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="'walltime': published run times (ICPP'23 time_to_run.csv) instead of summed network times.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output file; .png or .svg decides the format.")
def plot(db_url: str, kind: str, searches: tuple[str, ...], model_id: int | None, top: int,
         run_times: Path | None, out: Path) -> None:
    """Draw one analyzer figure KIND into --out (PNG or SVG).

    \b
    KIND:
      curve         learning curve of --model with predictions, fitted curves, stop epoch
      fates         all curves of one --search coloured by fate
      pareto        fitness seen vs MFLOPs with Pareto fronts, per beam and search
      saved         epochs saved per search (paper Figure 7)
      stops         stop-epoch distribution and share converged (paper Figure 8)
      walltime      wall time per search (paper Figure 9; --run-times for published times)
      architecture  decoded graph of --model's genome
      matching      bits shared by the --top best networks (by fitness seen)
    """
    from a4nn.commons import analyzer
    from a4nn.commons.analyzer.similarity import matching_figure

    if out.suffix.lower() not in (".png", ".svg"):
        raise click.BadParameter("must end in .png or .svg", param_hint="--out")
    if kind in ("curve", "architecture") and model_id is None:
        raise click.UsageError(f"plot {kind} needs --model ID")
    if kind == "fates" and len(searches) != 1:
        raise click.UsageError("plot fates needs exactly one --search")
    data = _load(db_url, searches)
    if kind == "curve":
        figure = analyzer.learning_curve(data, model_id)
    elif kind == "architecture":
        model = data.model(model_id)
        if not isinstance(model.genome_bits, str):
            raise click.UsageError(f"model {model_id} has no genome to draw")
        figure = analyzer.architecture_figure(model.genome_bits, title=f"model {model_id} · {model.search}")
    elif kind == "fates":
        figure = analyzer.fate_curves(data, data.searches["search"].iloc[0])
    elif kind == "pareto":
        figure = analyzer.pareto_figure(data)
    elif kind == "saved":
        figure = analyzer.epochs_saved_figure(data)
    elif kind == "stops":
        figure = analyzer.stop_epoch_figure(data)
    elif kind == "walltime":
        from a4nn.commons.analyzer.icpp23 import published_run_times

        figure = analyzer.wall_time_figure(data, published_run_times(run_times) if run_times else None)
    else:
        figure = matching_figure(data, top=top)
    analyzer.save_figure(figure, out)
    click.echo(f"wrote {out}")


@click.command()
@db_option
@click.argument("search_id", metavar="SEARCH_ID")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"),
              show_default=True, help="HTML file to write.")
def report(db_url: str, search_id: str, out: Path) -> None:
    """Write one self-contained HTML report of SEARCH_ID (id or name).

    Figures are embedded as PNG, tables inline; the page loads nothing from the
    network, so it can be mailed or archived as a single file.
    """
    from a4nn.commons.analyzer.report import write_report

    data = _load(db_url, (search_id,))
    if not out.parent.is_dir():
        raise click.BadParameter(f"folder {out.parent} does not exist", param_hint="--out")
    write_report(data, data.searches["search"].iloc[0], out)
    click.echo(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")


@click.command()
@db_option
@click.argument("model_id", type=int)
@click.option("--top", type=int, default=10, show_default=True, help="How many similar models to list.")
@click.option("--search", "searches", multiple=True, metavar="ID|NAME",
              help="Only compare with models of these searches (default: every search).")
@click.option("--ged/--no-ged", default=True, show_default=True,
              help="Also compute graph edit distances of the decoded networks (slower).")
@click.option("--timeout", type=float, default=1.0, show_default=True, help="Seconds per graph edit distance.")
def similar(db_url: str, model_id: int, top: int, searches: tuple[str, ...], ged: bool, timeout: float) -> None:
    """List the --top models whose genomes are closest to MODEL_ID's.

    Ranked by Hamming distance of the connection bits, ties broken by the longest
    common run of bits (same positions); GED is the graph edit distance of the decoded
    networks ('~' marks a value cut short by --timeout).
    """
    from a4nn.commons.analyzer.similarity import similar_models

    data = _load(db_url, ())
    if searches:
        target = data.model(model_id).search
        wanted = _load(db_url, searches).searches["search"].tolist()
        data = data.for_searches(sorted(set(wanted) | {target}))
    frame = similar_models(data, model_id, top=top, ged=ged, timeout=timeout)
    if frame.empty:
        click.echo(f"no other model with a comparable genome than model {model_id}")
        return
    reference = data.model(model_id)
    click.echo(f"model {model_id} ({reference.search}, acc {reference.final_acc:.2f}) genome {reference.genome_bits}")
    header = f"{'model':>7} {'hamming':>7} {'run':>4} {'ged':>6} {'acc':>7} {'MFLOPs':>8}  {'genome':<22} search"
    click.echo(header)
    for row in frame.itertuples():
        ged_text = "" if not ged else f"{row.ged:g}" + ("" if row.ged_exact else "~")
        acc = "" if row.final_acc != row.final_acc or row.final_acc is None else f"{row.final_acc:.2f}"
        flops = "" if row.flops != row.flops or row.flops is None else f"{row.flops:.1f}"
        click.echo(f"{row.model_id:>7} {row.hamming:>7} {row.common_run:>4} {ged_text:>6} {acc:>7} {flops:>8}  "
                   f"{row.genome:<22} {row.search}")
