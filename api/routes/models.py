"""/models: filtered, paginated model lists and each model's record trail."""
from __future__ import annotations

import base64
import math
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, unquote_plus, urlparse

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse
from sqlalchemy import select
from sqlalchemy.engine import Connection

from a4nn.api.dependencies import Id, get_checkpoint_roots, get_database
from a4nn.api.responses import FORMAT_DESCRIPTION, TABULAR_RESPONSES, FormatParam, respond, tabular, wanted_format
from a4nn.api.schemas import (
    CheckpointRow,
    EpochRow,
    ErrorBody,
    Lineage,
    ModelDetail,
    ModelPage,
    ModelSummary,
    PredictionRow,
)
from a4nn.lineage import queries
from a4nn.lineage.database import Database
from a4nn.lineage.filters import (
    FIELDS,
    FORMATS,
    INT32,
    MAX_IN_VALUES,
    MAX_LIMIT,
    SORTABLE,
    count_models,
    find_models,
    grammar_help,
    parse_filter,
)
from a4nn.lineage.models import Architecture, Checkpoint, Epoch, Prediction, Search
from a4nn.lineage.nonfinite import restore_nonfinite
from a4nn.lineage.paths import UnsafePathError, file_under_roots
from a4nn.lineage.public import public_attributes, public_checkpoint_path, public_value
from a4nn.lineage.recorder import file_sha256

router = APIRouter(tags=["models"])
ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": ErrorBody}, 404: {"model": ErrorBody}}
MAX_HOPS = 50
SUMMARY_KEYS = tuple(ModelSummary.model_fields)
RENAMED = {"search_name": "search", "dataset_name": "dataset", "genome_bits": "genome"}
JOINED_KEYS = {"search", "nas", "dataset", "beam", "genome", "function"}  # not columns of architectures


def summary(row: dict[str, Any]) -> dict[str, Any]:
    """A list item from a query row (renames the joined name columns)."""
    return {RENAMED.get(key, key): value for key, value in row.items()}


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: restored non-finite numbers go out as null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _value_schema(name: str) -> dict[str, Any]:
    """The JSON schema of one ``field=value`` term, as strict as the grammar (so fuzzers meet real limits)."""
    spec = FIELDS[name]
    kind = spec.parse.__name__
    if spec.choices:
        return {"type": "string", "enum": list(spec.choices)}
    if kind == "_number":
        return {"type": "number"}
    if kind == "_integer":
        return {"type": "integer", "minimum": INT32[0], "maximum": INT32[1]}
    if kind == "_boolean":
        return {"type": "boolean"}
    # one text, or a comma-separated IN list of up to MAX_IN_VALUES of them (each 1-255 characters, no NUL)
    return {"type": "string", "minLength": 1,
            "pattern": f"^[^,\\u0000]{{1,255}}(,[^,\\u0000]{{1,255}}){{0,{MAX_IN_VALUES - 1}}}$"}


# The filter grammar is parsed from the raw query string; these entries only document
# the common forms (and give schemathesis something to fuzz). The cursor is left out on
# purpose: it is opaque, only the `next` link makes one, and any other value is a 400.
_FILTER_PARAMETERS = [
    {"name": name, "in": "query", "required": False, "schema": _value_schema(name),
     "description": f"{spec.help}. `{name}=a,b` is IN; for other operators write e.g. `{name}>=value` in the query string."}
    for name, spec in FIELDS.items()
] + [
    {"name": "sort", "in": "query", "required": False,
     "schema": {"type": "string", "enum": [*SORTABLE, *(f"-{s}" for s in SORTABLE)]},
     "description": "sort field, `-` for descending; rows without a value come last"},
    {"name": "limit", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50}},
    {"name": "total", "in": "query", "required": False, "schema": {"type": "boolean", "default": False},
     "description": "also count every matching model (`total` in the answer; costs a scan of the matches)"},
    {"name": "format", "in": "query", "required": False, "schema": {"type": "string", "enum": [*FORMATS, ""]},
     "description": FORMAT_DESCRIPTION},
]


@router.get("/models", response_model=ModelPage, responses={**ERRORS, **TABULAR_RESPONSES},
            summary="Find models with the filter grammar",
            description="Raw query string, e.g. `beam=low&acc>99&flops<=500&sort=-acc&limit=50`. "
                        f"Operators = != > >= < <=; `field=a,b` for IN. Fields — {grammar_help()}. "
                        "Pages: follow `next`, which adds an opaque `cursor` to the same query.",
            openapi_extra={"parameters": _FILTER_PARAMETERS})
async def list_models(request: Request, database: Database = Depends(get_database)) -> Any:
    # Deliberately async although the query is blocking: on SQLite a page costs little CPU, and
    # handing it to the thread pool (a thread hop plus GIL hand-offs with the event loop) cost more
    # than the query under concurrent clients (benchmarks/api.py; numbers in benchmarks/results/ and
    # the README). Scale out with ``serve --workers N``, which is also the answer for PostgreSQL.
    query = parse_filter(request.url.query)
    output = wanted_format(request, query.output_format)
    with database.engine.connect() as connection:
        page = find_models(connection, query)
        total = count_models(connection, query) if query.want_total and output == "json" else None
    items = [summary(row) for row in page.items]
    if output != "json":
        return tabular(items, output, SUMMARY_KEYS)
    next_link = None
    if page.next_cursor:
        kept = [p for p in request.url.query.split("&") if p and not unquote_plus(p).startswith("cursor=")]
        next_link = f"{request.url.path}?{'&'.join([*kept, f'cursor={page.next_cursor}'])}"
    return {"items": items, "count": len(items), "total": total, "next": next_link}


def _require_model(connection: Connection, model_id: int) -> None:
    if connection.execute(select(Architecture.id).where(Architecture.id == model_id)).first() is None:
        raise HTTPException(404, f"no model with id {model_id}")


@router.get("/models/{model_id}", response_model=ModelDetail, responses=ERRORS,
            summary="One model: architecture, genome, training parameters, engine config, dataset")
def get_model(model_id: Id, database: Database = Depends(get_database)) -> Any:
    detail = queries.model_detail(database, model_id)  # the one read of a model (lineage.queries)
    if detail is None:
        raise HTTPException(404, f"no model with id {model_id}")
    keep = {*(key for key in SUMMARY_KEYS if key not in JOINED_KEYS), *JOINED_KEYS, "genome_encoding", "arch",
            "train_params", "error", "device", "nonfinite", "engine_config", "evaluations"}
    return {**{key: detail[key] for key in keep}, "dataset_attributes": public_attributes(detail["dataset_attributes"]),
            # an evaluation's data set description carries the loader's attributes (folders, files): public form
            "evaluations": [{**e, "dataset": public_value(e["dataset"])} for e in detail["evaluations"]]}


@router.get("/models/{model_id}/epochs", response_model=list[EpochRow], responses={**ERRORS, **TABULAR_RESPONSES},
            summary="Per-epoch metrics (NaN/inf as null)")
def model_epochs(model_id: Id, request: Request, format: FormatParam = None,
                 database: Database = Depends(get_database)) -> Any:
    keys = tuple(EpochRow.model_fields)
    with database.engine.connect() as connection:
        _require_model(connection, model_id)
        rows = connection.execute(select(Epoch.__table__).where(Epoch.architecture_id == model_id)
                                  .order_by(Epoch.epoch)).mappings().all()
    items = [{key: _finite(restore_nonfinite(row[key], key, row["nonfinite"])) for key in keys} for row in rows]
    return respond(items, request, format, keys)


@router.get("/models/{model_id}/predictions", response_model=list[PredictionRow],
            responses={**ERRORS, **TABULAR_RESPONSES}, summary="Prediction-engine interactions")
def model_predictions(model_id: Id, request: Request, format: FormatParam = None,
                      database: Database = Depends(get_database)) -> Any:
    keys = tuple(PredictionRow.model_fields)
    with database.engine.connect() as connection:
        _require_model(connection, model_id)
        rows = connection.execute(select(Prediction.__table__).where(Prediction.architecture_id == model_id)
                                  .order_by(Prediction.epoch, Prediction.function)).mappings().all()
    items = [{key: row[key] for key in keys} for row in rows]
    return respond(items, request, format, keys)


@router.get("/models/{model_id}/lineage", response_model=Lineage, responses=ERRORS,
            summary="Genome ancestry (up) or descendants (down)",
            description="Follows genome_parents edges up to `hops` steps; each genome lists the models trained from it.")
def model_lineage(model_id: Id, direction: Literal["up", "down"] = "up",
                  hops: int = Query(1, ge=1, le=MAX_HOPS), database: Database = Depends(get_database)) -> Any:
    found = queries.genome_lineage(database, model_id, direction, hops)  # lineage.queries
    if found is None:
        raise HTTPException(404, f"no model with id {model_id}")
    return found


def _download_path(model_id: int, epoch: float) -> str:
    return f"/models/{model_id}/checkpoints/{epoch:g}"


@router.get("/models/{model_id}/checkpoints", response_model=list[CheckpointRow],
            responses={**ERRORS, **TABULAR_RESPONSES}, summary="Saved model states with their sha256")
def model_checkpoints(model_id: Id, request: Request, format: FormatParam = None,
                      database: Database = Depends(get_database)) -> Any:
    keys = tuple(CheckpointRow.model_fields)
    with database.engine.connect() as connection:
        _require_model(connection, model_id)
        rows = connection.execute(select(Checkpoint.__table__).where(Checkpoint.architecture_id == model_id)
                                  .order_by(Checkpoint.epoch)).mappings().all()
        config = connection.execute(select(Search.config).join(Architecture, Architecture.search_id == Search.id)
                                    .where(Architecture.id == model_id)).scalar()
    run_dir = (config or {}).get("run_dir")
    # the service never says where it keeps files: uri is relative to the search's run folder (or a file name)
    items = [{**{key: row[key] for key in keys if key not in ("download", "uri")},
              "uri": public_checkpoint_path(row["uri"], run_dir) or "", "download": _download_path(model_id, row["epoch"])}
             for row in rows]
    return respond(items, request, format, keys)


def _served_file(uri: str, roots: list[Path]) -> Path:
    """The local file behind ``uri`` if it may be served, else an HTTP error saying why.

    A database row may come from someone else's bundle, so its path is trusted only
    when it lies, with no symlink on the way, inside a configured checkpoint root. The
    answers never name the path itself.
    """
    parsed = urlparse(uri)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        raise HTTPException(404, "checkpoint is not stored on this server")
    path = Path(unquote(parsed.path))
    if not path.is_absolute() or not any(Path(os.path.normpath(path)).is_relative_to(root) for root in roots):
        raise HTTPException(403, "checkpoint lies outside the folders this server may read; "
                                 "start `a4nn-commons serve` with --checkpoint-root covering it")
    if not path.exists() and not path.is_symlink():
        raise HTTPException(404, f"checkpoint file {path.name} is no longer on disk")
    try:
        return file_under_roots(path, roots)
    except (UnsafePathError, OSError):
        raise HTTPException(403, "checkpoint path is not a plain file inside the folders this server may read "
                                 "(symlinks and '..' are refused)") from None


@router.get("/models/{model_id}/checkpoints/{epoch}", response_class=FileResponse,
            responses={**ERRORS, 403: {"model": ErrorBody}, 409: {"model": ErrorBody},
                       200: {"content": {"application/octet-stream": {}},
                             "description": "the file; its sha256 in X-Checksum-SHA256 and Repr-Digest"}},
            summary="Download one checkpoint file")
def download_checkpoint(model_id: Id, epoch: float, database: Database = Depends(get_database),
                        roots: list[Path] = Depends(get_checkpoint_roots)) -> Any:
    if not math.isfinite(epoch):
        raise HTTPException(400, "epoch must be a finite number")
    with database.engine.connect() as connection:
        _require_model(connection, model_id)
        row = connection.execute(select(Checkpoint.__table__).where(Checkpoint.architecture_id == model_id,
                                                                    Checkpoint.epoch == epoch)).mappings().first()
    if row is None:
        raise HTTPException(404, f"model {model_id} has no checkpoint at epoch {epoch:g}")
    path = _served_file(row["uri"], roots)
    if path.stat().st_size != row["size_bytes"]:
        raise HTTPException(409, f"checkpoint file {path.name} changed since it was recorded "
                                 f"({path.stat().st_size} bytes on disk, {row['size_bytes']} recorded)")
    digest = row["sha256"]
    if file_sha256(path) != digest:  # same size, other bytes: not the recorded checkpoint
        raise HTTPException(409, f"checkpoint file {path.name} no longer has the sha256 recorded for it")
    return FileResponse(path, media_type="application/octet-stream", filename=path.name,
                        headers={"X-Checksum-SHA256": digest, "Repr-Digest": f"sha-256=:{_b64(digest)}:"})


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()
