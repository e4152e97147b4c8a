"""Export of a search from the lineage database as 6000-NN tables (the codec's inverse of ingest).

Kept apart from :mod:`a4nn.commons.random_nn_format` so that the codec (one table,
no database) sits below the lineage layer while this module, which reads the
database, sits above it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from sqlalchemy import select

from a4nn.commons.random_nn_format import (
    FORMAT,
    KINDS,
    LIST,
    METADATA_COLUMNS,
    TAXONOMY_COLUMNS,
    TRAIN_COLUMNS,
    RandomNNTable,
    safe_file_stem,
    write_table,
)
from a4nn.errors import A4nnError
from a4nn.lineage.models import Architecture, Dataset, Epoch, Search
from a4nn.lineage.nonfinite import restore_nonfinite

__all__ = ["export_random_nn"]

_TRAIN_ALIASES: dict[str, tuple[str, ...]] = {
    "random_seed": ("random_seed", "seed"), "batch_size": ("batch_size",), "learning_rate": ("learning_rate", "lr"),
    "momentum": ("momentum",), "dampening": ("dampening",), "weight_decay": ("weight_decay",),
    "loss_fn": ("loss_fn",), "optimizer": ("optimizer",),
}


def _generic_metadata(search_name: str, dataset: str | None, row: Mapping[str, Any]) -> dict[str, Any]:
    """Best-effort metadata for an architecture that was not imported from this format (e.g. NSGA-Net)."""
    params = dict(row["train_params"] or {})
    metadata: dict[str, Any] = {name: ([] if KINDS[name] == LIST else None) for name in METADATA_COLUMNS}
    metadata["ID"] = safe_file_stem(f"{search_name}_g{row['generation']}_i{row['index']}")
    metadata["dataset"] = dataset
    device = row.get("device")
    metadata["train_GPU"] = None if device is None else str(device).startswith("cuda")
    for column, keys in _TRAIN_ALIASES.items():
        for key in keys:
            value = params.get(key)
            if value is not None and not isinstance(value, (dict, list)):
                metadata[column] = value
                break
    return metadata


def export_random_nn(database: Any, search_id: int, out_dir: Path | str, delimiter: str = " ") -> list[Path]:
    """Write every architecture of a search as ``<out_dir>/<ID>.txt`` in the 28-column format.

    Architectures imported from this format are written back exactly (metadata from
    their arch/train-params JSON, curve from the epochs table); others get the fields
    the lineage database knows (ID ``<search>_g<generation>_i<index>``, data set, batch
    size, learning rate, ... and their epochs), the rest left empty. Non-finite metrics
    flagged in the database are written as ``nan``/``inf``.
    """
    out = Path(out_dir)
    with database.engine.connect() as connection:
        found = connection.execute(
            select(Search.name, Dataset.name).outerjoin(Dataset, Dataset.id == Search.dataset_id).where(Search.id == search_id)
        ).first()
        if found is None:
            raise A4nnError(f"no search with id {search_id}")
        search_name, dataset_name = found
        architectures = connection.execute(
            select(Architecture.id, Architecture.generation, Architecture.index, Architecture.arch,
                   Architecture.train_params, Architecture.device)
            .where(Architecture.search_id == search_id).order_by(Architecture.generation, Architecture.index)
        ).mappings().all()
        curves: dict[int, list[tuple[float, float | None, float | None, float | None]]] = {a["id"]: [] for a in architectures}
        epochs = connection.execute(
            select(Epoch.architecture_id, Epoch.epoch, Epoch.train_loss, Epoch.val_loss, Epoch.val_acc, Epoch.nonfinite)
            .join(Architecture, Architecture.id == Epoch.architecture_id)
            .where(Architecture.search_id == search_id).order_by(Epoch.architecture_id, Epoch.epoch)
        )
        for architecture_id, epoch, train_loss, val_loss, val_acc, flags in epochs:
            curves[architecture_id].append((float(epoch), restore_nonfinite(train_loss, "train_loss", flags),
                                            restore_nonfinite(val_loss, "val_loss", flags),
                                            restore_nonfinite(val_acc, "val_acc", flags)))
    written: list[Path] = []
    used: set[str] = set()
    for row in architectures:
        arch = row["arch"] or {}
        if arch.get("format") == FORMAT:
            metadata = {name: (row["train_params"] or {}).get(name) for name in TRAIN_COLUMNS}
            metadata.update({name: arch.get("taxonomy", {}).get(name) for name in TAXONOMY_COLUMNS})
        else:
            metadata = _generic_metadata(search_name, dataset_name, row)
        table = RandomNNTable(metadata, curves[row["id"]])
        stem = safe_file_stem(table.id)
        if stem in used:
            raise A4nnError(f"two architectures of search {search_name!r} share the network ID {table.id!r}")
        used.add(stem)
        written.append(write_table(table, out, delimiter))
    return written
