"""The knowledge base: full-text search over articles, suggestions for tickets, and how many
tickets each article helped resolve.

The search index lives in the database, beside ``helpdesk_kb_article``:

- on SQLite, an FTS5 table ``helpdesk_kb_article_fts`` over the article's title and body
  (external content, Porter stemming), kept in sync by three triggers;
- on PostgreSQL, a GIN index over ``to_tsvector('english', title || ' ' || body)``.

The plugin's migration creates it; :func:`ensure_search_index` (run by the seed, after every
``crm db upgrade`` and :meth:`~crmcore.Crm.create_schema`) creates what is missing and rebuilds
the SQLite index when its triggers had to be made again.

Every search is one SQL statement: the text match, the actor's read predicate (the access
restriction of the plugin lets only authors and publishers see unpublished articles) and the
ranking, so no article is loaded that the actor may not read.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa
from crmcore.errors import PermissionDeniedError
from crmcore.records import Record

from crm_helpdesk.entities import DONE_STAGES

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.security import AccessContext

__all__ = [
    "FTS_TABLE",
    "PG_INDEX",
    "Hit",
    "ensure_search_index",
    "helped_counts",
    "search",
    "search_index_ddl",
    "suggest",
]

ARTICLE_TABLE = "helpdesk_kb_article"
FTS_TABLE = "helpdesk_kb_article_fts"
PG_INDEX = "ix_helpdesk_kb_article_search"
_TRIGGERS = (f"{FTS_TABLE}_insert", f"{FTS_TABLE}_delete", f"{FTS_TABLE}_update")
_SEARCHED = ("title", "body")
_DOCUMENT = "coalesce({t}title, '') || ' ' || coalesce({t}body, '')"
_WORD = re.compile(r"\w+", re.UNICODE)
_MAX_TERMS = 24
#: Words too common to suggest an article by.
STOP_WORDS = frozenset(
    """a an and are as at be but by can cannot could did do does for from had has have he her his
    how i if in into is it its me my no not of on or our please she so that the their them then
    there these they this to us was we were what when where which who why will with would you
    your hi hello thanks thank regards dear""".split()
)


def search_index_ddl(dialect: str) -> list[str]:
    """The statements that create the search index on *dialect* (``sqlite`` or
    ``postgresql``); the migration holds the same ones."""
    if dialect == "sqlite":
        index, article = FTS_TABLE, ARTICLE_TABLE
        add = f"INSERT INTO {index}(rowid, title, body) VALUES (new.id, new.title, new.body);"
        remove = (
            f"INSERT INTO {index}({index}, rowid, title, body) "
            "VALUES ('delete', old.id, old.title, old.body);"
        )
        return [
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {index} USING fts5(title, body, "
            f"content='{article}', content_rowid='id', "
            "tokenize='porter unicode61 remove_diacritics 2')",
            f"CREATE TRIGGER IF NOT EXISTS {_TRIGGERS[0]} AFTER INSERT ON {article} "
            f"BEGIN {add} END",
            f"CREATE TRIGGER IF NOT EXISTS {_TRIGGERS[1]} AFTER DELETE ON {article} "
            f"BEGIN {remove} END",
            f"CREATE TRIGGER IF NOT EXISTS {_TRIGGERS[2]} AFTER UPDATE OF title, body ON {article} "
            f"BEGIN {remove} {add} END",
        ]
    if dialect == "postgresql":
        return [
            f"CREATE INDEX IF NOT EXISTS {PG_INDEX} ON {ARTICLE_TABLE} USING gin "
            f"(to_tsvector('english', {_DOCUMENT.format(t='')}))"
        ]
    return []


def ensure_search_index(connection: sa.Connection) -> list[str]:
    """Create the parts of the search index the database lacks (on SQLite, then rebuild it
    from the articles). Returns one line per thing made."""
    dialect = connection.dialect.name
    if dialect == "sqlite":
        names = (FTS_TABLE, *_TRIGGERS)
        present = set(
            connection.execute(
                sa.text("SELECT name FROM sqlite_master WHERE name IN (:a, :b, :c, :d)"),
                dict(zip("abcd", names, strict=True)),
            ).scalars()
        )
        if present == set(names):
            return []
        for statement in search_index_ddl(dialect):
            connection.exec_driver_sql(statement)
        connection.exec_driver_sql(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")
        return ["knowledge base search index (FTS5) created"]
    if dialect == "postgresql":
        found = connection.execute(
            sa.text(
                "SELECT 1 FROM pg_indexes WHERE indexname = :name AND schemaname = current_schema()"
            ),
            {"name": PG_INDEX},
        ).scalar()
        if found:
            return []
        for statement in search_index_ddl(dialect):
            connection.exec_driver_sql(statement)
        return ["knowledge base search index (GIN) created"]
    return []


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


def _match_sqlite(terms: list[str], *, any_term: bool, columns: tuple[str, ...]) -> str:
    quoted = ['"' + t.replace('"', '""') + '"' for t in terms]
    if any_term:
        text = " OR ".join(quoted)
    else:
        if len(terms[-1]) >= 3:
            quoted[-1] += "*"  # the last word may still be being typed
        text = " ".join(quoted)
    if columns == _SEARCHED:
        return text
    return "{" + " ".join(columns) + "} : (" + text + ")"  # the visible columns only


def _match_postgres(terms: list[str], *, any_term: bool) -> str:
    if any_term:
        return " | ".join(terms)
    return " & ".join([*terms[:-1], terms[-1] + (":*" if len(terms[-1]) >= 3 else "")])


def _searched(uow: UnitOfWork) -> tuple[str, ...]:
    """The searched fields the actor sees: a word only in a hidden field matches nothing."""
    hidden = uow.hidden_fields("kb_article")
    return tuple(name for name in _SEARCHED if name not in hidden)


def _ranked(uow: UnitOfWork, columns: tuple[str, ...]) -> tuple[Any, Any, Any]:
    """(FROM clause, match condition, rank expression: higher is better) of the search text
    (the bound parameter ``kb_match``) in the fields *columns* (some of ``title`` and ``body``)."""
    article = uow.registry.table("kb_article")
    text = sa.bindparam("kb_match", type_=sa.String())
    if uow.connection.dialect.name == "postgresql":
        document: sa.ColumnElement[Any] = sa.literal_column(
            f"to_tsvector('english', {_DOCUMENT.format(t=ARTICLE_TABLE + '.')})"
        )
        query = sa.func.to_tsquery(sa.literal_column("'english'"), text)
        # the indexed document finds the candidates
        match: sa.ColumnElement[Any] = document.op("@@")(query)
        if columns != _SEARCHED:  # which must match in the visible fields alone
            visible = " || ' ' || ".join(f"coalesce({ARTICLE_TABLE}.{c}, '')" for c in columns)
            document = sa.literal_column(f"to_tsvector('english', {visible})")
            match = sa.and_(match, document.op("@@")(query))
        return article, match, sa.func.ts_rank(document, query)
    fts = sa.table(FTS_TABLE, sa.column("rowid"))
    match = sa.literal_column(FTS_TABLE).op("MATCH")(text)
    rank = -sa.func.bm25(sa.literal_column(FTS_TABLE), 5.0, 1.0)  # title counts five times
    return fts.join(article, article.c.id == fts.c.rowid), match, rank


#: Search statements per unit of work, for its current access context (the actor's rights):
#: built once and run with the text, limit and left-out ids as parameters.
_STATEMENTS: weakref.WeakKeyDictionary[UnitOfWork, tuple[AccessContext, dict[Any, Any]]] = (
    weakref.WeakKeyDictionary()
)


def _statement(
    uow: UnitOfWork, columns: tuple[str, ...], *, published_only: bool, skipping: bool
) -> sa.Select[Any]:
    """The search statement: the best ``kb_limit`` matches the actor may read (inner query),
    then their rows and helped counts (computed for those rows only). Built once per unit of
    work and access context (a change of the actor or its roles builds it again)."""
    access = uow.access
    held = _STATEMENTS.get(uow)
    if held is None or held[0] is not access:
        held = _STATEMENTS[uow] = (access, {})
    key = (columns, published_only, skipping)
    statement = held[1].get(key)
    if statement is not None:
        return statement  # type: ignore[no-any-return]
    article = uow.registry.table("kb_article")
    source, match, rank = _ranked(uow, columns)
    best = (
        sa.select(article.c.id.label("article_id"), rank.label("search_rank"))
        .select_from(source)
        .where(match, uow.read_filter("kb_article", article))
        .order_by(sa.desc("search_rank"), article.c.id)
        .limit(sa.bindparam("kb_limit", type_=sa.Integer()))
    )
    if published_only:  # as a query filters, so a hidden status cannot be filtered on
        best = best.where(*uow.query("kb_article").where(status="published").conditions)
    if skipping:
        best = best.where(article.c.id.not_in(sa.bindparam("kb_skip", expanding=True)))
    found = best.subquery("best")
    try:
        helped: Any = (
            _helped(uow)
            .where(uow.registry.table("ticket_article").c.article_id == found.c.article_id)
            .scalar_subquery()
        )
    except PermissionDeniedError:  # the actor may not see what "helped" is made of
        helped = sa.literal(0)
    statement = held[1][key] = (
        sa.select(article, found.c.search_rank, helped.label("search_helped"))
        .join(found, found.c.article_id == article.c.id)
        .order_by(found.c.search_rank.desc(), article.c.id)
    )
    return statement


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
    if uow.connection.dialect.name == "postgresql":
        text = _match_postgres(terms, any_term=any_term)
    else:
        text = _match_sqlite(terms, any_term=any_term, columns=columns)
    skipped = sorted(set(exclude))
    statement = _statement(uow, columns, published_only=published_only, skipping=bool(skipped))
    parameters: dict[str, Any] = {"kb_match": text, "kb_limit": limit}
    if skipped:
        parameters["kb_skip"] = skipped
    entity = uow.registry.entity("kb_article")
    hidden = uow.hidden_fields("kb_article")
    hits = []
    for row in uow.connection.execute(statement, parameters).mappings():
        values = {
            name: row[name]
            for name in ("id", "version", "created_at", "updated_at", "created_by", "updated_by")
        }
        values.update(
            (f.name, f.type.from_db(row, f.column)) for f in entity.fields if f.name not in hidden
        )
        hits.append(
            Hit(
                Record("kb_article", values),
                float(row["search_rank"]),
                int(row["search_helped"] or 0),
            )
        )
    return hits


def _helped(uow: UnitOfWork) -> sa.Select[Any]:
    """Counts the resolved or closed tickets an article helped, of the links and tickets the
    actor may read (add the article condition).

    :raises PermissionDeniedError: when ``ticket_article.helped`` or ``ticket.status`` is
        hidden from the actor, as a query filtering on them would.
    """
    link, ticket = uow.registry.table("ticket_article"), uow.registry.table("ticket")
    links = uow.query("ticket_article").where(
        {"any": [("helped", "is null"), ("helped", "=", True)]}
    )
    done = uow.query("ticket").where(("status", "in", DONE_STAGES))
    return (
        sa.select(sa.func.count(sa.distinct(link.c.ticket_id)))
        .select_from(link.join(ticket, ticket.c.id == link.c.ticket_id))
        .where(
            uow.read_filter("ticket_article", link),
            uow.read_filter("ticket", ticket),
            *links.conditions,
            *done.conditions,
        )
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
    link = uow.registry.table("ticket_article")
    statement = _helped(uow).add_columns(link.c.article_id).group_by(link.c.article_id)
    if article_ids is not None:
        ids = sorted(set(article_ids))
        if not ids:
            return {}
        statement = statement.where(link.c.article_id.in_(ids))
    return {int(a): int(n) for n, a in uow.connection.execute(statement)}
