"""``move_opportunities``, ``move_opportunities_bulk`` and ``convert_leads``.

``move_opportunities``: N opportunities (default 10,000) in ``initiation`` each moved to
``identification`` with ``uow.move(record, stage)``, one call per record, in one unit of work,
with 10 active rules on opportunities (evaluated on every move; one of them tags the largest
deals) and the audit trail. Target: at least 3,000 moves/s on SQLite. Floor: the same N moves
as hand-written ``UPDATE`` statements (stage, probability, time of entry, version), one per
record, in one transaction with the driver.

``move_opportunities_bulk``: the same N moves, with the same rules, with one
``uow.move_many(records, stage)``. Target: at least 20,000 moves/s. Floor: the same ``UPDATE``
with ``executemany``.

``convert_leads``: N qualified leads (default 10,000; 2,000 companies, so some leads find the
account an earlier one created) converted with ``crm_sales.convert_leads`` into accounts,
contacts and one opportunity each, in one unit of work: matching, workflow, audit (the lead's
snapshot included), deletion of the leads. Target: at least 2,000 conversions/s. Floor: the
same rows written with the driver (``executemany`` INSERTs of accounts, contacts and
opportunities, one ``DELETE`` of the leads) in one transaction.

Each result also notes ``cpu_rows_per_s``: the rate over the CPU time of the crmcore process
alone, steadier than the wall clock on a shared machine (the database work is in-process on
SQLite; on PostgreSQL the server's share is not counted).

When the rule engine is not part of the build, the moves run with the audit and the hooks only
and say so in their ``rules`` and ``note`` notes. ``tagged`` counts the tags the one firing rule
set (the deals of 90,000 EUR and more: a tenth of them from 10,000 deals on).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import sqlalchemy as sa
from common import Result, fresh_url, is_postgres, peak_rss_mb, raw_connection

from crmcore import create_app
from crmcore.app import Crm
from crmcore.errors import ConfigError

__all__ = ["RULES", "run"]

#: Ten rules on opportunities: nine whose conditions do not hold for the benchmark's deals and
#: one that tags the largest tenth of them when they enter identification.
RULES: list[dict[str, Any]] = [
    {"name": f"bench_review_{n}", "entity": "opportunity", "on": "stage_entered:identification",
     "when": f"amount > {1_000_000 * (n + 1)} and probability >= 20",
     "then": [{"action": "create_activity", "kind": "task", "subject": "Review {name}", "due_in_days": 2, "assign_to": "owner"}]}
    for n in range(6)
] + [
    {"name": "bench_stage_left", "entity": "opportunity", "on": "stage_left:initiation", "when": "amount > 5000000",
     "then": [{"action": "add_tag", "tags": ["escalated"]}]},
    {"name": "bench_updated", "entity": "opportunity", "on": "updated", "when": "next_step = 'call the CEO'",
     "then": [{"action": "add_tag", "tags": ["ceo"]}]},
    {"name": "bench_changed", "entity": "opportunity", "on": "field_changed:stage", "when": "stage = 'lost' and amount > 0",
     "then": [{"action": "add_tag", "tags": ["lost"]}]},
    {"name": "bench_big", "entity": "opportunity", "on": "stage_entered:identification", "when": "amount >= 90000",
     "then": [{"action": "add_tag", "tags": ["big"]}]},
]


def _app(url: str, *, rules: bool) -> tuple[Crm, bool]:
    """An app with the core plugins on *url*, with :data:`RULES` when the build has rules."""
    if rules:
        try:
            app = create_app({"crm": {"database": url}, "rules": RULES})
        except ConfigError as exc:
            if "unknown table [rules]" not in str(exc):
                raise
        else:
            app.create_schema()
            return app, True
    app = create_app({"crm": {"database": url}})
    app.create_schema()
    return app, False


def run(name: str, rows: int, url: str | None, workdir: str) -> Result:
    if name == "convert_leads":
        return _convert(rows, url, workdir)
    return _move(name, rows, url, workdir, bulk=name == "move_opportunities_bulk")


# -- moves ---------------------------------------------------------------------------------------


def _commit(connection: Any, postgres: bool) -> None:
    if postgres:
        connection.commit()
    else:
        connection.execute("COMMIT")


def _seed_opportunities(app: Crm, rows: int) -> None:
    from crmcore.transfer import import_rows

    with app.unit_of_work() as uow:
        user = uow.create("user", username="bench").id
        uow.commit()
    data = ({"name": f"Deal {n}", "amount": f"{1000 + (n * 37) % 99000}.00 EUR", "close_date": "2026-06-30", "owner_id": user}
            for n in range(rows))
    with app.unit_of_work() as uow:
        import_rows(uow, "opportunity", data)
        uow.commit()


def _move(name: str, rows: int, url: str | None, workdir: str, *, bulk: bool) -> Result:
    with fresh_url(url, workdir, "moves") as database:
        app, has_rules = _app(database, rules=True)
        try:
            _seed_opportunities(app, rows)
            with app.unit_of_work() as uow:
                records = uow.query("opportunity").all()
                started, cpu = time.perf_counter(), time.process_time()
                if bulk:
                    moved = uow.move_many(records, "identification")
                else:
                    move = uow.move
                    moved = [move(record, "identification") for record in records]
                uow.commit()
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            peak = peak_rss_mb()
            with app.connect() as connection:
                audited = connection.execute(sa.text(
                    "SELECT count(*) FROM crm_audit WHERE entity = 'opportunity' AND action = 'updated'")).scalar_one()
                tagged = connection.execute(sa.text("SELECT count(*) FROM crm_tagging")).scalar_one()
            if len(moved) != rows or audited < rows:
                raise SystemExit(f"{name}: expected {rows} moves and audit entries, got {len(moved)} and {audited}")
        finally:
            app.close()
    floor_seconds = _move_floor(rows, url, workdir, bulk=bulk)
    notes: dict[str, Any] = {"cpu_rows_per_s": round(rows / cpu, 1) if cpu else None, "rules": len(RULES) if has_rules else 0,
                             "tagged": tagged}
    if not has_rules:
        notes["note"] = "no rule engine in this build: audit and hooks only"
    return Result.make(name, rows, seconds, floor_seconds, peak, **notes)


def _move_floor(rows: int, url: str | None, workdir: str, *, bulk: bool) -> float:
    with fresh_url(url, workdir, "moves-floor") as database:
        app, _ = _app(database, rules=False)
        try:
            _seed_opportunities(app, rows)
            with raw_connection(app) as connection:
                postgres = is_postgres(url)
                mark = "%s" if postgres else "?"
                statement = (
                    f"UPDATE crm_opportunity SET stage = {mark}, probability = {mark}, stage_entered_at = {mark}, "
                    f"version = version + 1, updated_at = {mark}, updated_by = {mark} WHERE id = {mark} AND version = {mark}"
                )
                now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
                stamp: Any = now if postgres else now.isoformat(" ")
                cursor = connection.cursor()
                cursor.execute("SELECT id, version FROM crm_opportunity ORDER BY id")
                params = [("identification", 20, stamp, stamp, 1, record_id, version) for record_id, version in cursor.fetchall()]
                started = time.perf_counter()
                if not postgres:
                    connection.execute("BEGIN")
                if bulk:
                    cursor.executemany(statement, params)
                else:
                    for row in params:
                        cursor.execute(statement, row)
                _commit(connection, postgres)
                return time.perf_counter() - started
        finally:
            app.close()


# -- conversions ---------------------------------------------------------------------------------


def _seed_leads(app: Crm, rows: int) -> None:
    from crmcore.transfer import import_rows

    with app.unit_of_work() as uow:
        user = uow.create("user", username="bench").id
        uow.commit()
    data = ({"first_name": "Ada", "last_name": f"Lovelace {n}", "company": f"Company {n % 2000}", "title": "CTO",
             "email": f"lead{n}@company{n % 2000}.example", "phone": f"+44 20 7946 {n % 10000:04d}", "source": "web",
             "status": "qualified", "owner_id": user} for n in range(rows))
    with app.unit_of_work() as uow:
        import_rows(uow, "lead", data)
        uow.commit()


def _convert(rows: int, url: str | None, workdir: str) -> Result:
    from crm_sales import convert_leads

    with fresh_url(url, workdir, "convert") as database:
        app, _ = _app(database, rules=False)
        try:
            _seed_leads(app, rows)
            with app.unit_of_work() as uow:
                leads = uow.query("lead").all()
                started, cpu = time.perf_counter(), time.process_time()
                done = convert_leads(uow, leads, opportunity={"amount": "12000 EUR", "close_date": "2026-09-30"})
                uow.commit()
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            peak = peak_rss_mb()
            with app.connect() as connection:
                left = connection.execute(sa.text("SELECT count(*) FROM crm_lead")).scalar_one()
                deals = connection.execute(sa.text("SELECT count(*) FROM crm_opportunity")).scalar_one()
            if len(done) != rows or left != 0 or deals != rows:
                raise SystemExit(f"convert_leads: expected {rows} conversions, got {len(done)} ({left} leads left, {deals} deals)")
            accounts = len({c.account.id for c in done})
        finally:
            app.close()
    floor_seconds = _convert_floor(rows, url, workdir)
    return Result.make("convert_leads", rows, seconds, floor_seconds, peak, accounts=accounts,
                       cpu_rows_per_s=round(rows / cpu, 1) if cpu else None)


def _convert_floor(rows: int, url: str | None, workdir: str) -> float:
    with fresh_url(url, workdir, "convert-floor") as database:
        app, _ = _app(database, rules=False)
        try:
            _seed_leads(app, rows)
            with raw_connection(app) as connection:
                postgres = is_postgres(url)
                mark = "%s" if postgres else "?"
                now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
                stamp: Any = now if postgres else now.isoformat(" ")
                cursor = connection.cursor()
                cursor.execute("SELECT id, first_name, last_name, company, title, email, phone, owner_id FROM crm_lead ORDER BY id")
                leads = cursor.fetchall()
                companies: dict[str, int] = {}
                accounts, contacts, deals = [], [], []
                for number, (_, first, last, company, title, email, phone, owner) in enumerate(leads, 1):
                    if company not in companies:
                        companies[company] = len(companies) + 1
                        accounts.append((companies[company], company, owner, 1, stamp, stamp))
                    account = companies[company]
                    contacts.append((number, first, last, title, email, phone, account, owner, 1, stamp, stamp))
                    deals.append((number, company, account, number, 1200000, "EUR", "2026-09-30", "sales", "initiation", 10, owner, 1,
                                  stamp, stamp))
                marks = lambda n: ", ".join([mark] * n)  # noqa: E731
                started = time.perf_counter()
                if not postgres:
                    connection.execute("BEGIN")
                cursor.executemany(f"INSERT INTO crm_account (id, name, owner_id, version, created_at, updated_at) VALUES ({marks(6)})",
                                   accounts)
                cursor.executemany(
                    "INSERT INTO crm_contact (id, first_name, last_name, title, email, phone, account_id, owner_id, version, "
                    f"created_at, updated_at) VALUES ({marks(11)})", contacts)
                cursor.executemany(
                    "INSERT INTO crm_opportunity (id, name, account_id, contact_id, amount, amount_currency, close_date, pipeline, "
                    f"stage, probability, owner_id, version, created_at, updated_at) VALUES ({marks(14)})", deals)
                cursor.execute("DELETE FROM crm_lead")
                _commit(connection, postgres)
                return time.perf_counter() - started
        finally:
            app.close()
