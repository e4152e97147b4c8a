"""Content negotiation for list routes, and HEAD for every GET route.

``?format=csv|parquet|json`` wins over the ``Accept`` header; an empty ``format=``
means "not given". Without a format the ``Accept`` header is negotiated as RFC 9110
describes it: each media range has a quality (``q``, default 1; ``q=0`` means "not
acceptable"), the most specific range that matches an offer decides its quality, and
the best offer wins (JSON on ties, and when no Accept header is sent). When nothing
the route offers is acceptable the answer is 406 naming what is. Nested values
(dicts, lists) are written as JSON text so that any row shape fits a flat table.
"""
from __future__ import annotations

import io
import json
from typing import Annotated, Any, Literal, Optional, Sequence

import pandas as pd
from fastapi import HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BeforeValidator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from a4nn.api.schemas import ErrorBody
from a4nn.lineage.filters import FORMATS

PARQUET = "application/vnd.apache.parquet"
#: format name -> media type, in order of preference on ties
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv", "parquet": PARQUET}
TABULAR_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}},
                      PARQUET: {"schema": {"type": "string", "format": "binary"}}},
          "description": "JSON by default; CSV with `Accept: text/csv` or `?format=csv`; Parquet with `?format=parquet`"},
    406: {"model": ErrorBody, "description": "the Accept header excludes JSON, CSV and Parquet"},
}
FORMAT_DESCRIPTION = "output format (wins over the Accept header); empty or absent: negotiate with Accept, JSON by default"


def _blank_is_absent(value: Any) -> Any:
    return None if value == "" else value


#: the ``format`` query parameter of list routes: an enum in the OpenAPI document; ``format=`` (listed as "")
#: means the default
FormatParam = Annotated[Optional[Literal["json", "csv", "parquet", ""]], BeforeValidator(_blank_is_absent),
                        Query(description=FORMAT_DESCRIPTION)]


def _media_ranges(accept: str) -> list[tuple[str, str, float]]:
    """(type, subtype, q) of each well-formed media range; malformed ones are skipped."""
    ranges = []
    for part in accept.split(","):
        media, *parameters = part.split(";")
        kind, slash, subtype = media.strip().lower().partition("/")
        if not slash or not kind or not subtype or (kind == "*" and subtype != "*"):
            continue
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = -1.0
        if 0.0 <= quality <= 1.0:
            ranges.append((kind, subtype, quality))
    return ranges


def negotiate(accept: str | None, offers: Sequence[str] = tuple(MEDIA_TYPES)) -> str:
    """The format of ``offers`` that ``accept`` prefers; :class:`HTTPException` 406 when none is acceptable."""
    if accept is None or not accept.strip():
        return offers[0]
    ranges = _media_ranges(accept)
    if not ranges:  # nothing parseable: treat as no preference rather than refuse
        return offers[0]
    best, best_quality = None, 0.0
    for offer in offers:
        kind, subtype = MEDIA_TYPES[offer].split("/")
        quality, specificity = None, -1
        for range_kind, range_subtype, range_quality in ranges:
            if (range_kind, range_subtype) == (kind, subtype):
                rank = 2
            elif range_kind == kind and range_subtype == "*":
                rank = 1
            elif range_kind == "*":
                rank = 0
            else:
                continue
            if rank > specificity:
                quality, specificity = range_quality, rank
        if quality is not None and quality > best_quality:
            best, best_quality = offer, quality
    if best is None:
        shown = accept if len(accept) <= 80 else accept[:80] + "..."
        raise HTTPException(406, f"none of {', '.join(MEDIA_TYPES[o] for o in offers)} is acceptable to "
                                 f"Accept: {shown}; send one of them or use ?format={'|'.join(offers)}")
    return best


def wanted_format(request: Request, explicit: str | None) -> str:
    """The output format asked for: ``?format=`` when given (and not empty), else the Accept header."""
    if explicit:
        if explicit not in FORMATS:
            raise HTTPException(400, f"format must be one of {', '.join(FORMATS)}")
        return explicit
    return negotiate(request.headers.get("accept"))


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


class HeadAsGet:
    """ASGI middleware: a HEAD request runs the GET route and goes out without the body.

    FastAPI routes answer only the methods they declare, so ``curl -I`` and uptime
    monitors got 405 on every GET route, ``/health`` included. Running GET keeps the
    status and every header (Content-Type, Content-Length of the body GET would send)
    as RFC 9110 asks of HEAD; only the body bytes are dropped.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)
