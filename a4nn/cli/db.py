"""``a4nn-commons db``: create, upgrade and inspect the lineage database schema."""
from __future__ import annotations

import click

from a4nn.cli.options import db_option
from a4nn.lineage.database import create_db_engine, current_revision, probe, resolve_url
from a4nn.lineage.urls import display_url


@click.group()
def db() -> None:
    """Manage the lineage database schema (Alembic migrations shipped with the package)."""


@db.command()
@db_option
@click.option("--revision", default="head", show_default=True, help="Target Alembic revision.")
def upgrade(db_url: str, revision: str) -> None:
    """Create the schema in a new database or upgrade an existing one."""
    from a4nn.migrations.runner import head_revision, upgrade_database

    upgrade_database(db_url, revision)
    click.echo(f"{display_url(resolve_url(db_url))} is at revision {revision if revision != 'head' else head_revision()}")


@db.command()
@db_option
def current(db_url: str) -> None:
    """Show the schema revision of the database and whether it is up to date."""
    from a4nn.migrations.runner import head_revision

    engine = create_db_engine(resolve_url(db_url), create=False)  # inspecting never creates
    probe(engine)
    found = current_revision(engine)
    head = head_revision()
    state = "up to date" if found == head else "behind: run `a4nn-commons db upgrade`"
    click.echo(f"revision {found or '(empty)'} (head {head}, {state})")
