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

This module is the codec only (parse and format one table, no database), shared by the
reader (:mod:`a4nn.commons.ingest.random_nn`), the generator (:mod:`a4nn.search.random_nn`)
and the exporter (:mod:`a4nn.commons.random_nn_export`), so the three cannot drift apart;
it imports nothing of the lineage database.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

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


class TableStream:
    """One table read line by line: the header and first data row at once, the curve as an iterator.

    Iterating yields ``(epochs, trainLoss, valLoss, valAcc)`` tuples and raises
    :class:`InputFormatError` naming ``source`` and the line at the first defect, so a
    reader can write a table of any length in chunks without holding it in memory.
    ``lines`` are the file's lines (line endings are ignored; see :func:`open_lines`).
    """

    def __init__(self, lines: Iterable[str], source: str):
        self.source = source
        self._lines = iter(lines)
        header_line = next(self._lines, "")
        if header_line.startswith("\ufeff"):  # a UTF-8 byte-order mark decoded as text
            header_line = header_line[1:]
        header_line = header_line.rstrip("\r\n")
        if not header_line.strip():
            raise InputFormatError("empty file (expected a header row with the 28 random-NN columns)", path=source, line=1)
        self.delimiter = delimiter = detect_delimiter(header_line)
        header = [name.strip() for name in header_line.split(delimiter)]
        missing = [name for name in COLUMNS if name not in header]
        if missing:
            raise InputFormatError(f"missing column(s) {', '.join(missing)}", path=source, line=1)
        if len(set(header)) != len(header):
            raise InputFormatError("a column name appears twice in the header", path=source, line=1)
        self._width = len(header)
        position = {name: header.index(name) for name in COLUMNS}
        self._curve_at = [position[name] for name in CURVE_COLUMNS]
        self._metadata_at = [(name, position[name]) for name in METADATA_COLUMNS]
        # published column order: the metadata fields are fields[4:], so an empty tail is one cheap check
        self._canonical = header == list(COLUMNS)
        self._number = 1
        self._last_epoch = -math.inf
        first = self._next_row()
        if first is None:
            raise InputFormatError("no data rows after the header", path=source, line=self._number + 1)
        fields, self._first = first
        self.metadata: dict[str, Any] = _parse_metadata(fields, self._metadata_at, source, self._number)

    @property
    def id(self) -> str:
        return str(self.metadata.get("ID") or "")

    def _next_row(self) -> tuple[list[str], tuple[float, float | None, float | None, float | None]] | None:
        """The next non-blank row's fields and curve values (None at the end of the file)."""
        delimiter, width, source = self.delimiter, self._width, self.source
        e_at, t_at, v_at, a_at = self._curve_at
        for line in self._lines:
            self._number += 1
            line = line.rstrip("\r\n")
            fields = line.split(delimiter)
            if len(fields) != width:
                if not line.strip():
                    continue
                raise InputFormatError(f"expected {width} fields, found {len(fields)} (truncated or malformed row)",
                                       path=source, line=self._number)
            try:
                epoch, train_loss, val_loss, val_acc = (
                    float(fields[e_at]) if fields[e_at] else None, float(fields[t_at]) if fields[t_at] else None,
                    float(fields[v_at]) if fields[v_at] else None, float(fields[a_at]) if fields[a_at] else None)
            except ValueError:  # whitespace-only fields are empty; anything else is a real error
                epoch, train_loss, val_loss, val_acc = _curve_values(fields, self._curve_at, source, self._number)
            if epoch is None or not epoch > self._last_epoch or not math.isfinite(epoch):
                raise InputFormatError(f"epochs must be finite and increasing, got {fields[e_at]!r} after "
                                       f"{self._last_epoch}", path=source, line=self._number)
            self._last_epoch = epoch
            return fields, (epoch, train_loss, val_loss, val_acc)
        return None

    def __iter__(self) -> Iterator[tuple[float, float | None, float | None, float | None]]:
        yield self._first
        metadata_at, canonical, source = self._metadata_at, self._canonical, self.source
        while (row := self._next_row()) is not None:
            fields, values = row
            if (any(fields[4:]) if canonical else True) and any(fields[at].strip() for _, at in metadata_at):
                filled = [name for name, at in metadata_at if fields[at].strip()]
                raise InputFormatError(f"metadata ({', '.join(filled)}) must be on the first data row only",
                                       path=source, line=self._number)
            yield values


def parse_table(text: str, source: str) -> RandomNNTable:
    """Parse one table held in memory; any defect raises :class:`InputFormatError` naming ``source`` and the line."""
    stream = TableStream(text.splitlines(), source)
    return RandomNNTable(stream.metadata, list(stream))


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


MAX_LINE = 1 << 20  # characters; a longer "line" is not a text table and must not be held whole


def open_lines(path: Path, source: str, max_line: int = MAX_LINE) -> Iterator[str]:
    """The lines of a UTF-8 text file (a byte-order mark dropped), read one at a time.

    A line longer than ``max_line`` characters or bytes that are not UTF-8 raise
    :class:`InputFormatError` naming ``source`` and the line, so a binary or
    single-line file of any size is refused without being read into memory.
    """
    number = 0
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            while True:
                try:
                    line = handle.readline(max_line)
                except UnicodeDecodeError:
                    # decoding runs ahead of the lines handed out, so no line number is claimed
                    raise InputFormatError("not a UTF-8 text table", path=source) from None
                if not line:
                    return
                number += 1
                if len(line) >= max_line and not line.endswith("\n"):
                    raise InputFormatError(f"line longer than {max_line} characters (not a text table)",
                                           path=source, line=number)
                yield line
    except OSError as exc:
        raise InputFormatError(f"cannot read ({exc.strerror or exc})", path=source) from None


def read_table(path: Path, source: str | None = None) -> RandomNNTable:
    """Read and parse one table file (whole; :class:`TableStream` over :func:`open_lines` streams)."""
    source = source or str(path)
    stream = TableStream(open_lines(Path(path), source), source)
    return RandomNNTable(stream.metadata, list(stream))


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


def numeric_content(text: str) -> list[list[str]]:
    """The fields of a table as text, row by row (what a round-trip test compares byte for byte)."""
    lines = [line for line in text.splitlines() if line.strip()]
    delimiter = detect_delimiter(lines[0]) if lines else " "
    return [line.split(delimiter) for line in lines]
