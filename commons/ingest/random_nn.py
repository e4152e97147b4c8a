"""Reader of the 6000-NN random-network tables (and of tables our generator writes).

Mapping into the lineage schema:

* one search per source collection, named ``random-nn:<collection>`` (the folder or
  archive given to ``ingest``), nas ``random-nn``, no engine config;
* one dataset row per image data set named in the tables (``CIFAR100``, ``SVHN``, ...);
  the search points at it while the collection uses a single data set and at none once
  two data sets are mixed (each architecture's train-params still names its own);
* one architecture per table: generation 0, index allocated in ingest order and keyed
  by the table's ``ID`` (so re-ingest finds the same row), the taxonomy decoded into
  conv blocks / FC layers in ``arch`` and the training parameters in ``train_params``
  (plus ``table_sha256`` of the file, so an unchanged table is skipped on re-ingest);
* one epochs row per data row, ``epoch`` = the table's ``epochs`` value (0.5, 1.0, ...
  40.0: half epochs are stored as they are), train_loss/val_loss/val_acc from
  trainLoss/valLoss/valAcc; final_acc = fitness = the last valAcc.

Re-ingesting an unchanged table writes nothing; a changed one (same ID) replaces its
row and curve (old epochs cleared first), so a corrected file leaves no stale rows.
"""
from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from a4nn.commons.random_nn_format import DOI, FORMAT, looks_like_table, parse_table, table_records
from a4nn.errors import InputFormatError
from a4nn.lineage.models import Architecture, Epoch, Search
from a4nn.lineage.nonfinite import split_nonfinite
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
    """The architecture index of ``network_id`` in the search, and whether it existed already.

    The first file of a search in a run loads the search's (ID -> index, table hash)
    map once; later files are answered from the run cache.
    """
    loaded = ("ids-loaded", search_id)
    if loaded not in context.cache:
        highest = -1
        rows = context.connection.execute(select(Architecture.index, Architecture.arch, Architecture.train_params)
                                          .where(Architecture.search_id == search_id))
        for index, arch, train_params in rows:
            highest = max(highest, index)
            if arch and arch.get("id") is not None:
                context.cache.remember(("network", search_id, str(arch["id"])), index)
                context.cache.remember(("sha", search_id, str(arch["id"])), (train_params or {}).get("table_sha256"))
        context.cache.remember(("next-index", search_id), highest + 1)
        context.cache.remember(loaded, True)
    known = context.cache.get(("network", search_id, network_id))
    if known is not None:
        return known, True
    index = context.cache.get(("next-index", search_id))
    context.cache.stage(("network", search_id, network_id), index)
    context.cache.stage(("next-index", search_id), index + 1)
    return index, False


_ARCHITECTURE_INSERT = insert(Architecture.__table__)
_CURVE_FIELDS = ("train_loss", "val_loss", "val_acc")
_EPOCH_COLUMNS = ("architecture_id", "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "nonfinite")
_EPOCH_SQL: dict[str, tuple[str, bool]] = {}


def _epoch_statement(connection: Connection) -> tuple[str, bool]:
    """The epochs INSERT compiled once per dialect, and whether its driver takes positional parameters."""
    name = connection.dialect.name
    if name not in _EPOCH_SQL:
        compiled = insert(Epoch.__table__).compile(dialect=connection.dialect, column_keys=list(_EPOCH_COLUMNS))
        if compiled.positional and tuple(compiled.positiontup) != _EPOCH_COLUMNS:
            raise RuntimeError(f"unexpected epochs column order {compiled.positiontup}")
        _EPOCH_SQL[name] = (str(compiled), bool(compiled.positional))
    return _EPOCH_SQL[name]


def _epoch_params(architecture_id: int, curve: list[tuple[float, float | None, float | None, float | None]]
                  ) -> list[tuple[Any, ...]]:
    """Epoch rows in :data:`_EPOCH_COLUMNS` order, NaN/inf moved into ``nonfinite`` as the Recorder does."""
    params = []
    for epoch, train_loss, val_loss, val_acc in curve:
        try:
            finite = math.isfinite(train_loss + val_loss + val_acc)  # type: ignore[operator]
        except TypeError:  # an empty metric (None)
            finite = all(v is None or math.isfinite(v) for v in (train_loss, val_loss, val_acc))
        flags = None
        if not finite:
            values, found = split_nonfinite({"train_loss": train_loss, "val_loss": val_loss, "val_acc": val_acc},
                                            _CURVE_FIELDS)
            train_loss, val_loss, val_acc = values["train_loss"], values["val_loss"], values["val_acc"]
            flags = json.dumps(found) if found else None
        params.append((architecture_id, epoch, train_loss, None, val_loss, val_acc, None, flags))
    return params


def _insert_epochs(connection: Connection, architecture_id: int,
                   curve: list[tuple[float, float | None, float | None, float | None]]) -> int:
    """One executemany of a table's epoch rows straight to the driver.

    SQLAlchemy's per-row parameter processing costs ~25 us a row, i.e. most of the
    time of a 480,000-row ingest; these rows are plain floats/ints plus the
    ``nonfinite`` JSON text, so they go to the DB-API as they are.
    """
    sql, positional = _epoch_statement(connection)
    params = _epoch_params(architecture_id, curve)
    connection.exec_driver_sql(sql, params if positional else [dict(zip(_EPOCH_COLUMNS, row)) for row in params])
    return len(params)


def ingest_file(recorder: Recorder, path: Path, source: str, context: "FileContext") -> tuple[int, int]:
    """Ingest one table inside the driver's transaction; returns (networks, epoch rows) written.

    A table is written with prepared Core statements on the file's connection (the
    architecture row, already finished, and one executemany of its epochs): the same
    columns and natural keys the Recorder writes, without rebuilding statements per
    file, which is what makes 6000 tables fit in seconds. A table whose ID the search
    already holds is skipped when its text is unchanged (sha256 kept in train_params)
    and otherwise replaced: row updated, old trail cleared, curve rewritten.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputFormatError("not a UTF-8 text table", path=source) from None
    table = parse_table(text, source)
    digest = hashlib.sha256(text.encode()).hexdigest()
    arch, train_params = table_records(table)
    train_params["table_sha256"] = digest
    dataset_name = table.metadata.get("dataset") or "unknown"
    dataset_id = _dataset_id(recorder, dataset_name, context)
    search_id = _search_id(recorder, context.collection, dataset_id, context)
    index, existed = _index_for(search_id, table.id, context)
    if existed and context.cache.get(("sha", search_id, table.id)) == digest:
        return 0, 0
    last_epoch, final_acc = table.curve[-1][0], table.curve[-1][3]
    metrics, flags = split_nonfinite({"final_acc": final_acc, "fitness": final_acc}, ("final_acc", "fitness"))
    now = datetime.now(timezone.utc)
    values = {"genome_id": None, "arch": arch, "train_params": train_params, "flops": None, "n_params": None,
              "status": "completed", "epochs_trained": last_epoch, "terminated_early": False, "stop_epoch": None,
              "predicted_acc": None, "wall_seconds": None, "device": "cuda" if table.metadata.get("train_GPU") else None,
              "error": None, "nonfinite": flags, "finished_at": now, **metrics}
    if existed:
        architecture_id = recorder.start_architecture(search_id, index=index, generation=0)
        recorder.clear_architecture_trail(architecture_id)
        context.connection.execute(update(Architecture).where(Architecture.id == architecture_id).values(**values))
    else:
        result = context.connection.execute(_ARCHITECTURE_INSERT, {
            "search_id": search_id, "generation": 0, "index": index, "created_at": now, **values})
        architecture_id = int(result.inserted_primary_key[0])
    context.cache.stage(("sha", search_id, table.id), digest)
    return 1, _insert_epochs(context.connection, architecture_id, table.curve)


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
