"""The OR-Tools routing solver on small fixed problems with known best answers."""

from __future__ import annotations

import pytest
from test_solver import job, tech

from crm_scheduling.solver import Problem, distance_km, greedy

pytest.importorskip("ortools")

from crm_scheduling.routing import routing  # noqa: E402

UNIT = distance_km((0.0, 0.0), (0.0, 0.1))  # 0.1 degree of longitude on the equator


def test_routing_drives_the_shortest_round_where_greedy_zigzags() -> None:
    # the farthest job has the earliest deadline, so greedy goes there first and comes back
    zigzag = greedy(Problem([job(1, 0.3, end=12), job(2, 0.1), job(3, 0.2)],
                            {1: tech(1, "Ann", 0.0)}))
    best = routing(Problem([job(1, 0.3, end=12), job(2, 0.1), job(3, 0.2)],
                           {1: tech(1, "Ann", 0.0)}), seconds=1)
    assert round(zigzag.total_km / UNIT) == 6  # 0 -> 3 -> 1 -> 2
    assert round(best.total_km / UNIT) == 3  # 0 -> 1 -> 2 -> 3, job 1 still by noon
    route = [a.demand.id for a in best.routes()[1]]
    assert route == [2, 3, 1]
    assert best.routes()[1][-1].ends_at.hour <= 12
    assert best.solver == "routing" and "OR-Tools" in best.assignments[0].reason


def test_routing_keeps_skills_and_leaves_out_what_cannot_fit() -> None:
    problem = Problem([job(1, 0.0, skills={"gas": 3}), job(2, 0.0, minutes=600)],
                      {1: tech(1, "Ann", 0.0, {"gas": 1}), 2: tech(2, "Bob", 0.5, {"gas": 3})})
    placed = {a.demand.id: a for a in routing(problem, seconds=1).assignments}
    assert placed[1].resource_id == 2
    assert placed[2].resource_id is None
    assert "Ann (lacks gas (needs level 3, has 1))" in placed[1].reason
