"""``quotes_from_opportunities``: N quotes (default 10,000) with 5 lines each made from
opportunities with ``crm_orders.quotes.quotes_from_opportunities`` in one unit of work: the
opportunities and their lines read, every line priced by the catalog (a segment price list by
product group, customer discounts) with its price snapshot, the quotes and lines written with
their hooks and audit, the totals computed by the totals engine, the opportunities' amounts
set to their quotes' net totals. Target: at least 2,000 quotes/s on SQLite.

Floor: the same work by hand with the driver, in one transaction: the opportunity lines,
products, groups and price list lines read; each line priced list price less its group's
discount less the account's discount; the quotes' totals summed in Python; the quotes and lines
inserted with ``executemany``; the opportunities' amounts updated with ``executemany``.

Needs plugins/catalog, plugins/outbox and plugins/orders installed.
"""

from __future__ import annotations

import datetime as dt
import decimal
import random
import time
from typing import Any

from common import Result, fresh_url, is_postgres, peak_rss_mb, raw_connection

from crmcore import create_app
from crmcore.app import Crm

__all__ = ["run"]

PRODUCTS = 200
GROUPS = 10
ACCOUNTS = 1_000
LINES = 5
_HUNDRED = decimal.Decimal(100)
_CENT = decimal.Decimal("0.01")


def run(name: str, rows: int, url: str | None, workdir: str) -> Result:
    with fresh_url(url, workdir, "orders") as database:
        app = _app(database)
        try:
            opportunities = _generate(app, rows)
            started, cpu = time.perf_counter(), time.process_time()
            with app.unit_of_work() as uow:
                from crm_orders.quotes import quotes_from_opportunities

                made = quotes_from_opportunities(uow, opportunities)
                uow.commit()
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            peak = peak_rss_mb()
            with app.unit_of_work() as uow:
                lines = uow.select("quote_line").count()
            if len(made) != rows or lines != rows * LINES:
                raise SystemExit(f"{name}: expected {rows} quotes and {rows * LINES} lines, got {len(made)} and {lines}")
        finally:
            app.close()
    with fresh_url(url, workdir, "orders-floor") as database:
        app = _app(database)
        try:
            opportunities = _generate(app, rows)
            floor_seconds = _floor(app, url)
        finally:
            app.close()
    outcome = Result.make(name, rows, seconds, floor_seconds, peak)
    outcome.update(lines_per_quote=LINES, target_rows_per_s=2_000, cpu_rows_per_s=round(rows / cpu, 1) if cpu else None)
    return outcome


def _app(database: str) -> Crm:
    app = create_app({"crm": {"database": database, "plugins": ["orders"]}})
    app.create_schema()
    return app


def _generate(app: Crm, rows: int) -> list[int]:
    rng = random.Random(42)
    with app.unit_of_work() as uow:
        groups = uow.create_many("product_group", [{"name": f"Group {i}", "code": f"G{i}"} for i in range(GROUPS)])
        tax = uow.create("tax_category", code="VAT", rate="19.00")
        products = uow.create_many("product", [
            {"code": f"P{i:04d}", "name": f"Product {i}", "group_id": groups[i % GROUPS].id, "tax_category_id": tax.id,
             "list_price": f"{rng.randint(500, 200_000) / 100:.2f} EUR"} for i in range(PRODUCTS)])
        accounts = uow.create_many("account", [{"name": f"Account {i}", "segment": "industry"} for i in range(ACCOUNTS)])
        segment = uow.create("price_list", name="Industry", currency="EUR", segment="industry")
        uow.create_many("price_list_line", [{"price_list_id": segment.id, "group_id": g.id, "priority": 10,
                                             "discount_percent": str(1 + n)} for n, g in enumerate(groups)])
        uow.create_many("customer_discount", [{"account_id": accounts[i].id, "percent": "3"} for i in range(0, ACCOUNTS, 4)])
        opportunities = uow.create_many("opportunity", [
            {"name": f"Deal {n}", "account_id": accounts[n % ACCOUNTS].id, "stage": "rfp_received", "amount": "1.00 EUR"}
            for n in range(rows)])
        uow.create_many("opportunity_line", [
            {"opportunity_id": o.id, "product_id": products[(o.id * 7 + k) % PRODUCTS].id,
             "product": f"Product {(o.id * 7 + k) % PRODUCTS}", "quantity": 1 + (o.id + k) % 9,
             "unit_price": "1.00 EUR", "position": k + 1}
            for o in opportunities for k in range(LINES)])
        uow.commit()
    return [o.id for o in opportunities]


def _floor(app: Crm, url: str | None) -> float:
    postgres = is_postgres(url)
    mark = "%s" if postgres else "?"
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    today = now.date()
    started = time.perf_counter()
    with raw_connection(app) as connection:
        cursor = connection.cursor()
        if not postgres:
            cursor.execute("BEGIN")
        cursor.execute("SELECT id, group_id, list_price, tax_category_id, name FROM catalog_product")
        products = {pid: (gid, decimal.Decimal(price).scaleb(-2), tax, name) for pid, gid, price, tax, name in cursor.fetchall()}
        cursor.execute("SELECT id, code, rate FROM catalog_tax_category")
        taxes = {tid: (code, decimal.Decimal(rate).scaleb(-2)) for tid, code, rate in cursor.fetchall()}
        cursor.execute("SELECT group_id, discount_percent FROM catalog_price_list_line")
        group_discount = {gid: decimal.Decimal(d).scaleb(-4) for gid, d in cursor.fetchall()}
        cursor.execute("SELECT account_id, percent FROM catalog_customer_discount")
        account_discount = {aid: decimal.Decimal(p).scaleb(-2) for aid, p in cursor.fetchall()}
        cursor.execute("SELECT o.id, o.account_id, o.name, l.id, l.catalog_product_id, l.quantity FROM crm_opportunity o "
                       "JOIN crm_opportunity_line l ON l.opportunity_id = o.id ORDER BY o.id, l.position")
        deals: dict[int, list[Any]] = {}
        for opportunity_id, account_id, name, line_id, product_id, quantity in cursor.fetchall():
            deals.setdefault(opportunity_id, [account_id, name, []])[2].append((line_id, product_id, decimal.Decimal(quantity).scaleb(-2)))
        cursor.execute("SELECT coalesce(max(id), 0) FROM orders_quote")
        next_id = cursor.fetchone()[0] + 1
        quotes, lines, amounts = [], [], []
        for quote_id, (opportunity_id, (account_id, name, wanted)) in enumerate(deals.items(), start=next_id):
            net = tax_total = decimal.Decimal(0)
            for position, (line_id, product_id, quantity) in enumerate(wanted, start=1):
                group_id, price, tax_id, product_name = products[product_id]
                unit = (price * (1 - group_discount.get(group_id, 0) / _HUNDRED)).quantize(_CENT)
                off = account_discount.get(account_id, decimal.Decimal(0))
                line_net = (quantity * unit * (1 - off / _HUNDRED)).quantize(_CENT)
                code, rate = taxes[tax_id]
                net += line_net
                tax_total += (line_net * rate / _HUNDRED).quantize(_CENT)
                lines.append((now, now, quote_id, position, product_id, product_name, int(quantity.scaleb(4)),
                              int(unit.scaleb(4)), "EUR", f'["{off}"]' if off else "[]", code, int(rate.scaleb(4)), line_id))
            quotes.append((quote_id, now, now, f"Quote: {name}", account_id, opportunity_id, "draft", today, 1, True, "EUR",
                           "line", "half_up", 2, today, int(net.scaleb(2)), "EUR", int(net.scaleb(2)), "EUR",
                           int(tax_total.scaleb(2)), "EUR", int((net + tax_total).scaleb(2)), "EUR"))
            amounts.append((int(net.scaleb(2)), "EUR", opportunity_id))
        cursor.executemany(
            "INSERT INTO orders_quote (id, created_at, updated_at, title, account_id, opportunity_id, state, valid_until, "
            "version_number, is_current, currency, rounding_mode, rounding_method, rounding_places, pricing_date, subtotal, "
            "subtotal_currency, net_total, net_total_currency, tax_total, tax_total_currency, grand_total, grand_total_currency) "
            f"VALUES ({', '.join([mark] * 23)})", quotes)
        cursor.executemany(
            "INSERT INTO orders_quote_line (created_at, updated_at, quote_id, position, product_id, description, quantity, "
            "unit_price, unit_price_currency, discounts, tax_code, tax_rate, opportunity_line_id) "
            f"VALUES ({', '.join([mark] * 13)})", lines)
        cursor.executemany(f"UPDATE crm_opportunity SET amount = {mark}, amount_currency = {mark} WHERE id = {mark}", amounts)
        if postgres:
            connection.commit()
        else:
            cursor.execute("COMMIT")
        cursor.close()
    return time.perf_counter() - started
