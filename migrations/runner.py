"""Programmatic Alembic: the migrations ship inside the package, no alembic.ini needed.

``a4nn-commons db upgrade`` and the tests call these functions; ``alembic`` on the
command line also works with ``-c migrations/alembic.ini`` for maintainers writing
new revisions.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from a4nn.lineage.database import create_db_engine, normalize_url, probe, resolve_url

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at the packaged scripts and at ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        rendered = normalize_url(url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


@lru_cache(maxsize=1)
def head_revision() -> str:
    """The newest revision the code knows."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"migrations have {len(heads)} heads: {heads}; merge them")
    return heads[0]


def upgrade_database(url: str | None = None, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision`` (creating the schema when empty)."""
    url = resolve_url(url)
    engine = create_db_engine(url)
    probe(engine)
    config = alembic_config(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()


def downgrade_database(url: str | None, revision: str) -> None:
    """Step the database at ``url`` down to ``revision`` (maintainers and tests)."""
    url = resolve_url(url)
    engine = create_db_engine(url)
    config = alembic_config(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
    engine.dispose()
