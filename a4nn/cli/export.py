"""``a4nn-commons export``, ``verify`` and ``publish``: record trails out of the database and into a commons."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from a4nn.cli.options import db_option, open_db
from a4nn.errors import A4nnError
from a4nn.lineage.database import ENV_VAR

if TYPE_CHECKING:
    from a4nn.lineage.database import Database

TOKEN_ENV = "DATAVERSE_API_TOKEN"


def positive_seconds(_ctx: click.Context, param: click.Parameter, value: float) -> float:
    """``--timeout``: a positive finite number (-1, nan, inf would hang or mean nothing): one line, exit 2."""
    if not math.isfinite(value) or value <= 0:
        raise A4nnError(f"--{param.name} must be a positive finite number of seconds, not {value:g}")
    return value


def retry_count(_ctx: click.Context, param: click.Parameter, value: int) -> int:
    """``--retries``: a whole number >= 0."""
    if value < 0:
        raise A4nnError(f"--{param.name} must be 0 or more, not {value}")
    return value


@click.command()
@db_option
@click.argument("search", required=False, metavar="SEARCH_ID")
@click.option("--filter", "filter_text", metavar="QUERY",
              help="Export the models a filter selects instead of one search, e.g. \"beam=low&acc>99\" "
                   "(same grammar as GET /models).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Bundle folder to create (must be absent or empty).")
@click.option("--with-checkpoints", type=click.Choice(["per-epoch", "final"]), default=None,
              help="Copy checkpoint files into the bundle: every epoch, or the last one of each network.")
@click.option("--format", "fmt", type=click.Choice(["bundle", "random-nn"]), default="bundle", show_default=True,
              help="bundle: Parquet/CSV tables, JSON metadata, manifest. random-nn: one 28-column text "
                   "table per network (the 6000-NN data set layout).")
def export(db_url: str, search: str | None, filter_text: str | None, out: Path, with_checkpoints: str | None,
           fmt: str) -> None:
    """Export a search (SEARCH_ID: id or name) or a filter over models as a reproducible bundle.

    The bundle holds architectures, epochs, predictions, genomes and genome parents
    as Parquet with CSV twins, search.json (configuration, seed, code version, data
    set, exporting environment), engine_config.json, optional checkpoints, a README
    describing the columns and MANIFEST.json with the sha256 of every file. Check it
    later with `a4nn-commons verify OUT`.
    """
    database = open_db(db_url)
    try:
        _export(database, search, filter_text, out, with_checkpoints, fmt)
    finally:
        database.dispose()


def _export(database: "Database", search: str | None, filter_text: str | None, out: Path, with_checkpoints: str | None,
            fmt: str) -> None:
    from a4nn.commons.bundle import export_bundle, resolve_search

    if fmt == "random-nn":
        if filter_text is not None or search is None or with_checkpoints:
            raise A4nnError("--format random-nn exports one SEARCH_ID; --filter and --with-checkpoints do not apply")
        try:
            from a4nn.commons.random_nn_export import export_random_nn
        except ImportError as exc:
            raise A4nnError(f"the random-nn format is not available in this installation: {exc}") from None
        written = export_random_nn(database, resolve_search(database, search), out)
        click.echo(f"wrote {len(written)} network tables to {out}")
        return
    result = export_bundle(database, search, out, with_checkpoints, filter_text=filter_text,
                           progress=lambda line: click.echo(line, err=True))
    click.echo(f"bundle {result.folder}: {result.architectures} networks, {result.epochs} epochs, "
               f"{result.predictions} predictions, {result.checkpoints} checkpoint files, "
               f"{len(result.manifest['files'])} files in MANIFEST.json (sha256 {result.manifest_sha256})")


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--expect", metavar="SHA256", default=None,
              help="The manifest digest the bundle must have (e.g. the value published with its DOI); "
                   "a different one fails naming both.")
def verify(bundle: Path, expect: str | None) -> None:
    """Check a bundle against its MANIFEST.json and print the manifest's own sha256.

    Exits 0 when every listed file is present with its recorded size and sha256, no
    unlisted file or symlink was added and (with --expect) MANIFEST.json has the
    expected digest; otherwise prints each problem and exits 1. A file edited and the
    manifest rehashed passes the file checks but changes the manifest digest, which is
    why the digest is printed: compare it with the published one, or pass it as --expect.
    """
    from a4nn.commons.bundle import verify_bundle

    report = verify_bundle(bundle, expect=expect)
    if report.manifest_sha256:
        click.echo(f"{bundle}: manifest sha256 {report.manifest_sha256}")
    if report.ok:
        click.echo(f"{bundle}: OK" + (" (manifest digest as expected)" if expect else ""))
        return
    for line in report.problems():
        click.echo(f"{bundle}: {line}", err=True)
    raise SystemExit(1)


def _author(text: str) -> dict[str, str]:
    name, _, affiliation = text.partition(";")
    if not name.strip():
        raise click.BadParameter(f"empty author in {text!r}; write 'Last, First' or 'Last, First;Affiliation'")
    author = {"name": name.strip()}
    if affiliation.strip():
        author["affiliation"] = affiliation.strip()
    return author


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--server", "server_url", required=True, metavar="URL",
              help="Dataverse installation, e.g. https://demo.dataverse.org or https://dataverse.harvard.edu.")
@click.option("--collection", required=True, metavar="ALIAS", help="Alias of the Dataverse collection to create the dataset in.")
@click.option("--token", envvar=TOKEN_ENV, show_envvar=True, default=None, metavar="TOKEN",
              help=f"Dataverse API token (prefer ${TOKEN_ENV}; the token is never printed or logged).")
@click.option("--title", help="Dataset title (default: from the bundle's search).")
@click.option("--author", "authors", multiple=True, required=True, metavar="'LAST, FIRST[;AFFILIATION]'",
              help="Author; repeat for several.")
@click.option("--contact-name", help="Dataset contact (default: the first author).")
@click.option("--contact-email", required=True, help="Contact e-mail (Dataverse requires one).")
@click.option("--description", help="Dataset description (default: from the bundle README).")
@click.option("--keyword", "keywords", multiple=True, help="Keyword; repeat for several.")
@click.option("--license", "license_name", default="CC0 1.0", show_default=True,
              help="License name as the installation lists it (e.g. 'CC0 1.0', 'CC BY 4.0').")
@click.option("--publish", "release", type=click.Choice(["major", "minor"]), default=None,
              help="Publish the dataset after uploading (default: leave it as a draft).")
@click.option("--timeout", type=float, default=60.0, show_default=True, callback=positive_seconds,
              help="Seconds allowed for each HTTP call, its whole answer included (a wall-clock deadline).")
@click.option("--retries", type=int, default=5, show_default=True, callback=retry_count,
              help="Retries of a call on 5xx/429/connection errors (waits capped at 30 s).")
@click.option("--db", "db_url", default=None, metavar="URL",
              help="Lineage database to record the publication in (default: $A4NN_DB_URL; skipped when unset).")
def publish(bundle: Path, server_url: str, collection: str, token: str | None, title: str | None,
            authors: tuple[str, ...], contact_name: str | None, contact_email: str, description: str | None,
            keywords: tuple[str, ...], license_name: str, release: str | None, timeout: float, retries: int,
            db_url: str | None) -> None:
    """Publish a verified bundle to a Dataverse collection with the pyDataverse client.

    Creates the dataset with citation metadata, uploads every bundle file (tabular
    ingest off, folders kept as directory labels), waits for locks and, with
    --publish, releases it and waits until Dataverse reports RELEASED. The dataset's
    persistent id is kept in BUNDLE/.dataverse.json, so an interrupted run is simply
    run again: files already uploaded with the same checksum are skipped.
    """
    from a4nn.commons.dataverse import CitationMetadata, DataversePublisher, RetryPolicy

    if not token:
        raise A4nnError(f"no Dataverse API token: pass --token or set {TOKEN_ENV}")
    search_doc = _bundle_search(bundle)
    metadata = CitationMetadata(
        title=title or f"A4NN record trail: {search_doc}",
        authors=[_author(a) for a in authors],
        contact_name=contact_name or _author(authors[0])["name"],
        contact_email=contact_email,
        description=description or _bundle_description(bundle),
        keywords=list(keywords) or ["neural architecture search", "A4NN", "learning curves", "lineage"],
        license_name=license_name,
    )
    database = None
    if db_url or os.environ.get(ENV_VAR):
        database = open_db(db_url)
    try:
        with DataversePublisher(server_url, token, RetryPolicy(timeout=timeout, retries=retries),
                                report=lambda line: click.echo(line, err=True)) as publisher:
            result = publisher.publish_bundle(bundle, collection, metadata, release=release, database=database)
    finally:
        if database is not None:
            database.dispose()
    click.echo(f"{result.persistent_id} {result.url} ({result.uploaded} uploaded, {result.skipped} already there, "
               f"state {result.state})")


def _bundle_search(bundle: Path) -> str:
    try:
        doc = json.loads((bundle / "search.json").read_text())
        return ", ".join(search["name"] for search in doc["searches"])
    except (OSError, ValueError, KeyError, TypeError):
        return bundle.name


def _bundle_description(bundle: Path) -> str:
    try:
        lines = (bundle / "README.md").read_text().splitlines()
    except OSError:
        return f"Record trail bundle {bundle.name} exported by a4nn-commons."
    body = [line for line in lines[1:8] if line.strip()]
    return body[0] if body else f"Record trail bundle {bundle.name} exported by a4nn-commons."
