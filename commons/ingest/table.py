"""Reading delimited tables with errors that name the file and the line."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Iterator

from a4nn.errors import InputFormatError


def read_rows(text: str, source: str, required: tuple[str, ...], delimiter: str | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) of a CSV/TSV text; a missing column or a truncated row is an error."""
    if delimiter is None:
        header = text.split("\n", 1)[0]
        delimiter = "\t" if header.count("\t") > header.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        columns = [c.strip() for c in next(reader)]
    except StopIteration:
        raise InputFormatError("empty file", path=source, line=1) from None
    missing = [c for c in required if c not in columns]
    if missing:
        raise InputFormatError(f"missing column(s) {', '.join(missing)}", path=source, line=1)
    for values in reader:
        line = reader.line_num
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) != len(columns):
            raise InputFormatError(f"expected {len(columns)} fields, found {len(values)} (truncated or malformed row)",
                                   path=source, line=line)
        yield line, dict(zip(columns, values))


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


def read_text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise InputFormatError("not a text table", path=str(path)) from None
