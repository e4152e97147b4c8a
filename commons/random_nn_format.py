"""The 28-column table format of the 6000-NN random-network dataset (Harvard Dataverse doi:10.7910/DVN/ZXTCGF).

One delimited text table per network. The published tables (see the samples shipped with
TauferLab/PENGUIN, ``data-CIFAR100/models/<ID>.txt``) look like this::

    epochs trainLoss valLoss valAcc ID random_seed ... FC_dropout_rate FC_dropout_layers FCFilters
    0.5 4.2537 3.8971 9.68 2021_02_15_13_55_26_539263 2476382228 True False CIFAR100 25 ... 0.4558  100
    1.0 3.7429 3.5833 14.91                        (24 empty fields)
    ...
    40.0 1.4958 4.3185 26.35                        (24 empty fields)

Rules this module enforces and reproduces, byte for byte when writing:

* a header row naming the 28 :data:`COLUMNS`; a data row every half epoch (0.5 ... 40.0);
* the fields are separated by one delimiter: the published files use a single space,
  tab- and comma-separated variants are accepted too (detected from the header);
  empty fields are empty strings between two delimiters, never collapsed;
* the 24 metadata columns are filled on the first data row only;
* integer lists are hyphen separated (``24-2-2``), and may be empty;
* numbers keep their text form: integers stay integers (``0``), floats are written with
  Python's shortest round-trip ``repr`` (``4.877743709660678e-05``, ``1.0``).

``layer_types`` holds one code per convolutional layer, a sum of flags: 1 = ReLU after the
convolution, 2 = a max-pooling layer (which consumes the next entry of the pool lists),
4 = dropout with ``dropout_rate``. The flag reading is inferred from the published samples
(the number of pooling flags equals the length of ``poolKernels`` in every sample; dropout
flags appear exactly when ``dropout_rate`` is non-zero); the article's own column table
was not reachable offline. ``FCFilters`` lists the fully connected widths, the last one
being the number of classes; ``FC_dropout_layers`` has a 0/1 flag per hidden FC layer.

This module is shared by the reader (:mod:`a4nn.commons.ingest.random_nn`), the generator
(:mod:`a4nn.search.random_nn`) and the exporter (:func:`export_random_nn`), so the three
cannot drift apart.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from a4nn.errors import InputFormatError

FORMAT = "random-nn/v1"
DOI = "doi:10.7910/DVN/ZXTCGF"

COLUMNS: tuple[str, ...] = (
    "epochs", "trainLoss", "valLoss", "valAcc", "ID", "random_seed", "train_GPU", "torch_set_deterministic",
    "dataset", "batch_size", "loss_fn", "optimizer", "learning_rate", "momentum", "dampening", "weight_decay",
    "layer_types", "dropout_rate", "convKernels", "convStrides", "convPaddings", "poolKernels", "poolStrides",
    "poolPaddings", "convFilters", "FC_dropout_rate", "FC_dropout_layers", "FCFilters",
)
CURVE_COLUMNS = COLUMNS[:4]
METADATA_COLUMNS = COLUMNS[4:]
#: metadata that describes training (stored as the architecture's train_params)
TRAIN_COLUMNS = COLUMNS[4:16]
#: metadata that describes the network (stored under ``taxonomy`` in the architecture's arch JSON)
TAXONOMY_COLUMNS = COLUMNS[16:]

TEXT, INT, BOOL, NUMBER, LIST = "text", "int", "bool", "number", "list"
KINDS: dict[str, str] = {
    "ID": TEXT, "random_seed": INT, "train_GPU": BOOL, "torch_set_deterministic": BOOL, "dataset": TEXT,
    "batch_size": INT, "loss_fn": TEXT, "optimizer": TEXT, "learning_rate": NUMBER, "momentum": NUMBER,
    "dampening": NUMBER, "weight_decay": NUMBER, "layer_types": LIST, "dropout_rate": NUMBER,
    "convKernels": LIST, "convStrides": LIST, "convPaddings": LIST, "poolKernels": LIST, "poolStrides": LIST,
    "poolPaddings": LIST, "convFilters": LIST, "FC_dropout_rate": NUMBER, "FC_dropout_layers": LIST,
    "FCFilters": LIST,
}
DELIMITERS = {"space": " ", "tab": "\t", "comma": ","}
RELU, POOL, DROPOUT = 1, 2, 4

_INTEGER = re.compile(r"^[+-]?\d+$")
_LIST = re.compile(r"^\d+(-\d+)*$")


@dataclass
class RandomNNTable:
    """One network's table: typed metadata plus its learning curve.

    ``curve`` holds ``(epochs, trainLoss, valLoss, valAcc)``; a metric may be None
    (written as an empty field) when the source did not record it.
    """

    metadata: dict[str, Any]
    curve: list[tuple[float, float | None, float | None, float | None]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.metadata.get("ID") or "")


# ----------------------------------------------------------------------------- values
def parse_number(text: str) -> int | float:
    """An int when the text is an integer (``0``), else a float (``nan``/``inf`` allowed); ValueError otherwise."""
    return int(text) if _INTEGER.match(text) else float(text)


def parse_list(text: str) -> list[int]:
    """A hyphen-separated list of non-negative integers; empty text is the empty list."""
    if not text:
        return []
    if not _LIST.match(text):
        raise ValueError(text)
    return [int(v) for v in text.split("-")]


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError(text)


_PARSERS = {TEXT: str, INT: int, BOOL: parse_bool, NUMBER: parse_number, LIST: parse_list}
_EXPECTED = {INT: "an integer", BOOL: "True or False", NUMBER: "a number",
             LIST: "a hyphen-separated list of non-negative integers (e.g. 3-1-2)"}


def format_value(value: Any) -> str:
    """The text of one field: repr for floats (shortest exact), hyphens for lists, empty for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "-".join(str(int(v)) for v in value)
    return str(value)


# ----------------------------------------------------------------------------- reading
def detect_delimiter(header: str) -> str:
    """Tab or comma when the header uses them, else the published files' single space."""
    if "\t" in header:
        return "\t"
    if "," in header:
        return ","
    return " "


def looks_like_table(first_line: str) -> bool:
    """True when a header line names enough of the 28 columns to be this format (used by auto-detection)."""
    names = set(re.split(r"[\t, ]+", first_line.strip()))
    return {"epochs", "valAcc"} <= names or len(names & set(COLUMNS)) >= 4


def parse_table(text: str, source: str) -> RandomNNTable:
    """Parse one table; any defect raises :class:`InputFormatError` naming ``source`` and the line."""
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InputFormatError("empty file (expected a header row with the 28 random-NN columns)", path=source, line=1)
    delimiter = detect_delimiter(lines[0])
    header = [name.strip() for name in lines[0].rstrip("\r\n").split(delimiter)]
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise InputFormatError(f"missing column(s) {', '.join(missing)}", path=source, line=1)
    if len(set(header)) != len(header):
        raise InputFormatError("a column name appears twice in the header", path=source, line=1)
    width = len(header)
    position = {name: header.index(name) for name in COLUMNS}
    curve_at = [position[name] for name in CURVE_COLUMNS]
    e_at, t_at, v_at, a_at = curve_at
    metadata_at = [(name, position[name]) for name in METADATA_COLUMNS]
    # published column order: the metadata fields are fields[4:], so an empty tail is one cheap check
    canonical = header == list(COLUMNS)

    metadata: dict[str, Any] | None = None
    curve: list[tuple[float, float | None, float | None, float | None]] = []
    last_epoch = -math.inf
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split(delimiter)
        if len(fields) != width:
            if not line.strip():
                continue
            raise InputFormatError(f"expected {width} fields, found {len(fields)} (truncated or malformed row)",
                                   path=source, line=number)
        try:
            epoch, train_loss, val_loss, val_acc = (
                float(fields[e_at]) if fields[e_at] else None, float(fields[t_at]) if fields[t_at] else None,
                float(fields[v_at]) if fields[v_at] else None, float(fields[a_at]) if fields[a_at] else None)
        except ValueError:  # whitespace-only fields are empty; anything else is a real error
            epoch, train_loss, val_loss, val_acc = _curve_values(fields, curve_at, source, number)
        if epoch is None or not epoch > last_epoch or not math.isfinite(epoch):
            raise InputFormatError(f"epochs must be finite and increasing, got {fields[curve_at[0]]!r} after {last_epoch}",
                                   path=source, line=number)
        last_epoch = epoch
        if metadata is None:
            metadata = _parse_metadata(fields, metadata_at, source, number)
        elif (any(fields[4:]) if canonical else True) and any(fields[at].strip() for _, at in metadata_at):
            filled = [name for name, at in metadata_at if fields[at].strip()]
            raise InputFormatError(f"metadata ({', '.join(filled)}) must be on the first data row only",
                                   path=source, line=number)
        curve.append((epoch, train_loss, val_loss, val_acc))
    if metadata is None:
        raise InputFormatError("no data rows after the header", path=source, line=len(lines) + 1)
    return RandomNNTable(metadata, curve)


def _curve_values(fields: list[str], curve_at: list[int], source: str, line: int) -> tuple[Any, ...]:
    """The slow, careful parse of the four curve fields, naming the first bad one."""
    values = []
    for name, at in zip(CURVE_COLUMNS, curve_at):
        text = fields[at].strip()
        try:
            values.append(float(text) if text else None)
        except ValueError:
            raise InputFormatError(f"non-numeric {name} {text!r}", path=source, line=line) from None
    return tuple(values)


def _parse_metadata(fields: list[str], metadata_at: list[tuple[str, int]], source: str, line: int) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for name, at in metadata_at:
        text = fields[at].strip()
        kind = KINDS[name]
        if not text and kind != LIST:
            if name == "ID":
                raise InputFormatError("empty ID on the first data row", path=source, line=line)
            metadata[name] = None
            continue
        try:
            metadata[name] = _PARSERS[kind](text)
        except ValueError:
            raise InputFormatError(f"bad {name} {text!r}: expected {_EXPECTED[kind]}", path=source, line=line) from None
    return metadata


def read_table(path: Path, source: str | None = None) -> RandomNNTable:
    """Read and parse one table file."""
    source = source or str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputFormatError("not a UTF-8 text table", path=source) from None
    return parse_table(text, source)


# ----------------------------------------------------------------------------- writing
def format_table(table: RandomNNTable, delimiter: str = " ") -> str:
    """The exact text of a table: header, metadata on the first row, empty metadata fields after."""
    if delimiter not in DELIMITERS.values():
        raise ValueError(f"delimiter must be one of {list(DELIMITERS.values())!r}")
    empty_tail = delimiter * len(METADATA_COLUMNS)
    metadata = delimiter.join(format_value(table.metadata.get(name)) for name in METADATA_COLUMNS)
    out = [delimiter.join(COLUMNS)]
    for row_number, (epoch, train_loss, val_loss, val_acc) in enumerate(table.curve):
        curve = delimiter.join(format_value(v) for v in (float(epoch), train_loss, val_loss, val_acc))
        out.append(f"{curve}{delimiter}{metadata}" if row_number == 0 else curve + empty_tail)
    return "\n".join(out) + "\n"


def safe_file_stem(text: str) -> str:
    """A file name stem from a network ID (IDs of the published tables are already safe)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._")
    return stem or "network"


def write_table(table: RandomNNTable, folder: Path, delimiter: str = " ") -> Path:
    """Write ``<folder>/<ID>.txt`` (the published naming) and return its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{safe_file_stem(table.id)}.txt"
    path.write_text(format_table(table, delimiter), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- decoding
def decode_architecture(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The network described by the taxonomy columns, as conv blocks and FC layers.

    Returns ``{"conv_blocks": [...], "fc_layers": [...], "n_classes": int|None}``; when the
    lists do not fit together (e.g. fewer pool entries than pooling flags) the result
    carries ``decode_error`` instead of blocks, so a table whose encoding we do not
    understand is still stored with its raw taxonomy rather than rejected.
    """
    types = list(metadata.get("layer_types") or [])
    conv = {key: list(metadata.get(key) or []) for key in ("convFilters", "convKernels", "convStrides", "convPaddings")}
    pools = {key: list(metadata.get(key) or []) for key in ("poolKernels", "poolStrides", "poolPaddings")}
    fc = list(metadata.get("FCFilters") or [])
    fc_dropout = list(metadata.get("FC_dropout_layers") or [])
    problems = []
    if any(len(values) != len(types) for values in conv.values()):
        problems.append(f"layer_types has {len(types)} entries but the conv lists have "
                        f"{', '.join(f'{k}={len(v)}' for k, v in conv.items())}")
    if any(code < 0 or code > 7 for code in types):
        problems.append("layer_types codes must be 0..7 (1 ReLU + 2 pooling + 4 dropout)")
    n_pool = sum(1 for code in types if code & POOL)
    if any(len(values) != n_pool for values in pools.values()):
        problems.append(f"{n_pool} pooling flags in layer_types but pool lists of lengths "
                        f"{', '.join(f'{k}={len(v)}' for k, v in pools.items())}")
    if fc and len(fc_dropout) != len(fc) - 1:
        problems.append(f"FC_dropout_layers needs one flag per hidden FC layer ({len(fc) - 1}), found {len(fc_dropout)}")
    if problems:
        return {"conv_blocks": None, "fc_layers": None, "n_classes": fc[-1] if fc else None,
                "decode_error": "; ".join(problems)}
    blocks = []
    pool_index = 0
    for i, code in enumerate(types):
        block: dict[str, Any] = {"conv": {"filters": conv["convFilters"][i], "kernel": conv["convKernels"][i],
                                          "stride": conv["convStrides"][i], "padding": conv["convPaddings"][i]},
                                 "relu": bool(code & RELU), "pool": None, "dropout": None}
        if code & POOL:
            block["pool"] = {"type": "max", "kernel": pools["poolKernels"][pool_index],
                             "stride": pools["poolStrides"][pool_index], "padding": pools["poolPaddings"][pool_index]}
            pool_index += 1
        if code & DROPOUT:
            block["dropout"] = metadata.get("dropout_rate")
        blocks.append(block)
    fc_layers = [{"units": units, "relu": True,
                  "dropout": metadata.get("FC_dropout_rate") if fc_dropout[i] else None}
                 for i, units in enumerate(fc[:-1])]
    return {"conv_blocks": blocks, "fc_layers": fc_layers, "n_classes": fc[-1] if fc else None, "decode_error": None}


def table_records(table: RandomNNTable) -> tuple[dict[str, Any], dict[str, Any]]:
    """(arch JSON, train-params JSON) of a table, as stored on its architecture row.

    The raw taxonomy lists are kept next to the decoded blocks so that an export
    reproduces the table exactly.
    """
    meta = table.metadata
    arch = {"format": FORMAT, "id": table.id, "taxonomy": {name: meta.get(name) for name in TAXONOMY_COLUMNS},
            **decode_architecture(meta)}
    train_params = {name: meta.get(name) for name in TRAIN_COLUMNS}
    train_params.update(format=FORMAT, validation_every=0.5, epochs=table.curve[-1][0] if table.curve else None)
    return arch, train_params


# ----------------------------------------------------------------------------- export
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
    from sqlalchemy import select

    from a4nn.errors import A4nnError
    from a4nn.lineage.models import Architecture, Dataset, Epoch, Search
    from a4nn.lineage.nonfinite import restore_nonfinite

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


def numeric_content(text: str) -> list[list[str]]:
    """The fields of a table as text, row by row (what a round-trip test compares byte for byte)."""
    lines = [line for line in text.splitlines() if line.strip()]
    delimiter = detect_delimiter(lines[0]) if lines else " "
    return [line.split(delimiter) for line in lines]


def iter_tables(paths: Iterable[Path]) -> Iterable[RandomNNTable]:
    """Parse several table files (convenience for notebooks and tests)."""
    for path in paths:
        yield read_table(Path(path))
