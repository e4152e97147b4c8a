"""``a4nn-commons export`` and ``verify``: reproducible record-trail bundles."""
from __future__ import annotations

from pathlib import Path

import click

from a4nn.cli.options import db_option, open_db


@click.command()
@db_option
@click.argument("search_id", type=int)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="New folder for the bundle.")
@click.option("--with-checkpoints", type=click.Choice(["per-epoch", "final"]), default=None,
              help="Copy checkpoints into the bundle (every epoch, or each model's last).")
@click.option("--format", "fmt", type=click.Choice(["bundle", "random-nn"]), default="bundle", show_default=True,
              help="bundle, or one 28-column 6000-NN table per network.")
def export(db_url: str, search_id: int, out: Path, with_checkpoints, fmt: str) -> None:
    """Export a search as a bundle (Parquet + CSV, JSON settings, README, MANIFEST) or as 6000-NN tables."""
    from a4nn.commons.bundle import export_bundle

    if fmt == "random-nn":
        from a4nn.commons.random_nn_format import export_random_nn

        written = export_random_nn(open_db(db_url), search_id, out)
        click.echo(f"{len(written)} tables of search {search_id} written to {out}")
        return

    mode = {"per-epoch": "epoch", "final": "final"}.get(with_checkpoints) if with_checkpoints else None
    folder = export_bundle(open_db(db_url), search_id, out, mode)
    click.echo(f"bundle of search {search_id} written to {folder}")


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path, exists=True, file_okay=False))
def verify(bundle: Path) -> None:
    """Check every file of BUNDLE against its MANIFEST.json (exit 1 on any difference)."""
    from a4nn.commons.bundle import verify_bundle

    problems = verify_bundle(bundle)
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        raise SystemExit(1)
    click.echo(f"{bundle}: every file matches the manifest")
