"""``a4nn-commons ingest`` (external record trails into the lineage database) and ``generate`` (new ones)."""
from __future__ import annotations

from pathlib import Path

import click

from a4nn.cli.options import db_option, open_db
from a4nn.commons.ingest.archives import MB, ArchiveLimits
from a4nn.errors import InputFormatError

INGEST_FORMATS = ["auto", "random-nn", "icpp23"]


@click.command()
@db_option
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(INGEST_FORMATS), default="auto", show_default=True,
              help="Record format. auto: ICPP'23 logs by file name, random-NN tables by their header row.")
@click.option("--strict", is_flag=True, help="Stop at the first malformed file instead of skipping it.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--max-member-mb", type=click.IntRange(min=1), default=ArchiveLimits.max_member_bytes // MB,
              show_default=True, help="Refuse an archive holding a file larger than this once unpacked.")
@click.option("--max-members", type=click.IntRange(min=1), default=ArchiveLimits.max_members, show_default=True,
              help="Refuse an archive holding more files than this.")
@click.option("--max-ratio", type=click.FloatRange(min=1.0), default=ArchiveLimits.max_ratio, show_default=True,
              help="Refuse an archive that unpacks to more than this many times its size (zip bombs).")
def ingest(db_url: str, paths: tuple[Path, ...], fmt: str, strict: bool, quiet: bool, max_member_mb: int,
           max_members: int, max_ratio: float) -> None:
    """Ingest files, folders and .zip/.tar.gz archives of record trails.

    \b
    Formats:
      random-nn  the 6000-NN tables (doi:10.7910/DVN/ZXTCGF) or `generate random-nn`
                 output: one search per folder/archive, one architecture per table
      icpp23     the published A4NN ICPP'23 logs: one search per CSV

    Each file (loose, in a folder or in an archive) is one transaction: a malformed
    file is reported with its name and line and nothing of it is written; the other
    files still ingest. An archive that cannot be unpacked or breaks the --max-*
    limits is reported by name and none of its files is read. Files no format
    recognises are named. Ingesting the same files again adds nothing (the summary
    says how many networks were added and how many were already present). Exits
    with code 1 when any file or archive was rejected.
    """
    from a4nn.commons.ingest import ingest_paths

    limits = ArchiveLimits(max_member_bytes=max_member_mb * MB, max_members=max_members, max_ratio=max_ratio)
    database = open_db(db_url, upgrade=True)
    try:
        summary = ingest_paths(database, paths, fmt, strict=strict, progress=not quiet,
                               report=lambda line: click.echo(line, err=True), limits=limits)
    except InputFormatError as exc:
        if not strict:
            raise
        click.echo(f"error: {exc}", err=True)
        click.echo("stopped at the first malformed file (--strict); files before it were ingested", err=True)
        raise click.exceptions.Exit(1)
    finally:
        database.dispose()
    click.echo(summary.line())
    if not summary.ok:
        raise click.exceptions.Exit(1)


@click.group()
def generate() -> None:
    """Grow new record trails (e.g. random-network learning curves) as files to ingest."""


@generate.command("random-nn")
@click.option("--dataset", default="xfel-sim", show_default=True,
              help="'xfel-sim' (simulated diffraction) or a path: folder with images/, .npz or .h5.")
@click.option("--n", "n", type=click.IntRange(min=1), default=10, show_default=True, help="Networks to generate.")
@click.option("--epochs", type=click.IntRange(min=1), default=40, show_default=True,
              help="Training epochs per network (a row every half epoch).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the <ID>.txt tables (created if missing).")
@click.option("--beam", type=click.Choice(["low", "medium", "high"]), default="low", show_default=True,
              help="Beam intensity of the simulated data.")
@click.option("--image-size", type=click.IntRange(min=4), default=32, show_default=True, help="Simulated image size.")
@click.option("--n-images", type=click.IntRange(min=10), default=400, show_default=True,
              help="Simulated images (80/20 train/validation).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the network draws and the simulation.")
@click.option("--scale-down", is_flag=True, help="Narrow filter/FC/batch ranges so a CPU trains quickly.")
@click.option("--delimiter", type=click.Choice(["space", "tab", "comma"]), default="space", show_default=True,
              help="Field separator (the published tables use a single space).")
@click.option("--device", default="cpu", show_default=True, help="Torch device: cpu, cuda, cuda:N.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Torch CPU threads.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where simulated data are cached (default $A4NN_DATA_DIR or ./a4nn-data).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def random_nn(dataset: str, n: int, epochs: int, out_dir: Path, beam: str, image_size: int, n_images: int,
              seed: int, scale_down: bool, delimiter: str, device: str, threads: int, cache_dir: Path | None,
              quiet: bool) -> None:
    """Train N random CNNs and write their curves in the 6000-NN table format.

    The data article's recipe: random structure and training parameters, SGD with
    cross entropy, validation every half epoch, one 28-column table per network
    named <ID>.txt. Ingest the folder afterwards with `a4nn-commons ingest OUT`.
    """
    from a4nn.search.data import load_dataset
    from a4nn.search.random_nn import DELIMITERS, RandomNNRanges, generate_random_nns

    split = load_dataset(dataset, beam=beam, n_images=n_images, image_size=image_size, seed=seed,
                         cache_dir=cache_dir, progress=not quiet)
    ranges = RandomNNRanges().scaled_down() if scale_down else RandomNNRanges()
    paths = generate_random_nns(split, n, out_dir, epochs=epochs, seed=seed, ranges=ranges,
                                delimiter=DELIMITERS[delimiter], device=device, threads=threads, progress=not quiet)
    click.echo(f"wrote {len(paths)} tables ({epochs * 2} rows each) to {out_dir} (data set {split.name})")
