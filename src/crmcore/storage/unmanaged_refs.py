"""Deletes refused by the database because rows of a table crmcore does not manage here refer
to the record: the table of a plugin that is not enabled (its rows stay when a deployment
turns it off), or of another program sharing the database.

The unit of work follows the references the registry knows before it deletes (``restrict``,
``cascade``, ``set_null``); the database's own foreign keys still guard the others. When one
refuses a ``DELETE``, :func:`raise_delete_refusal` turns the driver's error into a
:class:`~crmcore.errors.ReferenceError` naming the referencing table, with the same text on
both databases: PostgreSQL names the table in the error itself, SQLite is asked which tables
have a foreign key to the record's table (only on this error path, so a delete pays nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import sqlalchemy as sa

from crmcore.errors import ReferenceError

if TYPE_CHECKING:
    from crmcore.registry import EntityType
    from crmcore.storage.uow import UnitOfWork

__all__ = ["raise_delete_refusal"]

_FOREIGN_KEY_VIOLATION = "23503"  # PostgreSQL's SQLSTATE


def raise_delete_refusal(uow: UnitOfWork, etype: EntityType, ids: Sequence[int], exc: sa.exc.IntegrityError) -> NoReturn:
    """Raise the error of a ``DELETE`` of the records *ids* of *etype* that the database
    refused with *exc*: a :class:`ReferenceError` when a foreign key refused it, else *exc*.

    :raises ReferenceError: naming the referencing tables and what to do.
    """
    if not _is_foreign_key_refusal(exc):
        raise exc
    tables = _referencing_tables(uow, etype, exc)
    named = ", ".join(repr(t) for t in tables) if tables else "another table"
    which = f"{etype.name} {ids[0]}" if len(ids) == 1 else f"these {len(ids)} {etype.plural.lower()}"
    raise ReferenceError(
        f"cannot delete {which}: rows of {'table' if len(tables) <= 1 else 'tables'} {named} still refer to "
        f"{'it' if len(ids) == 1 else 'them'}, and crmcore does not manage {'that table' if len(tables) <= 1 else 'those tables'} "
        "here (a plugin that is not enabled, or another program); enable the plugin to delete or reassign "
        "those rows, or keep the record",
        entity=etype.name,
    ) from exc


def _is_foreign_key_refusal(exc: sa.exc.IntegrityError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    if code is not None:
        return bool(code == _FOREIGN_KEY_VIOLATION)
    return "FOREIGN KEY constraint failed" in str(exc.orig)


def _referencing_tables(uow: UnitOfWork, etype: EntityType, exc: sa.exc.IntegrityError) -> list[str]:
    """The tables the registry does not know that refer to *etype*'s table."""
    diag: Any = getattr(exc.orig, "diag", None)
    if diag is not None and getattr(diag, "table_name", None):
        return [str(diag.table_name)]  # PostgreSQL: the transaction is aborted, ask nothing
    target = uow.registry.table(etype.name).name
    known = {t.name for t in uow.registry.table(etype.name).metadata.tables.values()}
    inspector = sa.inspect(uow.connection)
    found = []
    for name in inspector.get_table_names():
        if name not in known and any(fk.get("referred_table") == target for fk in inspector.get_foreign_keys(name)):
            found.append(name)
    return sorted(found)
