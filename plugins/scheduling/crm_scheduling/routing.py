"""The ``routing`` solver: OR-Tools' vehicle routing with time windows (the ``routing`` extra,
``pip install crm-scheduling[routing]``).

Each stretch of a technician's free time is one vehicle of the model: it starts where the
technician is at the start of the stretch (home base, or the site of the job before), may not
start before the stretch opens and must be done when it closes, so bookings, absences, holidays
and working hours are kept as the greedy solver keeps them. A job may go only to vehicles of
technicians with its skills at their levels; it must start in its window and end by its close;
the arcs cost the kilometres driven (``territory_penalty_km`` more into a job outside the
technician's territory); a job left out costs more than any route, most for urgent ones. The
search starts from the cheapest arcs and improves by guided local search until the time limit
(``routing_seconds``). Assignments say which route they are on; refusals (skills, no time) are
those the greedy solver would give.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import attrs

from crm_scheduling.demand import PRIORITY_RANK
from crm_scheduling.solver import (
    Assignment,
    Problem,
    Proposal,
    covers,
    distance_km,
    place_before,
    weigh,
)

__all__ = ["routing"]

_LEFT_OUT = {0: 10_000_000, 1: 2_000_000, 2: 1_000_000, 3: 500_000}  # metres


def routing(problem: Problem, *, seconds: float = 30.0) -> Proposal:
    """Place the demand of *problem* with OR-Tools, within *seconds*."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    demand = list(problem.demand)
    if not demand:
        return Proposal((), solver="routing")
    origin = min([d.window_start for d in demand]
                 + [s for r in problem.resources.values() for s, _ in r.free[:1]])
    vehicles: list[tuple[Any, dt.datetime, dt.datetime, tuple]] = []
    for resource in problem.resources.values():
        stops = sorted(problem.stops.get(resource.id, ()), key=lambda s: s.at)
        for start, end in resource.free:
            if end > origin and start < max(d.window_end for d in demand):
                place = place_before(stops, start, (resource.latitude, resource.longitude))
                vehicles.append((resource, max(start, origin), end, place))
    if not vehicles:
        return _none(problem, demand)
    places = [v[3] for v in vehicles] + [(d.latitude, d.longitude) for d in demand]
    starts = list(range(len(vehicles)))
    end_node = len(places)
    manager = pywrapcp.RoutingIndexManager(len(places) + 1, len(vehicles), starts,
                                           [end_node] * len(vehicles))
    model = pywrapcp.RoutingModel(manager)
    first_job = len(vehicles)

    def minute(moment: dt.datetime) -> int:
        return max(0, int((moment - origin).total_seconds() // 60))

    def km(a: int, b: int) -> float:
        if a == end_node or b == end_node:
            return 0.0
        return distance_km(places[a], places[b])

    def travel(a: int, b: int) -> int:
        d = km(a, b)
        return math.ceil(d / problem.speed_kmh * 60) if d else 0

    def duration(node: int) -> int:
        return demand[node - first_job].minutes if first_job <= node < end_node else 0

    def transit(i: int, j: int) -> int:
        a, b = manager.IndexToNode(i), manager.IndexToNode(j)
        return duration(a) + travel(a, b)

    time_cb = model.RegisterTransitCallback(transit)
    horizon = max(minute(v[2]) for v in vehicles) + 1
    model.AddDimension(time_cb, horizon, horizon, False, "time")
    clock = model.GetDimensionOrDie("time")
    for v, (resource, start, end, _) in enumerate(vehicles):
        clock.CumulVar(model.Start(v)).SetRange(minute(start), minute(end))
        clock.CumulVar(model.End(v)).SetRange(minute(start), minute(end))

        def cost(i: int, j: int, resource: Any = resource) -> int:
            a, b = manager.IndexToNode(i), manager.IndexToNode(j)
            metres = int(km(a, b) * 1000)
            if first_job <= b < end_node:
                job = demand[b - first_job]
                if not (job.territory_id is None or resource.territory_id is None
                        or covers(problem.territory_parents, resource.territory_id,
                                   job.territory_id)):
                    metres += int(problem.territory_penalty_km * 1000)
            return metres

        model.SetArcCostEvaluatorOfVehicle(model.RegisterTransitCallback(cost), v)
    for n, job in enumerate(demand):
        index = manager.NodeToIndex(first_job + n)
        latest = minute(job.window_end) - job.minutes
        if latest < minute(job.window_start):
            model.AddDisjunction([index], 0)
            model.VehicleVar(index).SetValues([-1])
            continue
        clock.CumulVar(index).SetRange(minute(job.window_start), max(latest, 0))
        allowed = [v for v, (r, *_) in enumerate(vehicles)
                   if all(r.skills.get(s, 0) >= lvl for s, lvl in job.skills.items())]
        model.VehicleVar(index).SetValues([-1, *allowed])
        model.AddDisjunction([index], _LEFT_OUT[PRIORITY_RANK.get(job.priority, 2)])
    parameters = pywrapcp.DefaultRoutingSearchParameters()
    parameters.first_solution_strategy = (
        routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC)
    parameters.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH)
    parameters.time_limit.FromMilliseconds(max(1, int(seconds * 1000)))
    solution = model.SolveWithParameters(parameters)
    if solution is None:
        return _none(problem, demand)
    placed: dict[int, Assignment] = {}
    for v, (resource, *_rest) in enumerate(vehicles):
        index = model.Start(v)
        previous = manager.IndexToNode(index)
        index = solution.Value(model.NextVar(index))
        while not model.IsEnd(index):
            node = manager.IndexToNode(index)
            job = demand[node - first_job]
            start = origin + dt.timedelta(minutes=solution.Value(clock.CumulVar(index)))
            considered = tuple(weigh(problem, job, r, r.free, problem.stops.get(r.id, ()))
                               for r in problem.resources.values())
            chosen = next(c for c in considered if c.resource_id == resource.id)
            chosen = attrs.evolve(chosen, refused=None, starts_at=start,
                                  ends_at=start + dt.timedelta(minutes=job.minutes),
                                  travel_km=round(km(previous, node), 3),
                                  travel_minutes=travel(previous, node))
            considered = tuple(chosen if c.resource_id == resource.id else c
                               for c in considered)
            placed[job.id] = Assignment(
                job, resource.id, chosen.starts_at, chosen.ends_at, chosen.travel_minutes,
                chosen.travel_km, considered,
                note=f"{resource.name} on the routes of least total travel (OR-Tools)")
            previous = node
            index = solution.Value(model.NextVar(index))
    out = [placed.get(d.id) or Assignment(
        d, None, None, None, 0, 0.0,
        tuple(weigh(problem, d, r, r.free, problem.stops.get(r.id, ()))
              for r in problem.resources.values())) for d in demand]
    return Proposal(tuple(out), solver="routing")


def _none(problem: Problem, demand: list[Any]) -> Proposal:
    return Proposal(tuple(Assignment(d, None, None, None, 0, 0.0, ()) for d in demand),
                    solver="routing")
