"""/datasets and /health."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from a4nn.api.dependencies import get_database
from a4nn.api.responses import TABULAR_RESPONSES, FormatParam, respond
from a4nn.api.schemas import DatasetRow, ErrorBody, Health
from a4nn.lineage.database import Database, current_revision
from a4nn.lineage.models import Dataset
from a4nn.lineage.public import public_attributes

router = APIRouter()


@router.get("/datasets", response_model=list[DatasetRow], tags=["datasets"],
            responses={400: {"model": ErrorBody}, **TABULAR_RESPONSES}, summary="Training data sets")
def list_datasets(request: Request, format: FormatParam = None, database: Database = Depends(get_database)) -> Any:
    with database.engine.connect() as connection:
        rows = connection.execute(select(Dataset.__table__).order_by(Dataset.id)).mappings().all()
    items = [{"id": d["id"], "name": d["name"], "kind": d["kind"], "beam": d["beam"], "attributes": public_attributes(d["attributes"]) or {}}
             for d in rows]
    return respond(items, request, format, tuple(DatasetRow.model_fields))


@router.get("/health", response_model=Health, tags=["service"], responses={503: {"model": Health}},
            summary="Liveness and the database's schema revision")
def health(database: Database = Depends(get_database)) -> Any:
    try:
        revision = current_revision(database.engine)
    except DBAPIError:
        return JSONResponse(status_code=503, content={"status": "unavailable", "database": database.dialect,
                                                      "schema_revision": None})
    return {"status": "ok", "database": database.dialect, "schema_revision": revision}
