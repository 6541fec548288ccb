"""``schedule_day``, ``dispatch_now`` and ``capacity_week``: the scheduling plugin
(``plugins/scheduling``, installed) against the same input read by hand.

``schedule_day``: 300 service orders (N) with skills, time windows and sites among 40
technicians with skills and home bases, proposed for one day with
:func:`crm_scheduling.planning.propose` (the greedy solver; demand and resources read through
the secured road, explanations made). Target: under 2 s. Floor: the same rows selected with the
driver, turned into the solver's problem by hand and handed to the same greedy solver (the
assignments must be the same); the ratio is the cost of the secured reads and the problem
building.

``schedule_day_routing``: the same day proposed with the ``routing`` solver (OR-Tools, the
routing extra; 30 s search limit). Floor: the greedy proposal of the same day read by hand. The
travel saved against the greedy proposal is printed to standard error
(``routing: N km against greedy M km: P% less travel``) and returned as ``travel_saved_pct``.

``dispatch_now``: the day of ``schedule_day`` accepted (booked), then 20 urgent orders each
dispatched from 10:00 with :func:`crm_scheduling.planning.dispatch` (writing nothing); the
median latency is reported (``median_ms``; target under 300 ms). Rows are the dispatches.
Floor: the resources and that day's bookings read with the driver and the urgent order placed
by the same solver.

``capacity_week``: 200 resources with 5,000 bookings (N) in a week, the capacity of the week
per day by resource, team, skill and territory with :func:`crm_scheduling.capacity.capacity`.
Target: under 1 s. Floor: the resources and bookings selected with the driver and the booked
minutes per resource and day summed by hand.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import sys
import time
from typing import Any

from common import Result, fresh_url, is_postgres, peak_rss_mb, raw_connection

from crmcore import create_app
from crmcore.app import Crm

DAY = dt.date(2027, 1, 18)  # a Monday
SKILLS = ("electrical", "hydraulics", "gas")
TECHNICIANS = 40
URGENT = 20


def run(name: str, rows: int, url: str | None, workdir: str) -> Result:
    if name == "schedule_day":
        return _schedule_day(rows, url, workdir)
    if name == "schedule_day_routing":
        return _schedule_day_routing(rows, url, workdir)
    if name == "dispatch_now":
        return _dispatch_now(rows, url, workdir)
    return _capacity_week(rows, url, workdir)


def _at(hour: float, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) + dt.timedelta(hours=hour)


def _app(database: str) -> Crm:
    app = create_app({"crm": {"database": database, "plugins": ["scheduling"]}})
    app.create_schema()
    return app


def _technicians(app: Crm, count: int) -> None:
    rng = random.Random(3)
    with app.unit_of_work() as uow:
        made = uow.create_many("resource", [
            {"name": f"T{i}", "home_latitude": f"{rng.uniform(0, 0.5):.4f}",
             "home_longitude": f"{rng.uniform(0, 0.5):.4f}"} for i in range(count)])
        uow.create_many("resource_skill", [
            {"resource_id": r.id, "skill": s, "level": 1 + (i + j) % 5}
            for i, r in enumerate(made) for j, s in enumerate(SKILLS) if (i + j) % 3])
        uow.commit()


def _orders(app: Crm, count: int, rng: random.Random, **values: Any) -> list[int]:
    with app.unit_of_work() as uow:
        account = uow.query("account").first() or uow.create("account", name="Acme")
        rows = []
        for i in range(count):
            opens = rng.choice((8, 8, 10, 12, 13))
            rows.append({"subject": f"Order {i}", "account_id": account.id,
                         "priority": rng.choice(("low", "normal", "normal", "high")),
                         "duration_minutes": rng.choice((30, 45, 60, 90)),
                         "latitude": f"{rng.uniform(0, 0.5):.4f}",
                         "longitude": f"{rng.uniform(0, 0.5):.4f}",
                         "window_start": _at(opens), "window_end": _at(opens + 5), **values})
        made = uow.create_many("service_order", rows)
        uow.create_many("order_skill", [
            {"order_id": o.id, "skill": SKILLS[i % 3], "min_level": 1 + i % 3}
            for i, o in enumerate(made) if i % 4])
        uow.commit()
    return [o.id for o in made]


def _stamp(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC)


def _floor_problem(connection: Any, url: str | None, order_ids: list[int] | None,
                   day: dt.date) -> Any:
    """The problem of *day* read with the driver (orders: the unbooked ones, or *order_ids*)."""
    from crm_scheduling.demand import Demand
    from crm_scheduling.resources import Resource
    from crm_scheduling.solver import Problem, Stop

    p = "%s" if is_postgres(url) else "?"
    cursor = connection.cursor()
    scale = 1_000_000
    if order_ids is None:
        cursor.execute("SELECT id, subject, priority, scheduling_duration_minutes, window_start, "
                       "window_end, scheduling_latitude, scheduling_longitude FROM "
                       "service_service_order WHERE status IN ('new', 'scheduled') AND id NOT "
                       "IN (SELECT order_id FROM scheduling_booking WHERE order_id IS NOT NULL)")
    else:
        marks = ", ".join([p] * len(order_ids))
        cursor.execute("SELECT id, subject, priority, scheduling_duration_minutes, window_start, "
                       "window_end, scheduling_latitude, scheduling_longitude FROM "
                       f"service_service_order WHERE id IN ({marks})", order_ids)
    orders = cursor.fetchall()
    cursor.execute("SELECT order_id, skill, min_level FROM scheduling_order_skill")
    skills: dict[int, dict[str, int]] = {}
    for order_id, skill, level in cursor.fetchall():
        skills.setdefault(order_id, {})[skill] = level
    demand = [Demand("service_order", o[0], o[1], o[2], o[3], _stamp(o[4]), _stamp(o[5]),
                     o[6] / scale, o[7] / scale, None, skills.get(o[0], {})) for o in orders]
    cursor.execute("SELECT id, name, home_latitude, home_longitude FROM scheduling_resource "
                   "WHERE active = " + ("true" if is_postgres(url) else "1") +
                   " AND kind = 'technician' ORDER BY id")
    resources = cursor.fetchall()
    cursor.execute("SELECT resource_id, skill, level FROM scheduling_resource_skill")
    levels: dict[int, dict[str, int]] = {}
    for resource_id, skill, level in cursor.fetchall():
        levels.setdefault(resource_id, {})[skill] = level
    cursor.execute("SELECT b.resource_id, b.starts_at, b.ends_at, b.travel_minutes, "
                   "o.scheduling_latitude, o.scheduling_longitude FROM scheduling_booking b "
                   "JOIN service_service_order o ON o.id = b.order_id "
                   f"WHERE b.starts_at < {p} AND b.ends_at > {p}",
                   (_at(24, day).replace(tzinfo=None), _at(0, day).replace(tzinfo=None)))
    busy: dict[int, list[Any]] = {}
    stops: dict[int, list[Any]] = {}
    for rid, start, end, travel, lat, lon in cursor.fetchall():
        start, end = _stamp(start), _stamp(end)
        busy.setdefault(rid, []).append((start - dt.timedelta(minutes=travel or 0), end))
        stops.setdefault(rid, []).append(Stop(end, (lat / scale, lon / scale)))
    cursor.close()
    found = {r[0]: Resource(r[0], r[1], "technician", None, None, None, r[2] / scale,
                            r[3] / scale, levels.get(r[0], {}), None, "UTC",
                            working=[(_at(8, day), _at(17, day))],
                            busy=sorted(busy.get(r[0], []))) for r in resources}
    return Problem(demand, found, stops)


def _schedule_day(rows: int, url: str | None, workdir: str) -> Result:
    from crm_scheduling import planning
    from crm_scheduling.solver import greedy

    with fresh_url(url, workdir, "schedule") as database:
        app = _app(database)
        try:
            _technicians(app, TECHNICIANS)
            _orders(app, rows, random.Random(5))
            started = time.perf_counter()
            with app.unit_of_work() as uow:
                proposal = planning.propose(uow, DAY)
            seconds = time.perf_counter() - started
            peak = peak_rss_mb()
            with raw_connection(app) as connection:
                started = time.perf_counter()
                floor = greedy(_floor_problem(connection, url, None, DAY))
                floor_seconds = time.perf_counter() - started
        finally:
            app.close()
    mine = {a.demand.id: (a.resource_id, a.starts_at) for a in proposal.assignments}
    assert mine == {a.demand.id: (a.resource_id, a.starts_at) for a in floor.assignments}
    outcome = Result.make("schedule_day", rows, seconds, floor_seconds, peak)
    outcome.update(technicians=TECHNICIANS, placed=rows - len(proposal.unassigned),
                   travel_km=round(proposal.total_km, 1), target_seconds=2)
    return outcome


def _schedule_day_routing(rows: int, url: str | None, workdir: str) -> Result:
    from crm_scheduling import planning
    from crm_scheduling.solver import greedy

    with fresh_url(url, workdir, "routing") as database:
        app = _app(database)
        try:
            _technicians(app, TECHNICIANS)
            _orders(app, rows, random.Random(5))
            started = time.perf_counter()
            with app.unit_of_work() as uow:
                proposal = planning.propose(uow, DAY, solver="routing")
            seconds = time.perf_counter() - started
            peak = peak_rss_mb()
            with raw_connection(app) as connection:
                started = time.perf_counter()
                floor = greedy(_floor_problem(connection, url, None, DAY))
                floor_seconds = time.perf_counter() - started
        finally:
            app.close()
    saved = 100 * (1 - proposal.total_km / floor.total_km) if floor.total_km else 0.0
    print(f"routing: {proposal.total_km:.1f} km ({rows - len(proposal.unassigned)} placed) "
          f"against greedy {floor.total_km:.1f} km ({rows - len(floor.unassigned)} placed): "
          f"{saved:.1f}% less travel", file=sys.stderr)
    outcome = Result.make("schedule_day_routing", rows, seconds, floor_seconds, peak)
    outcome.update(travel_saved_pct=round(saved, 1), target_seconds=30)
    return outcome


def _dispatch_now(rows: int, url: str | None, workdir: str) -> Result:
    from crm_scheduling import planning
    from crm_scheduling.solver import greedy

    now = _at(10)
    with fresh_url(url, workdir, "dispatch") as database:
        app = _app(database)
        try:
            _technicians(app, TECHNICIANS)
            _orders(app, rows, random.Random(5))
            with app.unit_of_work() as uow:
                planning.accept(uow, planning.propose(uow, DAY))
                uow.commit()
            urgent = _orders(app, URGENT, random.Random(9), priority="urgent",
                             window_start=now, window_end=_at(17))
            times = []
            for order_id in urgent:
                with app.unit_of_work() as uow:
                    started = time.perf_counter()
                    planning.dispatch(uow, order_id, now)
                    times.append(time.perf_counter() - started)
            peak = peak_rss_mb()
            floor_times = []
            with raw_connection(app) as connection:
                for order_id in urgent:
                    started = time.perf_counter()
                    problem = _floor_problem(connection, url, [order_id], DAY)
                    greedy(problem)
                    floor_times.append(time.perf_counter() - started)
        finally:
            app.close()
    median, floor_median = statistics.median(times), statistics.median(floor_times)
    outcome = Result.make("dispatch_now", URGENT, median * URGENT, floor_median * URGENT, peak)
    outcome.update(orders=rows, median_ms=round(median * 1000, 1),
                   floor_median_ms=round(floor_median * 1000, 1), target_median_ms=300)
    return outcome


def _capacity_week(rows: int, url: str | None, workdir: str) -> Result:
    from crm_scheduling.capacity import capacity

    resources = 200
    per_day = -(-rows // (resources * 5))
    with fresh_url(url, workdir, "capacity") as database:
        app = _app(database)
        try:
            _technicians(app, resources)
            with app.unit_of_work() as uow:
                ids = [r.id for r in uow.query("resource").order_by("id")]
                made = []
                for n in range(rows):
                    rid = ids[n % resources]
                    slot = n // resources
                    day = DAY + dt.timedelta(days=slot % 5)
                    start = _at(8 + (slot // 5) * 8 / per_day, day)
                    made.append({"resource_id": rid, "starts_at": start,
                                 "ends_at": start + dt.timedelta(minutes=60)})
                uow.create_many("booking", made)
                uow.commit()
            started = time.perf_counter()
            with app.unit_of_work() as uow:
                report = capacity(uow, DAY, DAY + dt.timedelta(days=6))
            seconds = time.perf_counter() - started
            peak = peak_rss_mb()
            with raw_connection(app) as connection:
                started = time.perf_counter()
                floor = _floor_capacity(connection, url)
                floor_seconds = time.perf_counter() - started
        finally:
            app.close()
    booked = sum(r.booked for r in report if r.group == "resource")
    assert round(booked) == round(sum(floor.values())), (booked, sum(floor.values()))
    outcome = Result.make("capacity_week", rows, seconds, floor_seconds, peak)
    outcome.update(resources=resources, target_seconds=1)
    return outcome


def _floor_capacity(connection: Any, url: str | None) -> dict[tuple[int, dt.date], float]:
    p = "%s" if is_postgres(url) else "?"
    cursor = connection.cursor()
    cursor.execute("SELECT id FROM scheduling_resource")
    sums = {(r[0], DAY + dt.timedelta(days=d)): 0.0 for r in cursor.fetchall() for d in range(7)}
    cursor.execute("SELECT resource_id, starts_at, ends_at, travel_minutes FROM "
                   f"scheduling_booking WHERE starts_at < {p} AND ends_at > {p}",
                   (_at(24 * 7).replace(tzinfo=None), _at(0).replace(tzinfo=None)))
    for rid, start, end, travel in cursor.fetchall():
        start = _stamp(start) - dt.timedelta(minutes=travel or 0)
        sums[(rid, start.date())] += (_stamp(end) - start).total_seconds() / 60
    cursor.close()
    return sums
