"""initial lineage schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 16:06:52.209336
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('datasets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('beam', sa.String(length=16), nullable=True),
    sa.Column('attributes', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_datasets')),
    sa.UniqueConstraint('name', name=op.f('uq_datasets_name'))
    )
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_datasets_beam'), ['beam'], unique=False)

    op.create_table('engine_configs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('function', sa.String(length=128), nullable=False),
    sa.Column('c_min', sa.Integer(), nullable=False),
    sa.Column('e_pred', sa.Float(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('r', sa.Float(), nullable=False),
    sa.Column('bounds', sa.JSON(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_engine_configs')),
    sa.UniqueConstraint('content_hash', name=op.f('uq_engine_configs_content_hash'))
    )
    op.create_table('genomes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('encoding', sa.String(length=64), nullable=False),
    sa.Column('bits', sa.String(length=1024), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_genomes')),
    sa.UniqueConstraint('hash', name=op.f('uq_genomes_hash'))
    )
    op.create_table('searches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('nas', sa.String(length=64), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=True),
    sa.Column('engine_config_id', sa.Integer(), nullable=True),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('code_version', sa.String(length=64), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], name=op.f('fk_searches_dataset_id_datasets')),
    sa.ForeignKeyConstraint(['engine_config_id'], ['engine_configs.id'], name=op.f('fk_searches_engine_config_id_engine_configs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_searches')),
    sa.UniqueConstraint('name', name=op.f('uq_searches_name'))
    )
    with op.batch_alter_table('searches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_searches_dataset_id'), ['dataset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_searches_engine_config_id'), ['engine_config_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_searches_nas'), ['nas'], unique=False)

    op.create_table('architectures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('search_id', sa.Integer(), nullable=False),
    sa.Column('genome_id', sa.Integer(), nullable=True),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('arch', sa.JSON(), nullable=False),
    sa.Column('train_params', sa.JSON(), nullable=False),
    sa.Column('flops', sa.Float(), nullable=True),
    sa.Column('n_params', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('epochs_trained', sa.Float(), nullable=True),
    sa.Column('terminated_early', sa.Boolean(), nullable=False),
    sa.Column('stop_epoch', sa.Float(), nullable=True),
    sa.Column('final_acc', sa.Float(), nullable=True),
    sa.Column('predicted_acc', sa.Float(), nullable=True),
    sa.Column('fitness', sa.Float(), nullable=True),
    sa.Column('wall_seconds', sa.Float(), nullable=True),
    sa.Column('device', sa.String(length=64), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('nonfinite', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['genome_id'], ['genomes.id'], name=op.f('fk_architectures_genome_id_genomes')),
    sa.ForeignKeyConstraint(['search_id'], ['searches.id'], name=op.f('fk_architectures_search_id_searches'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_architectures')),
    sa.UniqueConstraint('search_id', 'generation', 'index', name=op.f('uq_architectures_search_id_generation_index'))
    )
    with op.batch_alter_table('architectures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_architectures_epochs_trained'), ['epochs_trained'], unique=False)
        batch_op.create_index('ix_architectures_final_acc_id', ['final_acc', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_architectures_fitness'), ['fitness'], unique=False)
        batch_op.create_index(batch_op.f('ix_architectures_flops'), ['flops'], unique=False)
        batch_op.create_index(batch_op.f('ix_architectures_genome_id'), ['genome_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_architectures_n_params'), ['n_params'], unique=False)
        batch_op.create_index(batch_op.f('ix_architectures_predicted_acc'), ['predicted_acc'], unique=False)
        batch_op.create_index(batch_op.f('ix_architectures_search_id'), ['search_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_architectures_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_architectures_terminated_early'), ['terminated_early'], unique=False)

    op.create_table('genome_parents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=False),
    sa.Column('operator', sa.String(length=32), nullable=False),
    sa.Column('search_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['child_id'], ['genomes.id'], name=op.f('fk_genome_parents_child_id_genomes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['parent_id'], ['genomes.id'], name=op.f('fk_genome_parents_parent_id_genomes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['search_id'], ['searches.id'], name=op.f('fk_genome_parents_search_id_searches'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_genome_parents')),
    sa.UniqueConstraint('child_id', 'parent_id', 'operator', name=op.f('uq_genome_parents_child_id_parent_id_operator'))
    )
    with op.batch_alter_table('genome_parents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_genome_parents_child_id'), ['child_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_genome_parents_parent_id'), ['parent_id'], unique=False)

    op.create_table('publications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('search_id', sa.Integer(), nullable=True),
    sa.Column('target', sa.String(length=32), nullable=False),
    sa.Column('persistent_id', sa.String(length=255), nullable=True),
    sa.Column('url', sa.String(length=2048), nullable=True),
    sa.Column('manifest', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['search_id'], ['searches.id'], name=op.f('fk_publications_search_id_searches'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_publications'))
    )
    with op.batch_alter_table('publications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_publications_search_id'), ['search_id'], unique=False)

    op.create_table('checkpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('architecture_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Float(), nullable=False),
    sa.Column('uri', sa.String(length=2048), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('format', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['architecture_id'], ['architectures.id'], name=op.f('fk_checkpoints_architecture_id_architectures'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkpoints')),
    sa.UniqueConstraint('architecture_id', 'epoch', name=op.f('uq_checkpoints_architecture_id_epoch'))
    )
    op.create_table('epochs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('architecture_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Float(), nullable=False),
    sa.Column('train_loss', sa.Float(), nullable=True),
    sa.Column('train_acc', sa.Float(), nullable=True),
    sa.Column('val_loss', sa.Float(), nullable=True),
    sa.Column('val_acc', sa.Float(), nullable=True),
    sa.Column('seconds', sa.Float(), nullable=True),
    sa.Column('nonfinite', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['architecture_id'], ['architectures.id'], name=op.f('fk_epochs_architecture_id_architectures'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_epochs')),
    sa.UniqueConstraint('architecture_id', 'epoch', name=op.f('uq_epochs_architecture_id_epoch'))
    )
    op.create_table('predictions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('architecture_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Float(), nullable=False),
    sa.Column('target_epoch', sa.Float(), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('function', sa.String(length=128), nullable=False),
    sa.Column('params', sa.JSON(), nullable=True),
    sa.Column('converged', sa.Boolean(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=True),
    sa.Column('nonfinite', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['architecture_id'], ['architectures.id'], name=op.f('fk_predictions_architecture_id_architectures'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_predictions')),
    sa.UniqueConstraint('architecture_id', 'epoch', 'function', name=op.f('uq_predictions_architecture_id_epoch_function'))
    )


def downgrade() -> None:
    op.drop_table('predictions')
    op.drop_table('epochs')
    op.drop_table('checkpoints')
    with op.batch_alter_table('publications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_publications_search_id'))

    op.drop_table('publications')
    with op.batch_alter_table('genome_parents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_genome_parents_parent_id'))
        batch_op.drop_index(batch_op.f('ix_genome_parents_child_id'))

    op.drop_table('genome_parents')
    with op.batch_alter_table('architectures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_architectures_terminated_early'))
        batch_op.drop_index(batch_op.f('ix_architectures_status'))
        batch_op.drop_index(batch_op.f('ix_architectures_search_id'))
        batch_op.drop_index(batch_op.f('ix_architectures_predicted_acc'))
        batch_op.drop_index(batch_op.f('ix_architectures_n_params'))
        batch_op.drop_index(batch_op.f('ix_architectures_genome_id'))
        batch_op.drop_index(batch_op.f('ix_architectures_flops'))
        batch_op.drop_index(batch_op.f('ix_architectures_fitness'))
        batch_op.drop_index('ix_architectures_final_acc_id')
        batch_op.drop_index(batch_op.f('ix_architectures_epochs_trained'))

    op.drop_table('architectures')
    with op.batch_alter_table('searches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_searches_nas'))
        batch_op.drop_index(batch_op.f('ix_searches_engine_config_id'))
        batch_op.drop_index(batch_op.f('ix_searches_dataset_id'))

    op.drop_table('searches')
    op.drop_table('genomes')
    op.drop_table('engine_configs')
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_datasets_beam'))

    op.drop_table('datasets')
