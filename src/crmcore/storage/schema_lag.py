"""A database behind the enabled plugins: a plugin was enabled (or upgraded) but ``crm db
upgrade`` has not run, so a statement names a table or column the database lacks.

:func:`behind_schema` recognises the driver's error (SQLite: ``no such table``, ``no such
column``, ``has no column named``; PostgreSQL: SQLSTATE 42P01 and 42703) and names the table or
column, the plugin that declares it and what to do, in one :class:`~crmcore.errors.DatabaseError`
with the same text on both databases. It costs nothing until a statement fails.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import sqlalchemy as sa

from crmcore.errors import DatabaseError

if TYPE_CHECKING:
    from crmcore.registry import Registry

__all__ = ["behind_schema"]

_UNDEFINED = {"42P01": "table", "42703": "column"}  # PostgreSQL's SQLSTATEs
_PATTERNS = (
    ("table", re.compile(r"no such table: (?:main\.)?(?P<table>\w+)")),
    ("column", re.compile(r"no such column: (?:(?P<table>\w+)\.)?(?P<column>\w+)")),
    ("column", re.compile(r"table (?P<table>\w+) has no column named (?P<column>\w+)")),
    ("column", re.compile(r'column "?(?P<column>\w+)"? of relation "(?P<table>\w+)" does not exist')),
    ("column", re.compile(r'column "?(?:(?P<table>\w+)\.)?(?P<column>\w+)"? does not exist')),
    ("table", re.compile(r'relation "(?P<table>\w+)" does not exist')),
)


def behind_schema(registry: Registry, exc: sa.exc.DBAPIError) -> DatabaseError | None:
    """The error to raise for *exc* when it says the database lacks a table or column of the
    enabled set, else ``None``."""
    text = str(exc.orig)
    code = getattr(exc.orig, "sqlstate", None)
    if code is not None and code not in _UNDEFINED:
        return None
    for kind, pattern in _PATTERNS:
        found = pattern.search(text)
        if found is None or (code is not None and _UNDEFINED[code] != kind):
            continue
        table, column = found.group("table"), found.groupdict().get("column")
        what = f"column {table}.{column}" if table and column else f"column {column}" if column else f"table {table}"
        owner = _declared_by(registry, table, column)
        by = f" (declared by plugin {owner!r})" if owner else ""
        return DatabaseError(
            f"the database lacks the {what}{by}: it is behind the enabled plugins; run 'crm db upgrade' "
            "(Crm.upgrade()) to bring it up to date"
        )
    return None


def _declared_by(registry: Registry, table: str | None, column: str | None) -> str | None:
    """The plugin that declares *table* (or *column* of it), when the registry knows it."""
    for entity in registry:
        if table is not None and registry.table(entity.name).name != table:
            continue
        if column is None:
            return entity.origin or None
        for field in entity.all_fields:
            if field.column == column or (column.endswith("_currency") and field.column == column[: -len("_currency")]):
                return field.origin or entity.origin or None
    return None
