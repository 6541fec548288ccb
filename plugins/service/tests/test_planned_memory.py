"""Planned service generation: its memory does not grow with the past, nor, in batches, with
the volume.

Two deployments have the same ten weekly plans; in one they have ten years of past visits
behind them (over 5,000 occurrences, each with its service order), in the other none. A run of
the generator from the same day makes the same five weekly visits in both, and the most
memory it allocates at any moment (measured with ``tracemalloc``) must be about the same: a
generator that read the past occurrences or orders back (the set already there unbounded by the
horizon, say) would need several times the room for them.

Generated in batches, a run over five times the plans (and visits, and orders) takes the memory
of one page: each page is committed and let go before the next is read.
"""

from __future__ import annotations

import datetime as dt
import gc
import tracemalloc

from service_support import account

from crm_service import planned

D = dt.date
PLANS = 10
PAST_FROM = D(2020, 1, 6)   # a Monday: ten years of weekly visits up to the measured day
TODAY = D(2030, 1, 7)


def _deployment(crm_factory, *, past: bool, plans: int = PLANS):
    crm = crm_factory(plugins=["service"])
    acme = account(crm)
    with crm.unit_of_work() as uow:
        unit = uow.create("installed_unit", serial_number="SN-1", product_code="PUMP-1",
                          account_id=acme)
        uow.create_many("service_plan", [
            {"name": f"Check {n}", "account_id": acme, "unit_id": unit.id,
             "rule": "FREQ=WEEKLY;BYDAY=MO", "starts_on": PAST_FROM,
             "timezone": "Europe/Berlin", "horizon_days": 3640 if past else 28}
            for n in range(plans)])
        uow.commit()
    if past:
        with crm.unit_of_work() as uow:
            made = planned.generate(uow, PAST_FROM)
            uow.update_where("service_plan", {}, set={"horizon_days": 28})
            uow.commit()
        assert made.orders >= 5000
    return crm


def _peak_of_a_run(crm) -> tuple[planned.GenerateResult, int]:
    with crm.unit_of_work() as uow:  # once rolled back: SQL compiled and cached beforehand
        planned.generate(uow, TODAY)
    gc.collect()
    tracemalloc.start()
    try:
        with crm.unit_of_work() as uow:
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            result = planned.generate(uow, TODAY)
            peak = tracemalloc.get_traced_memory()[1] - before
            uow.commit()
    finally:
        tracemalloc.stop()
    return result, peak


def test_generation_memory_is_flat_in_the_number_of_past_orders(crm_factory) -> None:
    fresh, fresh_peak = _peak_of_a_run(_deployment(crm_factory, past=False))
    seasoned_crm = _deployment(crm_factory, past=True)
    with seasoned_crm.unit_of_work() as uow:
        past_orders = uow.query("service_order").count()
    seasoned, seasoned_peak = _peak_of_a_run(seasoned_crm)
    assert (fresh.occurrences, fresh.orders) == (seasoned.occurrences, seasoned.orders) == (
        5 * PLANS, 5 * PLANS)  # 7, 14, 21, 28 January and 4 February
    assert past_orders > 100 * seasoned.orders
    assert seasoned_peak < fresh_peak * 1.5 + 64_000, (fresh_peak, seasoned_peak)


def _peak_of_batches(crm) -> tuple[planned.GenerateResult, int]:
    with crm.unit_of_work() as uow:  # once rolled back: SQL compiled and cached beforehand
        planned.generate(uow, TODAY, plan_ids=[1])
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = planned.generate_in_batches(crm, TODAY, page=20)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return result, peak


def test_generation_in_batches_takes_the_memory_of_a_page_whatever_the_volume(
        crm_factory) -> None:
    few, few_peak = _peak_of_batches(_deployment(crm_factory, past=False, plans=40))
    crm = _deployment(crm_factory, past=False, plans=200)
    many, many_peak = _peak_of_batches(crm)
    assert (few.plans, few.occurrences, few.orders) == (40, 200, 200)
    assert (many.plans, many.occurrences, many.orders) == (200, 1000, 1000)
    assert many_peak < few_peak * 1.5 + 64_000, (few_peak, many_peak)
    again = planned.generate_in_batches(crm, TODAY, page=20)
    assert (again.plans, again.occurrences, again.orders) == (200, 0, 0)
