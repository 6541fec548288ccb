"""campaigns with further channels and segments, member statuses per channel

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 01:30:00.000000
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
    with op.batch_alter_table('marketing_campaign', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channels', sa.JSON(none_as_null=True), nullable=True))
        batch_op.add_column(sa.Column('segments', sa.JSON(none_as_null=True), nullable=True))

    with op.batch_alter_table('marketing_campaign_member', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=6), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('marketing_campaign_member', schema=None) as batch_op:
        batch_op.drop_column('channel')

    with op.batch_alter_table('marketing_campaign', schema=None) as batch_op:
        batch_op.drop_column('segments')
        batch_op.drop_column('channels')
