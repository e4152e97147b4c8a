"""``a4nn-commons pull``: a published commons into the lineage database, by its persistent id."""
from __future__ import annotations

from pathlib import Path

import click

from a4nn.cli.export import TOKEN_ENV, positive_seconds, retry_count
from a4nn.cli.options import open_db
from a4nn.lineage.database import DEFAULT_URL, ENV_VAR


@click.command()
@click.argument("persistent_id", metavar="PID")
@click.option("--server", "server_url", required=True, metavar="URL",
              help="Dataverse installation, e.g. https://dataverse.harvard.edu.")
@click.option("--version", "version", default=":latest", show_default=True,
              help="Dataset version: :latest, :latest-published, :draft, N or N.M.")
@click.option("--token", envvar=TOKEN_ENV, show_envvar=True, default=None, metavar="TOKEN",
              help=f"API token for drafts and restricted files (prefer ${TOKEN_ENV}; never printed).")
@click.option("--into", "--db", "db_url", envvar=ENV_VAR, default=DEFAULT_URL, show_default=True, metavar="URL",
              help=f"Lineage database to ingest into (also ${ENV_VAR}); created or upgraded when needed.")
@click.option("--cache", "cache_dir", type=click.Path(path_type=Path), default=None,
              help="Folder for downloaded files (default: $A4NN_DATA_DIR/pull, else ./a4nn-data/pull).")
@click.option("--timeout", type=float, default=60.0, show_default=True, callback=positive_seconds,
              help="Seconds allowed for each metadata call; downloads may take longer but no read may stall this long.")
@click.option("--retries", type=int, default=5, show_default=True, callback=retry_count,
              help="Retries of a call on 5xx/429/connection errors and cut-off downloads.")
def pull(persistent_id: str, server_url: str, version: str, token: str | None, db_url: str, cache_dir: Path | None,
         timeout: float, retries: int) -> None:
    """Download a Dataverse dataset by PID (e.g. doi:10.7910/DVN/XXXXXX), verify it and ingest it.

    Every file is checked against the checksum Dataverse reports (and an export
    bundle against its MANIFEST.json) before anything is ingested. Our bundles are
    imported; 6000-NN tables and A4NN ICPP'23 logs go through the ingest readers. The
    pull is recorded in publications (target pull). Run it again after an
    interruption: files already in the cache are not downloaded again, and a version
    already pulled into the database adds nothing. Exit 1 when the ingest rejected a
    file (named), 2 when the pull could not run.
    """
    from a4nn.commons.dataverse import RetryPolicy
    from a4nn.commons.pull import DataversePuller

    database = None

    def opened():
        nonlocal database
        database = open_db(db_url, upgrade=True)
        return database

    try:
        with DataversePuller(server_url, token or None, RetryPolicy(timeout=timeout, retries=retries),
                             cache_dir=cache_dir, report=lambda line: click.echo(line, err=True)) as puller:
            result = puller.pull(persistent_id, opened, version)
    finally:
        if database is not None:
            database.dispose()
    click.echo(result.line())
    for problem in result.problems:
        click.echo(f"rejected: {problem}", err=True)
    if result.problems:
        raise SystemExit(1)
