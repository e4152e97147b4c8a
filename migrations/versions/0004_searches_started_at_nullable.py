"""searches.started_at may be NULL (a search whose start time is not recorded)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 04:30:00

Why: the published ICPP'23 logs carry no wall-clock dates, so an imported search has
no start time; with the column NOT NULL the import stored its own ingest time there,
which reads as the time the search ran. NULL now says "not recorded"; the import keeps
the ingest time in the search's config (``ingested_at``).

SQLite cannot drop a NOT NULL in place: batch mode rebuilds ``searches`` (new table,
copy the rows, drop the old one, rename). Every connection of ours turns foreign keys
on, and with them on, dropping ``searches`` is an implicit ``DELETE FROM searches``:
ON DELETE CASCADE would empty ``architectures`` and through it epochs, predictions,
checkpoints, evaluations and architecture_parents, and ON DELETE SET NULL would detach
genome_parents, publications and architecture_parents from their search. So the
rebuild follows SQLite's own ALTER TABLE procedure: foreign keys off (a PRAGMA that
does nothing inside a transaction, so what this upgrade wrote before, e.g. the
earlier revisions' version stamps, is committed first), the rebuild in a transaction
of its own, ``PRAGMA foreign_key_check`` empty before it commits, foreign keys back on.
If the process dies after that commit and before the version stamp, the database says
0003 with a nullable column, and upgrading again simply rebuilds it once more.
PostgreSQL alters in place (``ALTER COLUMN started_at DROP NOT NULL``); nothing cascades.

Downgrade needs a value for every NULL: the config's ``ingested_at`` (what an ICPP
import stored in the column before this revision), else ``finished_at``, else
1970-01-01 00:00 UTC, a time no search ran at, rather than a plausible made-up one.
Both directions need a live connection (the fill reads rows; SQLite batch mode
reflects the table), so offline ``--sql`` scripts are not supported here.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels = None
depends_on = None

#: what a downgrade writes where neither ``ingested_at`` nor ``finished_at`` says anything
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def upgrade() -> None:
    with _foreign_keys_off():
        with op.batch_alter_table('searches', schema=None) as batch_op:
            batch_op.alter_column('started_at', existing_type=sa.DateTime(timezone=True), nullable=True)


def downgrade() -> None:
    with _foreign_keys_off():
        _fill_missing_start_times()
        with op.batch_alter_table('searches', schema=None) as batch_op:
            batch_op.alter_column('started_at', existing_type=sa.DateTime(timezone=True), nullable=False)


def _fill_missing_start_times() -> None:
    """Give every search without a start time one (see the module docstring for the order)."""
    searches = sa.table('searches', sa.column('id', sa.Integer()), sa.column('config', sa.JSON()),
                        sa.column('started_at', sa.DateTime(timezone=True)),
                        sa.column('finished_at', sa.DateTime(timezone=True)))
    bind = op.get_bind()
    rows = bind.execute(sa.select(searches.c.id, searches.c.config, searches.c.finished_at)
                        .where(searches.c.started_at.is_(None))).all()
    for row in rows:
        value = _ingested_at(row.config) or row.finished_at or EPOCH
        bind.execute(sa.update(searches).where(searches.c.id == row.id).values(started_at=value))


def _ingested_at(config: Any) -> datetime | None:
    text = config.get('ingested_at') if isinstance(config, dict) else None
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


@contextmanager
def _foreign_keys_off() -> Iterator[None]:
    """On SQLite, run the block with foreign keys off, in its own transaction, checked before it commits.

    Elsewhere the block just runs in the migration's transaction.
    """
    context = op.get_context()
    if context.as_sql:
        raise RuntimeError("revision 0004 needs a live connection; offline --sql scripts are not supported")
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        yield
        return
    raw = bind.connection.dbapi_connection  # the PRAGMAs and the transaction are the driver's own
    was_on = raw.execute('PRAGMA foreign_keys').fetchone()[0] == 1
    if raw.in_transaction:
        raw.commit()
    raw.execute('PRAGMA foreign_keys = OFF')
    if raw.execute('PRAGMA foreign_keys').fetchone()[0] != 0:
        raise RuntimeError("could not turn SQLite foreign keys off; not rebuilding searches, whose drop would "
                           "cascade into architectures")
    try:
        raw.execute('BEGIN')
        try:
            yield
            problems = raw.execute('PRAGMA foreign_key_check').fetchall()
            if problems:
                raise RuntimeError(f"foreign_key_check after rebuilding searches: {problems[:5]}")
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
    finally:
        if was_on:
            raw.execute('PRAGMA foreign_keys = ON')
