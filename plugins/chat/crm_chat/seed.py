"""What the chat keeps beside its records, made when missing (after ``crm db upgrade`` and
:meth:`~crmcore.Crm.create_schema`): the cursor table and two indexes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm_chat.entities import cursor_ddl

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["seed"]


def seed(uow: UnitOfWork) -> list[str]:
    raw = uow.raw("chat")
    return [
        f"chat: {name} created"
        for name, statement in cursor_ddl(raw.dialect)
        if raw.ensure(name, statement)
    ]
