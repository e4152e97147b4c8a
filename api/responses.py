"""Content negotiation for list routes: JSON by default, CSV or Parquet on request.

``?format=csv|parquet|json`` wins over the ``Accept`` header; ``Accept: text/csv``
(or the Parquet media type) is honoured when no format is named. Nested values
(dicts, lists) are written as JSON text so that any row shape fits a flat table.
"""
from __future__ import annotations

import io
import json
from typing import Any, Sequence

import pandas as pd
from fastapi import Request
from fastapi.responses import Response

from a4nn.lineage.filters import FORMATS, FilterError

PARQUET = "application/vnd.apache.parquet"
TABULAR_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}},
                      PARQUET: {"schema": {"type": "string", "format": "binary"}}},
          "description": "JSON by default; CSV with `Accept: text/csv` or `?format=csv`; Parquet with `?format=parquet`"},
}


def wanted_format(request: Request, explicit: str | None) -> str:
    """The output format asked for (raises :class:`FilterError` for an unknown one)."""
    if explicit is not None:
        if explicit not in FORMATS:
            raise FilterError(f"format must be one of {', '.join(FORMATS)}")
        return explicit
    accept = request.headers.get("accept", "")
    if "text/csv" in accept:
        return "csv"
    if PARQUET in accept:
        return "parquet"
    return "json"


def _flat(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value


def tabular(items: Sequence[dict[str, Any]], output_format: str, columns: Sequence[str]) -> Response:
    """The rows as CSV or Parquet, with ``columns`` even when there are no rows."""
    frame = pd.DataFrame([{key: _flat(item.get(key)) for key in columns} for item in items], columns=list(columns))
    if output_format == "csv":
        return Response(frame.to_csv(index=False), media_type="text/csv")
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return Response(buffer.getvalue(), media_type=PARQUET)


def respond(items: list[dict[str, Any]], request: Request, explicit: str | None, columns: Sequence[str]) -> Any:
    """``items`` as JSON (validated by the route's response model) or as a table."""
    output = wanted_format(request, explicit)
    return items if output == "json" else tabular(items, output, columns)
