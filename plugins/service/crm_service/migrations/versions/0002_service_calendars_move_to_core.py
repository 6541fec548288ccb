"""service calendars move to the core's business calendars

Each service calendar becomes a ``crm_business_calendar`` (created by the core's revision 0007,
shared with the help desk's SLA clocks and scheduling) open all day on its working days, in UTC,
with its holidays; ids move past the highest one there and a name already taken gets
" (service)". Service plans follow their calendars. The old tables stay, with a new column
``business_calendar_id`` saying where each calendar went, so that plugins referring to them
(scheduling's resources) move their references in revisions of their own; nothing reads them
any more.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08 00:50:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STAMP = "version, created_at, updated_at, created_by, updated_by"
_OLD_FK = 'fk_service_service_plan_calendar_id_service_service_calendar'
_NEW_FK = 'fk_service_service_plan_calendar_id_crm_business_calendar'


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if not inspector.has_table('service_service_calendar') or any(
            c['name'] == 'business_calendar_id' for c in inspector.get_columns('service_service_calendar')):
        return  # moved already
    with op.batch_alter_table('service_service_calendar', schema=None) as batch_op:
        batch_op.add_column(sa.Column('business_calendar_id', sa.Integer(), nullable=True))
    offset = bind.execute(sa.text("SELECT coalesce(max(id), 0) FROM crm_business_calendar")).scalar() or 0
    taken = {r[0] for r in bind.execute(sa.text("SELECT name FROM crm_business_calendar"))}
    rows = bind.execute(sa.text(f"SELECT id, {_STAMP}, name, workdays FROM service_service_calendar "
                                "ORDER BY id")).mappings().all()
    for row in rows:
        name = row['name'] if row['name'] not in taken else f"{row['name']} (service)"[:100]
        values = {**row, 'new_id': row['id'] + offset, 'name': name}
        bind.execute(sa.text(
            f"INSERT INTO crm_business_calendar (id, {_STAMP}, name, timezone, description) VALUES "
            "(:new_id, :version, :created_at, :updated_at, :created_by, :updated_by, :name, 'UTC', "
            "'Working days of a service calendar, open all day')"), values)
        for weekday in json.loads(row['workdays'] or '[]'):
            bind.execute(sa.text(
                f"INSERT INTO crm_business_hours ({_STAMP}, calendar_id, weekday, opens, closes) VALUES "
                "(:version, :created_at, :updated_at, :created_by, :updated_by, :new_id, :weekday, "
                "'00:00', '24:00')"), {**values, 'weekday': weekday})
    bind.execute(sa.text(
        f"INSERT INTO crm_business_holiday ({_STAMP}, calendar_id, day, name) "
        f"SELECT {_STAMP}, calendar_id + :offset, day, name FROM service_service_holiday ORDER BY id"),
        {"offset": offset})
    bind.execute(sa.text("UPDATE service_service_calendar SET business_calendar_id = id + :offset"),
                 {"offset": offset})
    if bind.dialect.name == "postgresql":
        op.execute("SELECT setval(pg_get_serial_sequence('crm_business_calendar', 'id'), "
                   "(SELECT coalesce(max(id), 0) + 1 FROM crm_business_calendar), false)")
    with op.batch_alter_table('service_service_plan', schema=None) as batch_op:
        batch_op.drop_constraint(_OLD_FK, type_='foreignkey')
    bind.execute(sa.text("UPDATE service_service_plan SET calendar_id = calendar_id + :offset "
                         "WHERE calendar_id IS NOT NULL"), {"offset": offset})
    with op.batch_alter_table('service_service_plan', schema=None) as batch_op:
        batch_op.create_foreign_key(_NEW_FK, 'crm_business_calendar', ['calendar_id'], ['id'])


def downgrade() -> None:
    """Plans point at their old service calendars again (the business calendars stay)."""
    with op.batch_alter_table('service_service_plan', schema=None) as batch_op:
        batch_op.drop_constraint(_NEW_FK, type_='foreignkey')
    op.execute("UPDATE service_service_plan SET calendar_id = (SELECT s.id FROM service_service_calendar s "
               "WHERE s.business_calendar_id = service_service_plan.calendar_id) WHERE calendar_id IS NOT NULL")
    with op.batch_alter_table('service_service_plan', schema=None) as batch_op:
        batch_op.create_foreign_key(_OLD_FK, 'service_service_calendar', ['calendar_id'], ['id'])
    with op.batch_alter_table('service_service_calendar', schema=None) as batch_op:
        batch_op.drop_column('business_calendar_id')
