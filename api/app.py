"""FastAPI app factory: a read-only query service over one lineage database.

Errors are part of the contract: a bad filter, cursor, format or parameter is a
400 whose ``detail`` names what is valid; an unknown id is a 404; a database that
cannot be reached is a 503. No input should produce a 500 — the catch-all handler
exists only so that a bug never leaks a traceback to a client.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from a4nn import __version__
from a4nn.api import ui
from a4nn.api.routes import catalog, explorer_data, models, searches
from a4nn.api.responses import HeadAsGet
from a4nn.errors import A4nnError, DatabaseError
from a4nn.lineage.database import Database
from a4nn.lineage.filters import grammar_help

log = logging.getLogger("a4nn.api")

#: ``os.pathsep``-separated folders whose checkpoint files may be downloaded
CHECKPOINT_ROOTS_ENV = "A4NN_CHECKPOINT_ROOTS"

DESCRIPTION = f"""Read-only access to NAS record trails: models, epochs, predictions, lineage, checkpoints,
searches and datasets.

`/models` takes a filter grammar parsed from the raw query string, e.g.
`/models?beam=low&acc>99&flops<=500&sort=-acc&limit=50`. Operators `= != > >= < <=`;
`field=a,b` is IN. Fields — {grammar_help()}. Pages follow the `next` link (keyset cursor).
List routes answer CSV with `Accept: text/csv` or `?format=csv`, Parquet with `?format=parquet`."""


#: default download root: the search's default ``--run-dir``, not the whole working folder, so the
#: database, logs and anything else beside it are never served
DEFAULT_CHECKPOINT_ROOT = "runs"


def checkpoint_roots_from_env() -> list[Path]:
    """Download roots from ``$A4NN_CHECKPOINT_ROOTS``, else ``./runs`` (where ``search`` puts checkpoints)."""
    raw = os.environ.get(CHECKPOINT_ROOTS_ENV)
    folders = [part for part in raw.split(os.pathsep) if part] if raw else [os.path.join(os.getcwd(), DEFAULT_CHECKPOINT_ROOT)]
    return [Path(folder).expanduser().resolve() for folder in folders]


def _message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("path", "query", "body"))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


def create_app(database_url: str | None = None, *, database: Database | None = None,
               checkpoint_roots: Sequence[str | Path] | None = None) -> FastAPI:
    """Build the app on ``database`` (or open ``database_url``; its schema must be current).

    ``checkpoint_roots`` are the only folders checkpoint downloads may read from
    (default: :func:`checkpoint_roots_from_env`), so a record pointing at
    ``/etc/passwd`` cannot turn the service into a file server.
    """
    # docs_url/redoc_url off: FastAPI's pages load from a CDN; ui.install serves /docs from the package
    app = FastAPI(title="a4nn-commons", version=__version__, description=DESCRIPTION, docs_url=None, redoc_url=None)
    app.add_middleware(HeadAsGet)  # HEAD wherever GET is (curl -I, uptime monitors)
    app.state.database = database or Database.open(database_url)
    roots = checkpoint_roots if checkpoint_roots is not None else checkpoint_roots_from_env()
    app.state.checkpoint_roots = [Path(root).expanduser().resolve() for root in roots]

    @app.exception_handler(DatabaseError)
    async def database_error(_request: Request, exc: DatabaseError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.exception_handler(A4nnError)
    async def domain_error(_request: Request, exc: A4nnError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": str(exc)})

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": _message(exc)})

    @app.exception_handler(OperationalError)
    async def unavailable(_request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database unavailable: %s", exc)
        return JSONResponse(status_code=503, content={"detail": "the lineage database is unavailable; try again later"})

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - safety net
        log.exception("unexpected error", exc_info=exc)
        return JSONResponse(status_code=500, content={"detail": "internal error"})

    app.include_router(models.router)
    app.include_router(searches.router)
    app.include_router(catalog.router)
    app.include_router(explorer_data.router)
    ui.install(app)  # the web explorer under /ui/ and the offline /docs
    return app


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory`` (several workers): the database URL comes from ``$A4NN_DB_URL``."""
    return create_app()
