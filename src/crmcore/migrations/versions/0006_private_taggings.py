"""tags: a tagging is shared (owner 0) or a user's private one

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 21:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('crm_tagging', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_id', sa.Integer(), server_default='0', nullable=False))
        batch_op.drop_constraint('pk_crm_tagging', type_='primary')
        batch_op.create_primary_key('pk_crm_tagging', ['tag_id', 'entity', 'record_id', 'owner_id'])


def downgrade() -> None:
    op.execute("DELETE FROM crm_tagging WHERE owner_id <> 0")
    with op.batch_alter_table('crm_tagging', schema=None) as batch_op:
        batch_op.drop_constraint('pk_crm_tagging', type_='primary')
        batch_op.create_primary_key('pk_crm_tagging', ['tag_id', 'entity', 'record_id'])
        batch_op.drop_column('owner_id')
