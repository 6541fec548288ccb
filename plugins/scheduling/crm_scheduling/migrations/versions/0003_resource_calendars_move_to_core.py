"""resource calendars move to the core's business calendars

A resource's ``calendar_id`` named a service calendar; the service plugin's revision 0002 moved
those to ``crm_business_calendar`` and wrote where each went in
``service_service_calendar.business_calendar_id``. Resources follow them here.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 00:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_FK = 'fk_scheduling_resource_calendar_id_service_service_calendar'
_NEW_FK = 'fk_scheduling_resource_calendar_id_crm_business_calendar'


def upgrade() -> None:
    bind = op.get_bind()
    keys = {fk['name'] for fk in sa.inspect(bind).get_foreign_keys('scheduling_resource')}
    if _OLD_FK not in keys:
        return  # moved already
    with op.batch_alter_table('scheduling_resource', schema=None) as batch_op:
        batch_op.drop_constraint(_OLD_FK, type_='foreignkey')
    op.execute("UPDATE scheduling_resource SET calendar_id = (SELECT s.business_calendar_id "
               "FROM service_service_calendar s WHERE s.id = scheduling_resource.calendar_id) "
               "WHERE calendar_id IS NOT NULL")
    with op.batch_alter_table('scheduling_resource', schema=None) as batch_op:
        batch_op.create_foreign_key(_NEW_FK, 'crm_business_calendar', ['calendar_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('scheduling_resource', schema=None) as batch_op:
        batch_op.drop_constraint(_NEW_FK, type_='foreignkey')
    op.execute("UPDATE scheduling_resource SET calendar_id = (SELECT s.id FROM service_service_calendar s "
               "WHERE s.business_calendar_id = scheduling_resource.calendar_id) WHERE calendar_id IS NOT NULL")
    with op.batch_alter_table('scheduling_resource', schema=None) as batch_op:
        batch_op.create_foreign_key(_OLD_FK, 'service_service_calendar', ['calendar_id'], ['id'])
