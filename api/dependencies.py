"""The database as a FastAPI dependency: tests and deployments inject their own URL."""
from __future__ import annotations

from fastapi import Request

from a4nn.lineage.database import Database


def get_database(request: Request) -> Database:
    """The app's open :class:`Database` (set once by :func:`a4nn.api.app.create_app`)."""
    return request.app.state.database
