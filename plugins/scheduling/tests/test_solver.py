"""The greedy solver on small fixed problems with known best answers (no database)."""

from __future__ import annotations

import datetime as dt

from crm_scheduling.demand import Demand
from crm_scheduling.resources import Resource
from crm_scheduling.solver import Problem, distance_km, greedy

DAY = dt.date(2027, 1, 18)


def at(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(DAY, dt.time(hour, minute), tzinfo=dt.UTC)


def tech(rid: int, name: str, lon: float, skills: dict[str, int] | None = None,
         territory: int | None = None, busy=()) -> Resource:
    return Resource(id=rid, name=name, kind="technician", user_id=None, team_id=None,
                    territory_id=territory, latitude=0.0, longitude=lon, skills=skills or {},
                    cost_per_hour=None, timezone="UTC", working=[(at(8), at(17))],
                    busy=list(busy))


def job(oid: int, lon: float, minutes: int = 60, priority: str = "normal",
        skills: dict[str, int] | None = None, start: int = 8, end: int = 17,
        territory: int | None = None) -> Demand:
    return Demand("service_order", oid, f"job {oid}", priority, minutes, at(start), at(end),
                  0.0, lon, territory, skills or {})


def test_distance_is_the_great_circle() -> None:
    assert round(distance_km((0.0, 0.0), (0.0, 1.0)), 1) == 111.2
    assert distance_km((None, None), (0.0, 1.0)) == 0.0


def test_the_nearest_qualified_technician_gets_the_job() -> None:
    problem = Problem([job(1, 0.9)], {1: tech(1, "Ann", 0.0), 2: tech(2, "Bob", 1.0)})
    [a] = greedy(problem).assignments
    assert a.resource_id == 2
    assert a.travel_km == round(distance_km((0.0, 1.0), (0.0, 0.9)), 3)
    assert a.starts_at == at(8, 17)  # 11.1 km at 40 km/h: 17 minutes of travel
    assert "Bob has the lowest cost" in a.reason and "beaten: Ann" in a.reason


def test_a_missing_skill_refuses_the_nearer_technician() -> None:
    problem = Problem([job(1, 0.1, skills={"gas": 3})],
                      {1: tech(1, "Ann", 0.0, {"gas": 2}), 2: tech(2, "Bob", 1.0, {"gas": 3})})
    [a] = greedy(problem).assignments
    assert a.resource_id == 2
    assert "Ann (lacks gas (needs level 3, has 2))" in a.reason


def test_urgent_work_is_placed_first_and_takes_the_only_slot() -> None:
    ann = tech(1, "Ann", 0.0, busy=[(at(9), at(17))])
    problem = Problem([job(1, 0.0, priority="low", end=9), job(2, 0.0, priority="urgent", end=9)],
                      {1: ann})
    placed = {a.demand.id: a for a in greedy(problem).assignments}
    assert placed[2].resource_id == 1 and placed[2].starts_at == at(8)
    assert placed[1].resource_id is None
    assert "no free time in the window" in placed[1].reason


def test_the_territory_is_preferred_over_a_little_travel() -> None:
    problem = Problem([job(1, 0.5, territory=10)],
                      {1: tech(1, "Ann", 0.45, territory=20), 2: tech(2, "Bob", 0.6, territory=10)},
                      territory_parents={10: None, 20: None})
    [a] = greedy(problem).assignments
    assert a.resource_id == 2  # 11 km beats 5.6 km plus 50 km of territory penalty


def test_a_parent_territory_covers_its_children() -> None:
    problem = Problem([job(1, 0.5, territory=11)],
                      {1: tech(1, "Ann", 0.45, territory=10), 2: tech(2, "Bob", 0.6, territory=11)},
                      territory_parents={10: None, 11: 10})
    [a] = greedy(problem).assignments
    assert a.resource_id == 1


def test_a_day_chains_jobs_and_counts_travel_from_the_last_site() -> None:
    problem = Problem([job(1, 0.1, start=8, end=10), job(2, 0.2, start=9, end=12)],
                      {1: tech(1, "Ann", 0.0)})
    proposal = greedy(problem)
    route = proposal.routes()[1]
    assert [a.demand.id for a in route] == [1, 2]
    assert route[1].starts_at >= route[0].ends_at + dt.timedelta(minutes=route[1].travel_minutes)
    assert round(proposal.total_km, 1) == round(2 * distance_km((0, 0), (0, 0.1)), 1)


def test_work_longer_than_the_free_time_is_not_placed() -> None:
    problem = Problem([job(1, 0.0, minutes=600)], {1: tech(1, "Ann", 0.0)})
    [a] = greedy(problem).assignments
    assert a.resource_id is None
