"""``a4nn-commons serve``: the read-only REST query service."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import click

from a4nn.cli.options import db_option, open_db
from a4nn.errors import A4nnError
from a4nn.lineage.database import ENV_VAR


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0 for every one).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port.")
@click.option("--checkpoint-root", "checkpoint_roots", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder whose checkpoint files may be downloaded (repeatable; default: ./runs, the search's default "
                   "--run-dir; never the whole current folder). "
                   "Checkpoints recorded elsewhere are listed but answer 403.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes (SQLite readers run in parallel under WAL).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True)
def serve(db_url: str, host: str, port: int, checkpoint_roots: tuple[Path, ...], workers: int, log_level: str) -> None:
    """Serve the lineage database over HTTP, read-only: the web explorer at /, OpenAPI docs at /docs.

    \b
    Routes: /models, /models/{id}[/epochs|/predictions|/lineage|/checkpoints],
            /searches, /searches/{id}[/pareto], /datasets, /health.
    Filter grammar on /models, parsed as typed:
      /models?beam=low&acc>99&flops<=500&sort=-acc&limit=50
    Fields: acc pred fitness flops params epochs generation id early status
            search dataset beam nas function; operators = != > >= < <=;
            beam=low,high means IN. Follow the `next` link for more pages.
    Add ?format=csv|parquet (or Accept: text/csv) to list routes.
    """
    import uvicorn

    from a4nn.api.app import CHECKPOINT_ROOTS_ENV, DEFAULT_CHECKPOINT_ROOT, create_app

    database = open_db(db_url)  # fail here, clearly, on a bad URL or an old schema
    try:
        _check_port(host, port)  # before uvicorn: it would log the clash among its INFO lines and exit 3
    except BaseException:
        database.dispose()
        raise
    roots = [str(root.resolve()) for root in checkpoint_roots] or [str(Path.cwd() / DEFAULT_CHECKPOINT_ROOT)]
    if workers == 1:
        uvicorn.run(create_app(database=database, checkpoint_roots=roots), host=host, port=port, log_level=log_level)
        return
    database.dispose()
    os.environ[ENV_VAR] = db_url
    os.environ[CHECKPOINT_ROOTS_ENV] = os.pathsep.join(roots)
    uvicorn.run("a4nn.api.app:app_from_environment", factory=True, host=host, port=port, workers=workers,
                log_level=log_level)


def _check_port(host: str, port: int) -> None:
    """Fail in one line when ``host:port`` cannot be listened on (taken, or not an address of this machine).

    Binds the way uvicorn's ``Config.bind_socket`` will (IPv6 when the host has a colon,
    SO_REUSEADDR) and lets go at once; port 0 (any free port) always passes.
    """
    import socket

    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:  # socket.gaierror (unknown host) included
            hint = "; another server holds it, pick another --port" if exc.errno == errno.EADDRINUSE else ""
            raise A4nnError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
