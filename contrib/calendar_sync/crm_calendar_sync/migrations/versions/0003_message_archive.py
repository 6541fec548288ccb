"""message archive: archived messages and the contacts and accounts they involve

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 00:55:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('calendar_sync_message',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('message_id', sa.String(length=998), nullable=False),
    sa.Column('activity_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name='pk_calendar_sync_message'),
    sa.UniqueConstraint('message_id', name='uq_calendar_sync_message_message_id')
    )
    op.create_table('calendar_sync_message_party',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('activity_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name='pk_calendar_sync_message_party')
    )
    op.create_index('ix_calendar_sync_message_party_contact_id', 'calendar_sync_message_party', ['contact_id'], unique=False)
    op.create_index('ix_calendar_sync_message_party_account_id', 'calendar_sync_message_party', ['account_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_calendar_sync_message_party_account_id', table_name='calendar_sync_message_party')
    op.drop_index('ix_calendar_sync_message_party_contact_id', table_name='calendar_sync_message_party')
    op.drop_table('calendar_sync_message_party')
    op.drop_table('calendar_sync_message')
