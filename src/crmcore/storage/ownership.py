"""Who owns what in the schema: the plugin branch that creates each table and column, and the
options that keep each branch's Alembic autogenerate to its own objects.

Part of :mod:`crmcore.storage.migrations` (which offers these names too): the core's builtin
plugins share the core's branch; a column a plugin adds to another plugin's table belongs to
the plugin that declared it; the columns the core adds to plugins' tables (owner, time stamps)
belong to the table's plugin.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic.operations import ops as alembic_ops
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    from crmcore.app import Crm

__all__ = ["column_owner", "context_options", "injected", "render_item", "table_owner", "version_table"]

#: Stands for the columns the core adds to plugins' tables (see :mod:`crmcore.storage.migrations`).
_INJECTED = "(core-added)"


def version_table(plugin: str) -> str:
    """The name of the table recording which revisions of *plugin*'s branch are applied.

    >>> version_table("core.permissions")
    'crm_version_core_permissions'
    """
    return "crm_version_" + re.sub(r"\W", "_", plugin)


def _branch_of(origin: str) -> str:
    """The core's builtin plugins (``core.permissions``, ``core.workflow``...) share its branch."""
    return "core" if origin.startswith("core.") else origin


def table_owner(table: sa.Table) -> str:
    """The plugin whose branch creates *table* (``Table.info["origin"]``)."""
    return _branch_of(str(table.info.get("origin") or "core"))


def _is_core(origin: str) -> bool:
    return origin == "core" or origin.startswith("core.")


def injected(table: sa.Table, column: sa.Column[Any]) -> bool:
    """Whether the core or one of its builtin plugins adds *column* to another plugin's table
    (``owner_id``, ``owner_group_id`` on every ownable entity...).

    Such a column is created with its table when the plugin's revision creates it, and is
    otherwise added from the registry: a plugin never needs a new revision because the core
    puts a new column on every ownable entity.
    """
    origin = str(column.info.get("origin") or "")
    return _is_core(origin) and not _is_core(str(table.info.get("origin") or "core"))


def column_owner(table: sa.Table, column: sa.Column[Any]) -> str:
    """The plugin (or ``"settings"``) whose branch adds *column* to *table*.

    A column belongs to its table's owner unless another plugin or the settings added it as a
    field extension. The columns the core adds to a plugin's table (see :func:`injected`)
    belong to the table's owner too, but only at the table's creation.
    """
    owner = table_owner(table)
    origin = column.info.get("origin")
    if origin:
        origin = _branch_of(str(origin))
    if not origin or origin == owner or injected(table, column):
        return owner
    return str(origin)


def _owned_columns(columns: Sequence[Any], owner: str) -> bool:
    columns = list(columns)
    return bool(columns) and all(
        isinstance(c, sa.Column) and c.table is not None and column_owner(c.table, c) == owner
        for c in columns
    )


def _include_object(plugin: str, existing: set[str]) -> Callable[..., bool]:
    """An Alembic ``include_object`` that keeps only *plugin*'s objects.

    Objects found only in the database are always left out: autogenerate never drops. Columns
    the core adds to the plugin's tables count only for tables not in *existing* yet.
    """

    def core_added(columns: Any) -> bool:
        return any(isinstance(c, sa.Column) and c.table is not None and injected(c.table, c) for c in columns)

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        declared = compare_to if reflected else obj
        if declared is None:
            return False
        if type_ == "table":
            if table_owner(declared) == plugin:
                return True
            # another branch's table: only look inside it when it exists already
            exists = compare_to is not None
            return exists and any(column_owner(declared, c) == plugin for c in declared.columns)
        if type_ == "column":
            table = declared.table
            return table is not None and not injected(table, declared) and column_owner(table, declared) == plugin
        if type_ in ("index", "unique_constraint", "foreign_key_constraint"):
            if core_added(declared.columns) and declared.table.name in existing:
                return False
            return _owned_columns(declared.columns, plugin)
        table = getattr(declared, "table", None)
        return isinstance(table, sa.Table) and table_owner(table) == plugin

    return include


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render crmcore's column types as the plain SQLAlchemy types they store as
    (``ScaledDecimal`` → ``sa.BigInteger()``), so that scripts never import crmcore."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl_instance!r}"
    return False


def _keep_owned_columns(plugin: str) -> Callable[..., None]:
    """An Alembic ``process_revision_directives``: drop other branches' columns from the
    tables a revision creates, and write no file when there is nothing to do."""

    def process(context: Any, revision: Any, directives: list[Any]) -> None:
        for script in directives:
            for upgrade_ops in script.upgrade_ops_list:
                for op in upgrade_ops.ops:
                    if isinstance(op, alembic_ops.CreateTableOp):
                        op.columns = _filter_table_items(op.columns, op.table_name, plugin)
                        op.info = {}  # the registry's bookkeeping, not part of the schema
        if all(ops.is_empty() for script in directives for ops in script.upgrade_ops_list):
            directives[:] = []

    return process


def _filter_table_items(items: Sequence[Any], table_name: str, plugin: str) -> list[Any]:
    """Columns, constraints and indexes of a new table, less those of other branches."""

    def keep_column(column: sa.Column[Any]) -> bool:
        table = column.table
        return table is None or column_owner(table, column) == plugin

    kept = []
    for item in items:
        if isinstance(item, sa.Column):
            if keep_column(item):
                kept.append(item)
        elif isinstance(item, sa.PrimaryKeyConstraint) or all(keep_column(c) for c in item.columns):
            kept.append(item)
    return kept


def context_options(crm: Crm, plugin: str, connection: sa.Connection) -> dict[str, Any]:
    """The ``context.configure`` options of *plugin*'s branch (used by ``env.py``)."""
    return {
        "version_table": version_table(plugin),
        "render_as_batch": True,
        "compare_type": True,
        "include_object": _include_object(plugin, _table_names(connection)),
        "render_item": render_item,
        "process_revision_directives": _keep_owned_columns(plugin),
    }


def _table_names(connection: sa.Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())
