"""``price_lines``: the catalog plugin (``plugins/catalog``, installed) pricing quote lines.

The catalog: 5,000 products in 50 leaf groups under 10 top groups; 1,000 accounts in 10
segments; 50 price lists of 1,000 lines each (one for everyone, 9 for segments, 40 for single
accounts; exclusive, cumulative and best-for-customer stacking): per list 900 product lines,
49 quantity breaks on the same products at a higher priority, 50 group lines and one line for
everything, with discounts, surcharges, rounding and margin clamps; manual customer discounts
for 200 accounts. N quote lines (default 100,000), five per quote of a random account, of
products drawn with a Zipf-like popularity and random quantities, are priced with one :func:`crm_catalog.pricing.price_lines` call in a unit of work of the
system actor (every step explained, a snapshot-ready :class:`~crm_catalog.pricing.PricedLine`
per line). Target: at least 100,000 lines/s on SQLite.

Floor: the lines, lists, products and accounts read with the driver in one statement each,
then a hand-written resolution in Python (per line: the account's lists in order, the first
matching line by priority, the list price less its discount), without explanations, rounding,
clamps, stacking or customer discounts; ``ratio_to_floor`` is crmcore's rate over this one's.
The result also notes the processor time of both (``cpu_seconds``, ``floor_cpu_seconds``,
``cpu_rows_per_s``): on a shared machine the wall time of one run varies more than it does.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import random
import time
from typing import Any

from common import Result, fresh_url, peak_rss_mb, raw_connection

from crmcore import create_app
from crmcore.app import Crm

PRODUCTS = 5_000
ACCOUNTS = 1_000
LISTS = 50
DAY = dt.date(2026, 6, 1)
_HUNDRED = decimal.Decimal(100)
_CENT = decimal.Decimal("0.01")


def run(name: str, rows: int, url: str | None, workdir: str) -> Result:
    with fresh_url(url, workdir, "catalog") as database:
        app = create_app({"crm": {"database": database, "plugins": ["catalog"]}})
        try:
            app.create_schema()
            accounts, products = _generate(app)
            requests = _requests(rows, accounts, products)
            seconds, cpu, priced = _crmcore(app, requests)
            floor_cpu = time.process_time()
            floor_seconds, floor_priced = _floor(app, requests)
            floor_cpu = time.process_time() - floor_cpu
        finally:
            app.close()
    assert len(priced) == len(floor_priced) == rows
    outcome = Result.make(name, rows, seconds, floor_seconds, peak_rss_mb())
    outcome.update(cpu_seconds=round(cpu, 4), floor_cpu_seconds=round(floor_cpu, 4),
                   cpu_rows_per_s=round(rows / cpu, 1) if cpu else None, price_lists=LISTS, lines_per_list=1_000, products=PRODUCTS, target_rows_per_s=100_000,
                   steps=sum(len(p.steps) for p in priced))
    return outcome


def _requests(rows: int, accounts: list[int], products: list[int]) -> list[tuple[int, decimal.Decimal, int]]:
    """*rows* quote lines, five per quote: each quote for a random account, its products drawn
    with a Zipf-like popularity (the k-th product weighs 1/k, so a fifth of the catalog makes
    about four fifths of the lines, as in sales), quantities from 1 to 20."""
    rng = random.Random(7)
    weights = list(itertools.accumulate(1 / (k + 1) for k in range(len(products))))
    order = rng.sample(products, len(products))
    requests = []
    while len(requests) < rows:
        account = rng.choice(accounts)
        for product in rng.choices(order, cum_weights=weights, k=min(5, rows - len(requests))):
            requests.append((product, decimal.Decimal(rng.randint(1, 20)), account))
    return requests


def _generate(app: Crm) -> tuple[list[int], list[int]]:
    rng = random.Random(42)
    with app.unit_of_work() as uow:
        tops = uow.create_many("product_group", [{"name": f"Group {i}", "code": f"G{i}"} for i in range(10)])
        leaves = uow.create_many("product_group", [
            {"name": f"Group {i // 5}.{i % 5}", "code": f"G{i // 5}.{i % 5}", "parent_id": tops[i // 5].id}
            for i in range(50)])
        tax = uow.create("tax_category", code="VAT", rate="19.00")
        products = uow.create_many("product", [
            {"code": f"P{i:05d}", "name": f"Product {i}", "group_id": leaves[i % 50].id, "tax_category_id": tax.id,
             "list_price": f"{rng.randint(500, 200_000) / 100:.2f} EUR",
             "cost": f"{rng.randint(200, 100_000) / 100:.2f} EUR"} for i in range(PRODUCTS)])
        accounts = uow.create_many("account", [{"name": f"Account {i}", "segment": f"seg{i % 10}"}
                                              for i in range(ACCOUNTS)])
        lists = []
        for n in range(LISTS):
            audience: dict[str, Any] = {}
            if 1 <= n <= 9:
                audience = {"segment": f"seg{n}"}
            elif n >= 10:
                audience = {"account_id": accounts[n - 10].id}
            stacking = ("exclusive", "exclusive", "cumulative", "best_for_customer")[n % 4]
            lists.append(uow.create("price_list", name=f"List {n}", currency="EUR", stacking=stacking, **audience))
        for price_list in lists:
            chosen = rng.sample(range(PRODUCTS), 900)
            lines: list[dict[str, Any]] = []
            for k, i in enumerate(chosen):
                line: dict[str, Any] = {"price_list_id": price_list.id, "product_id": products[i].id, "priority": 100,
                                        "discount_percent": str(rng.randint(0, 30))}
                if k % 5 == 0:
                    line["rounding"] = "0.05"
                if k % 7 == 0:
                    line["min_margin_percent"] = "10"
                if k % 11 == 0:
                    line.update(base="cost", surcharge="2.50 EUR", discount_percent=None)
                lines.append(line)
            lines += [{"price_list_id": price_list.id, "product_id": products[i].id, "priority": 200,
                       "min_quantity": "10", "discount_percent": "35"} for i in chosen[:49]]
            lines += [{"price_list_id": price_list.id, "group_id": leaf.id, "priority": 50,
                       "discount_percent": str(rng.randint(1, 15))} for leaf in leaves]
            lines.append({"price_list_id": price_list.id, "priority": 0, "discount_percent": "2"})
            uow.create_many("price_list_line", lines)
        uow.create_many("customer_discount", [
            {"account_id": accounts[i].id, "percent": str(rng.randint(1, 10)),
             "group_id": tops[i % 10].id if i % 2 else None} for i in range(0, ACCOUNTS, 5)])
        uow.commit()
    return [a.id for a in accounts], [p.id for p in products]


def _crmcore(app: Crm, requests: list[tuple[int, decimal.Decimal, int]]) -> tuple[float, float, list[Any]]:
    from crm_catalog.pricing import PriceRequest, price_lines

    asked = [PriceRequest(product, quantity, account, DAY) for product, quantity, account in requests]
    started, cpu = time.perf_counter(), time.process_time()
    with app.unit_of_work() as uow:
        priced = price_lines(uow, asked)
    return time.perf_counter() - started, time.process_time() - cpu, priced


def _floor(app: Crm, requests: list[tuple[int, decimal.Decimal, int]]) -> tuple[float, list[decimal.Decimal]]:
    started = time.perf_counter()
    with raw_connection(app) as connection:
        cursor = connection.cursor()
        cursor.execute("SELECT id, parent_id FROM catalog_product_group")
        parents = dict(cursor.fetchall())
        cursor.execute("SELECT id, group_id, list_price FROM catalog_product")
        products = {pid: (gid, decimal.Decimal(price).scaleb(-2)) for pid, gid, price in cursor.fetchall()}
        cursor.execute("SELECT id, catalog_segment FROM crm_account")
        segments = dict(cursor.fetchall())
        cursor.execute("SELECT id, account_id, segment, priority FROM catalog_price_list WHERE active")
        lists = cursor.fetchall()
        cursor.execute("SELECT price_list_id, product_id, group_id, min_quantity, priority, discount_percent "
                       "FROM catalog_price_list_line")
        by_product: dict[tuple[int, int], list[tuple[int, decimal.Decimal, decimal.Decimal]]] = {}
        by_group: dict[tuple[int, int], list[tuple[int, decimal.Decimal, decimal.Decimal]]] = {}
        for_all: dict[int, list[tuple[int, decimal.Decimal, decimal.Decimal]]] = {}
        for list_id, product_id, group_id, min_quantity, priority, discount in cursor.fetchall():
            entry = (priority, decimal.Decimal(min_quantity or 0).scaleb(-3), decimal.Decimal(discount or 0).scaleb(-4))
            if product_id is not None:
                by_product.setdefault((list_id, product_id), []).append(entry)
            elif group_id is not None:
                by_group.setdefault((list_id, group_id), []).append(entry)
            else:
                for_all.setdefault(list_id, []).append(entry)
        cursor.close()
    ordered: dict[int, list[int]] = {}
    priced = []
    for product_id, quantity, account_id in requests:
        candidates = ordered.get(account_id)
        if candidates is None:
            ranked = []
            for list_id, owner, segment, priority in lists:
                rank = 0 if owner == account_id else 2 if segment and segment == segments[account_id] else 3 \
                    if owner is None and not segment else None
                if rank is not None:
                    ranked.append((rank, -priority, list_id))
            candidates = ordered[account_id] = [list_id for _, _, list_id in sorted(ranked)]
        group_id, price = products[product_id]
        chain = []
        while group_id is not None:
            chain.append(group_id)
            group_id = parents[group_id]
        unit = price
        for list_id in candidates:
            lines = list(by_product.get((list_id, product_id), ()))
            for gid in chain:
                lines += by_group.get((list_id, gid), ())
            lines += for_all.get(list_id, ())
            matching = [line for line in lines if line[1] <= quantity]
            if matching:
                best = max(matching, key=lambda line: line[0])
                unit = (price * (1 - best[2] / _HUNDRED)).quantize(_CENT)
                break
        priced.append(unit)
    return time.perf_counter() - started, priced
