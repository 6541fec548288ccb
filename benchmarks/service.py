"""``entitlement_lines``, ``planned_generate`` and ``caller_lookup``: the service plugin (``plugins/service``,
installed) against hand-written SQL.

``entitlement_lines``: N service lines (default 100,000) on 10,000 units, half of them under a
standard warranty, a third covered by one of 1,000 contracts (by unit), each line a unit, a day
of 2026 and a line type. crmcore: :func:`crm_service.entitlement.entitlement_many` in a unit of
work (coverages read through the secured road, decisions with their reasons). Floor: the
registrations and contract items of the same units selected with the driver (500 ids a query)
and, per line, the best percentage valid on its day. Target: at least 50,000 lines/s.

``planned_generate``: N plans (default 10,000), each monthly at 09:00 Europe/Berlin, generated
over a 12-month horizon with :func:`crm_service.planned.generate` (occurrences only, no
orders), committed; then run again, which must create nothing. Rows are the occurrences made.
Floor: the same occurrence rows computed with python-dateutil and inserted with the driver's
``executemany`` in one transaction. Target: at least 20,000 occurrences/s on SQLite. The
process's CPU time of both is reported too (``cpu_rows_per_s``, ``floor_cpu_rows_per_s``): on a
shared machine it varies less than the wall-clock rate.

``caller_lookup``: N contacts (default 100,000) with phone numbers in four formats, then 200
callers looked up by a number written another way with :func:`crm_service.callcenter.caller`
(the phone index, the contacts read through the secured road, their accounts' open orders,
units and contracts); the median latency is reported (``median_ms``; target under 10 ms).
Rows are the lookups. Floor: the indexed select of the same suffix, then the contact rows
read with the driver.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import time
import zoneinfo
from typing import Any

from common import Result, fresh_url, is_postgres, peak_rss_mb, raw_connection
from dateutil.rrule import rrulestr

from crmcore import create_app
from crmcore.app import Crm

TYPES = ("labour", "parts", "travel")
UNITS = 10_000
CONTRACTS = 1_000
TODAY = dt.date(2026, 1, 1)


def run(name: str, rows: int, url: str | None, workdir: str) -> Result:
    if name == "entitlement_lines":
        return _entitlement_lines(rows, url, workdir)
    if name == "caller_lookup":
        return _caller_lookup(rows, url, workdir)
    return _planned_generate(rows, url, workdir)


def _app(database: str) -> Crm:
    app = create_app({"crm": {"database": database, "plugins": ["service"]}})
    app.create_schema()
    return app


# -- entitlement_lines -----------------------------------------------------------------------------


def _installed_base(app: Crm) -> list[int]:
    with app.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        uow.create("warranty_term", name="Pump 12 months", product="PUMP", months=12,
                   labour_pct=100, parts_pct=50, travel_pct=0)
        units = uow.create_many("installed_unit", [
            {"serial_number": f"SN-{i}", "product_code": "PUMP" if i % 2 else "OTHER",
             "account_id": account.id, "install_date": dt.date(2026, 1, 1) + dt.timedelta(i % 300)}
            for i in range(UNITS)])
        contracts = uow.create_many("service_contract", [
            {"number": f"SC-{i}", "account_id": account.id, "starts_on": dt.date(2026, 1, 1),
             "ends_on": dt.date(2026, 6, 30 if i % 2 else 12), "labour_pct": 100,
             "travel_pct": 50} for i in range(CONTRACTS)])
        uow.create_many("contract_item", [
            {"contract_id": contracts[i % CONTRACTS].id, "unit_id": u.id}
            for i, u in enumerate(units) if i % 3 == 0])
        uow.commit()
    return [u.id for u in units]


def _lines(unit_ids: list[int], rows: int) -> list[tuple[int, dt.date, str]]:
    rng = random.Random(7)
    return [(rng.choice(unit_ids), dt.date(2026, 1, 1) + dt.timedelta(rng.randrange(365)),
             rng.choice(TYPES)) for _ in range(rows)]


def _entitlement_lines(rows: int, url: str | None, workdir: str) -> Result:
    from crm_service.entitlement import entitlement_many

    with fresh_url(url, workdir, "entitlement") as database:
        app = _app(database)
        try:
            lines = _lines(_installed_base(app), rows)
            started = time.perf_counter()
            with app.unit_of_work() as uow:
                decisions = entitlement_many(uow, lines)
            seconds = time.perf_counter() - started
            peak = peak_rss_mb()
            with raw_connection(app) as connection:
                floor_seconds, floor = _floor_entitlement(connection, url, lines)
        finally:
            app.close()
    assert [d.percent for d in decisions] == floor
    covered = sum(1 for d in decisions if d.percent == 100)
    outcome = Result.make("entitlement_lines", rows, seconds, floor_seconds, peak)
    outcome.update(covered=covered, target_rows_per_s=50_000)
    return outcome


def _floor_entitlement(connection: Any, url: str | None,
                       lines: list[tuple[int, dt.date, str]]) -> tuple[float, list[int]]:
    p = "%s" if is_postgres(url) else "?"
    started = time.perf_counter()
    ids = sorted({u for u, _, _ in lines})
    found: dict[int, list[tuple[dt.date, dt.date, int, int, int, int]]] = {i: [] for i in ids}
    cursor = connection.cursor()
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ", ".join([p] * len(chunk))
        cursor.execute(
            "SELECT unit_id, starts_on, ends_on, labour_pct, parts_pct, travel_pct, 1 "
            f"FROM service_warranty_registration WHERE unit_id IN ({marks})", chunk)
        rows = cursor.fetchall()
        cursor.execute(
            "SELECT i.unit_id, c.starts_on, c.ends_on, c.labour_pct, c.parts_pct, c.travel_pct, 2 "
            "FROM service_contract_item i JOIN service_service_contract c ON c.id = i.contract_id "
            f"WHERE i.unit_id IN ({marks}) AND c.status IN ('active', 'expired', 'renewed')", chunk)
        rows += cursor.fetchall()
        for unit_id, starts, ends, *pcts in rows:
            if isinstance(starts, str):
                starts, ends = dt.date.fromisoformat(starts), dt.date.fromisoformat(ends)
            found[unit_id].append((starts, ends, *pcts))
    cursor.close()
    index = {t: i for i, t in enumerate(TYPES)}
    result = []
    for unit_id, day, line_type in lines:
        best = 0
        for starts, ends, *pcts in found[unit_id]:
            if starts <= day <= ends and pcts[index[line_type]] > best:
                best = pcts[index[line_type]]
        result.append(best)
    return time.perf_counter() - started, result


# -- planned_generate ------------------------------------------------------------------------------

RULE = "FREQ=MONTHLY"
ZONE = "Europe/Berlin"


def _plans(app: Crm, rows: int) -> list[tuple[int, dt.date]]:
    with app.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        plans = uow.create_many("service_plan", [
            {"name": f"Check {i}", "account_id": account.id, "rule": RULE,
             "starts_on": TODAY + dt.timedelta(days=i % 28), "timezone": ZONE,
             "horizon_days": 365, "create_orders": False} for i in range(rows)])
        uow.commit()
    return [(p.id, p.starts_on) for p in plans]


def _planned_generate(rows: int, url: str | None, workdir: str) -> Result:
    from crm_service.planned import generate

    with fresh_url(url, workdir, "planned") as database:
        app = _app(database)
        try:
            plans = _plans(app, rows)
            started, cpu_started = time.perf_counter(), time.process_time()
            with app.unit_of_work() as uow:
                made = generate(uow, TODAY)
                uow.commit()
            seconds = time.perf_counter() - started
            cpu_seconds = time.process_time() - cpu_started
            with app.unit_of_work() as uow:
                again = generate(uow, TODAY)
                uow.commit()
            peak = peak_rss_mb()
        finally:
            app.close()
    assert again.occurrences == 0, again
    with fresh_url(url, workdir, "planned_floor") as database:
        app = _app(database)
        try:
            plans = _plans(app, rows)
            with raw_connection(app) as connection:
                cpu_started = time.process_time()
                floor_seconds, floor_rows = _floor_generate(connection, url, plans)
                floor_cpu_seconds = time.process_time() - cpu_started
        finally:
            app.close()
    assert floor_rows == made.occurrences, (floor_rows, made.occurrences)
    outcome = Result.make("planned_generate", made.occurrences, seconds, floor_seconds, peak)
    outcome.update(plans=rows, second_run_created=again.occurrences, target_rows_per_s=20_000,
                   cpu_rows_per_s=round(made.occurrences / cpu_seconds, 1),
                   floor_cpu_rows_per_s=round(floor_rows / floor_cpu_seconds, 1))
    return outcome


def _floor_generate(connection: Any, url: str | None,
                    plans: list[tuple[int, dt.date]]) -> tuple[float, int]:
    postgres = is_postgres(url)
    p = "%s" if postgres else "?"
    zone = zoneinfo.ZoneInfo(ZONE)
    last = TODAY + dt.timedelta(days=365)
    started = time.perf_counter()
    now: Any = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if not postgres:
        now = now.isoformat(" ")
    rows = []
    for plan_id, starts in plans:
        rules = rrulestr("RRULE:" + RULE, dtstart=dt.datetime.combine(starts, dt.time(9)),
                         forceset=True)
        for moment in rules.between(dt.datetime.combine(TODAY, dt.time.min),
                                    dt.datetime.combine(last, dt.time.max), inc=True):
            at = moment.replace(tzinfo=zone).astimezone(dt.UTC).replace(tzinfo=None)
            stamp: Any = at if postgres else at.isoformat(" ")
            day: Any = moment.date() if postgres else moment.date().isoformat()
            rows.append((plan_id, f"{plan_id}:{moment.date().isoformat()}", day, day, stamp,
                         stamp, stamp, "planned", 1, now, now))
    cursor = connection.cursor()
    if not postgres:
        cursor.execute("BEGIN")
    cursor.executemany(
        "INSERT INTO service_plan_occurrence (plan_id, key, rule_date, scheduled_on, starts_at, "
        "window_start, window_end, status, version, created_at, updated_at) "
        f"VALUES ({', '.join([p] * 11)})", rows)
    if postgres:
        connection.commit()
    else:
        cursor.execute("COMMIT")
    cursor.close()
    return time.perf_counter() - started, len(rows)


# -- caller_lookup ---------------------------------------------------------------------------------

FORMATS = ("+55 47 {a}-{b}", "(47) {a}-{b}", "047 {a} {b}", "+55 (47) {a}{b}")
LOOKUPS = 200


def _number(n: int, form: str) -> str:
    return form.format(a=90000 + n // 10000, b=f"{n % 10000:04d}")


def _caller_lookup(rows: int, url: str | None, workdir: str) -> Result:
    from crm_service.callcenter import caller

    rng = random.Random(11)
    wanted = [rng.randrange(rows) for _ in range(LOOKUPS)]
    with fresh_url(url, workdir, "caller") as database:
        app = create_app({"crm": {"database": database, "plugins": ["service"]},
                          "plugins": {"service": {"phone_region": "BR"}}})
        app.create_schema()
        try:
            with app.unit_of_work() as uow:
                account = uow.create("account", name="Acme")
                uow.create_many("contact", [
                    {"last_name": f"C{i}", "account_id": account.id if i % 100 == 0 else None,
                     "phone": _number(i, FORMATS[i % len(FORMATS)])} for i in range(rows)])
                uow.commit()
            times = []
            for n in wanted:
                number = _number(n, FORMATS[(n + 1) % len(FORMATS)])
                with app.unit_of_work() as uow:
                    started = time.perf_counter()
                    view = caller(uow, number)
                    times.append(time.perf_counter() - started)
                assert [c.last_name for c in view.contacts] == [f"C{n}"], (number, view)
            peak = peak_rss_mb()
            with raw_connection(app) as connection:
                floor_times = _floor_lookups(connection, url, wanted)
        finally:
            app.close()
    median, floor_median = statistics.median(times), statistics.median(floor_times)
    outcome = Result.make("caller_lookup", LOOKUPS, median * LOOKUPS, floor_median * LOOKUPS,
                          peak)
    outcome.update(contacts=rows, median_ms=round(median * 1000, 3),
                   floor_median_ms=round(floor_median * 1000, 3), target_median_ms=10)
    return outcome


def _floor_lookups(connection: Any, url: str | None, wanted: list[int]) -> list[float]:
    p = "%s" if is_postgres(url) else "?"
    cursor = connection.cursor()
    times = []
    for n in wanted:
        digits = "".join(c for c in _number(n, FORMATS[0]) if c.isdigit())
        started = time.perf_counter()
        cursor.execute(f"SELECT entity, record_id FROM service_phone WHERE suffix = {p}",
                       (digits[-8:],))
        ids = [row[1] for row in cursor.fetchall() if row[0] == "contact"]
        marks = ", ".join([p] * len(ids))
        cursor.execute("SELECT id, last_name, phone, mobile, account_id FROM crm_contact "
                       f"WHERE id IN ({marks})", ids)
        found = cursor.fetchall()
        times.append(time.perf_counter() - started)
        assert found, n
    cursor.close()
    return times
