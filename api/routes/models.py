"""/models: filtered, paginated model lists and each model's record trail."""
from __future__ import annotations

import io
import math
from typing import Any

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import select

from a4nn.api.dependencies import get_database
from a4nn.api.schemas import EpochRow, ModelDetail, ModelPage, ModelSummary, PredictionRow
from a4nn.lineage.database import Database
from a4nn.lineage.filters import parse_filter
from a4nn.lineage.models import Architecture, Dataset, EngineConfig, Epoch, Genome, Prediction, Search
from a4nn.lineage.nonfinite import restore_nonfinite

router = APIRouter(tags=["models"])


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: non-finite numbers go out as null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


SUMMARY_FIELDS = ("id", "search_id", "generation", "index", "flops", "n_params", "status", "epochs_trained",
                  "terminated_early", "stop_epoch", "final_acc", "predicted_acc", "fitness", "wall_seconds")


def summary(row: Any) -> dict[str, Any]:
    """A list item from a filter row (plain columns) or a detail row (with the Architecture entity)."""
    values = row._mapping
    if "Architecture" in values:
        entity = values["Architecture"]
        item = {key: getattr(entity, key) for key in SUMMARY_FIELDS}
    else:
        item = {key: values[key] for key in SUMMARY_FIELDS}
    return item | {"search": values["search_name"], "nas": values["nas"], "dataset": values["dataset_name"],
                   "beam": values["beam"], "genome": values["genome_bits"], "function": values["function"]}


def tabular(items: list[dict[str, Any]], output_format: str) -> Response:
    """The same rows as CSV or Parquet (list routes honour ?format= and Accept: text/csv)."""
    frame = pd.DataFrame(items)
    if output_format == "csv":
        return Response(frame.to_csv(index=False), media_type="text/csv")
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return Response(buffer.getvalue(), media_type="application/vnd.apache.parquet")


def respond(items: list[dict[str, Any]], request: Request, explicit: str | None):
    """JSON by default; CSV or Parquet when asked by ?format= or Accept: text/csv."""
    output = wanted_format(request, explicit)
    if output not in ("json", "csv", "parquet"):
        raise HTTPException(400, "format must be json, csv or parquet")
    return items if output == "json" else tabular(items, output)


def wanted_format(request: Request, explicit: str | None) -> str:
    if explicit:
        return explicit
    return "csv" if "text/csv" in request.headers.get("accept", "") else "json"


@router.get("/models", response_model=ModelPage, summary="Find models with the filter grammar",
            description="Raw query string, e.g. `beam=low&acc>99&flops<=500&sort=-acc&limit=50`. Fields: acc, pred, "
                        "fitness, flops, params, epochs, generation, id, search, dataset, beam, nas, early, function, "
                        "status; operators = != > >= < <=; `field=a,b` for IN; keyset pagination via `cursor`.")
def list_models(request: Request, database: Database = Depends(get_database)):
    query = parse_filter(request.url.query)
    with database.session() as session:
        rows = session.execute(query.statement()).all()
    page, more = rows[: query.limit], len(rows) > query.limit
    items = [summary(row) for row in page]
    output = wanted_format(request, query.output_format)
    if output != "json":
        return tabular(items, output)
    next_link = None
    if more:
        kept = "&".join(p for p in request.url.query.split("&") if p and not p.startswith("cursor="))
        next_link = f"{request.url.path}?{kept}{'&' if kept else ''}cursor={query.cursor_for(page[-1])}"
    return {"items": items, "count": len(items), "next": next_link}


def _model_row(session, model_id: int):
    row = session.execute(
        select(Architecture, Search.name.label("search_name"), Search.nas, Dataset.name.label("dataset_name"),
               Dataset.beam, Dataset.attributes.label("dataset_attributes"), Genome.bits.label("genome_bits"),
               EngineConfig.function, EngineConfig)
        .join(Search, Search.id == Architecture.search_id)
        .outerjoin(Dataset, Dataset.id == Search.dataset_id)
        .outerjoin(Genome, Genome.id == Architecture.genome_id)
        .outerjoin(EngineConfig, EngineConfig.id == Search.engine_config_id)
        .where(Architecture.id == model_id)
    ).first()
    if row is None:
        raise HTTPException(404, f"no model with id {model_id}")
    return row


@router.get("/models/{model_id}", response_model=ModelDetail, summary="One model with genome, training and engine settings")
def get_model(model_id: int, database: Database = Depends(get_database)):
    with database.session() as session:
        row = _model_row(session, model_id)
        engine = row.EngineConfig
        detail = summary(row) | {
            "arch": row.Architecture.arch, "train_params": row.Architecture.train_params, "error": row.Architecture.error,
            "dataset_attributes": row.dataset_attributes,
            "engine_config": None if engine is None else {
                "id": engine.id, "function": engine.function, "c_min": engine.c_min, "e_pred": engine.e_pred,
                "n": engine.n, "r": engine.r, "bounds": engine.bounds, "extra": engine.extra},
        }
    return detail


@router.get("/models/{model_id}/epochs", response_model=list[EpochRow], summary="Per-epoch metrics")
def model_epochs(model_id: int, request: Request, format: str | None = None, database: Database = Depends(get_database)):
    with database.session() as session:
        _model_row(session, model_id)
        epochs = session.scalars(select(Epoch).where(Epoch.architecture_id == model_id).order_by(Epoch.epoch)).all()
        items = [{key: _finite(restore_nonfinite(getattr(e, key), key, e.nonfinite))
                  for key in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")} for e in epochs]
    return respond(items, request, format)


@router.get("/models/{model_id}/predictions", response_model=list[PredictionRow], summary="Prediction-engine interactions")
def model_predictions(model_id: int, request: Request, format: str | None = None,
                      database: Database = Depends(get_database)):
    with database.session() as session:
        _model_row(session, model_id)
        rows = session.scalars(select(Prediction).where(Prediction.architecture_id == model_id)
                               .order_by(Prediction.epoch)).all()
        items = [{"epoch": p.epoch, "target_epoch": p.target_epoch, "value": p.value, "function": p.function,
                  "params": p.params, "converged": p.converged, "seconds": p.seconds} for p in rows]
    return respond(items, request, format)


@router.get("/models/{model_id}/lineage", summary="Genome ancestry (up) or descendants (down)",
            description="Follows genome_parents edges up to `hops` steps; each node lists the models trained from that genome.")
def model_lineage(model_id: int, direction: str = "up", hops: int = 1, database: Database = Depends(get_database)):
    if direction not in ("up", "down"):
        raise HTTPException(400, "direction must be 'up' (parents) or 'down' (children)")
    if not 1 <= hops <= 50:
        raise HTTPException(400, "hops must be from 1 to 50")
    from a4nn.lineage.models import GenomeParent

    with database.session() as session:
        row = _model_row(session, model_id)
        start = row.Architecture.genome_id
        if start is None:
            return {"model": model_id, "genome_id": None, "direction": direction, "edges": [], "genomes": {}}
        edges, frontier, seen = [], {start}, {start}
        for hop in range(1, hops + 1):
            if not frontier:
                break
            mine, other = (GenomeParent.child_id, GenomeParent.parent_id) if direction == "up" else \
                (GenomeParent.parent_id, GenomeParent.child_id)
            found = session.execute(select(mine, other, GenomeParent.operator).where(mine.in_(frontier))).all()
            frontier = set()
            for src, dst, operator in found:
                edges.append({"from": src, "to": dst, "operator": operator, "hop": hop})
                if dst not in seen:
                    seen.add(dst)
                    frontier.add(dst)
        bits = dict(session.execute(select(Genome.id, Genome.bits).where(Genome.id.in_(seen))).all())
        models_of: dict[int, list[int]] = {}
        for arch_id, genome_id in session.execute(select(Architecture.id, Architecture.genome_id)
                                                  .where(Architecture.genome_id.in_(seen))).all():
            models_of.setdefault(genome_id, []).append(arch_id)
    return {"model": model_id, "genome_id": start, "direction": direction, "edges": edges,
            "genomes": {str(g): {"bits": bits.get(g), "models": models_of.get(g, [])} for g in seen}}


@router.get("/models/{model_id}/checkpoints", summary="Saved model states")
def model_checkpoints(model_id: int, database: Database = Depends(get_database)):
    from a4nn.lineage.models import Checkpoint

    with database.session() as session:
        _model_row(session, model_id)
        rows = session.scalars(select(Checkpoint).where(Checkpoint.architecture_id == model_id).order_by(Checkpoint.epoch))
        return [{"epoch": c.epoch, "uri": c.uri, "sha256": c.sha256, "size_bytes": c.size_bytes, "format": c.format,
                 "download": f"/models/{model_id}/checkpoints/{c.epoch:g}"} for c in rows]


@router.get("/models/{model_id}/checkpoints/{epoch}", summary="Download one checkpoint (sha256 in X-Checksum-SHA256)")
def download_checkpoint(model_id: int, epoch: float, database: Database = Depends(get_database)):
    from pathlib import Path
    from urllib.parse import unquote, urlparse

    from fastapi.responses import FileResponse

    from a4nn.lineage.models import Checkpoint

    with database.session() as session:
        _model_row(session, model_id)
        row = session.scalar(select(Checkpoint).where(Checkpoint.architecture_id == model_id, Checkpoint.epoch == epoch))
    if row is None:
        raise HTTPException(404, f"model {model_id} has no checkpoint at epoch {epoch:g}")
    parsed = urlparse(row.uri)
    if parsed.scheme != "file":
        raise HTTPException(404, f"checkpoint is stored at {row.uri}, not on this server")
    path = Path(unquote(parsed.path))
    if not path.is_file():
        raise HTTPException(404, f"checkpoint file {path.name} is no longer on disk")
    return FileResponse(path, media_type="application/octet-stream", filename=path.name,
                        headers={"X-Checksum-SHA256": row.sha256})
