"""What the documents plugin keeps beside its records, made when missing (after ``crm db
upgrade`` and :meth:`~crmcore.Crm.create_schema`): the full-text index."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm_documents.search import ensure_search_index

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["seed"]


def seed(uow: UnitOfWork) -> list[str]:
    return ensure_search_index(uow.raw("documents"))
