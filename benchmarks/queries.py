"""``list_page`` and ``aggregate``: the query API over N opportunities against hand-written SQL.

The opportunities (and 1,000 accounts they belong to) are generated in the database itself with
one set-based ``INSERT ... SELECT`` (a recursive CTE on SQLite, ``generate_series`` on
PostgreSQL), then the tables are analysed. Amounts are spread over 0 to 100,000 USD, stages
cycle through the eight core stages.

``list_page``: ``uow.query("opportunity").where(("amount", ">", 50000), stage="rfp_received")
.order_by("-amount").page(50)``, records built; floor: ``SELECT * ... WHERE amount > 5000000
AND stage = 'rfp_received' ORDER BY amount DESC, id LIMIT 50`` fetched with the driver.

``list_page_fields``: the ``list_page`` query with a projection of the 7 fields a list page
shows, ``.fields("name", "account_id", "amount", "close_date", "stage", "probability",
"owner_id")``; floor: the same ``SELECT`` of those columns (with ``id`` and the amount's
currency).

``aggregate``: ``uow.query("opportunity").aggregate(group_by=["stage"], sum=["amount"])``
(exact money sums per stage); floor: ``SELECT stage, amount_currency, count(*), sum(amount)
... GROUP BY stage, amount_currency`` fetched with the driver.

Both report the median latency of several runs after a warm-up, each side inside one open
transaction (a unit of work for crmcore, the driver's for the floor), so the comparison is the
query itself, not connecting; ``rows`` is what one run reads: the page size for ``list_page``,
the table size for ``aggregate``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from common import Result, fresh_app, is_postgres, median_seconds, peak_rss_mb, raw_connection

from crmcore.app import Crm

#: The fields of the list_page_fields projection.
PAGE_FIELDS = ("name", "account_id", "amount", "close_date", "stage", "probability", "owner_id")
STAGES = ("initiation", "identification", "qualification", "rfp_received", "quotation_sent", "final_stage", "won", "lost")
PAGE = 50


def generate(app: Crm, rows: int) -> None:
    """*rows* opportunities and 1,000 accounts, written by the database in two statements."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    stages = "CASE n % 8 " + " ".join(f"WHEN {i} THEN '{s}'" for i, s in enumerate(STAGES)) + " END"
    with app.connect() as connection, connection.begin():
        if is_postgres(str(app.engine.url)):
            series = "generate_series(1, :count) AS s(n)"
            close = "DATE '2026-01-01' + (n % 365)"
            accounts = f"INSERT INTO crm_account (id, version, created_at, updated_at, name) SELECT n, 1, :now, :now, 'Account ' || n FROM {series}"
            deals = (
                "INSERT INTO crm_opportunity (id, version, created_at, updated_at, name, account_id, amount, "
                "amount_currency, close_date, stage, probability) "
                f"SELECT n, 1, :now, :now, 'Deal ' || n, 1 + n % 1000, (n * 7919::bigint) % 10000000, 'USD', {close}, "
                f"{stages}, n % 100 FROM {series}"
            )
        else:
            series = "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < :count) SELECT n FROM s)"
            close = "date('2026-01-01', '+' || (n % 365) || ' days')"
            accounts = f"INSERT INTO crm_account (id, version, created_at, updated_at, name) SELECT n, 1, :now, :now, 'Account ' || n FROM {series}"
            deals = (
                "INSERT INTO crm_opportunity (id, version, created_at, updated_at, name, account_id, amount, "
                "amount_currency, close_date, stage, probability) "
                f"SELECT n, 1, :now, :now, 'Deal ' || n, 1 + n % 1000, (n * 7919) % 10000000, 'USD', {close}, "
                f"{stages}, n % 100 FROM {series}"
            )
        stamp = now if is_postgres(str(app.engine.url)) else now.isoformat(" ")
        connection.execute(sa.text(accounts), {"count": 1000, "now": stamp})
        connection.execute(sa.text(deals), {"count": rows, "now": stamp})
    with app.connect() as connection, connection.begin():
        for table in ("crm_account", "crm_opportunity"):
            connection.exec_driver_sql(f"ANALYZE {table}")
    if is_postgres(str(app.engine.url)):
        with app.connect() as connection, connection.begin():
            for table in ("crm_account", "crm_opportunity"):
                connection.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))


def run(name: str, rows: int, url: str | None, workdir: str) -> Result:
    with fresh_app(url, workdir, name) as app:
        generate(app, rows)
        if name == "list_page":
            return _list_page(app, rows, url)
        if name == "list_page_fields":
            return _list_page(app, rows, url, PAGE_FIELDS)
        return _aggregate(app, rows, url)


def _list_page(app: Crm, rows: int, url: str | None, fields: tuple[str, ...] = ()) -> Result:
    """The list page, of whole records or (with *fields*) of a projection."""
    columns = ", ".join(("id", *fields, "amount_currency")) if fields else "*"
    statement = (
        f"SELECT {columns} FROM crm_opportunity WHERE amount > {{p}} AND stage = {{p}} ORDER BY amount DESC, id LIMIT 50"
    )
    with app.unit_of_work() as uow:
        query = uow.query("opportunity")
        if fields:
            query = query.fields(*fields)

        def crmcore() -> Any:
            page = query.where(("amount", ">", 50000), stage="rfp_received").order_by("-amount").page(PAGE)
            assert len(page.records) == PAGE
            return page

        seconds = median_seconds(crmcore, 15)
    peak = peak_rss_mb()
    with raw_connection(app) as connection:
        floor = median_seconds(lambda: _fetch(connection, statement, (5000000, "rfp_received"), url), 15)
    result = Result.make("list_page_fields" if fields else "list_page", PAGE, seconds, floor, peak)
    result["table_rows"] = rows
    return result


def _aggregate(app: Crm, rows: int, url: str | None) -> Result:
    statement = (
        "SELECT stage, amount_currency, count(*), sum(amount) FROM crm_opportunity GROUP BY stage, amount_currency"
    )
    with app.unit_of_work() as uow:

        def crmcore() -> Any:
            totals = uow.query("opportunity").aggregate(group_by=["stage"], sum=["amount"])
            assert len(totals) == len(STAGES)
            return totals

        seconds = median_seconds(crmcore, 7)
    peak = peak_rss_mb()
    with raw_connection(app) as connection:
        floor = median_seconds(lambda: _fetch(connection, statement, (), url), 7)
    return Result.make("aggregate", rows, seconds, floor, peak)


def _fetch(connection: Any, statement: str, params: tuple[Any, ...], url: str | None) -> list[Any]:
    """Run *statement* with the driver and fetch every row (in the connection's open
    transaction, as the query API runs in its unit of work's)."""
    text = statement.replace("{p}", "%s" if is_postgres(url) else "?")
    cursor = connection.cursor()
    try:
        cursor.execute(text, params)
        return cursor.fetchall()  # type: ignore[no-any-return]
    finally:
        cursor.close()
