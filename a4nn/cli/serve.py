"""``a4nn-commons serve``: the read-only REST query service."""
from __future__ import annotations

import click

from a4nn.cli.options import db_option, open_db


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
def serve(db_url: str, host: str, port: int) -> None:
    """Serve the lineage database over HTTP (OpenAPI docs at /docs).

    Example query: /models?beam=low&acc>99&flops<=500&sort=-acc&limit=50
    """
    import uvicorn

    from a4nn.api.app import create_app

    uvicorn.run(create_app(database=open_db(db_url)), host=host, port=port, log_level="info")
