"""``a4nn-commons ingest``: external record trails into the lineage database."""
from __future__ import annotations

from pathlib import Path

import click

from a4nn.cli.options import db_option, open_db


@click.command()
@db_option
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["auto", "icpp23"]), default="auto", show_default=True,
              help="Record format; auto recognises files by name and header.")
@click.option("--strict", is_flag=True, help="Stop at the first malformed file instead of skipping it.")
def ingest(db_url: str, paths: tuple[Path, ...], fmt: str, strict: bool) -> None:
    """Ingest files, folders and .zip/.tar.gz archives of record trails.

    Each file is one transaction: a malformed file is reported with its name and
    line and nothing of it is written. Ingesting the same files again adds nothing.
    Exits with code 1 when any file was rejected.
    """
    from a4nn.commons.ingest import ingest_paths

    summary = ingest_paths(open_db(db_url, upgrade=True), paths, fmt, strict=strict,
                           report=lambda line: click.echo(line, err=True))
    click.echo(f"ingested {summary.files} files: {summary.networks} networks, {summary.rows} epoch rows, "
               f"{len(summary.skipped)} skipped, {summary.seconds:.1f} s")
    if not summary.ok:
        raise SystemExit(1)
