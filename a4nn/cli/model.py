"""``a4nn-commons model evaluate|export`` and ``a4nn-commons refine``: recorded networks put to use.

Parsing and printing only; the work is in :mod:`a4nn.commons.models`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from a4nn.cli.options import db_option, open_db
from a4nn.lineage.urls import display_url

SOURCE_HELP = ("Read the network from a bundle FOLDER or a query service http://HOST:PORT instead of --db "
               "(in a bundle, ID is SEARCH:GENERATION:INDEX or the exporting database's id).")


@click.group()
def model() -> None:
    """Use a recorded network: re-evaluate it on a data set, or export it for deployment."""


def _source(db_url: str, source: str | None) -> Any:
    if source is None:
        return open_db(db_url)
    from a4nn.commons.models import open_source

    return open_source(source)


@model.command("evaluate")
@db_option
@click.argument("model_id", metavar="ID")
@click.option("--epoch", type=float, default=None, help="Checkpoint epoch (default: the last one).")
@click.option("--dataset", required=True,
              help="'xfel-sim' (the simulator) or a PATH: a folder with images/, .npz or .h5.")
@click.option("--beam", type=click.Choice(["low", "medium", "high"]), default=None,
              help="Simulator beam (default: the network's training beam); a label for real data.")
@click.option("--n-images", type=int, default=200, show_default=True, help="Simulated images.")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Simulator seed (the search's own seed reproduces its training data) and split seed of files.")
@click.option("--split", type=click.Choice(["val", "train", "all"]), default="val", show_default=True,
              help="Which part of the data set to measure on.")
@click.option("--from", "source", default=None, metavar="SOURCE", help=SOURCE_HELP)
def evaluate(db_url: str, model_id: str, epoch: float | None, dataset: str, beam: str | None, n_images: int,
             seed: int, split: str, source: str | None) -> None:
    """Accuracy, loss, confusion matrix and per-image latency of network ID on a data set.

    The result is stored in the evaluations table of --db (shown by GET /models/ID,
    bundles and the report) when the network was read from --db.

    \b
    Examples:
      a4nn-commons model evaluate 12 --dataset xfel-sim --beam high
      a4nn-commons model evaluate 12 --epoch 5 --dataset images-folder/
    """
    from a4nn.commons.models import load_network
    from a4nn.commons.models.evaluate import dataset_description, evaluate_network, record_evaluation
    from a4nn.lineage.database import Database
    from a4nn.search.data import load_dataset

    where = _source(db_url, source)
    loaded = load_network(where, model_id, epoch)
    record = loaded.record
    size = record.image_size[0] if record.image_size else 32
    data = load_dataset(dataset, beam=beam or (record.dataset or {}).get("beam") if dataset == "xfel-sim" else beam,
                        n_images=n_images, image_size=size, seed=seed)
    metrics = evaluate_network(loaded, data, split)
    click.echo(f"{record.label} epoch {loaded.epoch:g} (checkpoint sha256 {loaded.sha256[:12]}...) on {data.name} "
               f"[{split}, {metrics['n_images']} images]")
    click.echo(f"  accuracy {metrics['accuracy']:.2f} %   loss {metrics['loss']:.4f}   "
               f"latency {metrics['latency_ms']['median']:.3f} ms/image (median, batch 1)")
    click.echo("  confusion matrix (rows: true class, columns: predicted):")
    for index, row in enumerate(metrics["confusion_matrix"]):
        click.echo(f"    {index}: " + " ".join(f"{v:>6}" for v in row))
    stored = None
    if isinstance(where, Database):
        stored = record_evaluation(where, int(record.model_id), loaded.epoch, loaded.sha256,
                                   dataset_description(data, split), metrics)
        click.echo(f"  stored as evaluation {stored} of model {record.model_id}")
    click.echo(json.dumps({"model": record.model_id, "epoch": loaded.epoch, "evaluation_id": stored,
                           "dataset": data.name, **{k: metrics[k] for k in ("accuracy", "loss", "n_images")},
                           "latency_ms": metrics["latency_ms"]["median"]}, default=str))


@model.command("export")
@db_option
@click.argument("model_id", metavar="ID")
@click.option("--epoch", type=float, default=None, help="Checkpoint epoch (default: the last one).")
@click.option("--format", "fmt", type=click.Choice(["torchscript", "onnx"]), required=True,
              help="torchscript: runs with torch alone; onnx: runs with onnxruntime alone (needs a4nn-commons[onnx]).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="File to write (e.g. model.pt, model.onnx).")
@click.option("--from", "source", default=None, metavar="SOURCE", help=SOURCE_HELP)
def export_model(db_url: str, model_id: str, epoch: float | None, fmt: str, out: Path, source: str | None) -> None:
    """Write network ID as a deployable file plus a model card (OUT's stem + .card.json).

    The card holds the genome, architecture, MFLOPs, parameters, data set and its
    attributes (with the input normalization), accuracy, search and engine settings,
    code version, checkpoint sha256 and the publication DOI when there is one.

    \b
    Examples:
      a4nn-commons model export 12 --format torchscript --out net12.pt
      a4nn-commons model export 12 --format onnx --out net12.onnx
    """
    from a4nn.commons.models import load_network
    from a4nn.commons.models.export import export_network

    loaded = load_network(_source(db_url, source), model_id, epoch)
    path, card = export_network(loaded, fmt, out)
    click.echo(f"wrote {path} ({fmt}, {path.stat().st_size} bytes) and {card}")


@click.command()
@db_option
@click.argument("search", required=False, metavar="SEARCH")
@click.option("--flops-max", type=float, default=None, help="Refine the Pareto networks at or below X MFLOPs.")
@click.option("--knee", is_flag=True,
              help="Refine the Pareto networks at or below the front's knee (max distance to the chord of the "
                   "normalized accuracy-MFLOPs front).")
@click.option("--epochs", type=int, default=None, help="Epochs of refinement per network (required for a new run).")
@click.option("--workers", type=int, default=1, show_default=True, help="Parallel training slots (>1 uses Ray).")
@click.option("--ray-address", default=None, help="Address of an existing Ray cluster.")
@click.option("--device", default="cpu", show_default=True, help="Torch device: cpu, cuda, cuda:N, auto.")
@click.option("--lr", type=float, default=None, help="Initial learning rate (default: the parent's).")
@click.option("--engine", type=click.Choice(["none", "a4nn", "penguin"]), default="none", show_default=True,
              help="Early termination: none (every network trains all epochs) or a prediction engine.")
@click.option("--dataset", default=None,
              help="Data to train on when the search's own cannot be reloaded (must be the same data).")
@click.option("--resume", "resume_id", type=int, default=None, help="Continue refine search ID after Ctrl-C or kill.")
@click.option("--run-dir", type=click.Path(path_type=Path), default=Path("runs"), show_default=True,
              help="Parent folder of the refine run's checkpoints.")
@click.option("--name", default=None, help="Name of the refine search (unique).")
@click.option("--quiet", is_flag=True, help="No progress lines.")
def refine(db_url: str, search: str | None, flops_max: float | None, knee: bool, epochs: int | None, workers: int,
           ray_address: str | None, device: str, lr: float | None, engine: str, dataset: str | None,
           resume_id: int | None, run_dir: Path, name: str | None, quiet: bool) -> None:
    """Train a search's Pareto networks below a MFLOPs cut-off much longer (generate -> select -> refine).

    Each network continues from its last checkpoint (from its seed when none was
    kept) and is recorded as a new architecture of a new search (nas 'refine') linked
    to its parent by a 'refine' edge, with every epoch and a checkpoint per epoch.
    Prints Table I: network, MFLOPs, accuracy before and after, inference time.

    \b
    Examples:
      a4nn-commons refine 3 --knee --epochs 100
      a4nn-commons refine 3 --flops-max 2.5 --epochs 500 --workers 4
      a4nn-commons refine --resume 7
    """
    from a4nn.commons.models.refine import RefineInterrupted, refine as run_refine

    if resume_id is None:
        if search is None:
            raise click.UsageError("give a SEARCH (id or name), or --resume ID")
        if epochs is None:
            raise click.UsageError("--epochs N is required")
        if (flops_max is None) == (not knee):
            raise click.UsageError("give exactly one of --flops-max X or --knee")
    database = open_db(db_url, upgrade=True)
    data = None
    if dataset is not None:
        from a4nn.search.data import load_dataset

        data = load_dataset(dataset)
    try:
        result = run_refine(database, search, flops_max=flops_max, knee=knee, epochs=epochs or 1, workers=workers,
                            resume=resume_id, run_dir=run_dir, name=name, device=device, lr=lr, engine=engine,
                            ray_address=ray_address, data=data, progress=None if quiet else click.echo)
    except RefineInterrupted as exc:
        click.echo(f"\ninterrupted; continue with: a4nn-commons refine --resume {exc.search_id} "
                   f"--db {display_url(db_url)}", err=True)
        raise
    click.echo(f"\nTable I: refine search {result.search_id} ({result.name}), {result.trained} trained, "
               f"{result.reused} already done, {result.wall_seconds:.1f} s")
    click.echo(f"{'network':>8} {'refined':>8} {'MFLOPs':>10} {'acc before %':>13} {'acc after %':>12} "
               f"{'epochs':>7} {'inference ms':>13}")
    for row in result.rows:
        before = f"{row.acc_before:.2f}" if row.acc_before is not None else "-"
        after = f"{row.acc_after:.2f}" if row.acc_after is not None else row.status
        latency = f"{row.inference_ms:.3f}" if row.inference_ms is not None else "-"
        click.echo(f"{row.parent_id:>8} {row.refined_id:>8} {row.flops or 0:>10.3f} {before:>13} {after:>12} "
                   f"{row.epochs:>7} {latency:>13}")
    click.echo(json.dumps({"search_id": result.search_id, "rows": [row.__dict__ for row in result.rows],
                           "wall_seconds": round(result.wall_seconds, 3)}))
