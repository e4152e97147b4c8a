"""Alembic environment: our own version table and batch mode so SQLite can ALTER."""
from __future__ import annotations

from alembic import context

from a4nn.lineage.database import VERSION_TABLE, create_db_engine
from a4nn.lineage.models import Base

config = context.config
target_metadata = Base.metadata

CONFIGURE_OPTIONS = dict(
    target_metadata=target_metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,
    compare_type=True,
)


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True, **CONFIGURE_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **CONFIGURE_OPTIONS)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_db_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, **CONFIGURE_OPTIONS)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
