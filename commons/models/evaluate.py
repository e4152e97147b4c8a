"""Re-evaluating a loaded network on a data set: accuracy, loss, confusion matrix, latency.

The result is stored as an ``evaluations`` row of the network (revision 0003) so that
the API, bundles and the report show how a published network does on other data.
"""
from __future__ import annotations

import statistics
import time
from typing import Any

import torch
from torch import nn
from sqlalchemy import select

from a4nn.errors import A4nnError
from a4nn.commons.models.loader import LoadedNetwork
from a4nn.lineage.database import Database
from a4nn.lineage.models import Architecture, Dataset, Evaluation, utcnow

SPLITS = ("val", "train", "all")
#: images timed one by one for the per-image latency (enough for a stable median, cheap on a CPU)
LATENCY_IMAGES = 64


class DatasetMismatchError(A4nnError):
    """The data set's images or classes do not fit the network."""


def check_compatible(loaded: LoadedNetwork, data: Any) -> None:
    """Refuse data whose channels, image size or classes differ from what the network was built for."""
    record = loaded.record
    problems = []
    if record.in_channels is not None and data.in_channels != record.in_channels:
        problems.append(f"channels: expected {record.in_channels}, got {data.in_channels}")
    if record.image_size is not None and tuple(data.image_size) != tuple(record.image_size):
        problems.append(f"image size: expected {record.image_size[0]}x{record.image_size[1]}, "
                        f"got {data.image_size[0]}x{data.image_size[1]}")
    if record.n_classes is not None and data.n_classes != record.n_classes:
        problems.append(f"classes: expected {record.n_classes}, got {data.n_classes}")
    if problems:
        raise DatasetMismatchError(f"data set {data.name} does not fit {record.label}: " + "; ".join(problems))


def split_tensors(data: Any, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of ``split`` (``val``, ``train`` or ``all``)."""
    if split == "val":
        return data.val_x, data.val_y
    if split == "train":
        return data.train_x, data.train_y
    if split == "all":
        return torch.cat([data.train_x, data.val_x]), torch.cat([data.train_y, data.val_y])
    raise A4nnError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")


@torch.no_grad()
def measure(module: nn.Module, images: torch.Tensor, labels: torch.Tensor, n_classes: int,
            batch_size: int = 256) -> dict[str, Any]:
    """Accuracy (%), mean cross-entropy, confusion matrix (rows: true class) and latency of ``module``."""
    module.eval()
    confusion = torch.zeros(n_classes, n_classes, dtype=torch.long)
    loss_sum = 0.0
    criterion = nn.CrossEntropyLoss(reduction="sum")
    start = time.perf_counter()
    for first in range(0, len(labels), batch_size):
        logits = module(images[first:first + batch_size])
        truth = labels[first:first + batch_size]
        loss_sum += float(criterion(logits, truth))
        predicted = logits.argmax(1)
        confusion += torch.bincount(truth * n_classes + predicted, minlength=n_classes * n_classes).view(
            n_classes, n_classes)
    batched = time.perf_counter() - start
    timings = []
    for image in images[:LATENCY_IMAGES]:
        tick = time.perf_counter()
        module(image.unsqueeze(0))
        timings.append(time.perf_counter() - tick)
    n = max(len(labels), 1)
    return {"accuracy": 100.0 * float(confusion.diag().sum()) / n, "loss": loss_sum / n,
            "confusion_matrix": confusion.tolist(), "n_images": int(len(labels)),
            "latency_ms": {"median": 1e3 * statistics.median(timings), "mean": 1e3 * statistics.fmean(timings),
                           "images": len(timings), "batch": 1},
            "throughput_images_per_s": len(labels) / batched if batched > 0 else None,
            "device": str(next(module.parameters()).device) if any(True for _ in module.parameters()) else "cpu",
            "threads": torch.get_num_threads()}


def evaluate_network(loaded: LoadedNetwork, data: Any, split: str = "val") -> dict[str, Any]:
    """The metrics of ``loaded`` on ``data``'s ``split`` after checking that the data fit the network."""
    check_compatible(loaded, data)
    images, labels = split_tensors(data, split)
    if len(labels) == 0:
        raise A4nnError(f"data set {data.name} has no images in split {split!r}")
    metrics = measure(loaded.module, images, labels, int(loaded.record.n_classes or data.n_classes))
    metrics["split"] = split
    return metrics


def dataset_description(data: Any, split: str) -> dict[str, Any]:
    """What an evaluation row says about its data (name, kind, attributes, split)."""
    return {"name": data.name, "kind": data.kind, "split": split, "attributes": dict(data.attributes)}


def record_evaluation(database: Database, model_id: int, epoch: float, sha256: str, dataset: dict[str, Any],
                      metrics: dict[str, Any]) -> int:
    """Store one evaluation; links the data set when it is one of the database's data sets."""
    with database.session() as session:
        if session.get(Architecture, int(model_id)) is None:
            raise A4nnError(f"no model with id {model_id}")
        dataset_id = session.scalar(select(Dataset.id).where(Dataset.name == dataset.get("name")))
        row = Evaluation(architecture_id=int(model_id), epoch=float(epoch), dataset_id=dataset_id, dataset=dataset,
                         metrics=metrics, checkpoint_sha256=sha256, created_at=utcnow())
        session.add(row)
        session.flush()
        evaluation_id = int(row.id)
    return evaluation_id


def evaluations_of(database: Database, model_id: int) -> list[dict[str, Any]]:
    """The stored evaluations of a network, oldest first, in the API's shape."""
    with database.engine.connect() as connection:
        rows = connection.execute(select(Evaluation.__table__).where(Evaluation.architecture_id == int(model_id))
                                  .order_by(Evaluation.id)).mappings().all()
    return [{"id": r["id"], "epoch": r["epoch"], "dataset": r["dataset"], "metrics": r["metrics"],
             "created": r["created_at"].isoformat() if r["created_at"] else None} for r in rows]
