"""Reader of the 6000-NN random-network tables (and of tables our generator writes).

Mapping into the lineage schema:

* one search per source collection, named ``random-nn:<collection>`` (the folder or
  archive given to ``ingest``), nas ``random-nn``, no engine config;
* one dataset row per image data set named in the tables (``CIFAR100``, ``SVHN``, ...);
  the search points at it while the collection uses a single data set and at none once
  two data sets are mixed (each architecture's train-params still names its own);
* one architecture per table: generation 0, index allocated in ingest order and keyed
  by the table's ``ID`` (so re-ingest finds the same row), the taxonomy decoded into
  conv blocks / FC layers in ``arch`` and the training parameters in ``train_params``;
* one epochs row per data row, ``epoch`` = the table's ``epochs`` value (0.5, 1.0, ...
  40.0: half epochs are stored as they are), train_loss/val_loss/val_acc from
  trainLoss/valLoss/valAcc; final_acc = fitness = the last valAcc.

Re-ingesting a table replaces its curve (old epochs are cleared first), so the same
files twice add nothing and a corrected file does not leave stale rows.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from a4nn.commons.random_nn_format import DOI, FORMAT, looks_like_table, read_table, table_records
from a4nn.lineage.models import Architecture, Search
from a4nn.lineage.recorder import Recorder

if TYPE_CHECKING:  # pragma: no cover
    from a4nn.commons.ingest.driver import FileContext

SUFFIXES = (".txt", ".tsv", ".csv", ".tab", ".dat")
KNOWN_DATASETS = {"cifar100": "cifar100", "fashionmnist": "fashionmnist", "svhn": "svhn", "cifar10": "cifar10",
                  "mnist": "mnist"}


def candidate(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES


def matches(path: Path) -> bool:
    """Auto-detection: the header row names the random-NN columns."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            first = handle.readline(8192)
    except OSError:
        return False
    return looks_like_table(first)


def dataset_kind(name: str) -> str:
    """The ``datasets.kind`` of a data set named in a table."""
    key = name.lower().replace("-", "").replace("_", "")
    if key in KNOWN_DATASETS:
        return KNOWN_DATASETS[key]
    if name.startswith("xfel-sim"):
        return "xfel-sim"
    if name.startswith("xfel-tiff"):
        return "xfel-tiff"
    return "image"


def _dataset_id(recorder: Recorder, name: str, context: "FileContext") -> int:
    key = ("dataset", name)
    found = context.cache.get(key)
    if found is None:
        found = recorder.register_dataset(name, dataset_kind(name), {"source": "random-nn table"})
        context.cache.stage(key, found)
    return found


def _search_id(recorder: Recorder, collection: str, dataset_id: int, context: "FileContext") -> int:
    key = ("search", collection)
    search_id = context.cache.get(key)
    if search_id is None:
        search_id = recorder.start_search(f"random-nn:{collection}", "random-nn", dataset_id, None,
                                          {"format": FORMAT, "source": collection, "doi": DOI,
                                           "validation_every": 0.5}, status="completed")
        context.cache.stage(key, search_id)
    # one data set per search while the collection has only one; none once it mixes several
    dataset_key = ("search-dataset", search_id)
    if dataset_key not in context.cache:
        current = context.connection.execute(select(Search.dataset_id).where(Search.id == search_id)).scalar()
        context.cache.stage(dataset_key, current)
    current = context.cache.get(dataset_key)
    if current is not None and current != dataset_id:
        context.connection.execute(update(Search).where(Search.id == search_id).values(dataset_id=None))
        context.cache.stage(dataset_key, None)
    return search_id


def _index_for(search_id: int, network_id: str, context: "FileContext") -> tuple[int, bool]:
    """The architecture index of ``network_id`` in the search, and whether it existed already."""
    loaded = ("ids-loaded", search_id)
    if loaded not in context.cache:
        highest = -1
        rows = context.connection.execute(
            select(Architecture.index, Architecture.arch).where(Architecture.search_id == search_id))
        for index, arch in rows:
            highest = max(highest, index)
            if arch and arch.get("id") is not None:
                context.cache.remember(("network", search_id, str(arch["id"])), index)
        context.cache.remember(("next-index", search_id), highest + 1)
        context.cache.remember(loaded, True)
    known = context.cache.get(("network", search_id, network_id))
    if known is not None:
        return known, True
    index = context.cache.get(("next-index", search_id))
    context.cache.stage(("network", search_id, network_id), index)
    context.cache.stage(("next-index", search_id), index + 1)
    return index, False


def ingest_file(recorder: Recorder, path: Path, source: str, context: "FileContext") -> tuple[int, int]:
    """Ingest one table inside the driver's transaction; returns (1 network, its epoch rows)."""
    table = read_table(path, source)
    arch, train_params = table_records(table)
    dataset_name = table.metadata.get("dataset") or "unknown"
    dataset_id = _dataset_id(recorder, dataset_name, context)
    search_id = _search_id(recorder, context.collection, dataset_id, context)
    index, existed = _index_for(search_id, table.id, context)
    architecture_id = recorder.start_architecture(search_id, index=index, generation=0, arch=arch,
                                                  train_params=train_params,
                                                  device="cuda" if table.metadata.get("train_GPU") else None)
    if existed:
        recorder.clear_architecture_trail(architecture_id)
    rows = [{"architecture_id": architecture_id, "epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
             "val_acc": val_acc} for epoch, train_loss, val_loss, val_acc in table.curve]
    recorder.bulk_epochs(rows)
    last = table.curve[-1]
    final_acc = last[3]
    recorder.finish_architecture(architecture_id, "completed", final_acc=final_acc, fitness=final_acc,
                                 epochs_trained=last[0])
    return 1, len(rows)


def describe(table_arch: dict[str, Any]) -> str:
    """A one-line human description of a decoded random network (used in reports)."""
    blocks = table_arch.get("conv_blocks") or []
    parts = []
    for block in blocks:
        conv = block["conv"]
        text = f"conv{conv['kernel']}x{conv['kernel']}/{conv['stride']}:{conv['filters']}"
        if block["relu"]:
            text += "+relu"
        if block["pool"]:
            text += f"+pool{block['pool']['kernel']}"
        if block["dropout"] is not None:
            text += "+drop"
        parts.append(text)
    fc = [str(layer["units"]) for layer in table_arch.get("fc_layers") or []]
    return " | ".join(parts + ([f"fc {'-'.join(fc)}"] if fc else []) + [f"out {table_arch.get('n_classes')}"])
