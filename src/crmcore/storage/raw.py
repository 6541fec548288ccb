"""The named raw API: a plugin's statements on its own tables that are not records.

A plugin may keep tables of its own beside its entity types (sync cursors, caches, settings-like
data), named ``<plugin>_<name>`` and migrated by its own Alembic branch. It runs statements on
them in the unit of work's transaction through ``uow.raw("myplugin")``, a :class:`RawConnection`
that checks every statement before running it: each table the statement touches (found with
SQLAlchemy's :func:`sqlalchemy.sql.util.find_tables`, through joins, aliases, subqueries and the
target of an INSERT, UPDATE or DELETE) must carry the plugin's prefix and must not be the table
of an entity type or of the core (audit, tagging). Records are never reached this way: they go
through the unit of work's secured road (``get``, ``query``, ``select``, ``update_where``...).
Plain SQL text cannot be checked and is refused, and so is DDL: the schema objects a plugin
keeps beside its migrations (a search index, its triggers) are made by :meth:`RawConnection.ensure`,
which creates only objects named with the plugin's prefix.

:func:`raw_access_uses` finds, statically, the places in a plugin's source that go past the
road (the unit of work's ``connection``, an entity's table from ``registry.table(...)``, the
core's tables); the conformance check (:mod:`crmcore.conformance`) reports them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql.util import find_tables

from crmcore.errors import PluginError

if TYPE_CHECKING:
    from crmcore.storage.uow import UnitOfWork

__all__ = ["RawConnection", "raw_access_uses"]

#: The statements :meth:`RawConnection.ensure` runs: the creation of one named schema object.
_CREATE = re.compile(
    r"^\s*CREATE\s+(?:UNIQUE\s+)?(?:INDEX|TRIGGER|VIRTUAL\s+TABLE|TABLE)\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\b",
    re.IGNORECASE,
)


class RawConnection:
    """Runs one plugin's statements on its own non-record tables, in the unit's transaction.

    Get it with :meth:`crmcore.storage.uow.UnitOfWork.raw`.
    """

    def __init__(self, uow: UnitOfWork, plugin: str) -> None:
        if plugin not in uow.crm.plugins.plugins:
            enabled = ", ".join(sorted(uow.crm.plugins.plugins))
            raise PluginError(f"no enabled plugin {plugin!r} owns raw tables; enabled plugins: {enabled}", plugin=plugin)
        self.uow = uow
        self.plugin = plugin
        self._records = {t.name for t in uow.registry.tables.values()} | {t.name for t in uow.crm.core_tables.values()}

    def tables(self, statement: Any) -> list[str]:
        """The names of the tables *statement* touches, sorted.

        :raises PluginError: for plain SQL text, whose tables cannot be known.
        """
        if isinstance(statement, sa.schema.ExecutableDDLElement):
            raise PluginError(
                f"plugin {self.plugin!r}: the raw API runs no DDL such as {str(statement)[:60]!r}; a plugin's "
                "schema objects come from its migrations, or from RawConnection.ensure",
                plugin=self.plugin,
            )
        if isinstance(statement, (str, sa.TextClause)) or not isinstance(statement, sa.sql.ClauseElement):
            raise PluginError(
                f"plugin {self.plugin!r}: the raw API runs SQLAlchemy Core statements on Table objects (sa.select, "
                f"sa.insert, sa.update, sa.delete), not SQL text such as {str(statement)[:60]!r}, so it can check "
                "which tables they touch",
                plugin=self.plugin,
            )
        found = find_tables(statement, check_columns=True, include_aliases=True, include_joins=True,
                            include_selects=True, include_crud=True)
        return sorted({t.name for t in found if isinstance(t, sa.TableClause)})

    def check(self, statement: Any) -> None:
        """Refuse *statement* unless every table it touches is one of the plugin's own.

        :raises PluginError: naming the first table that is an entity's (or the core's) or
            does not carry the plugin's prefix, and what to use instead.
        """
        prefix = f"{self.plugin}_"
        for name in self.tables(statement):
            if name in self._records:
                raise PluginError(
                    f"plugin {self.plugin!r}: the raw API may not touch {name!r}, the table of an entity type or of the "
                    "core; read and write records through the unit of work (uow.get, uow.query, uow.select, "
                    "uow.update_where, uow.delete_where)",
                    plugin=self.plugin,
                )
            if not name.startswith(prefix):
                raise PluginError(
                    f"plugin {self.plugin!r}: table {name!r} is not one of its own (their names start with {prefix!r}); "
                    "a plugin's raw statements reach only its own tables",
                    plugin=self.plugin,
                )

    def execute(self, statement: Any, parameters: Any = None) -> sa.CursorResult[Any]:
        """Run *statement* in the unit of work's transaction, once :meth:`check` passed it.

        :param statement: a SQLAlchemy Core statement on the plugin's own tables.
        :param parameters: bound parameters, as :meth:`sqlalchemy.engine.Connection.execute`
            takes them (a list of dicts runs it for each).
        :returns: SQLAlchemy's result.
        :raises PluginError: for a statement touching a table that is not the plugin's own.
        :raises ConflictError: for a lost race, as every write of the unit.
        """
        self.check(statement)
        return self.uow._execute(statement, parameters)

    @property
    def dialect(self) -> str:
        """The database's dialect name: ``sqlite`` or ``postgresql``."""
        return self.uow.crm.engine.dialect.name

    def ensure(self, name: str, statement: str) -> bool:
        """Create the schema object *name* of the plugin (a table, index, trigger or SQLite
        virtual table its migration also makes: a search index, say) with the DDL *statement*,
        unless the database has it, in the unit of work's transaction. The name starts with the
        plugin's prefix (an index's may start with ``ix_`` before it, as crmcore names indexes).

        :returns: whether it was created.
        :raises PluginError: when *name* lacks the plugin's prefix, or *statement* is not the
            ``CREATE`` of *name*.
        """
        made = _CREATE.match(statement)
        prefix = f"{self.plugin}_"
        if not name.removeprefix("ix_").startswith(prefix) or made is None or made.group(1) != name:
            raise PluginError(
                f"plugin {self.plugin!r}: ensure() creates one schema object named {prefix}... (an index "
                f"ix_{prefix}...), with the "
                f"CREATE statement of that name; got {name!r} and {statement[:60]!r}",
                plugin=self.plugin,
            )
        if self.dialect == "postgresql":
            present = sa.text("SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                              "WHERE c.relname = :name AND n.nspname = current_schema() UNION ALL "
                              "SELECT 1 FROM pg_trigger WHERE tgname = :name")
        else:
            present = sa.text("SELECT 1 FROM sqlite_master WHERE name = :name")
        if self.uow._execute(present, {"name": name}).first() is not None:
            return False
        self.uow.connection.exec_driver_sql(statement)
        return True

    def __repr__(self) -> str:
        return f"<RawConnection plugin={self.plugin!r}>"


def raw_access_uses(source: Path) -> list[str]:
    """The places in the Python source under *source* (a package folder or one module) that
    reach records past the unit of work's secured road, as ``"<file>:<line>: <what>"``:

    - ``<anything>.connection``: the unit of work's connection (internal; plugins use
      :meth:`~crmcore.storage.uow.UnitOfWork.raw` for their own tables);
    - ``registry.table(...)``: an entity type's table;
    - ``<anything>.core_tables``: the core's tables (audit, tagging).

    Test modules (``test_*.py``, ``conftest.py`` and folders named ``tests``) are skipped.
    Code is read, never imported or run.

    :param source: a folder (searched recursively) or a ``.py`` file.
    :returns: the uses found, by file then line.
    """
    files = sorted(source.rglob("*.py")) if source.is_dir() else [source]
    found: set[tuple[str, int, str]] = set()
    for path in files:
        relative = path.relative_to(source.parent)
        if "tests" in relative.parts[:-1] or path.name.startswith("test_") or path.name == "conftest.py":
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (OSError, SyntaxError, UnicodeDecodeError) as exc:
            found.add((str(relative), 0, f"cannot be read ({type(exc).__name__}), so nothing in it could be checked"))
            continue
        for node in ast.walk(tree):
            what = _raw_use(node)
            if what is not None:
                found.add((str(relative), getattr(node, "lineno", 0), what))
    return [f"{file}:{line}: {what}" for file, line, what in sorted(found)]


def _raw_use(node: ast.AST) -> str | None:
    """What *node* reaches past the road, or ``None``."""
    if isinstance(node, ast.Attribute) and node.attr in ("connection", "core_tables"):
        return f"{ast.unparse(node)} (use uow.get/query/select/update_where/delete_where, or uow.raw(plugin) for its own tables)"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "table":
        owner = node.func.value
        if (isinstance(owner, ast.Name) and owner.id == "registry") or (isinstance(owner, ast.Attribute) and owner.attr == "registry"):
            return f"{ast.unparse(node)} (an entity's table; read and write its records through the unit of work)"
    return None
