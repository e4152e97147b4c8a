"""/searches, /datasets and /health."""
from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import func, select

from a4nn.api.dependencies import get_database
from a4nn.api.schemas import DatasetRow, Health, SearchDetail, SearchSummary
from a4nn.lineage.database import Database, current_revision
from a4nn.lineage.models import Architecture, Dataset, Search

router = APIRouter()


def _search_rows(session, search_id: int | None = None):
    statement = (
        select(Search, func.count(Architecture.id).label("networks"),
               func.coalesce(func.sum(Architecture.epochs_trained), 0).label("epochs_trained"))
        .outerjoin(Architecture, Architecture.search_id == Search.id).group_by(Search.id).order_by(Search.id)
    )
    if search_id is not None:
        statement = statement.where(Search.id == search_id)
    return session.execute(statement).all()


def _summary(row) -> dict:
    search: Search = row.Search
    return {"id": search.id, "name": search.name, "nas": search.nas, "status": search.status, "seed": search.seed,
            "dataset_id": search.dataset_id, "engine_config_id": search.engine_config_id,
            "networks": int(row.networks), "epochs_trained": float(row.epochs_trained)}


@router.get("/searches", response_model=list[SearchSummary], tags=["searches"])
def list_searches(database: Database = Depends(get_database)):
    with database.session() as session:
        return [_summary(row) for row in _search_rows(session)]


@router.get("/searches/{search_id}", response_model=SearchDetail, tags=["searches"],
            summary="A search with its configuration and the share of the epoch budget it saved")
def get_search(search_id: int, database: Database = Depends(get_database)):
    with database.session() as session:
        rows = _search_rows(session, search_id)
        if not rows:
            raise HTTPException(404, f"no search with id {search_id}")
        row = rows[0]
        detail = _summary(row)
        budget_per_network = row.Search.config.get("epochs")
        budget = float(budget_per_network) * detail["networks"] if budget_per_network else None
        detail.update(config=row.Search.config, code_version=row.Search.code_version, host=row.Search.host,
                      epochs_budget=budget,
                      epochs_saved=(1 - detail["epochs_trained"] / budget) if budget else None)
        return detail


@router.get("/datasets", response_model=list[DatasetRow], tags=["datasets"])
def list_datasets(database: Database = Depends(get_database)):
    with database.session() as session:
        return [{"id": d.id, "name": d.name, "kind": d.kind, "beam": d.beam, "attributes": d.attributes}
                for d in session.scalars(select(Dataset).order_by(Dataset.id))]


@router.get("/health", response_model=Health, tags=["service"])
def health(database: Database = Depends(get_database)):
    return {"status": "ok", "database": database.dialect, "schema_revision": current_revision(database.engine)}


@router.get("/searches/{search_id}/pareto", tags=["searches"],
            summary="Non-dominated models of a search: maximal accuracy, minimal MFLOPs")
def search_pareto(search_id: int, metric: str = "acc", database: Database = Depends(get_database)):
    columns = {"acc": Architecture.final_acc, "fitness": Architecture.fitness, "pred": Architecture.predicted_acc}
    if metric not in columns:
        raise HTTPException(400, f"metric must be one of {', '.join(columns)}")
    with database.session() as session:
        if session.get(Search, search_id) is None:
            raise HTTPException(404, f"no search with id {search_id}")
        rows = session.execute(select(Architecture.id, columns[metric].label("value"), Architecture.flops)
                               .where(Architecture.search_id == search_id, columns[metric].is_not(None),
                                      Architecture.flops.is_not(None))
                               .order_by(Architecture.flops, columns[metric].desc())).all()
    front, best = [], float("-inf")
    for row in rows:  # sorted by flops ascending: keep each model that beats every cheaper one
        if row.value > best:
            front.append({"id": row.id, metric: row.value, "flops": row.flops})
            best = row.value
    return front
