"""carddav accounts; card links

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08 00:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('calendar_sync_calendar_account', schema=None) as batch_op:
        batch_op.alter_column('kind', existing_type=sa.String(length=6), type_=sa.String(length=7),
                              existing_nullable=True)
    op.create_table('calendar_sync_card',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=500), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('fields_hash', sa.String(length=64), nullable=False),
    sa.Column('snapshot', sa.JSON(), nullable=True),
    sa.Column('card', sa.Text(), nullable=True),
    sa.Column('href', sa.String(length=1000), nullable=True),
    sa.Column('etag', sa.String(length=255), nullable=True),
    sa.PrimaryKeyConstraint('id', name='pk_calendar_sync_card'),
    sa.UniqueConstraint('account_id', 'uid', name='uq_calendar_sync_card_key')
    )
    op.create_index('ix_calendar_sync_card_contact_id', 'calendar_sync_card', ['contact_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_calendar_sync_card_contact_id', table_name='calendar_sync_card')
    op.drop_table('calendar_sync_card')
    with op.batch_alter_table('calendar_sync_calendar_account', schema=None) as batch_op:
        batch_op.alter_column('kind', existing_type=sa.String(length=7), type_=sa.String(length=6),
                              existing_nullable=True)
