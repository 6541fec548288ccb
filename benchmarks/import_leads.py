"""``import_leads``: a CSV of N leads with 8 columns imported through crmcore.

crmcore side: ``crmcore.transfer.import_file`` as a user (so leads get an owner), deduplicated
on email (``on_duplicate="skip"``), every cell parsed by its field type, owner reference
checked, hooks run, every lead audited and announced. The rows are all valid and distinct, so
N leads are created.

Floor: the same N rows, exactly as crmcore stored them (read back, every column, ids included),
inserted into the same table (same indexes, foreign keys on) of a fresh database with the
stdlib ``sqlite3`` ``executemany`` in one transaction; on PostgreSQL with psycopg ``COPY ...
FROM STDIN``. No parsing, no checks, no audit: the speed of the storage alone.
"""

from __future__ import annotations

import csv
import os
import time
from typing import Any

import sqlalchemy as sa
from common import Result, fresh_app, is_postgres, peak_rss_mb, raw_connection

from crmcore.transfer import import_file

HEADER = ["First Name", "Last Name", "Company", "Title", "Email", "Phone", "Source", "Score"]
COLUMNS = ["first_name", "last_name", "company", "title", "email", "phone", "source", "score"]
_FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus"]
_LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Wirth"]
_TITLES = ["CEO", "CTO", "Buyer", "Engineer", "Head of Sales", "Analyst", ""]
_SOURCES = ["web", "referral", "event", "campaign", "partner", "email"]


def write_csv(path: str, rows: int) -> None:
    """Write *rows* distinct, valid leads (streamed; nothing is kept in memory)."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(rows):
            writer.writerow([
                _FIRST[n % 10], f"{_LAST[(n // 10) % 10]}-{n}", f"Company {n % 5000}", _TITLES[n % 7],
                f"lead{n}@example{n % 97}.com", f"+1 555 {n % 1000:03d} {n % 10000:04d}", _SOURCES[n % 6], str(n % 100),
            ])


def run(rows: int, url: str | None, workdir: str) -> Result:
    path = os.path.join(workdir, f"leads-{rows}.csv")
    write_csv(path, rows)
    with fresh_app(url, workdir, "import") as app:
        with app.unit_of_work() as uow:
            uow.create("user", username="bench")
            uow.commit()
        started = time.perf_counter()
        report = import_file(app, "lead", path, actor="bench", dedupe_on="email", on_duplicate="skip")
        seconds = time.perf_counter() - started
        peak = peak_rss_mb()
        with app.connect() as connection:
            leads = connection.execute(sa.text("SELECT count(*) FROM crm_lead")).scalar_one()
            audited = connection.execute(sa.text("SELECT count(*) FROM crm_audit WHERE entity = 'lead'")).scalar_one()
        if report.created != rows or leads != rows or audited != rows:
            raise SystemExit(f"import_leads: expected {rows} leads and audit entries, got {leads} and {audited} ({report!r})")
        with raw_connection(app) as connection:  # the rows exactly as crmcore stored them
            cursor = connection.cursor()
            cursor.execute("SELECT * FROM crm_lead ORDER BY id")
            names = [d[0] for d in cursor.description]
            data = [tuple(r) for r in cursor.fetchall()]
            cursor.close()
            if is_postgres(url):
                connection.rollback()
    floor_seconds = _floor(url, workdir, names, data)
    return Result.make("import_leads", rows, seconds, floor_seconds, peak)


def _floor(url: str | None, workdir: str, names: list[str], data: list[tuple[Any, ...]]) -> float:
    """Time one transaction inserting *data* into the lead table of a fresh database (its user
    created first, for the foreign keys) with the driver alone."""
    with fresh_app(url, workdir, "floor") as app:
        with app.unit_of_work() as uow:
            uow.create("user", username="bench")
            uow.commit()
        with raw_connection(app) as connection:
            if is_postgres(url):
                started = time.perf_counter()
                with connection.cursor() as cursor, cursor.copy(f"COPY crm_lead ({', '.join(names)}) FROM STDIN") as copy:
                    for row in data:
                        copy.write_row(row)
                connection.commit()
                return time.perf_counter() - started
            statement = f"INSERT INTO crm_lead ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
            started = time.perf_counter()
            connection.execute("BEGIN")
            connection.executemany(statement, data)
            connection.execute("COMMIT")
            return time.perf_counter() - started
