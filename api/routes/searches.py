"""/searches: NAS runs and imported collections, their savings and Pareto fronts."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from a4nn.api.dependencies import Id, get_database
from a4nn.api.responses import TABULAR_RESPONSES, FormatParam, respond
from a4nn.api.schemas import ErrorBody, ParetoPoint, SearchDetail, SearchSummary
from a4nn.lineage.database import Database
from a4nn.lineage.models import Architecture, Dataset, EngineConfig, Search
from a4nn.lineage.queries import epoch_budget as queries_epoch_budget
from a4nn.lineage.queries import epochs_saved, find_search, pareto_points, search_epoch_budget
from a4nn.lineage.public import public_config

router = APIRouter(tags=["searches"])
ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": ErrorBody}, 404: {"model": ErrorBody}}
METRICS = {"acc": Architecture.final_acc, "fitness": Architecture.fitness, "pred": Architecture.predicted_acc}


def _search_rows(connection: Connection, search_id: int | None = None) -> list[Any]:
    totals = (select(Architecture.search_id, func.count(Architecture.id).label("networks"),
                     func.coalesce(func.sum(Architecture.epochs_trained), 0).label("epochs_trained"))
              .group_by(Architecture.search_id))
    if search_id is not None:
        totals = totals.where(Architecture.search_id == search_id)
    totals = totals.subquery()
    statement = (select(Search.__table__, Dataset.name.label("dataset"), Dataset.beam, totals.c.networks,
                        totals.c.epochs_trained)
                 .outerjoin(Dataset, Dataset.id == Search.dataset_id)
                 .outerjoin(totals, totals.c.search_id == Search.id).order_by(Search.id))
    if search_id is not None:
        statement = statement.where(Search.id == search_id)
    return list(connection.execute(statement).mappings())


def _summary(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "nas": row["nas"], "status": row["status"], "seed": row["seed"],
            "dataset_id": row["dataset_id"], "dataset": row["dataset"], "beam": row["beam"],
            "engine_config_id": row["engine_config_id"], "networks": int(row["networks"] or 0),
            "epochs_trained": float(row["epochs_trained"] or 0)}


def epoch_budget(config: dict[str, Any] | None, networks: int) -> float | None:
    """Networks × the configured epochs (the first step of :func:`a4nn.lineage.queries.epoch_budget`).

    Kept for callers that hold only the configuration; ``/searches/{id}`` uses the whole
    rule (:func:`a4nn.lineage.queries.search_epoch_budget`), which also covers imports.
    """
    per_network = queries_epoch_budget(config)
    return per_network * networks if per_network is not None and networks else None


@router.get("/searches", response_model=list[SearchSummary], responses={**ERRORS, **TABULAR_RESPONSES},
            summary="Every search with its network count and epochs trained")
def list_searches(request: Request, format: FormatParam = None, database: Database = Depends(get_database)) -> Any:
    with database.engine.connect() as connection:
        items = [_summary(row) for row in _search_rows(connection)]
    return respond(items, request, format, tuple(SearchSummary.model_fields))


@router.get("/searches/{search_id}", response_model=SearchDetail, responses=ERRORS,
            summary="A search: configuration, status and the share of the epoch budget it saved")
def get_search(search_id: Id, database: Database = Depends(get_database)) -> Any:
    with database.engine.connect() as connection:
        rows = _search_rows(connection, search_id)
        if not rows:
            raise HTTPException(404, f"no search with id {search_id}")
        row = rows[0]
        engine = None
        if row["engine_config_id"] is not None:
            engine = connection.execute(select(EngineConfig.__table__)
                                        .where(EngineConfig.id == row["engine_config_id"])).mappings().first()
    detail = _summary(row)
    per_network = search_epoch_budget(database, search_id)  # the one budget rule (lineage.queries)
    budget = per_network * detail["networks"] if per_network is not None and detail["networks"] else None
    detail.update(
        # public forms: no run folder, state path or host name of the machine that ran the search
        config=public_config(row["config"]), code_version=row["code_version"], host=None, epochs_budget=budget,
        epochs_saved=epochs_saved(detail["epochs_trained"], detail["networks"], per_network),
        started_at=row["started_at"].isoformat() if row["started_at"] else None,
        finished_at=row["finished_at"].isoformat() if row["finished_at"] else None,
        engine_config=None if engine is None else {key: engine[key] for key in
                                                   ("id", "function", "c_min", "e_pred", "n", "r", "bounds", "extra")},
    )
    return detail


@router.get("/searches/{search_id}/pareto", response_model=list[ParetoPoint], responses={**ERRORS, **TABULAR_RESPONSES},
            summary="Non-dominated models of a search (id or name): maximal fitness seen, minimal MFLOPs")
def search_pareto(search_id: str, request: Request, metric: Literal["fitness", "acc", "pred"] = "fitness",
                  format: FormatParam = None, database: Database = Depends(get_database)) -> Any:
    """The search (id or name, as the CLI takes it) ranked by the fitness the NAS saw unless ``metric`` says
    otherwise; ``terminated_early`` marks networks the engine stopped (lineage.queries defines the front)."""
    found = find_search(database, search_id)
    if found is None:
        raise HTTPException(404, f"no search with id or name {search_id!r}")
    front = pareto_points(database, found, metric)
    return respond(front, request, format, tuple(ParetoPoint.model_fields))
