"""FastAPI app factory: a read-only query service over one lineage database.

Every domain error (bad filter, bad cursor, bad input) becomes a 400 with its
message; unknown ids are 404; anything unexpected is logged and answered with a
generic 500 body that carries no traceback.
"""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from a4nn import __version__
from a4nn.api.routes import catalog, models
from a4nn.errors import A4nnError
from a4nn.lineage.database import Database

log = logging.getLogger("a4nn.api")


def create_app(database_url: str | None = None, database: Database | None = None) -> FastAPI:
    """Build the app on ``database`` (or open ``database_url``; schema must be current)."""
    app = FastAPI(title="a4nn-commons", version=__version__,
                  description="Read-only access to NAS record trails: models, epochs, predictions, searches, datasets.")
    app.state.database = database or Database.open(database_url)

    @app.exception_handler(A4nnError)
    async def domain_error(_request: Request, exc: A4nnError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": str(exc)})

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - safety net
        log.exception("unexpected error", exc_info=exc)
        return JSONResponse(status_code=500, content={"detail": "internal error"})

    app.include_router(models.router)
    app.include_router(catalog.router)
    return app
