"""Proposals from the database and their acceptance; dispatching an urgent order now.

:func:`build_problem` reads the demand and the resources of a period into a
:class:`~crm_scheduling.solver.Problem`; :func:`propose` hands it to a solver (``greedy``, or one
a plugin adds through ``scheduling_solvers``) and returns the proposal without writing;
:func:`accept` books it (all or nothing). :func:`dispatch` places one urgent order at the
earliest it can be done from now; when no qualified technician is free in its window it takes
the place of the lowest-priority booked order it can displace (one that can be placed again
within its own window first; else one left unplaced, to plan again) and shows the moves before
anything is accepted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import ValidationError

from crm_scheduling import booking as bookings
from crm_scheduling import solver as solvers
from crm_scheduling.demand import PRIORITY_RANK, Demand, load_demand
from crm_scheduling.resources import day_span, load_resources, territory_parents
from crm_scheduling.settings import SchedulingSettings

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["Dispatch", "accept", "build_problem", "dispatch", "propose", "solver_named"]

Solver = Callable[[solvers.Problem], solvers.Proposal]


def _routing(seconds: int) -> Solver:
    def solve(problem: solvers.Problem) -> solvers.Proposal:
        try:
            import ortools  # noqa: F401

            from crm_scheduling.routing import routing
        except ImportError:
            raise ValidationError("the routing solver needs OR-Tools: pip install "
                                  "'crm-scheduling[routing]', or choose greedy") from None
        return routing(problem, seconds=seconds)
    return solve


def solver_named(uow: UnitOfWork, name: str) -> Solver:
    """The solver called *name*: ``greedy``, ``routing`` or one a plugin offers."""
    settings = uow.crm.state(SchedulingSettings)
    found: dict[str, Solver] = {"greedy": solvers.greedy,
                                "routing": _routing(settings.routing_seconds)}
    for offered in uow.crm.hook.scheduling_solvers():
        found.update(offered or {})
    if name not in found:
        raise ValidationError(f"unknown solver {name!r}; choose one of "
                              f"{', '.join(sorted(found))}")
    return found[name]


def _stops(uow: UnitOfWork, resources: Mapping[int, Any]) -> dict[int, list[solvers.Stop]]:
    orders = sorted({b["order_id"] for r in resources.values() for b in r.bookings
                     if b["order_id"]})
    sites = {}
    with uow.system_scope("the sites of booked orders give travel times"):
        for start in range(0, len(orders), 500):
            for r in uow.select("service_order", ("id", "latitude", "longitude")).where(
                    ("id", "in", orders[start:start + 500])).all():
                sites[r["id"]] = (_f(r["latitude"]), _f(r["longitude"]))
    return {r.id: [solvers.Stop(b["ends_at"], sites.get(b["order_id"], (None, None)))
                   for b in r.bookings] for r in resources.values()}


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def build_problem(uow: UnitOfWork, first: dt.date, last: dt.date, *,
                  demand: Iterable[Demand] | None = None, exclude_orders: Iterable[int] = (),
                  not_before: dt.datetime | None = None) -> solvers.Problem:
    """The problem of placing the unbooked demand of *first* to *last* on the technicians."""
    settings = uow.crm.state(SchedulingSettings)
    if demand is None:
        demand = [d for d in load_demand(uow, first, last,
                                         default_minutes=settings.default_duration)
                  if not d.booked]
    resources = load_resources(uow, first, last, kinds=("technician",),
                               exclude_orders=exclude_orders)
    return solvers.Problem(tuple(demand), resources, _stops(uow, resources),
                           territory_parents(uow), float(settings.speed_kmh),
                           float(settings.territory_penalty_km), not_before)


def propose(uow: UnitOfWork, first: dt.date, last: dt.date | None = None, *,
            solver: str | None = None) -> solvers.Proposal:
    """A proposal for the days from *first* to *last* (default: *first*) by *solver* (default:
    the ``solver`` setting); writes nothing."""
    solver = solver or uow.crm.state(SchedulingSettings).solver
    problem = build_problem(uow, first, last or first)
    return attrs.evolve(solver_named(uow, solver)(problem), solver=solver)


def accept(uow: UnitOfWork, proposal: solvers.Proposal,
           moved: Iterable[int] = ()) -> list[Any]:
    """Book every assignment of *proposal* (service orders and activities; plan occurrences
    without an order are shown, not booked; the bookings of *moved* orders are removed first),
    all or nothing; the bookings made."""
    def run() -> list[Any]:
        for order_id in moved:
            bookings.unbook(uow, order_id)
        made = []
        for a in sorted(proposal.assignments, key=lambda a: a.starts_at or dt.datetime.max
                        .replace(tzinfo=dt.UTC)):
            if a.resource_id is None or a.demand.source == "plan_occurrence":
                continue
            if a.demand.source == "activity":
                made.append(bookings.book_activity(
                    uow, a.resource_id, a.demand.id, travel_minutes=a.travel_minutes,
                    note=f"{proposal.solver}: {a.reason}"[:2000]))
                continue
            made.append(bookings.book(uow, a.resource_id, a.demand.id, a.starts_at, a.ends_at,
                                      travel_minutes=a.travel_minutes,
                                      note=f"{proposal.solver}: {a.reason}"[:2000]))
        return made
    return uow.atomic(run)


@attrs.frozen
class Dispatch:
    """An urgent order placed now: its assignment and the orders displaced for it."""

    assignment: solvers.Assignment
    moves: tuple[solvers.Assignment, ...] = ()
    displaced: tuple[int, ...] = ()

    @property
    def proposal(self) -> solvers.Proposal:
        return solvers.Proposal((self.assignment, *self.moves), solver="dispatch")

    @property
    def unbook(self) -> tuple[int, ...]:
        """The orders whose bookings go before the proposal is booked: the urgent order's own
        (when it is dispatched again) and the displaced ones'."""
        return (self.assignment.demand.id, *self.displaced)


def dispatch(uow: UnitOfWork, order_id: int, now: dt.datetime) -> Dispatch:
    """The best technician for order *order_id* from *now*, within its window (or the rest of
    the day); writes nothing (accept with ``accept(uow, d.proposal, d.displaced)``)."""
    settings = uow.crm.state(SchedulingSettings)
    [order] = load_demand(uow, now.date(), now.date(), default_minutes=settings.default_duration,
                          order_ids=[order_id])
    end = order.window_end if order.window_end > now else day_span(now.date())[1]
    if order.window_start == day_span(now.date())[0]:  # no window of its own
        end = day_span(now.date())[1]
    order = attrs.evolve(order, window_start=max(order.window_start, now), window_end=end)
    first, last = now.date(), end.date()
    problem = build_problem(uow, first, last, demand=[order], exclude_orders=[order_id],
                            not_before=now)
    placed = solvers.greedy(problem).assignments[0]
    if placed.resource_id is not None:
        return Dispatch(placed)
    rank = PRIORITY_RANK.get(order.priority, 2)
    booked = sorted(
        ((b, r) for r in problem.resources.values() for b in r.bookings if b["order_id"]
         and b["starts_at"] < end and b["ends_at"] > now),
        key=lambda br: br[0]["starts_at"])
    others = {d.id: d for d in load_demand(
        uow, first, last, default_minutes=settings.default_duration,
        order_ids=[b["order_id"] for b, _ in booked])}
    fallback = None
    for victim in sorted(others.values(), key=lambda d: d.rank, reverse=True):
        if PRIORITY_RANK.get(victim.priority, 2) <= rank:
            break
        victim = attrs.evolve(victim, window_start=max(victim.window_start, now))
        trial = build_problem(uow, first, max(last, victim.window_end.date()), demand=[order],
                              not_before=now, exclude_orders=[order_id, victim.id])
        if solvers.greedy(trial).assignments[0].resource_id is None:
            continue
        again = solvers.greedy(attrs.evolve(trial, demand=[order, victim]))
        mine = next(a for a in again.assignments if a.demand.id == order.id)
        moves = tuple(a for a in again.assignments if a.demand.id != order.id)
        found = Dispatch(mine, moves, (victim.id,))
        if all(a.resource_id is not None for a in moves):
            return found
        fallback = fallback or found
    return fallback or Dispatch(placed)
