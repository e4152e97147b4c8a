"""evaluations table and architecture_parents (the refine edge)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:00:00

Why: a recorded network can be loaded again and re-evaluated on any data set; each
such measurement (accuracy, loss, confusion matrix, latency) is a row of its own,
tied to the network and the checkpoint epoch it used. A refined network (``a4nn-commons
refine``) is a new architecture continuing a trained one; it shares its parent's
genome, so the genome_parents edge table cannot express the link (its unique key
``child, parent, operator`` would allow one self-edge per genome and name no network):
``architecture_parents`` holds network -> network edges with an operator (``refine``)
and the parent epoch the child started from.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('evaluations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('architecture_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Float(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=True),
    sa.Column('dataset', sa.JSON(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('checkpoint_sha256', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['architecture_id'], ['architectures.id'],
                            name=op.f('fk_evaluations_architecture_id_architectures'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], name=op.f('fk_evaluations_dataset_id_datasets'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluations'))
    )
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.create_index('ix_evaluations_architecture_id_epoch', ['architecture_id', 'epoch'], unique=False)
        batch_op.create_index(batch_op.f('ix_evaluations_dataset_id'), ['dataset_id'], unique=False)

    # an edge table, not a column on architectures: SQLite would have to rebuild architectures to add a
    # foreign key, and dropping the old table in that rebuild cascades into epochs and predictions
    op.create_table('architecture_parents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=False),
    sa.Column('operator', sa.String(length=32), nullable=False),
    sa.Column('epoch', sa.Float(), nullable=True),
    sa.Column('search_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['child_id'], ['architectures.id'],
                            name=op.f('fk_architecture_parents_child_id_architectures'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['parent_id'], ['architectures.id'],
                            name=op.f('fk_architecture_parents_parent_id_architectures'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['search_id'], ['searches.id'], name=op.f('fk_architecture_parents_search_id_searches'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_architecture_parents')),
    sa.UniqueConstraint('child_id', 'parent_id', 'operator',
                        name=op.f('uq_architecture_parents_child_id_parent_id_operator'))
    )
    with op.batch_alter_table('architecture_parents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_architecture_parents_child_id'), ['child_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_architecture_parents_parent_id'), ['parent_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('architecture_parents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_architecture_parents_parent_id'))
        batch_op.drop_index(batch_op.f('ix_architecture_parents_child_id'))
    op.drop_table('architecture_parents')
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evaluations_dataset_id'))
        batch_op.drop_index('ix_evaluations_architecture_id_epoch')
    op.drop_table('evaluations')
