"""Forecasts: the weighted pipeline per month or quarter and per owner, team or pipeline, exact
per currency and limited to what the actor may read; and the forecast from past win rates
and cycle times, learned from the audit trail of stage changes."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pytest

from crmcore import Actor, ValidationError
from crmcore.money import Money
from crmcore.sales import history_forecast, stage_history, weighted_pipeline
from crmcore.sales.forecast import period_of
from crmcore.security import admin

SECURITY = {
    "profiles": {"sales": {"privileges": {"opportunity": "all", "account": "all"}}},
    "roles": {"manager": {"profiles": ["sales"]}, "rep": {"parent": "manager", "profiles": ["sales"]}},
    "entities": {"opportunity": {"sharing": "private"}},
}

D = decimal.Decimal


def rows_of(rows: Any) -> list[tuple[Any, ...]]:
    return [(r.period, r.label, r.currency, r.count, _amount(r.amount), _amount(r.weighted), _amount(r.won)) for r in rows]


def _amount(money: Money | None) -> D | None:
    return None if money is None else money.amount


@pytest.fixture
def sales(crm_factory):
    """Two reps in two teams with deals in several stages, months and currencies."""
    crm = crm_factory(security=SECURITY)
    with crm.unit_of_work() as uow:
        north, south = uow.create("team", name="North"), uow.create("team", name="South")
        users = {name: admin.add_user(uow, name, roles=[role], team_id=team.id)
                 for name, role, team in (("boss", "manager", north), ("rep1", "rep", north), ("rep2", "rep", south))}
        uow.commit()
    actors = {name: Actor(user.id, name) for name, user in users.items()}
    with crm.unit_of_work(actors["rep1"]) as uow:
        uow.create("opportunity", name="A", amount="1000.50 EUR", close_date="2026-02-15")  # initiation, 10 %
        uow.create("opportunity", name="B", amount="333.33 EUR", close_date="2026-02-20", stage="rfp_received")  # 50 %
        uow.create("opportunity", name="C", amount="100 USD", close_date="2026-03-01", probability=33)
        uow.create("opportunity", name="D", amount="5000 EUR", close_date="2026-02-10", stage="won")
        uow.create("opportunity", name="E", amount="7000 EUR", close_date="2026-02-11", stage="lost")
        uow.create("opportunity", name="F", amount="10 EUR")
        uow.create("opportunity", name="G", close_date="2026-02-01")
        uow.commit()
    with crm.unit_of_work(actors["rep2"]) as uow:
        uow.create("opportunity", name="H", amount="2000 EUR", close_date="2026-04-15", stage="final_stage")  # 80 %
        uow.create("opportunity", name="I", amount="500 EUR", close_date="2026-02-28", stage="qualification",  # 30 %
                   team_id=north.id)
        uow.commit()
    return crm, actors, {"north": north.id, "south": south.id}


def test_the_weighted_pipeline_per_month_is_exact_per_currency(sales):
    crm, actors, _ = sales
    with crm.unit_of_work(actors["rep1"]) as uow:
        rows = weighted_pipeline(uow)
    assert rows_of(rows) == [
        ("2026-02", None, "EUR", 2, D("1333.83"), D("266.715"), D("5000.00")),
        ("2026-02", None, None, 1, None, None, None),
        ("2026-03", None, "USD", 1, D("100.00"), D("33.00"), None),
        (None, None, "EUR", 1, D("10.00"), D("1.00"), None),
    ]
    assert str(rows[0].weighted) == "266.7150 EUR" and str(rows[2].weighted) == "33.00 USD"


def test_a_rep_sees_their_pipeline_and_the_manager_sees_the_team(sales):
    crm, actors, _ = sales
    with crm.unit_of_work(actors["rep2"]) as uow:
        assert rows_of(weighted_pipeline(uow, period="quarter")) == [
            ("2026-Q1", None, "EUR", 1, D("500.00"), D("150.00"), None),
            ("2026-Q2", None, "EUR", 1, D("2000.00"), D("1600.00"), None),
        ]
    with crm.unit_of_work(actors["boss"]) as uow:
        quarters = rows_of(weighted_pipeline(uow, period="quarter"))
    assert quarters[0] == ("2026-Q1", None, "EUR", 3, D("1833.83"), D("416.715"), D("5000.00"))


def test_the_pipeline_by_owner_team_and_pipeline(sales):
    crm, actors, teams = sales
    with crm.unit_of_work(actors["boss"]) as uow:
        by_owner = weighted_pipeline(uow, period="quarter", by="owner", where=["amount_currency=EUR"])
        by_team = weighted_pipeline(uow, period="quarter", by="team", where=["amount_currency=EUR"])
        by_pipeline = weighted_pipeline(uow, period="quarter", by="pipeline", start=dt.date(2026, 2, 1), end=dt.date(2026, 3, 31))
    assert [(r.period, r.group, r.label, _amount(r.weighted)) for r in by_owner] == [
        ("2026-Q1", actors["rep1"].user_id, "rep1", D("266.715")),
        ("2026-Q1", actors["rep2"].user_id, "rep2", D("150.00")),
        ("2026-Q2", actors["rep2"].user_id, "rep2", D("1600.00")),
        (None, actors["rep1"].user_id, "rep1", D("1.00")),
    ]
    # deal I counts for North (its own team), H for South (its owner's team)
    assert [(r.period, r.label, r.count, _amount(r.weighted)) for r in by_team] == [
        ("2026-Q1", "North", 3, D("416.715")), ("2026-Q2", "South", 1, D("1600.00")), (None, "North", 1, D("1.00")),
    ]
    assert [(r.period, r.group, r.label, r.currency, r.count) for r in by_pipeline] == [
        ("2026-Q1", "sales", "New business", "EUR", 3), ("2026-Q1", "sales", "New business", "USD", 1),
        ("2026-Q1", "sales", "New business", None, 1),
    ]


def test_bad_forecast_arguments_are_refused(sales):
    crm, _, _ = sales
    with crm.unit_of_work() as uow:
        with pytest.raises(ValidationError, match="period must be one of month, quarter, got 'week'"):
            weighted_pipeline(uow, period="week")
        with pytest.raises(ValidationError, match="groups by owner, team, pipeline, got 'account'"):
            weighted_pipeline(uow, by="account")
        with pytest.raises(ValidationError, match="shoe"):
            weighted_pipeline(uow, where=["shoe=1"])


def test_periods():
    assert period_of(dt.date(2026, 11, 30), "month") == "2026-11"
    assert [period_of(dt.date(2026, m, 1), "quarter") for m in (1, 3, 4, 9, 12)] == ["2026-Q1", "2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]
    assert period_of(None, "month") is None


def test_several_pipelines_use_their_own_stage_kinds(crm_factory):
    pipelines = {"renewals": {"entity": "opportunity", "stages": [
        {"name": "open", "probability": 60}, {"name": "renewed", "kind": "won", "probability": 100},
        {"name": "churned", "kind": "lost"}]}}
    crm = crm_factory(pipelines=pipelines)
    with crm.unit_of_work() as uow:
        uow.create("opportunity", name="R1", pipeline="renewals", amount="100 EUR", close_date="2026-05-01")
        uow.create("opportunity", name="R2", pipeline="renewals", stage="renewed", amount="40 EUR", close_date="2026-05-02")
        uow.create("opportunity", name="N1", amount="100 EUR", close_date="2026-05-03")
        rows = weighted_pipeline(uow, by="pipeline")
    assert [(r.group, r.count, _amount(r.weighted), _amount(r.won)) for r in rows] == [
        ("renewals", 1, D("60.00"), D("40.00")), ("sales", 1, D("10.00"), None),
    ]


# -- history -----------------------------------------------------------------------------------


class Clock:
    """Stands in for the clock of the unit of work and the workflow."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def day(self, number: int) -> None:
        self.now = dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC) + dt.timedelta(days=number)


@pytest.fixture
def clock(monkeypatch):
    import crmcore.storage.batch
    import crmcore.storage.uow
    import crmcore.workflow.engine

    clock = Clock()
    monkeypatch.setattr(crmcore.storage.uow, "_now", clock)
    monkeypatch.setattr(crmcore.storage.batch, "_now", clock)  # updates, single ones included
    monkeypatch.setattr(crmcore.workflow.engine, "_now", clock)
    return clock


def _deal(uow: Any, name: str, stage: str, amount: str = "900 EUR", **values: Any) -> Any:
    return uow.create("opportunity", {"close_date": "2026-12-31", **values}, name=name, stage=stage, amount=amount)


def _closed_deals(crm: Any, clock: Clock) -> Any:
    """Three deals closed from final_stage (won after 10 and 20 days, lost after 5), and open ones."""
    with crm.unit_of_work() as uow:
        won1, won2, lost = _deal(uow, "W1", "final_stage"), _deal(uow, "W2", "final_stage"), _deal(uow, "L1", "final_stage")
        clock.day(5)
        uow.move(lost, "lost")
        clock.day(10)
        uow.move(won1, "won")
        clock.day(20)
        uow.move(won2, "won")
        clock.day(30)
        _deal(uow, "Open late", "final_stage")
        _deal(uow, "Open early", "initiation", amount="1000 USD", close_date="2026-03-15")
        _deal(uow, "No amount", "final_stage", amount=None)
        uow.commit()
    return crm


@pytest.fixture
def history(crm_factory, clock):
    return _closed_deals(crm_factory(sales={"forecast": {"min_history": 3}}), clock)


def test_stage_history_learns_win_rates_and_cycle_times_from_the_audit(history):
    with history.unit_of_work() as uow:
        stages = {s.stage: s for s in stage_history(uow)}
    final = stages["final_stage"]
    assert (final.closed, final.won, final.days_to_close, final.probability) == (3, 2, 15.0, 80)
    assert final.win_rate == pytest.approx(2 / 3)
    assert (stages["initiation"].closed, stages["initiation"].win_rate) == (0, None)
    assert "won" not in stages and "lost" not in stages


def test_the_history_forecast_applies_win_rates_and_cycle_times(history, clock):
    clock.day(40)
    with history.unit_of_work() as uow:
        result = history_forecast(uow, today=clock.now.date())
    # "Open late" entered final_stage on day 30 (Jan 31): expected 15 days later, Feb 15, at 2/3
    # "Open early" is in a stage without history: its close date and the stage's 10 %
    assert [(r.period, r.currency, r.count, _amount(r.amount), _amount(r.weighted)) for r in result.rows] == [
        ("2026-02", "EUR", 1, D("900.00"), D("600.00")),
        ("2026-02", None, 1, None, None),
        ("2026-03", "USD", 1, D("1000.00"), D("100.00")),
    ]
    assert result.min_history == 3


def test_an_expected_close_in_the_past_is_today(history, clock):
    clock.day(100)
    with history.unit_of_work() as uow:
        rows = history_forecast(uow, period="quarter", today=clock.now.date(), where=["amount_currency=EUR"]).rows
    assert [(r.period, _amount(r.weighted)) for r in rows] == [("2026-Q2", D("600.00"))]


def test_too_little_history_falls_back_to_the_stage_probability_and_close_date(crm_factory, clock):
    crm = _closed_deals(crm_factory(sales={"forecast": {"min_history": 4}}), clock)
    with crm.unit_of_work() as uow:
        rows = history_forecast(uow, period="quarter", today=clock.now.date(), where=["amount_currency=EUR"]).rows
    assert [(r.period, _amount(r.weighted)) for r in rows] == [("2026-Q4", D("720.00"))]


def test_the_history_forecast_respects_permissions(crm_factory, clock):
    crm = crm_factory(security=SECURITY, sales={"forecast": {"min_history": 1}})
    with crm.unit_of_work() as uow:
        reps = [admin.add_user(uow, name, roles=["rep"]) for name in ("rep1", "rep2")]
        uow.commit()
    one, two = (Actor(r.id, r.username) for r in reps)
    with crm.unit_of_work(one) as uow:
        uow.move(_deal(uow, "mine", "final_stage"), "lost")
        _deal(uow, "open", "final_stage")
        uow.commit()
    with crm.unit_of_work(two) as uow:
        clock.day(4)
        uow.move(_deal(uow, "theirs", "final_stage"), "won")
        _deal(uow, "open too", "final_stage")
        uow.commit()
    with crm.unit_of_work(one) as uow:
        result = history_forecast(uow, today=clock.now.date())
        final = next(s for s in result.stages if s.stage == "final_stage")
        assert (final.closed, final.won) == (1, 0)
        assert [(r.count, _amount(r.weighted)) for r in result.rows] == [(1, D("0.00"))]
