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
  (plus ``table_sha256`` of the file and ``table_file``, its name in the collection);
* one epochs row per data row, ``epoch`` = the table's ``epochs`` value (0.5, 1.0, ...
  40.0: half epochs are stored as they are), train_loss/val_loss/val_acc from
  trainLoss/valLoss/valAcc; final_acc = fitness = the last valAcc.

One network ID is one network of the collection. A file whose bytes are already
stored in the search is "already present" and not even parsed; a corrected version of
the same file (same name in the collection, same ID, other bytes) replaces its row and
curve (old epochs cleared first), so no stale rows survive; a *different* file with an
ID the search already holds is rejected, naming both files: the 6000-NN IDs are
timestamps that identify one training run, so two tables with one ID are a copy
error, and keeping both (or the last) would silently change what the ID means. Re-runs
therefore never rewrite rows.

Tables are streamed: the first :data:`CHUNK` rows decide the row of a short table at
once, a longer one is written chunk by chunk and its architecture row completed at the
end, so memory does not grow with the file.
"""
from __future__ import annotations

from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from a4nn.commons.ingest.table import FileResult, file_sha256
from a4nn.commons.random_nn_format import DOI, FORMAT, RandomNNTable, TableStream, looks_like_table, open_lines, table_records
from a4nn.errors import InputFormatError
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
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
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


CHUNK = 10_000  # epoch rows per insert of a long table


def _search_name(collection: str) -> str:
    return f"random-nn:{collection}"


def _known_search(recorder: Recorder, context: "FileContext") -> int | None:
    """The id of the collection's search if it exists (asked once per run), else None."""
    key = ("search", context.collection)
    search_id = context.cache.get(key)
    if search_id is None:
        found = recorder.bulk.find_search(_search_name(context.collection))
        if found is not None:
            search_id = found[0]
            context.cache.remember(key, search_id)
            context.cache.remember(("search-dataset", search_id), found[1])
    return search_id


def _search_id(recorder: Recorder, dataset_id: int, context: "FileContext") -> int:
    key = ("search", context.collection)
    search_id = _known_search(recorder, context)
    if search_id is None:
        search_id = recorder.start_search(_search_name(context.collection), "random-nn", dataset_id, None,
                                          {"format": FORMAT, "source": context.collection, "doi": DOI,
                                           "validation_every": 0.5}, status="completed")
        context.cache.stage(key, search_id)
        context.cache.stage(("search-dataset", search_id), dataset_id)
        context.cache.stage(("ids-loaded", search_id), True)  # a new search holds no network yet
        context.cache.stage(("next-index", search_id), 0)
    # one data set per search while the collection has only one; none once it mixes several
    dataset_key = ("search-dataset", search_id)
    current = context.cache.get(dataset_key)
    if current is not None and current != dataset_id:
        recorder.bulk.update_search(search_id, dataset_id=None)
        context.cache.stage(dataset_key, None)
    return search_id


def _load_networks(recorder: Recorder, search_id: int, context: "FileContext") -> None:
    """Learn the search's stored networks once per run: ID -> (index, row id, file), and the stored file hashes."""
    loaded = ("ids-loaded", search_id)
    if loaded in context.cache:
        return
    highest = -1
    for architecture_id, _generation, index, arch, train_params in recorder.bulk.architectures(search_id):
        highest = max(highest, index)
        if arch.get("id") is not None:
            network = str(arch["id"])
            context.cache.remember(("network", search_id, network), (index, architecture_id))
            context.cache.remember(("file", search_id, network), train_params.get("table_file"))
            if train_params.get("table_sha256"):
                context.cache.remember(("digest", search_id, train_params["table_sha256"]), network)
    context.cache.remember(("next-index", search_id), highest + 1)
    context.cache.remember(loaded, True)


def _curve_rows(curve: Iterable[tuple[float, float | None, float | None, float | None]]) -> Iterable[tuple]:
    """Table rows as the bulk loader's epoch rows (no train accuracy or seconds in this format)."""
    return ((epoch, train_loss, None, val_loss, val_acc, None) for epoch, train_loss, val_loss, val_acc in curve)


def _finished(arch: dict[str, Any], train_params: dict[str, Any], device: str | None,
              last: tuple[float, float | None, float | None, float | None]) -> dict[str, Any]:
    """The architecture row's columns once its last table row is known."""
    last_epoch, final_acc = last[0], last[3]
    return {"genome_id": None, "arch": arch, "train_params": {**train_params, "epochs": last_epoch}, "flops": None,
            "n_params": None, "status": "completed", "epochs_trained": last_epoch, "terminated_early": False,
            "stop_epoch": None, "predicted_acc": None, "wall_seconds": None, "device": device, "error": None,
            "final_acc": final_acc, "fitness": final_acc, "finished_at": datetime.now(timezone.utc)}


def ingest_file(recorder: Recorder, path: Path, source: str, context: "FileContext") -> FileResult:
    """Ingest one table inside the driver's transaction through the Recorder's bulk loader.

    The file is hashed first (in blocks): bytes already stored in the search are
    "present" and the file is not parsed. Otherwise it is streamed: the architecture
    row and one executemany of its epochs for a short table, chunked inserts and a
    final update of the row for a long one.
    """
    digest = file_sha256(path, source)
    known = _known_search(recorder, context)
    if known is not None:
        _load_networks(recorder, known, context)
        if ("digest", known, digest) in context.cache:
            return FileResult(present=1)
    stream = TableStream(open_lines(path, source), source)
    network = stream.id
    arch, train_params = table_records(RandomNNTable(stream.metadata, []))
    train_params.update(table_sha256=digest, table_file=context.member)
    device = "cuda" if stream.metadata.get("train_GPU") else None
    dataset_id = _dataset_id(recorder, stream.metadata.get("dataset") or "unknown", context)
    search_id = _search_id(recorder, dataset_id, context)
    _load_networks(recorder, search_id, context)
    stored = context.cache.get(("network", search_id, network))
    if stored is not None:
        first = context.cache.get(("source", search_id, network)) or context.cache.get(("file", search_id, network))
        if context.cache.get(("file", search_id, network)) not in (None, context.member):
            raise InputFormatError(f"network ID {network!r} is already stored from {first} in search "
                                   f"{_search_name(context.collection)!r}; a second table with that ID is rejected",
                                   path=source, line=2)
    rows = iter(stream)
    chunk = list(islice(rows, CHUNK))
    more = next(rows, None)
    values = _finished(arch, train_params, device, chunk[-1])  # final for a short table, completed below otherwise
    if stored is not None:  # a corrected version of the same file: clear its old trail, then rewrite it
        index, architecture_id = stored
        recorder.clear_architecture_trail(architecture_id)
        recorder.bulk.update_architecture(architecture_id, values)
    else:
        index = context.cache.get(("next-index", search_id))
        architecture_id = recorder.bulk.insert_architecture({"search_id": search_id, "generation": 0, "index": index,
                                                             **values})
        context.cache.stage(("next-index", search_id), index + 1)
        context.cache.stage(("network", search_id, network), (index, architecture_id))
    written = recorder.bulk.insert_epochs(architecture_id, _curve_rows(chunk))
    if more is not None:  # a long table: the rest in chunks, then the row's final columns
        last = more
        pending = [more]
        for row in rows:
            pending.append(row)
            if len(pending) >= CHUNK:
                written += recorder.bulk.insert_epochs(architecture_id, _curve_rows(pending))
                last, pending = pending[-1], []
        if pending:
            written += recorder.bulk.insert_epochs(architecture_id, _curve_rows(pending))
            last = pending[-1]
        recorder.bulk.update_architecture(architecture_id, _finished(arch, train_params, device, last))
    context.cache.stage(("file", search_id, network), context.member)
    context.cache.stage(("source", search_id, network), source)
    context.cache.stage(("digest", search_id, digest), network)
    return FileResult(added=1, rows=written, replaced=int(stored is not None))
