"""Proposals from the database, accepted into bookings; urgent dispatch; territories through
the marketing geography tree."""

from __future__ import annotations

import datetime as dt

import pytest
from crmcore import ValidationError, hookimpl
from scheduling_support import MONDAY, at, order, world

from crm_scheduling import planning, solver
from crm_scheduling.demand import load_demand

PLUGINS = ["scheduling"]


def test_a_proposal_writes_nothing_and_accepting_books_it(crm_factory):
    crm = crm_factory(plugins=PLUGINS)
    ids = world(crm)
    pump = order(crm, ids, "Pump", skills={"hydraulics": 3}, latitude="0", longitude="0.9")
    lamp = order(crm, ids, "Lamp", skills={"electrical": 1}, latitude="0", longitude="0.1")
    with crm.unit_of_work() as uow:
        proposal = planning.propose(uow, MONDAY)
        assert uow.query("booking").count() == 0
        placed = {a.demand.id: a for a in proposal.assignments}
        assert placed[pump].resource_id == ids["bob"]
        assert placed[lamp].resource_id == ids["ann"]
        assert "Ann (lacks hydraulics (needs level 3, has 2))" in placed[pump].reason
        made = planning.accept(uow, proposal)
        uow.commit()
    assert len(made) == 2
    with crm.unit_of_work() as uow:
        assert {b.order_id: b.resource_id for b in uow.query("booking")} == {
            pump: ids["bob"], lamp: ids["ann"]}
        assert planning.propose(uow, MONDAY).assignments == ()  # nothing left to place


def test_an_urgent_dispatch_takes_a_low_priority_slot_and_moves_that_order(crm_factory):
    crm = crm_factory(plugins=PLUGINS)
    ids = world(crm)
    with crm.unit_of_work() as uow:  # Bob is away all day: only Ann can work
        uow.create("absence", resource_id=ids["bob"], starts_at=at(0), ends_at=at(23))
        uow.commit()
    low = order(crm, ids, "Routine check", priority="low", duration_minutes=240,
                window_end=at(17, day=MONDAY + dt.timedelta(days=1)))
    busy = order(crm, ids, "Installation", priority="high", duration_minutes=300)
    with crm.unit_of_work() as uow:
        planning.accept(uow, planning.propose(uow, MONDAY))
        uow.commit()
    urgent = order(crm, ids, "Outage", priority="urgent", duration_minutes=120,
                   window_end=at(17))
    with crm.unit_of_work() as uow:
        found = planning.dispatch(uow, urgent, at(10))
        assert found.assignment.resource_id == ids["ann"]
        assert found.displaced == (low,)
        assert uow.query("booking").count() == 2  # nothing written yet
        planning.accept(uow, found.proposal, found.unbook)
        uow.commit()
    with crm.unit_of_work() as uow:
        booked = {b.order_id: (b.starts_at, b.ends_at) for b in uow.query("booking")}
    assert busy in booked and urgent in booked
    assert booked[urgent][0] >= at(10)
    assert booked[low][0] == at(8, day=MONDAY + dt.timedelta(days=1))  # Tuesday, first thing
    assert [a.demand.id for a in found.moves] == [low]


def test_a_dispatch_on_a_free_day_moves_nobody(crm_factory):
    crm = crm_factory(plugins=PLUGINS)
    ids = world(crm)
    urgent = order(crm, ids, "Outage", priority="urgent", skills={"electrical": 2})
    with crm.unit_of_work() as uow:
        found = planning.dispatch(uow, urgent, at(11, 5))
    assert found.assignment.resource_id == ids["ann"]
    assert found.assignment.starts_at == at(11, 5) and found.moves == ()


def test_plugins_add_solvers_through_the_hook(crm_factory):
    class Nobody:
        @hookimpl
        def scheduling_solvers(self):
            return {"nobody": lambda problem: solver.Proposal(tuple(
                solver.Assignment(d, None, None, None, 0, 0.0, ()) for d in problem.demand))}

    crm = crm_factory(plugins=[*PLUGINS, Nobody()])
    ids = world(crm)
    order(crm, ids)
    with crm.unit_of_work() as uow:
        assert len(planning.propose(uow, MONDAY, solver="nobody").unassigned) == 1
        with pytest.raises(ValidationError, match="unknown solver 'best'; choose one of "
                                                  "greedy, nobody, routing"):
            planning.propose(uow, MONDAY, solver="best")


def test_an_order_falls_in_the_territory_of_its_accounts_geography(crm_factory):
    crm = crm_factory(plugins=[*PLUGINS, "marketing"])
    ids = world(crm)
    with crm.unit_of_work() as uow:
        country = uow.create("geography", name="Brazil", code="BR")
        state = uow.create("geography", name="Santa Catarina", code="BR-SC",
                           parent_id=country.id)
        uow.update("territory", ids["south"], geography_id=country.id)
        uow.update("account", ids["account"], geography_id=state.id)
        uow.commit()
    oid = order(crm, ids)
    with crm.unit_of_work() as uow:
        [demand] = load_demand(uow, MONDAY, MONDAY)
        with pytest.raises(ValidationError, match="geography 999 does not exist"):
            uow.update("territory", ids["north"], geography_id=999)
    assert (demand.id, demand.territory_id) == (oid, ids["south"])


def test_the_routing_solver_set_in_settings_proposes_bookable_work(crm_factory):
    pytest.importorskip("ortools")
    crm = crm_factory(plugins=PLUGINS, settings={"plugins": {"scheduling": {
        "solver": "routing", "routing_seconds": 1}}})
    ids = world(crm)
    pump = order(crm, ids, "Pump", skills={"hydraulics": 3}, latitude="0", longitude="0.9")
    lamp = order(crm, ids, "Lamp", skills={"electrical": 1}, latitude="0", longitude="0.1")
    with crm.unit_of_work() as uow:
        proposal = planning.propose(uow, MONDAY)
        assert proposal.solver == "routing"
        assert {a.demand.id: a.resource_id for a in proposal.assignments} == {
            pump: ids["bob"], lamp: ids["ann"]}
        assert len(planning.accept(uow, proposal)) == 2
        uow.commit()


def test_dispatching_a_booked_order_again_moves_its_booking(crm_factory):
    crm = crm_factory(plugins=PLUGINS)
    ids = world(crm)
    oid = order(crm, ids, "Outage", priority="urgent", skills={"hydraulics": 1})
    with crm.unit_of_work() as uow:
        planning.accept(uow, planning.propose(uow, MONDAY))
        found = planning.dispatch(uow, oid, at(14))
        planning.accept(uow, found.proposal, found.unbook)
        uow.commit()
    with crm.unit_of_work() as uow:
        [booked] = uow.query("booking").where(order_id=oid).all()
        cancelled = uow.query("activity").where(status="cancelled").count()
    assert booked.starts_at == at(14) and cancelled == 1


def test_an_activity_that_needs_a_technician_is_placed_at_its_own_time(crm_factory):
    crm = crm_factory(plugins=PLUGINS)
    ids = world(crm)
    with crm.unit_of_work() as uow:
        rep = uow.create("user", username="rep")
        visit = uow.create("activity", kind="meeting", subject="Site survey with the customer",
                           owner_id=rep.id, starts_at=at(9), ends_at=at(11),
                           needs_technician=True, account_id=ids["account"])
        uow.create("absence", resource_id=ids["ann"], starts_at=at(8), ends_at=at(10))
        uow.commit()
    with crm.unit_of_work() as uow:
        [demand] = load_demand(uow, MONDAY, MONDAY)
        assert (demand.source, demand.id, demand.minutes) == ("activity", visit.id, 120)
        proposal = planning.propose(uow, MONDAY)
        [placed] = proposal.assignments
        assert (placed.resource_id, placed.starts_at) == (ids["bob"], at(9))
        planning.accept(uow, proposal)
        uow.commit()
    with crm.unit_of_work() as uow:
        [booked] = uow.query("booking").all()
        stored = uow.get("activity", visit.id)
        assert load_demand(uow, MONDAY, MONDAY)[0].booked
    assert (booked.activity_id, booked.resource_id, booked.order_id) == (visit.id, ids["bob"], None)
    assert stored.owner_id != ids["bob_user"]
    assert stored.participants == [{"user_id": ids["bob_user"]}]
