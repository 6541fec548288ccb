"""The knowledge base: full-text search kept in sync, suggestions for tickets, helped counts."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from helpdesk_support import SECURITY, open_ticket, users

from crm_helpdesk import kb, tickets

ARTICLES = (
    ("Printer prints blank labels", "Check the label size and update the printer driver."),
    (
        "Resetting your password",
        "Choose 'Forgot password' on the sign-in page and follow the e-mailed link.",
    ),
    ("Understanding your invoice", "Invoices list licences, usage and taxes per month."),
    ("Sync stops with error 504", "Lower the batch size of the synchronisation and run it again."),
)


def _library(crm: Any, actor: Any = None, *, publish: bool = True) -> list[int]:
    ids = []
    with crm.unit_of_work(actor) as uow:
        for title, body in ARTICLES:
            article = uow.create("kb_article", title=title, body=body)
            if publish:
                article = uow.move(article, "published")
            ids.append(article.id)
        uow.commit()
    return ids


def _titles(hits: list[kb.Hit]) -> list[str]:
    return [h.article.title for h in hits]


def test_search_finds_articles_by_every_word_best_first(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    _library(crm)
    with crm.unit_of_work() as uow:
        assert _titles(kb.search(uow, "printer driver")) == ["Printer prints blank labels"]
        assert _titles(kb.search(uow, "password link")) == ["Resetting your password"]
        assert kb.search(uow, "printer password") == []
        assert kb.search(uow, "   ") == []


def test_search_stems_words_and_completes_the_last_one(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    _library(crm)
    with crm.unit_of_work() as uow:
        assert _titles(kb.search(uow, "invoices")) == ["Understanding your invoice"]
        assert _titles(kb.search(uow, "synchron")) == ["Sync stops with error 504"]


def test_search_text_is_never_query_syntax(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    _library(crm)
    with crm.unit_of_work() as uow:
        for text in ('"', "NEAR(", "printer OR", "a:* & | !", "title:printer", "*", "-label"):
            kb.search(uow, text)  # no error
        assert _titles(kb.search(uow, "error 504")) == ["Sync stops with error 504"]


def test_the_index_follows_updates_and_deletes(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    printer, *_ = _library(crm)
    with crm.unit_of_work() as uow:
        uow.update(
            "kb_article", printer, title="Label printer troubleshooting", body="Replace the ribbon."
        )
        uow.commit()
    with crm.unit_of_work() as uow:
        assert kb.search(uow, "driver") == []
        assert _titles(kb.search(uow, "ribbon")) == ["Label printer troubleshooting"]
        uow.delete("kb_article", printer)
        uow.commit()
    with crm.unit_of_work() as uow:
        assert kb.search(uow, "ribbon") == []


def test_search_shows_only_what_the_actor_may_read(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"], security=SECURITY)
    ann, bob = users(crm, "ann", "bob", roles=("support_agent",))
    (lee,) = users(crm, "lee", roles=("support_lead",))
    _library(crm, ann, publish=False)
    with crm.unit_of_work(bob) as uow:
        assert kb.search(uow, "password") == []
    with crm.unit_of_work(ann) as uow:
        assert _titles(kb.search(uow, "password")) == ["Resetting your password"]
        assert kb.search(uow, "password", published_only=True) == []
    with crm.unit_of_work(lee) as uow:
        article = kb.search(uow, "password")[0].article
        uow.move(article, "published")
        uow.commit()
    with crm.unit_of_work(bob) as uow:
        assert _titles(kb.search(uow, "password")) == ["Resetting your password"]


def test_suggestions_come_from_the_tickets_words_and_skip_drafts_and_used_articles(
    crm_factory: Any,
) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    printer, password, *_ = _library(crm)
    with crm.unit_of_work() as uow:
        uow.create("kb_article", title="Printer drafts", body="An unpublished note on the printer.")
        uow.commit()
    ticket = open_ticket(
        crm, "The printer prints nothing", description="Since this morning, blank labels only."
    )
    with crm.unit_of_work() as uow:
        assert _titles(kb.suggest(uow, ticket)) == ["Printer prints blank labels"]
        uow.create("ticket_article", ticket_id=ticket.id, article_id=printer)
        assert kb.suggest(uow, ticket.id) == []
    assert password != printer


def test_each_article_counts_the_resolved_tickets_it_helped(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    printer, password, *_ = _library(crm)
    solved = [open_ticket(crm, f"Printer {n}") for n in range(3)]
    pending = open_ticket(crm, "Printer again")
    with crm.unit_of_work() as uow:
        for ticket in solved:
            tickets.resolve(uow, ticket, articles=[printer])
        uow.create("ticket_article", ticket_id=pending.id, article_id=printer)
        uow.create("ticket_article", ticket_id=solved[1].id, article_id=password, helped=False)
        uow.commit()
    with crm.unit_of_work() as uow:
        assert kb.helped_counts(uow) == {printer: 3}
        assert kb.search(uow, "printer")[0].helped == 3


def test_the_seed_rebuilds_a_missing_search_index(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    _library(crm)
    with crm.connect() as connection, connection.begin():
        for fields in kb.SEARCH_SETS:
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql(f"DROP TRIGGER {kb.fts_table(fields)}_update")
                connection.exec_driver_sql(f"DROP TABLE {kb.fts_table(fields)}")
            else:
                connection.exec_driver_sql(f"DROP INDEX {kb.pg_index(fields)}")
    assert len([line for line in crm.seed() if "search index" in line]) == len(kb.SEARCH_SETS)
    assert not any("search index" in line for line in crm.seed())
    with crm.unit_of_work() as uow:
        assert _titles(kb.search(uow, "password")) == ["Resetting your password"]


def test_there_is_a_search_index_for_each_set_of_visible_fields_and_it_is_used(
    crm_factory: Any,
) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    with crm.connect() as connection:
        if connection.dialect.name != "postgresql":
            names = set(connection.execute(sa.text("SELECT name FROM sqlite_master")).scalars())
            for fields in kb.SEARCH_SETS:
                table = kb.fts_table(fields)
                made = {table, f"{table}_insert", f"{table}_delete", f"{table}_update"}
                assert made <= names
            return
        connection.exec_driver_sql("SET enable_seqscan = off")
        for fields in kb.SEARCH_SETS:
            document = " || ' ' || ".join(
                f"coalesce(helpdesk_kb_article.{f}, '')" for f in fields
            )
            plan = "\n".join(
                connection.exec_driver_sql(
                    f"EXPLAIN SELECT id FROM helpdesk_kb_article WHERE to_tsvector('english', "
                    f"{document}) @@ to_tsquery('english', 'printer')"
                ).scalars()
            )
            assert kb.pg_index(fields) in plan
