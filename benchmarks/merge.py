"""``merge_plan``: the dry run of a merge of 10 accounts with N related rows (default 10,000)
across core and plugin entities, and the merge itself.

The world: 10 accounts, one kept and nine merged into it, and N rows pointing at them in
turn: contacts, opportunities and activities (core references), help desk tickets (a plugin's
reference), documents attached by (entity, id) (a plugin's link that is no reference) and chat
mentions, and two shared tags on each account. crmcore: ``uow.plan_merge("account", ids,
into=...)`` as the system actor; median latency of 5 runs. Floor: the reads a plan needs by
hand-written SQL run with the driver (per relation the rows pointing at the ten accounts).
Target: under 1 s (the note ``target_seconds``). The merge is then timed once (``merge_s``):
it writes set-based, one statement per relation and 500 rows, and runs the plugins'
``crm_before_update`` hooks once per relation (most of its time: the help desk's hook
recomputes the SLA targets of each ticket whose account changes).
"""

from __future__ import annotations

import time
from typing import Any

from common import Result, fresh_url, is_postgres, median_seconds, peak_rss_mb, raw_connection
from crm_chat.messages import post
from crm_chat.rooms import public_room

from crmcore import Actor, create_app
from crmcore.security import admin

ACCOUNTS = 10
PLUGINS = ["helpdesk", "documents", "chat"]
#: (table, link column, extra condition) of the relations the floor reads.
FLOOR = (
    ("crm_contact", "account_id", ""),
    ("crm_opportunity", "account_id", ""),
    ("crm_activity", "account_id", ""),
    ("crm_document", "account_id", ""),
    ("crm_document", "documents_record_id", " AND documents_record_entity = 'account'"),
    ("helpdesk_ticket", "account_id", ""),
    ("chat_mention", "target_id", " AND target_entity = 'account'"),
)


def run(name: str, rows: int, url: str | None, workdir: str) -> Result:
    with fresh_url(url, workdir, name) as database:
        app = create_app({"crm": {"database": database, "plugins": PLUGINS}})
        try:
            app.create_schema()
            ids = _populate(app, rows)
            with app.unit_of_work() as uow:
                plan = uow.plan_merge("account", ids[1:], into=ids[0])
                moving = plan.rows
                seconds = median_seconds(lambda: uow.plan_merge("account", ids[1:], into=ids[0]), 5)
            peak = peak_rss_mb()
            mark = "%s" if is_postgres(url) else "?"
            with raw_connection(app) as connection:
                statements = [f"SELECT id, {column} FROM {table} WHERE {column} IN ({', '.join([mark] * ACCOUNTS)}){extra}"
                              for table, column, extra in FLOOR if _has(connection, table, column)]

                def floor() -> int:
                    found = 0
                    cursor = connection.cursor()
                    try:
                        for statement in statements:
                            cursor.execute(statement, ids)
                            found += len(cursor.fetchall())
                    finally:
                        cursor.close()
                    return found

                floor()
                floor_seconds = median_seconds(floor, 5)
            started = time.perf_counter()
            with app.unit_of_work() as uow:
                uow.merge("account", ids[1:], into=ids[0])
                uow.commit()
            merge_seconds = time.perf_counter() - started
        finally:
            app.close()
    return Result.make("merge_plan", rows, seconds, floor_seconds, peak, moving=moving, target_seconds=1.0,
                       merge_s=round(merge_seconds, 3))


def _has(connection: Any, table: str, column: str) -> bool:
    cursor = connection.cursor()
    try:
        cursor.execute(f"SELECT {column} FROM {table} WHERE 1 = 0")
        return True
    except Exception:  # noqa: BLE001 - a column of a plugin not in this build
        return False
    finally:
        cursor.close()


def _populate(app: Any, rows: int) -> list[int]:
    """The accounts and the rows pointing at them; the accounts' ids, the kept one first."""
    share = max(1, rows // 6)
    with app.unit_of_work() as uow:
        accounts = [uow.create("account", name=f"Duplicate {i}") for i in range(ACCOUNTS)]
        ids = [a.id for a in accounts]
        for account in accounts:
            uow.tag(account, "customer", f"batch{account.id % 2}")
        uow.create_many("contact", [{"last_name": f"Person {i}", "account_id": ids[i % ACCOUNTS]} for i in range(share)])
        uow.create_many("opportunity", [{"name": f"Deal {i}", "account_id": ids[i % ACCOUNTS], "stage": "qualification"}
                                        for i in range(share)])
        uow.create_many("activity", [{"subject": f"Call {i}", "kind": "call", "account_id": ids[i % ACCOUNTS]} for i in range(share)])
        uow.create_many("ticket", [{"subject": f"Issue {i}", "account_id": ids[i % ACCOUNTS]} for i in range(share)])
        uow.create_many("document", [{"title": f"Contract {i}", "account_id": ids[i % ACCOUNTS]} for i in range(share)])
        user = admin.add_user(uow, "poster")
        uow.commit()
    with app.unit_of_work(Actor(user.id, "poster")) as uow:
        room = public_room(uow)
        for i in range(rows - 5 * share):
            post(uow, room, f"about #account:{ids[i % ACCOUNTS]}")
        uow.commit()
    return ids
