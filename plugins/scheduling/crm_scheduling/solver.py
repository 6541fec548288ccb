"""Assignment: the best resource for each piece of demand, explained.

:func:`greedy` takes demand in order of priority, then earliest deadline, and gives each piece
the resource that can do it at the lowest cost, where every resource is weighed:

- **skills** are a hard constraint: a resource lacking one of the order's skills at its minimum
  level is refused, naming the skill;
- **time** is a hard constraint: the work (and the travel to it) must fit in the resource's
  free working time (calendar, holidays, absences and bookings taken out) inside the order's
  window; a resource without such a slot is refused;
- **travel** costs the kilometres from where the resource is before the work (its home base,
  or the site of its previous job that day) to the site, as the crow flies, at the configured
  speed for the travel time;
- **territory** is preferred: a resource whose territory is neither the order's nor one that
  contains it counts ``territory_penalty_km`` extra (a resource without a territory works
  everywhere);
- **waiting** costs: each hour between the window's opening and the start counts as a quarter
  of an hour of driving, four times that for urgent orders, so urgent work goes to whoever can
  be there first;
- ties go to the lower cost per hour, then to the lower resource id.

The solver works on :class:`Problem`, plain values, and writes nothing; a :class:`Proposal`
lists each assignment with the candidates considered and why each was refused or beaten.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal

import attrs

from crm_scheduling.demand import Demand
from crm_scheduling.intervals import Span, clip, merge, subtract
from crm_scheduling.resources import Resource

__all__ = [
    "Assignment", "Candidate", "Problem", "Proposal", "Stop", "covers", "distance_km", "greedy",
    "place_before", "weigh",
]

_EARTH_KM = 6371.0


Place = tuple[float | None, float | None]


def distance_km(a: Place, b: Place) -> float:
    """The great-circle distance between two (latitude, longitude) points; 0 when either is
    unknown."""
    if None in a or None in b:
        return 0.0
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))  # type: ignore[arg-type]
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * _EARTH_KM * math.asin(min(1.0, math.sqrt(h)))


@attrs.frozen
class Stop:
    """Where a resource is until a time: a job's site from its end on."""

    at: dt.datetime
    place: tuple[float | None, float | None]


@attrs.frozen
class Problem:
    """Demand, resources and the constants the solver weighs them with."""

    demand: Sequence[Demand]
    resources: Mapping[int, Resource]
    stops: Mapping[int, Sequence[Stop]] = attrs.field(factory=dict)
    territory_parents: Mapping[int, int | None] = attrs.field(factory=dict)
    speed_kmh: float = 40.0
    territory_penalty_km: float = 50.0
    not_before: dt.datetime | None = None


@attrs.frozen
class Candidate:
    """One resource weighed for one piece of demand."""

    resource_id: int
    name: str
    refused: str | None = None
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    travel_km: float = 0.0
    travel_minutes: int = 0
    in_territory: bool = True
    cost: float = math.inf
    cost_per_hour: Decimal | None = None

    def explain(self) -> str:
        """One line: why refused, or where, when and at what cost."""
        if self.refused:
            return f"{self.name}: refused, {self.refused}"
        where = "" if self.in_territory else ", outside the order's territory"
        return (f"{self.name}: {self.starts_at:%a %H:%M}-{self.ends_at:%H:%M} UTC, "
                f"{self.travel_km:.1f} km ({self.travel_minutes} min) of travel{where}, "
                f"cost {self.cost:.1f}")


@attrs.frozen
class Assignment:
    """A piece of demand given to a resource (or to none, with the reasons)."""

    demand: Demand
    resource_id: int | None
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    travel_minutes: int
    travel_km: float
    considered: tuple[Candidate, ...]
    note: str = ""

    @property
    def reason(self) -> str:
        """Why this resource (or why none)."""
        ranked = sorted((c for c in self.considered if not c.refused), key=_key)
        if self.note:
            refused = [c for c in self.considered if c.refused]
            return self.note + "".join(f"; refused: {c.name} ({c.refused})" for c in refused[:3])
        if self.resource_id is None:
            return "no resource can do it: " + "; ".join(c.explain() for c in self.considered)
        best, *others = ranked
        why = f"{best.name} has the lowest cost ({best.cost:.1f}: {best.travel_km:.1f} km"
        why += ")" if best.in_territory else ", outside the territory)"
        if others:
            why += "; beaten: " + ", ".join(f"{c.name} ({c.cost:.1f})" for c in others[:3])
        refused = [c for c in self.considered if c.refused]
        if refused:
            why += "; refused: " + "; ".join(f"{c.name} ({c.refused})" for c in refused[:3])
            if len(refused) > 3:
                why += f" and {len(refused) - 3} more"
        return why


@attrs.frozen
class Proposal:
    """What a solver proposes: nothing is written until it is accepted."""

    assignments: tuple[Assignment, ...]
    solver: str = "greedy"

    @property
    def unassigned(self) -> list[Assignment]:
        return [a for a in self.assignments if a.resource_id is None]

    @property
    def total_km(self) -> float:
        return sum(a.travel_km for a in self.assignments if a.resource_id is not None)

    def routes(self) -> dict[int, list[Assignment]]:
        """Each resource's assignments in time order: where it goes, one day after another."""
        out: dict[int, list[Assignment]] = {}
        for a in self.assignments:
            if a.resource_id is not None:
                out.setdefault(a.resource_id, []).append(a)
        return {r: sorted(v, key=lambda a: a.starts_at) for r, v in sorted(out.items())}


def _key(c: Candidate) -> tuple[float, Decimal, int]:
    return (round(c.cost, 6), c.cost_per_hour if c.cost_per_hour is not None else Decimal(0),
            c.resource_id)


def covers(parents: Mapping[int, int | None], outer: int, inner: int) -> bool:
    """Whether territory *outer* is *inner* or one of its ancestors."""
    node: int | None = inner
    seen = set()
    while node is not None and node not in seen:
        if node == outer:
            return True
        seen.add(node)
        node = parents.get(node)
    return False


def place_before(stops: Sequence[Stop], at: dt.datetime,
                 home: Place) -> Place:
    """Where a resource is at *at*: the site of its last stop that day, else *home*."""
    place = home
    for stop in stops:
        if stop.at <= at and stop.at.date() == at.date():
            place = stop.place
    return place


def weigh(problem: Problem, demand: Demand, resource: Resource, free: Sequence[Span],
          stops: Sequence[Stop]) -> Candidate:
    """One resource for one piece of demand: refused with the reason, or its best slot."""
    base = Candidate(resource.id, resource.name,
                     cost_per_hour=resource.cost_per_hour.amount if resource.cost_per_hour
                     else None)
    missing = [f"lacks {s} (needs level {lvl}, has {resource.skills.get(s, 0)})"
               for s, lvl in sorted(demand.skills.items()) if resource.skills.get(s, 0) < lvl]
    if missing:
        return attrs.evolve(base, refused="; ".join(missing))
    in_territory = (demand.territory_id is None or resource.territory_id is None
                    or covers(problem.territory_parents, resource.territory_id,
                               demand.territory_id))
    opens = demand.window_start
    if problem.not_before is not None and problem.not_before > opens:
        opens = problem.not_before
    site = (demand.latitude, demand.longitude)
    home = (resource.latitude, resource.longitude)
    duration = dt.timedelta(minutes=demand.minutes)
    for span_start, span_end in clip(free, opens - dt.timedelta(days=1), demand.window_end):
        km = distance_km(place_before(stops, span_start, home), site)
        minutes = math.ceil(km / problem.speed_kmh * 60) if km else 0
        start = max(span_start + dt.timedelta(minutes=minutes), opens)
        end = start + duration
        if end <= span_end and end <= demand.window_end:
            wait_hours = (start - demand.window_start).total_seconds() / 3600
            weight = 4.0 if demand.priority == "urgent" else 1.0
            cost = (km + (0.0 if in_territory else problem.territory_penalty_km)
                    + wait_hours * problem.speed_kmh / 4 * weight)
            return attrs.evolve(base, starts_at=start, ends_at=end, travel_km=round(km, 3),
                                travel_minutes=minutes, in_territory=in_territory, cost=cost)
    return attrs.evolve(base, refused="no free time in the window "
                        f"{demand.window_start:%Y-%m-%d %H:%M}-{demand.window_end:%H:%M} UTC")


def greedy(problem: Problem) -> Proposal:
    """Place the demand one piece after another, each with the cheapest resource."""
    free = {r.id: r.free for r in problem.resources.values()}
    stops = {r: sorted(problem.stops.get(r, ()), key=lambda s: s.at) for r in free}
    out = []
    for demand in sorted(problem.demand, key=lambda d: d.rank):
        considered = tuple(weigh(problem, demand, resource, free[resource.id], stops[resource.id])
                           for resource in problem.resources.values())
        ok = sorted((c for c in considered if not c.refused), key=_key)
        if not ok:
            out.append(Assignment(demand, None, None, None, 0, 0.0, considered))
            continue
        best = ok[0]
        taken = (best.starts_at - dt.timedelta(minutes=best.travel_minutes), best.ends_at)
        free[best.resource_id] = subtract(free[best.resource_id], merge([taken]))
        stops[best.resource_id] = sorted(
            [*stops[best.resource_id], Stop(best.ends_at, (demand.latitude, demand.longitude))],
            key=lambda s: s.at)
        out.append(Assignment(demand, best.resource_id, best.starts_at, best.ends_at,
                              best.travel_minutes, best.travel_km, considered))
    return Proposal(tuple(out))
