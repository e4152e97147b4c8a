"""What the readers share: streamed delimited rows with errors that name the file and the line, file hashes, results."""
from __future__ import annotations

import csv
import hashlib
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from a4nn.errors import InputFormatError


@dataclass
class FileResult:
    """What one file added: networks written (new or replaced), epoch rows written, networks already present."""

    added: int = 0
    rows: int = 0
    present: int = 0
    replaced: int = 0


def read_rows(lines: Iterable[str], source: str, required: tuple[str, ...], delimiter: str | None = None
              ) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) of a CSV/TSV read line by line; a missing column or a truncated row is an error.

    ``lines`` is any iterable of text lines (see :func:`a4nn.commons.random_nn_format.open_lines`,
    which streams a file and drops a byte-order mark); nothing is held beyond the current row.
    """
    lines = iter(lines)
    first = next(lines, "")
    if first.startswith("\ufeff"):
        first = first[1:]
    if not first.strip():
        raise InputFormatError("empty file", path=source, line=1)
    if delimiter is None:
        delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(itertools.chain([first], lines), delimiter=delimiter)
    columns = [c.strip() for c in next(reader)]
    missing = [c for c in required if c not in columns]
    if missing:
        raise InputFormatError(f"missing column(s) {', '.join(missing)}", path=source, line=1)
    try:
        for values in reader:
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(columns):
                raise InputFormatError(f"expected {len(columns)} fields, found {len(values)} (truncated or malformed row)",
                                       path=source, line=line)
            yield line, dict(zip(columns, values))
    except csv.Error as exc:
        raise InputFormatError(f"malformed CSV ({exc})", path=source, line=reader.line_num) from None


def number(row: dict[str, str], column: str, source: str, line: int, *, optional: bool = False) -> float | None:
    """A float from ``row[column]`` (``inf``/``nan`` allowed); empty is None when optional."""
    text = (row.get(column) or "").strip()
    if not text:
        if optional:
            return None
        raise InputFormatError(f"empty {column}", path=source, line=line)
    try:
        return float(text)
    except ValueError:
        raise InputFormatError(f"non-numeric {column} {text!r}", path=source, line=line) from None


def integer(row: dict[str, str], column: str, source: str, line: int) -> int:
    value = number(row, column, source, line)
    if value is None or not math.isfinite(value) or value != int(value):
        raise InputFormatError(f"{column} must be an integer, got {row.get(column)!r}", path=source, line=line)
    return int(value)


def file_sha256(path: Path, source: str) -> str:
    """sha256 of a file's bytes, read in blocks (what tells an unchanged file on re-ingest)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    except OSError as exc:
        raise InputFormatError(f"cannot read ({exc.strerror or exc})", path=source) from None
    return digest.hexdigest()
