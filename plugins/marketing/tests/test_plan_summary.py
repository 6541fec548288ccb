"""``plan_summary``: a plan sliced by chosen dimensions (``--by``) and periods (``--period``),
actuals computed for each line directly so that overlapping segment and owner lines never
count a deal twice."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pytest
from crmcore import Money, ValidationError
from test_plan_dimensions import YEAR, _office, _plan, _target

from crm_marketing.plans import plan_summary

D = decimal.Decimal


def _eur(value: str | int) -> Money:
    return Money(D(value), "EUR")


def _plan_with_overlaps(uow: Any) -> dict[str, Any]:
    """A line for everyone by city, one for the Retail segment and one for ann (who owns a
    retail deal, so the last two overlap on Aldi)."""
    made = _office(uow)
    plan = _plan(uow)
    _target(uow, plan, product_group="PUMPS", geography_id=made["geo"]["DE-BY-MUC"].id, amount="1000 EUR")
    _target(uow, plan, product_group="PUMPS", geography_id=made["geo"]["FR-PAR"].id, amount="2000 EUR")
    _target(uow, plan, segment_id=made["retail"].id, amount="500 EUR")
    _target(uow, plan, user_id=made["ann"].id, amount="700 EUR")
    uow.commit()
    return made


def test_by_product_group_counts_every_deal_once_and_skips_overlapping_targets(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        _plan_with_overlaps(uow)
    with crm.unit_of_work() as uow:
        line, = plan_summary(uow, "Plan", by="product_group").lines
    # Aldi 100 + BMW 200 + Carrefour 400 + Dior 800 once each; the segment and owner targets
    # overlap the city ones and are not added in.
    assert (line.product_group, line.geography) == ("PUMPS", "everywhere")
    assert line.target_amount == _eur(3000) and line.actual_amount == _eur(1500) and line.actual_count == 4


def test_by_product_group_and_geography_rolls_up_the_tree(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        _plan_with_overlaps(uow)
    with crm.unit_of_work() as uow:
        lines = {line.geography: line for line in plan_summary(uow, "Plan", by="product_group,geography").lines}
    assert list(lines) == ["Germany", "Bavaria", "Munich", "France", "Paris"]
    assert lines["Munich"].actual_amount == _eur(300) and lines["Paris"].actual_amount == _eur(1200)
    assert lines["Germany"].target_amount + lines["France"].target_amount == _eur(3000)


def test_by_segment_and_owner_each_line_counts_its_own_records(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        made = _plan_with_overlaps(uow)
    with crm.unit_of_work() as uow:
        lines = {(line.segment_id, line.user_id): line for line in plan_summary(uow, "Plan", by="segment,owner").lines}
    assert set(lines) == {(None, None), (made["retail"].id, None), (None, made["ann"].id)}
    assert lines[(None, None)].actual_amount == _eur(1500)  # everyone: every deal once
    retail, ann = lines[(made["retail"].id, None)], lines[(None, made["ann"].id)]
    assert retail.actual_amount == _eur(500) and retail.target_amount == _eur(500)  # Aldi, Carrefour
    assert ann.actual_amount == _eur(900) and ann.target_amount == _eur(700)  # Aldi (again) and Dior
    with crm.unit_of_work() as uow:
        owners = {line.user_id: line for line in plan_summary(uow, "Plan", by="owner").lines}
    assert owners[made["ann"].id].actual_amount == _eur(900) and owners[None].actual_amount == _eur(1500)
    assert owners[None].target_amount == _eur(3000)  # the segment target is not in a roll-up without segment


def test_by_month_spreads_a_yearly_target_over_the_months_exactly(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        made = _office(uow)
        plan = _plan(uow)
        _target(uow, plan, amount="1000 EUR", count=7)
        _target(uow, plan, user_id=made["ann"].id, amount="10 EUR")  # not in a roll-up without owner
        uow.commit()
    with crm.unit_of_work() as uow:
        lines = plan_summary(uow, "Plan", by="", period="month").lines
        quarters = plan_summary(uow, "Plan", by=[], period="quarter").lines
    assert [line.starts_on.month for line in lines] == list(range(1, 13))
    assert sum(line.target_amount.amount for line in lines) == D(1000)
    assert sum(line.target_count for line in lines) == 7
    assert sum(line.actual_amount.amount for line in lines) == D(1500)
    deals_in = YEAR[0] + dt.timedelta(days=40)
    assert [line.actual_amount for line in lines if line.starts_on.month == deals_in.month] == [_eur(1500)]
    assert len(quarters) == 4 and quarters[0].target_amount < quarters[3].target_amount  # 90 days against 92
    assert sum(line.target_amount.amount for line in quarters) == D(1000)


def test_an_unknown_dimension_or_period_is_refused(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        _plan(uow)
        uow.commit()
    with crm.unit_of_work() as uow:
        with pytest.raises(ValidationError, match="unknown dimension 'city'"):
            plan_summary(uow, "Plan", by="product_group,city")
        with pytest.raises(ValidationError, match="unknown period 'week'"):
            plan_summary(uow, "Plan", period="week")
