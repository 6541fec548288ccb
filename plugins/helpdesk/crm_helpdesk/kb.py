"""The knowledge base: full-text search over articles, suggestions for tickets, and how many
tickets each article helped resolve.

The search index lives in the database, beside ``helpdesk_kb_article``, one index for each set
of searched fields a searcher may see (title and body, the title alone, the body alone):

- on SQLite, FTS5 tables (external content, Porter stemming) ``helpdesk_kb_article_fts`` over
  the title and body, ``helpdesk_kb_article_title_fts`` and ``helpdesk_kb_article_body_fts``,
  each kept in sync by three triggers;
- on PostgreSQL, GIN indexes over ``to_tsvector('english', title || ' ' || body)``, over the
  title's and over the body's.

A search matches and ranks on the fields the searcher sees, and only on them: a hidden field's
words match nothing, and its length does not weigh in the rank (FTS5's ``bm25`` normalises by
the length of every column of its table, so a searcher who may not see the body searches the
title's own table; PostgreSQL's ``ts_rank`` reads the document of the visible fields).

The plugin's migrations create the indexes; :func:`ensure_search_index` (run by the seed, after
every ``crm db upgrade`` and :meth:`~crmcore.Crm.create_schema`) creates what is missing and
rebuilds an SQLite index when its triggers had to be made again.

Every search is one SQL statement: the text match, the actor's read predicate (the access
restriction of the plugin lets only authors and publishers see unpublished articles) and the
ranking, so no article is loaded that the actor may not read.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa
from crmcore.errors import PermissionDeniedError
from crmcore.records import Record

from crm_helpdesk.entities import DONE_STAGES

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.query import Select
    from crmcore.security import AccessContext
    from crmcore.storage import RawConnection

__all__ = [
    "FTS_TABLE",
    "PG_INDEX",
    "SEARCH_SETS",
    "Hit",
    "ensure_search_index",
    "fts_table",
    "helped_counts",
    "pg_index",
    "search",
    "search_index_ddl",
    "suggest",
]

ARTICLE_TABLE = "helpdesk_kb_article"
FTS_TABLE = "helpdesk_kb_article_fts"
PG_INDEX = "ix_helpdesk_kb_article_search"
_SEARCHED = ("title", "body")
#: The sets of searched fields a searcher may see, each with an index of its own.
SEARCH_SETS = (_SEARCHED, ("title",), ("body",))
#: How much a word weighs in each field's ranking on SQLite (``bm25``'s column weights).
_WEIGHTS = {"title": 5.0, "body": 1.0}
_SYSTEM = ("id", "version", "created_at", "updated_at", "created_by", "updated_by")
_WORD = re.compile(r"\w+", re.UNICODE)
_MAX_TERMS = 24
#: Words too common to suggest an article by.
STOP_WORDS = frozenset(
    """a an and are as at be but by can cannot could did do does for from had has have he her his
    how i if in into is it its me my no not of on or our please she so that the their them then
    there these they this to us was we were what when where which who why will with would you
    your hi hello thanks thank regards dear""".split()
)


def fts_table(fields: tuple[str, ...]) -> str:
    """The SQLite FTS5 table over the searched *fields* (one of :data:`SEARCH_SETS`)."""
    return FTS_TABLE if fields == _SEARCHED else f"{ARTICLE_TABLE}_{'_'.join(fields)}_fts"


def pg_index(fields: tuple[str, ...]) -> str:
    """The PostgreSQL GIN index over the searched *fields* (one of :data:`SEARCH_SETS`)."""
    return PG_INDEX if fields == _SEARCHED else f"{PG_INDEX}_{'_'.join(fields)}"


def _sqlite_index(fields: tuple[str, ...]) -> list[tuple[str, str]]:
    index, article, names = fts_table(fields), ARTICLE_TABLE, ", ".join(fields)
    new, old = (", ".join(f"{age}.{f}" for f in fields) for age in ("new", "old"))
    add = f"INSERT INTO {index}(rowid, {names}) VALUES (new.id, {new});"
    remove = f"INSERT INTO {index}({index}, rowid, {names}) VALUES ('delete', old.id, {old});"
    return [
        (
            index,
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {index} USING fts5({names}, "
            f"content='{article}', content_rowid='id', "
            "tokenize='porter unicode61 remove_diacritics 2')",
        ),
        (
            f"{index}_insert",
            f"CREATE TRIGGER IF NOT EXISTS {index}_insert AFTER INSERT ON {article} "
            f"BEGIN {add} END",
        ),
        (
            f"{index}_delete",
            f"CREATE TRIGGER IF NOT EXISTS {index}_delete AFTER DELETE ON {article} "
            f"BEGIN {remove} END",
        ),
        (
            f"{index}_update",
            f"CREATE TRIGGER IF NOT EXISTS {index}_update AFTER UPDATE OF {names} ON "
            f"{article} BEGIN {remove} {add} END",
        ),
    ]


def _postgres_index(fields: tuple[str, ...]) -> list[tuple[str, str]]:
    document = " || ' ' || ".join(f"coalesce({f}, '')" for f in fields)
    return [
        (
            pg_index(fields),
            f"CREATE INDEX IF NOT EXISTS {pg_index(fields)} ON {ARTICLE_TABLE} USING gin "
            f"(to_tsvector('english', {document}))",
        )
    ]


def search_index_ddl(dialect: str) -> list[tuple[str, str]]:
    """``(name, statement)`` of each object of the search indexes on *dialect* (``sqlite`` or
    ``postgresql``); the migrations create the same ones."""
    make = {"sqlite": _sqlite_index, "postgresql": _postgres_index}.get(dialect)
    return [part for fields in SEARCH_SETS for part in make(fields)] if make else []


def ensure_search_index(raw: RawConnection) -> list[str]:
    """Create, through the help desk's raw API, the parts of the search indexes the database
    lacks (on SQLite, then rebuild each index from the articles). Returns one line per index
    made."""
    made = []
    for fields in SEARCH_SETS:
        if raw.dialect == "sqlite":
            if any([raw.ensure(name, statement) for name, statement in _sqlite_index(fields)]):
                raw.execute(sa.insert(_fts(fields)).values({fts_table(fields): "rebuild"}))
                made.append(f"knowledge base search index of {' and '.join(fields)} (FTS5) created")
        elif raw.dialect == "postgresql":
            if any([raw.ensure(name, statement) for name, statement in _postgres_index(fields)]):
                made.append(f"knowledge base search index of {' and '.join(fields)} (GIN) created")
    return made


@attrs.frozen
class Hit:
    """One search result: the article, its rank (higher is better) and the number of resolved
    tickets it helped."""

    article: Record
    rank: float
    helped: int = 0


def _terms(text: str, *, drop_common: bool) -> list[str]:
    words = [w.lower() for w in _WORD.findall(text or "")]
    if drop_common:
        words = [w for w in words if w not in STOP_WORDS and len(w) > 1]
    return list(dict.fromkeys(words))[:_MAX_TERMS]


def _match_sqlite(terms: list[str], *, any_term: bool) -> str:
    quoted = ['"' + t.replace('"', '""') + '"' for t in terms]
    if any_term:
        return " OR ".join(quoted)
    if len(terms[-1]) >= 3:
        quoted[-1] += "*"  # the last word may still be being typed
    return " ".join(quoted)


def _match_postgres(terms: list[str], *, any_term: bool) -> str:
    if any_term:
        return " | ".join(terms)
    return " & ".join([*terms[:-1], terms[-1] + (":*" if len(terms[-1]) >= 3 else "")])


def _searched(uow: UnitOfWork) -> tuple[str, ...]:
    """The searched fields the actor sees: a word only in a hidden field matches nothing."""
    hidden = uow.hidden_fields("kb_article")
    return tuple(name for name in _SEARCHED if name not in hidden)


def _postgres(uow: UnitOfWork) -> bool:
    return uow.crm.engine.dialect.name == "postgresql"


def _fts(fields: tuple[str, ...]) -> sa.TableClause:
    """The SQLite search index of *fields*, a table of the plugin's own: ``rowid`` is the
    article's id, and the column named like the table is the one ``MATCH`` and ``bm25`` take."""
    name = fts_table(fields)
    return sa.table(name, sa.column("rowid"), sa.column(name))


_TEXT = sa.bindparam("kb_match", type_=sa.String())
_ENGLISH = sa.literal_column("'english'")


def _document(columns: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    """PostgreSQL's document of the fields *names*: the expression of their GIN index."""
    parts = [sa.func.coalesce(columns[name], sa.literal_column("''")) for name in names]
    text = parts[0]
    for part in parts[1:]:
        text = text + sa.literal_column("' '") + part
    return sa.func.to_tsvector(_ENGLISH, text)


def _extension(uow: UnitOfWork, columns: tuple[str, ...]) -> dict[str, Any]:
    """The arguments of :meth:`~crmcore.query.Select.extend` that match the search text (the
    bound parameter ``kb_match``) in the fields *columns* and rank the matches (higher is
    better), from the index of exactly those fields: SQLite's FTS5 table joined on the article's
    id (``bm25`` counts the lengths of its own columns only); on PostgreSQL the document of the
    fields, its GIN index's expression."""
    if _postgres(uow):
        query = sa.func.to_tsquery(_ENGLISH, _TEXT)
        return {
            "where": lambda c: _document(c, columns).op("@@")(query),
            "columns": {"search_rank": lambda c: sa.func.ts_rank(_document(c, columns), query)},
        }
    table = _fts(columns)
    index = table.c[fts_table(columns)]
    weights = [_WEIGHTS[name] for name in columns]  # a word in the title counts five times
    return {
        "join": (table, "rowid"),
        "where": lambda c: index.op("MATCH")(_TEXT),
        "columns": {"search_rank": lambda c: -sa.func.bm25(index, *weights)},
    }


#: Search selects per unit of work, for its current access context (the actor's rights):
#: built once and run with the text as a parameter.
_SELECTS: weakref.WeakKeyDictionary[UnitOfWork, tuple[AccessContext, dict[Any, Any]]] = (
    weakref.WeakKeyDictionary()
)


def _select(
    uow: UnitOfWork, columns: tuple[str, ...], limit: int, *, published_only: bool
) -> Select:
    """The search: the best *limit* matches among the articles the actor may read, their
    visible fields and the tickets they helped (one statement). Built once per unit of work
    and access context (a change of the actor or its roles builds it again)."""
    access = uow.access
    held = _SELECTS.get(uow)
    if held is None or held[0] is not access:
        held = _SELECTS[uow] = (access, {})
    key = (columns, limit, published_only)
    select = held[1].get(key)
    if select is not None:
        return select  # type: ignore[no-any-return]
    hidden = uow.hidden_fields("kb_article")
    entity = uow.registry.entity("kb_article")
    fields = (*_SYSTEM, *(f.name for f in entity.fields if f.name not in hidden))
    select = uow.select("kb_article", fields=fields).extend("helpdesk", **_extension(uow, columns))
    try:
        links = _links(uow)

        def helped(c: Mapping[str, Any]) -> Any:
            return links.count_per("article_id", c["id"], distinct="ticket_id")

        select = select.extend("helpdesk", columns={"search_helped": helped})
    except PermissionDeniedError:  # the actor may not see what "helped" is made of
        pass
    if published_only:  # as a query filters, so a hidden status cannot be filtered on
        select = select.where(status="published")
    select = held[1][key] = select.order_by("-search_rank").limit(limit)
    return select


def _run(
    uow: UnitOfWork,
    terms: list[str],
    limit: int,
    *,
    any_term: bool,
    published_only: bool,
    exclude: Iterable[int] = (),
) -> list[Hit]:
    """One statement: the best *limit* matches of *terms*, in the fields the actor sees, among
    the articles it may read, with their helped counts."""
    columns = _searched(uow)
    if not terms or limit < 1 or not columns:
        return []
    if _postgres(uow):
        text = _match_postgres(terms, any_term=any_term)
    else:
        text = _match_sqlite(terms, any_term=any_term)
    select = _select(uow, columns, limit, published_only=published_only)
    skipped = sorted(set(exclude))
    if skipped:
        select = select.where(("id", "not in", skipped))
    hits = []
    for row in select.params(kb_match=text).all():
        rank, helped = row.pop("search_rank"), row.pop("search_helped", 0)
        hits.append(Hit(Record("kb_article", row), float(rank), int(helped or 0)))
    return hits


def _links(uow: UnitOfWork) -> Select:
    """The links of articles to resolved or closed tickets they helped, of the links and
    tickets the actor may read.

    :raises PermissionDeniedError: when ``ticket_article.helped`` or ``ticket.status`` is
        hidden from the actor, as a query filtering on them would.
    """
    return uow.select("ticket_article", fields=("article_id", "ticket_id")).where(
        {"any": [("helped", "is null"), ("helped", "=", True)]},
        ("ticket_id.status", "in", DONE_STAGES),
    )


def search(
    uow: UnitOfWork, text: str, limit: int = 10, *, published_only: bool = False
) -> list[Hit]:
    """The articles the actor may read that contain every word of *text* (the last word may be
    the start of a word), best first."""
    return _run(
        uow, _terms(text, drop_common=False), limit, any_term=False, published_only=published_only
    )


def suggest(uow: UnitOfWork, ticket: Record | int, limit: int = 5) -> list[Hit]:
    """Published articles that may answer *ticket*, from its subject and description (any of
    their significant words; the articles already used on the ticket are left out)."""
    record = uow.get("ticket", ticket if isinstance(ticket, int) else ticket.id)
    text = f"{record.subject} {record.values.get('description') or ''}"
    used = [
        link.values["article_id"]
        for link in uow.query("ticket_article").where(ticket_id=record.id)
        if link.values.get("article_id") is not None
    ]
    return _run(
        uow, _terms(text, drop_common=True), limit, any_term=True, published_only=True, exclude=used
    )


def helped_counts(uow: UnitOfWork, article_ids: Iterable[int] | None = None) -> dict[int, int]:
    """``{article id: resolved or closed tickets it helped}`` for *article_ids* (all when
    ``None``), counting the links and tickets the actor may read, in one grouped query.

    :raises PermissionDeniedError: when a field the count filters on is hidden from the actor.
    """
    links = _links(uow)
    if article_ids is not None:
        ids = sorted(set(article_ids))
        if not ids:
            return {}
        links = links.where(("article_id", "in", ids))
    counts: dict[int, int] = {}
    for row in links.group_by("article_id", "ticket_id").aggregate():  # one row per ticket
        counts[row["article_id"]] = counts.get(row["article_id"], 0) + 1
    return counts
