"""crmcore benchmarks: each one against its raw floor, in the same run.

Usage::

    python benchmarks/run.py [--only NAME,...] [--rows N] [--db URL] [--repeat K] [--json]

Benchmarks (default: import_leads, list_page, list_page_fields, aggregate):

``import_leads``     a CSV of N leads (default 100,000; 8 columns) imported through crmcore:
                     parsed, deduplicated on email, owner checked, audited, announced. Floor:
                     the same rows inserted with sqlite3 ``executemany`` in one transaction
                     (PostgreSQL: psycopg ``COPY``).
``import_leads_1m``  the same with 1,000,000 leads, for the peak memory (target < 300 MB).
``list_page``        a page of 50 of N opportunities (default 1,000,000) with two filters and
                     a sort, through the query API; median latency. Floor: the same query
                     written by hand in SQL, run with the driver.
``list_page_fields`` the list_page query reading a projection of 7 fields (``Query.fields``)
                     instead of whole records; floor: the same columns selected by hand.
``aggregate``        the sum of amount by stage over N opportunities through the query API;
                     median latency. Floor: the hand-written ``GROUP BY``.
``secure_list_page`` the list_page query for a manager in a 6-level role tree (1,000 users, 50
                     groups, 20 sharing rules, private opportunities); floor: the same page for
                     the system actor (target: ratio >= 0.5).
``role_change``      a user moved to another role, then the first page query as that user, at
                     1,000,000 opportunities (``role_change_100k``: at 100,000); constant time.
``sla_sweep``        the help desk's SLA breach check over N open tickets (default 100,000) in
                     set-based SQL; floor: the same statements by hand (target: >= 50,000
                     tickets/s on SQLite). Needs plugins/helpdesk installed (see helpdesk.py).
``kb_search``        knowledge base search over N articles (default 10,000) as an agent, with
                     permissions; median latency (target: < 20 ms on SQLite); floor: the FTS
                     query by hand.
``entitlement_lines``  N service lines (default 100,000) priced through the service plugin's
                     entitlement on 10,000 units under warranties and contracts (target: >=
                     50,000 lines/s); floor: the coverages read by hand and the best percentage
                     picked per line. Needs plugins/service installed (see service.py).
``planned_generate`` N service plans (default 10,000), monthly, generated over a 12-month
                     horizon; rows are occurrences (target: >= 20,000/s on SQLite), a second run
                     creates nothing; floor: the same rows computed and inserted by hand.
``caller_lookup``    a caller found among N contacts (default 100,000) with numbers in mixed
                     formats, with the service plugin's call center lookup; median latency
                     (target: < 10 ms); floor: the indexed select and the contact rows by hand.
``rules_simulate``   N opportunities (default 10,000) simulated against 50 rules, writing
                     nothing; rows are rule evaluations (target: >= 50,000/s); floor: the same
                     comparisons hand-written in Python (see rules_simulate.py).
``move_opportunities``  N opportunities (default 10,000) each moved one stage with ``uow.move``, one
                     call per record, in one unit of work with 10 active rules and the audit
                     (target: >= 3,000 moves/s on SQLite); floor: one hand-written UPDATE per record.
``move_opportunities_bulk``  the same N moves and rules with one ``uow.move_many`` (target:
                     >= 20,000 moves/s); floor: the UPDATE with ``executemany``.
``tag_cloud``        a rep's tag cloud over N tagged opportunities (default 1,000,000), through
                     the read predicate; median latency; floor: the same counts by hand-written
                     SQL (target: ratio >= 0.5; see tags.py).
``merge_plan``       the dry run of a merge of 10 accounts with N related rows (default 10,000)
                     across core and plugin entities (contacts, opportunities, activities, help
                     desk tickets, documents, chat mentions, tags); median latency (target:
                     under 1 s); floor: the same rows read by hand-written SQL (see merge.py).
                     Needs plugins/helpdesk, documents and chat installed.
``outbox_deliver``   N requests (default 10,000) delivered by ``crm_outbox.deliver`` to the JSON
                     file sink, leases, attempts and outcomes recorded per batch (target: >= 5,000
                     requests/s on SQLite); floor: the same claims, files and updates by hand
                     (see outbox.py). Needs plugins/outbox installed.
``segment_members``  a marketing segment of N accounts (default 100,000) evaluated as a rep with
                     private accounts (target: ratio >= 0.5, at most twice the hand-written SQL);
                     needs plugins/marketing installed (see marketing.py).
``newsletter_send``  a newsletter to N contacts (default 20,000) through a local SMTP server
                     (target: >= 1,000 messages/s); floor: the same messages sent by hand.
``plan_actuals``     a market plan of 1,000 targets reported over N opportunities (default
                     1,000,000; target: under 3 s on SQLite); floor: the GROUP BY by hand.
``chat_unread``      unread counts of a user's 1,000 chat rooms (10,000 memberships) over N
                     messages (default 1,000,000), through the chat's access restriction;
                     median latency (target: < 20 ms); floor: the same rooms and counts by
                     hand-written SQL. Needs plugins/chat installed (see chat.py).
``convert_leads``    N qualified leads (default 10,000) converted into accounts, contacts and
                     opportunities with ``crm_sales.convert_leads`` (target: >= 2,000/s);
                     floor: the same INSERTs and DELETE by hand (see sales.py).
``price_lines``      N quote lines (default 100,000) priced with ``crm_catalog.pricing.price_lines``
                     against 50 price lists of 1,000 lines (target: >= 100,000 lines/s on
                     SQLite); floor: the rows read with the driver and a hand-written
                     resolution without explanations (see catalog.py). Needs plugins/catalog.
``quotes_from_opportunities``  N quotes (default 10,000) of 5 lines each made from opportunities
                     with ``crm_orders.quotes.quotes_from_opportunities``: priced by the catalog,
                     snapshots, totals, audit, opportunity amounts (target: >= 2,000 quotes/s on
                     SQLite); floor: the same rows priced, summed and written by hand with the
                     driver (see orders.py). Needs plugins/orders.
``ics_import``       an iCalendar file of N events (default 10,000: series, overrides, all-day
                     events, attendees, alarms) imported with the calendar plugin, then again
                     (which must create nothing); target: >= 2,000 events/s on SQLite; floor:
                     the file read and the rows inserted by hand (see calendar_sync.py).
                     Needs contrib/calendar_sync installed.
``caldav_sync``      the first CalDAV sync of N events (default 2,000) from a local Radicale
                     server, then an incremental sync after 20 changes there, which must fetch
                     only those 20 in 2 requests; floor: the first sync's requests by hand.
``schedule_day``     N service orders (default 300) among 40 technicians with skills, windows and
                     travel proposed for a day by the greedy solver (target: under 2 s); floor:
                     the same rows read with the driver and handed to the same solver.
``schedule_day_routing``  the same day with the OR-Tools routing solver (30 s limit); the
                     travel saved against greedy is printed; floor: the greedy proposal.
``dispatch_now``     20 urgent orders, one at a time, into the day of N booked orders; median
                     latency (target: < 300 ms); floor: the day read by hand, the same solver.
``capacity_week``    the capacity of a week of 200 resources with N bookings (default 5,000) by
                     resource, team, skill and territory (target: under 1 s); floor: the
                     bookings selected and summed per resource and day by hand (see
                     scheduling.py). Needs plugins/scheduling.

Each benchmark runs in a fresh process (so its ``peak_rss_mb`` is its own) on fresh databases:
SQLite files in a temporary directory, or new schemas on the PostgreSQL server of ``--db``.
``rows_per_s`` is rows over seconds; for the two queries, rows are those the query reads (the
page size for ``list_page``, the table size for ``aggregate``). ``ratio_to_floor`` is crmcore's
rate over the floor's. With ``--repeat K`` each benchmark runs K times and the run with the
median crmcore time is reported (the machine is shared; repeat for stable figures). ``--json``
prints exactly one JSON object: ``{"benchmarks": [{"name", "rows", "seconds", "rows_per_s",
"floor_rows_per_s", "ratio_to_floor", "peak_rss_mb"}, ...]}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

#: name -> default rows
BENCHMARKS: dict[str, int] = {
    "import_leads": 100_000,
    "import_leads_1m": 1_000_000,
    "list_page": 1_000_000,
    "list_page_fields": 1_000_000,
    "aggregate": 1_000_000,
    "secure_list_page": 1_000_000,
    "role_change_100k": 100_000,
    "role_change": 1_000_000,
    "sla_sweep": 100_000,
    "kb_search": 10_000,
    "entitlement_lines": 100_000,
    "planned_generate": 10_000,
    "caller_lookup": 100_000,
    "rules_simulate": 10_000,
    "move_opportunities": 10_000,
    "move_opportunities_bulk": 10_000,
    "convert_leads": 10_000,
    "tag_cloud": 1_000_000,
    "merge_plan": 10_000,
    "price_lines": 100_000,
    "quotes_from_opportunities": 10_000,
    "outbox_deliver": 10_000,
    "segment_members": 100_000,
    "newsletter_send": 20_000,
    "plan_actuals": 1_000_000,
    "chat_unread": 1_000_000,
    "ics_import": 10_000,
    "caldav_sync": 2_000,
    "dunning_run": 100_000,
    "invoice_post": 10_000,
    "revenue_estimate": 20_000,
    "schedule_day": 300,
    "schedule_day_routing": 300,
    "dispatch_now": 300,
    "capacity_week": 5_000,
}
DEFAULT = ("import_leads", "list_page", "list_page_fields", "aggregate")
FIELDS = ("name", "rows", "seconds", "rows_per_s", "floor_rows_per_s", "ratio_to_floor", "peak_rss_mb")


#: The module of each benchmark (``benchmarks/<module>.py``); each has ``run(name, rows, url,
#: workdir)`` (``import_leads`` and ``rules_simulate``: ``run(rows, url, workdir)``).
MODULES: dict[str, tuple[str, ...]] = {
    "billing": ("dunning_run", "invoice_post", "revenue_estimate",),
    "import_leads": ("import_leads", "import_leads_1m"),
    "queries": ("list_page", "list_page_fields", "aggregate"),
    "security": ("secure_list_page", "role_change", "role_change_100k"),
    "rules_simulate": ("rules_simulate",),
    "sales": ("move_opportunities", "move_opportunities_bulk", "convert_leads"),
    "tags": ("tag_cloud",),
    "merge": ("merge_plan",),
    "helpdesk": ("sla_sweep", "kb_search"),
    "catalog": ("price_lines",),
    "orders": ("quotes_from_opportunities",),
    "outbox": ("outbox_deliver",),
    "marketing": ("segment_members", "newsletter_send", "plan_actuals"),
    "service": ("entitlement_lines", "planned_generate", "caller_lookup"),
    "chat": ("chat_unread",),
    "calendar_sync": ("ics_import", "caldav_sync"),
    "scheduling": ("schedule_day", "schedule_day_routing", "dispatch_now", "capacity_week"),
}


def _child(name: str, rows: int, url: str | None) -> dict[str, Any]:
    import importlib

    from common import temporary_directory

    module = next(module for module, names in MODULES.items() if name in names)
    with temporary_directory() as workdir:
        bench = importlib.import_module(module)
        if module in ("import_leads", "rules_simulate"):
            result: dict[str, Any] = bench.run(rows, url, workdir)
            result["name"] = name
            return result
        return bench.run(name, rows, url, workdir)  # type: ignore[no-any-return]


def _spawn(name: str, rows: int, url: str | None) -> dict[str, Any]:
    command = [sys.executable, os.path.abspath(__file__), "--child", name, "--rows", str(rows)]
    if url:
        command += ["--db", url]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark {name} failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _table(results: list[dict[str, Any]]) -> str:
    head = ["benchmark", "rows", "seconds", "rows/s", "floor rows/s", "ratio", "peak RSS MB"]
    lines = [[
        r["name"], f"{r['rows']:,}", f"{r['seconds']:.4f}", f"{r['rows_per_s']:,.0f}",
        f"{r['floor_rows_per_s']:,.0f}", f"{r['ratio_to_floor']:.3f}", f"{r['peak_rss_mb']:.1f}",
    ] for r in results]
    widths = [max(len(str(x)) for x in column) for column in zip(head, *lines, strict=True)]
    out = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths, strict=True)))]
    for line in lines:
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="crmcore benchmarks against raw floors.")
    parser.add_argument("--only", help=f"comma-separated benchmarks among {', '.join(BENCHMARKS)}")
    parser.add_argument("--rows", type=int, help="rows per benchmark (default: each one's own)")
    parser.add_argument("--db", help="a PostgreSQL URL (default: SQLite files in a temporary directory)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per benchmark; the median run is reported")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = _child(args.child, args.rows or BENCHMARKS[args.child], args.db)
        print(json.dumps(result))
        return 0
    names = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else list(DEFAULT)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose among {', '.join(BENCHMARKS)}")
    results = []
    for name in names:
        runs = [_spawn(name, args.rows or BENCHMARKS[name], args.db) for _ in range(max(args.repeat, 1))]
        runs.sort(key=lambda r: r["seconds"])
        results.append(runs[len(runs) // 2])
    if args.json:
        print(json.dumps({"benchmarks": [{k: r[k] for k in FIELDS} for r in results]}))
    else:
        database = "PostgreSQL" if args.db else "SQLite"
        print(f"crmcore benchmarks on {database}")
        print(_table(results))
        for result in results:  # what a benchmark reports beyond the table (CPU figures, checks)
            notes = {k: v for k, v in result.items() if k not in FIELDS}
            if notes:
                print(f"{result['name']}: " + ", ".join(f"{k}={v}" for k, v in notes.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
