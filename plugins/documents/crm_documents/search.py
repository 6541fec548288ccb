"""Full-text search of documents: their titles and the text of their current version (PDF and
text files), through the secured road, so that a search matches only documents the searcher
may read (those of records they may read, as :mod:`crm_documents.access` says).

The index lives in the database, beside ``crm_document``:

- on SQLite, an FTS5 table ``documents_document_fts`` over the title and the text (external
  content, Porter stemming), kept in sync by three triggers;
- on PostgreSQL, a GIN index over ``to_tsvector('english', title || ' ' || text)``.

The plugin's migration creates it; :func:`ensure_search_index` (run by the seed) creates what
is missing and rebuilds the SQLite index when it had to make it. Each search is one statement:
the match, the actor's read predicate, the ranking.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa
from crmcore.records import Record

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.storage import RawConnection

__all__ = ["FTS_TABLE", "PG_INDEX", "Hit", "ensure_search_index", "search", "search_index_ddl"]

TABLE = "crm_document"
TEXT_COLUMN = "documents_content_text"
FTS_TABLE = "documents_document_fts"
PG_INDEX = "ix_documents_document_search"
_TRIGGERS = (f"{FTS_TABLE}_insert", f"{FTS_TABLE}_delete", f"{FTS_TABLE}_update")
_WORD = re.compile(r"\w+", re.UNICODE)
_MAX_TERMS = 24
_SHOWN = (
    "id",
    "title",
    "kind",
    "record_entity",
    "record_id",
    "filename",
    "content_type",
    "valid_until",
    "notice_date",
)


def search_index_ddl(dialect: str) -> list[tuple[str, str]]:
    """``(name, statement)`` of each object of the search index on *dialect*; the migration
    creates the same ones."""
    if dialect == "sqlite":
        add = (
            f"INSERT INTO {FTS_TABLE}(rowid, title, {TEXT_COLUMN}) "
            f"VALUES (new.id, new.title, new.{TEXT_COLUMN});"
        )
        remove = (
            f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, title, {TEXT_COLUMN}) "
            f"VALUES ('delete', old.id, old.title, old.{TEXT_COLUMN});"
        )
        return [
            (
                FTS_TABLE,
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(title, {TEXT_COLUMN}, "
                f"content='{TABLE}', content_rowid='id', "
                "tokenize='porter unicode61 remove_diacritics 2')",
            ),
            (
                _TRIGGERS[0],
                f"CREATE TRIGGER IF NOT EXISTS {_TRIGGERS[0]} AFTER INSERT ON {TABLE} "
                f"BEGIN {add} END",
            ),
            (
                _TRIGGERS[1],
                f"CREATE TRIGGER IF NOT EXISTS {_TRIGGERS[1]} AFTER DELETE ON {TABLE} "
                f"BEGIN {remove} END",
            ),
            (
                _TRIGGERS[2],
                f"CREATE TRIGGER IF NOT EXISTS {_TRIGGERS[2]} AFTER UPDATE OF title, "
                f"{TEXT_COLUMN} ON {TABLE} BEGIN {remove} {add} END",
            ),
        ]
    if dialect == "postgresql":
        return [
            (
                PG_INDEX,
                f"CREATE INDEX IF NOT EXISTS {PG_INDEX} ON {TABLE} USING gin "
                f"(to_tsvector('english', coalesce(title, '') || ' ' || "
                f"coalesce({TEXT_COLUMN}, '')))",
            )
        ]
    return []


_FTS = sa.table(FTS_TABLE, sa.column("rowid"), sa.column(FTS_TABLE))
_TEXT = sa.bindparam("documents_match", type_=sa.String())
_ENGLISH = sa.literal_column("'english'")


def ensure_search_index(raw: RawConnection) -> list[str]:
    """Create, through the plugin's raw API, the parts of the search index the database lacks
    (on SQLite, then rebuild it from the documents). Returns one line per thing made."""
    made = [raw.ensure(name, statement) for name, statement in search_index_ddl(raw.dialect)]
    if not any(made):
        return []
    if raw.dialect == "sqlite":
        raw.execute(sa.insert(_FTS).values({FTS_TABLE: "rebuild"}))
        return ["document search index (FTS5) created"]
    return ["document search index (GIN) created"]


@attrs.frozen
class Hit:
    """One search result: the document (the fields listed) and its rank (higher is better)."""

    document: Record
    rank: float


def _terms(text: str) -> list[str]:
    words = [w.lower() for w in _WORD.findall(text or "")]
    return list(dict.fromkeys(words))[:_MAX_TERMS]


def _document(c: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    parts = [sa.func.coalesce(c[name], sa.literal_column("''")) for name in names]
    text = parts[0]
    for part in parts[1:]:
        text = text + sa.literal_column("' '") + part
    return sa.func.to_tsvector(_ENGLISH, text)


def search(uow: UnitOfWork, text: str, limit: int = 20, **where: Any) -> list[Hit]:
    """The documents the actor may read whose title or text holds every word of *text* (the
    last word may be the start of a word), best first; *where* adds equalities (``kind=
    "contract"``, ``record_entity="account"``, ``record_id=7``)."""
    terms = _terms(text)
    hidden = uow.hidden_fields("document")
    searched = tuple(n for n in ("title", "content_text") if n not in hidden)
    if not terms or not searched or limit < 1:
        return []
    fields = tuple(n for n in _SHOWN if n not in hidden)
    select = uow.select("document", fields=fields)
    if uow.crm.engine.dialect.name == "postgresql":
        last = terms[-1] + (":*" if len(terms[-1]) >= 3 else "")
        match = " & ".join([*terms[:-1], last])
        query = sa.func.to_tsquery(_ENGLISH, _TEXT)
        select = select.extend(
            "documents",
            where=lambda c: _document(c, searched).op("@@")(query),
            columns={"search_rank": lambda c: sa.func.ts_rank(_document(c, searched), query)},
        )
    else:
        quoted = ['"' + t.replace('"', '""') + '"' for t in terms]
        if len(terms[-1]) >= 3:
            quoted[-1] += "*"
        match = " ".join(quoted)
        if searched != ("title", "content_text"):
            columns = " ".join("title" if n == "title" else TEXT_COLUMN for n in searched)
            match = "{" + columns + "} : (" + match + ")"
        index = _FTS.c[FTS_TABLE]
        select = select.extend(
            "documents",
            join=(_FTS, "rowid"),
            where=lambda c: index.op("MATCH")(_TEXT),
            columns={"search_rank": lambda c: -sa.func.bm25(index, 5.0, 1.0)},
        )
    if where:
        select = select.where(**where)
    rows = select.order_by("-search_rank").limit(limit).params(documents_match=match).all()
    hits = []
    for row in rows:
        rank = row.pop("search_rank")
        hits.append(Hit(Record("document", row), float(rank or 0)))
    return hits
