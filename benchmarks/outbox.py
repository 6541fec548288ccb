"""``outbox_deliver``: the outbox plugin (``plugins/outbox``, installed) delivering N requests
(default 10,000) to its JSON file sink, against the same work by hand.

crmcore: N requests posted with :func:`crm_outbox.post` in one unit of work (not timed), then
:func:`crm_outbox.deliver` timed: batches of 500 claimed with a lease in a transaction each,
one ``<key>.json`` file per request written to a temporary file and linked into place (in the
run's sink thread, while the next batch is claimed), the outcomes recorded in another
transaction per batch. ``rows`` is the number of requests
delivered; target: at least 5,000 requests/s on SQLite. Every file is checked afterwards. The
result also notes the processor time of the delivery (both threads: ``cpu_seconds``,
``cpu_rows_per_s``): on a shared machine the wall time of one run varies more than it does.

Floor: the same requests in a second database, delivered with the driver: per batch of 500, one
``SELECT`` of the due rows, one ``UPDATE ... WHERE id IN`` claiming them, the same file writes
(temporary file, link), one ``UPDATE ... WHERE id IN`` marking them delivered; a transaction for
each claim and each record, as crmcore has.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from common import Result, fresh_url, is_postgres, peak_rss_mb, raw_connection

from crmcore import create_app
from crmcore.app import Crm

BATCH = 500


def run(name: str, rows: int, url: str | None, workdir: str) -> Result:
    from crm_outbox import deliver

    with fresh_url(url, workdir, "outbox") as database:
        drop = Path(workdir) / "drop"
        app = _app(database, drop)
        try:
            _post(app, rows)
            started, cpu = time.perf_counter(), time.process_time()
            stats = deliver(app)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        finally:
            app.close()
    assert stats.delivered == rows and stats.failed == stats.retried == 0, stats
    assert len(os.listdir(drop)) == rows
    peak = peak_rss_mb()
    with fresh_url(url, workdir, "outbox_floor") as database:
        floor_drop = Path(workdir) / "floor_drop"
        app = _app(database, floor_drop)
        try:
            _post(app, rows)
            with raw_connection(app) as connection:
                floor_seconds = _floor(connection, url, floor_drop)
        finally:
            app.close()
    assert len(os.listdir(floor_drop)) == rows
    return Result.make(
        name, rows, seconds, floor_seconds, peak, batches=stats.batches, target_rows_per_s=5_000,
        cpu_seconds=round(cpu, 4), cpu_rows_per_s=round(rows / cpu, 1) if cpu else None,
    )


def _app(database: str, drop: Path) -> Crm:
    app = create_app(
        {
            "crm": {"database": database, "plugins": ["outbox"]},
            "plugins": {"outbox": {"batch_size": BATCH}},
            "outbox": {"sinks": {"production": {"type": "file", "path": str(drop)}}},
        }
    )
    app.create_schema()
    return app


def _post(app: Crm, rows: int) -> None:
    from crm_outbox import OutboxItem, post

    items = [
        OutboxItem(
            "production",
            "production",
            {"order": n, "lines": [{"product": f"P-{n % 97}", "quantity": "3"}]},
            "sales_order",
            n,
        )
        for n in range(1, rows + 1)
    ]
    with app.unit_of_work() as uow:
        post(uow, items)
        uow.commit()


def _floor(connection: Any, url: str | None, drop: Path) -> float:
    postgres = is_postgres(url)
    p = "%s" if postgres else "?"
    table = "outbox_outbox_request"
    drop.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    cursor = connection.cursor()

    def begin() -> None:
        if not postgres:
            cursor.execute("BEGIN IMMEDIATE")

    def commit() -> None:
        if postgres:
            connection.commit()
        else:
            cursor.execute("COMMIT")

    while True:
        now: Any = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        now = now if postgres else now.isoformat(" ")
        begin()
        cursor.execute(
            f"SELECT id, idempotency_key, kind, sink, payload, source_entity, source_id FROM {table} "
            f"WHERE delivery = 'pending' AND next_attempt_at <= {p} ORDER BY next_attempt_at, id "
            f"LIMIT {BATCH}",
            (now,),
        )
        batch = cursor.fetchall()
        if not batch:
            commit()
            break
        ids = [row[0] for row in batch]
        marks = ", ".join([p] * len(ids))
        cursor.execute(
            f"UPDATE {table} SET delivery = 'delivering', locked_by = 'floor', lease_until = {p}, "
            f"attempts = attempts + 1, version = version + 1 WHERE id IN ({marks})",
            (now, *ids),
        )
        commit()
        for _, key, kind, sink, payload, source_entity, source_id in batch:
            document = {
                "key": key,
                "kind": kind,
                "sink": sink,
                "payload": payload,
                "source": {"entity": source_entity, "id": source_id},
            }
            temporary = drop / f".{secrets.token_hex(8)}.tmp"
            with open(temporary, "w", encoding="utf-8") as file:
                json.dump(document, file)
            os.link(temporary, drop / (key.replace(":", "%3A") + ".json"))
            temporary.unlink()
        begin()
        cursor.execute(
            f"UPDATE {table} SET delivery = 'delivered', delivered_at = {p}, locked_by = NULL, "
            f"lease_until = NULL, version = version + 1 WHERE id IN ({marks}) AND locked_by = 'floor'",
            (now, *ids),
        )
        commit()
    cursor.close()
    return time.perf_counter() - started
