"""merge: the merges of duplicates, their journal and the tombstones of merged records

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 00:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('crm_merge',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('entity', sa.String(length=64), nullable=False),
    sa.Column('into_id', sa.Integer(), nullable=False),
    sa.Column('sources', sa.JSON(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('undone_at', sa.DateTime(), nullable=True),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_merge'))
    )
    op.create_table('crm_merge_journal',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('merge_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('entity', sa.String(length=64), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=True),
    sa.Column('field', sa.String(length=64), nullable=True),
    sa.Column('old', sa.JSON(), nullable=True),
    sa.Column('new', sa.JSON(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['merge_id'], ['crm_merge.id'], name=op.f('fk_crm_merge_journal_merge_id_crm_merge'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_merge_journal'))
    )
    with op.batch_alter_table('crm_merge_journal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crm_merge_journal_merge_id'), ['merge_id'], unique=False)
    op.create_table('crm_merge_tombstone',
    sa.Column('merge_id', sa.Integer(), nullable=False),
    sa.Column('entity', sa.String(length=64), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('into_id', sa.Integer(), nullable=True),
    sa.Column('row', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['merge_id'], ['crm_merge.id'], name=op.f('fk_crm_merge_tombstone_merge_id_crm_merge'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('merge_id', 'entity', 'record_id', name=op.f('pk_crm_merge_tombstone'))
    )
    with op.batch_alter_table('crm_merge_tombstone', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crm_merge_tombstone_entity_record_id'), ['entity', 'record_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('crm_merge_tombstone', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crm_merge_tombstone_entity_record_id'))
    op.drop_table('crm_merge_tombstone')
    with op.batch_alter_table('crm_merge_journal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crm_merge_journal_merge_id'))
    op.drop_table('crm_merge_journal')
    op.drop_table('crm_merge')
