"""knowledge base search indexes of the title alone and of the body alone

A searcher who may see only one of the two searched fields searches the index of that field,
so a hidden field neither matches nor weighs in the rank (SQLite's bm25 normalises by the
length of every column of its FTS5 table).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 21:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FIELDS = ("title", "body")


def _sqlite(field: str) -> list[str]:
    fts = f"helpdesk_kb_article_{field}_fts"
    add = f"INSERT INTO {fts}(rowid, {field}) VALUES (new.id, new.{field});"
    remove = f"INSERT INTO {fts}({fts}, rowid, {field}) VALUES ('delete', old.id, old.{field});"
    on = "ON helpdesk_kb_article BEGIN"
    return [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5({field}, "
        "content='helpdesk_kb_article', content_rowid='id', "
        "tokenize='porter unicode61 remove_diacritics 2')",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_insert AFTER INSERT {on} {add} END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_delete AFTER DELETE {on} {remove} END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_update AFTER UPDATE OF {field} {on} {remove} {add} END",
        f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",
    ]


def _postgresql(field: str) -> list[str]:
    return [
        f"CREATE INDEX IF NOT EXISTS ix_helpdesk_kb_article_search_{field} ON helpdesk_kb_article "
        f"USING gin (to_tsvector('english', coalesce({field}, '')))",
    ]


def upgrade() -> None:
    make = {"sqlite": _sqlite, "postgresql": _postgresql}.get(op.get_bind().dialect.name)
    for field in _FIELDS if make else ():
        for statement in make(field):
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for field in _FIELDS:
        if dialect == "sqlite":
            fts = f"helpdesk_kb_article_{field}_fts"
            for suffix in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {fts}_{suffix}")
            op.execute(f"DROP TABLE IF EXISTS {fts}")
        elif dialect == "postgresql":
            op.execute(f"DROP INDEX IF EXISTS ix_helpdesk_kb_article_search_{field}")
