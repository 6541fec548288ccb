"""What billing keeps beside its records, made when missing (after ``crm db upgrade`` and
:meth:`~crmcore.Crm.create_schema`): the number sequence table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm_billing.entities import sequence_ddl

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["seed"]


def seed(uow: UnitOfWork) -> list[str]:
    raw = uow.raw("billing")
    return [f"billing: {name} created" for name, statement in sequence_ddl() if raw.ensure(name, statement)]
