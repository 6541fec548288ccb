"""SLA calendars move to the core's business calendars

The help desk's calendars, their hours and holidays become ``crm_business_calendar``,
``crm_business_hours`` and ``crm_business_holiday`` (created by the core's revision 0007), shared
with planned service and scheduling. Rows are copied (a calendar keeps its id when the core
table is still empty; otherwise ids move past the highest one there, and a name already taken
gets " (help desk)"), the SLA policies follow them, and the old tables are dropped.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 00:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STAMP = "version, created_at, updated_at, created_by, updated_by"
_OLD_FK = 'fk_helpdesk_sla_policy_calendar_id_helpdesk_sla_calendar'
_NEW_FK = 'fk_helpdesk_sla_policy_calendar_id_crm_business_calendar'


def _advance_sequence(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                   f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)")


def upgrade() -> None:
    bind = op.get_bind()
    if not sa.inspect(bind).has_table('helpdesk_sla_calendar'):
        return  # moved already
    offset = bind.execute(sa.text("SELECT coalesce(max(id), 0) FROM crm_business_calendar")).scalar() or 0
    bind.execute(sa.text(
        f"INSERT INTO crm_business_calendar (id, {_STAMP}, name, timezone, description) "
        f"SELECT c.id + :offset, {', '.join('c.' + f for f in _STAMP.split(', '))}, "
        "CASE WHEN EXISTS (SELECT 1 FROM crm_business_calendar b WHERE b.name = c.name) "
        "THEN c.name || ' (help desk)' ELSE c.name END, c.timezone, c.description "
        "FROM helpdesk_sla_calendar c"), {"offset": offset})
    bind.execute(sa.text(
        f"INSERT INTO crm_business_hours ({_STAMP}, calendar_id, weekday, opens, closes) "
        f"SELECT {_STAMP}, calendar_id + :offset, weekday, opens, closes FROM helpdesk_sla_hours "
        "ORDER BY id"), {"offset": offset})
    bind.execute(sa.text(
        f"INSERT INTO crm_business_holiday ({_STAMP}, calendar_id, day, name) "
        f"SELECT {_STAMP}, calendar_id + :offset, day, name FROM helpdesk_sla_holiday ORDER BY id"),
        {"offset": offset})
    _advance_sequence("crm_business_calendar")
    with op.batch_alter_table('helpdesk_sla_policy', schema=None) as batch_op:
        batch_op.drop_constraint(_OLD_FK, type_='foreignkey')
    bind.execute(sa.text("UPDATE helpdesk_sla_policy SET calendar_id = calendar_id + :offset "
                         "WHERE calendar_id IS NOT NULL"), {"offset": offset})
    with op.batch_alter_table('helpdesk_sla_policy', schema=None) as batch_op:
        batch_op.create_foreign_key(_NEW_FK, 'crm_business_calendar', ['calendar_id'], ['id'])
    with op.batch_alter_table('helpdesk_sla_hours', schema=None) as batch_op:
        batch_op.drop_index('ix_helpdesk_sla_hours_calendar_id')
    op.drop_table('helpdesk_sla_hours')
    with op.batch_alter_table('helpdesk_sla_holiday', schema=None) as batch_op:
        batch_op.drop_index('ix_helpdesk_sla_holiday_day')
        batch_op.drop_index('ix_helpdesk_sla_holiday_calendar_id')
    op.drop_table('helpdesk_sla_holiday')
    op.drop_table('helpdesk_sla_calendar')


def _stamped(name: str, *columns: sa.Column, **kw: object) -> None:
    op.create_table(
        name,
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('version', sa.Integer(), server_default='1', nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('updated_by', sa.Integer(), nullable=True),
        *columns,
        sa.PrimaryKeyConstraint('id', name=f'pk_{name}'),
    )


def downgrade() -> None:
    """The old tables again, holding a copy of every business calendar (same ids)."""
    _stamped('helpdesk_sla_calendar', sa.Column('name', sa.String(length=100), nullable=True),
             sa.Column('timezone', sa.String(length=64), nullable=True),
             sa.Column('description', sa.Text(), nullable=True),
             sa.UniqueConstraint('name', name='uq_helpdesk_sla_calendar_name'))
    _stamped('helpdesk_sla_holiday', sa.Column('calendar_id', sa.Integer(), nullable=True),
             sa.Column('day', sa.Date(), nullable=True),
             sa.Column('name', sa.String(length=100), nullable=True),
             sa.ForeignKeyConstraint(['calendar_id'], ['helpdesk_sla_calendar.id'],
                                     name='fk_helpdesk_sla_holiday_calendar_id_helpdesk_sla_calendar'))
    _stamped('helpdesk_sla_hours', sa.Column('calendar_id', sa.Integer(), nullable=True),
             sa.Column('weekday', sa.String(length=3), nullable=True),
             sa.Column('opens', sa.String(length=5), nullable=True),
             sa.Column('closes', sa.String(length=5), nullable=True),
             sa.ForeignKeyConstraint(['calendar_id'], ['helpdesk_sla_calendar.id'],
                                     name='fk_helpdesk_sla_hours_calendar_id_helpdesk_sla_calendar'))
    op.create_index('ix_helpdesk_sla_holiday_calendar_id', 'helpdesk_sla_holiday', ['calendar_id'])
    op.create_index('ix_helpdesk_sla_holiday_day', 'helpdesk_sla_holiday', ['day'])
    op.create_index('ix_helpdesk_sla_hours_calendar_id', 'helpdesk_sla_hours', ['calendar_id'])
    op.execute(f"INSERT INTO helpdesk_sla_calendar (id, {_STAMP}, name, timezone, description) "
               f"SELECT id, {_STAMP}, name, timezone, description FROM crm_business_calendar")
    op.execute(f"INSERT INTO helpdesk_sla_hours ({_STAMP}, calendar_id, weekday, opens, closes) "
               f"SELECT {_STAMP}, calendar_id, weekday, opens, closes FROM crm_business_hours")
    op.execute(f"INSERT INTO helpdesk_sla_holiday ({_STAMP}, calendar_id, day, name) "
               f"SELECT {_STAMP}, calendar_id, day, name FROM crm_business_holiday")
    _advance_sequence("helpdesk_sla_calendar")
    with op.batch_alter_table('helpdesk_sla_policy', schema=None) as batch_op:
        batch_op.drop_constraint(_NEW_FK, type_='foreignkey')
        batch_op.create_foreign_key(_OLD_FK, 'helpdesk_sla_calendar', ['calendar_id'], ['id'])
