"""Gap-free document numbers per kind and year.

The last number given is one row of ``billing_sequence`` per (kind, year). A posting reads it
with ``SELECT ... FOR UPDATE`` (PostgreSQL locks the row until the posting's transaction ends;
SQLite has one writer at a time anyway), takes the next numbers and writes the row back in the
same transaction as the documents: a posting that rolls back gives its numbers back, and two
concurrent postings wait for each other, so there is never a gap nor a duplicate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from crm_billing.entities import SEQUENCE

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["format_number", "take_numbers"]


def take_numbers(uow: UnitOfWork, kind: str, year: int, count: int) -> list[int]:
    """The next *count* numbers of *kind* in *year*, reserved in *uow*'s transaction."""
    if count <= 0:
        return []
    raw = uow.raw("billing")
    if raw.dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    raw.execute(insert(SEQUENCE).values(kind=kind, year=year, last_number=0).on_conflict_do_nothing())
    where = (SEQUENCE.c.kind == kind) & (SEQUENCE.c.year == year)
    last = raw.execute(sa.select(SEQUENCE.c.last_number).where(where).with_for_update()).scalar_one()
    raw.execute(sa.update(SEQUENCE).where(where).values(last_number=last + count))
    return list(range(last + 1, last + count + 1))


def format_number(prefix: str, year: int, number: int, digits: int) -> str:
    """``INV-2026-00042``."""
    return f"{prefix}{year}-{number:0{digits}d}"
