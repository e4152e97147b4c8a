"""What routes receive by injection: the open database and the checkpoint download roots.

Both are set once by :func:`a4nn.api.app.create_app`; tests (or a deployment) can
swap them through ``app.dependency_overrides`` without touching the routes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import Path as PathParam
from fastapi import Request

from a4nn.lineage.database import Database
from a4nn.lineage.filters import INT32

#: ids are SQL INTEGER; larger numbers would overflow PostgreSQL's bind cast
Id = Annotated[int, PathParam(ge=0, le=INT32[1])]


async def get_database(request: Request) -> Database:
    """The app's open :class:`Database`."""
    return request.app.state.database


async def get_checkpoint_roots(request: Request) -> list[Path]:
    """Folders (resolved) whose files checkpoint downloads may serve."""
    return request.app.state.checkpoint_roots
