"""Concurrent posting on PostgreSQL: several threads post at once, numbers have no gap and no
duplicate (the counter row is locked until each posting commits or rolls back)."""

from __future__ import annotations

import threading

import pytest
from billing_support import DAY, settings
from crmcore.testing import database_url_for_tests

from crm_billing.invoices import new_invoice, post_invoices

pytestmark = pytest.mark.skipif(not database_url_for_tests().startswith("postgresql"),
                                reason="row locks of concurrent writers: PostgreSQL")


def test_concurrent_postings_leave_no_gap_and_no_duplicate(crm_factory, tmp_path):
    crm = crm_factory(plugins=["billing"], settings=settings(tmp_path))
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        drafts = [new_invoice(uow, account_id=account.id, currency="EUR", invoice_date=DAY,
                              lines=[{"description": f"Work {n}", "unit_price": "10.00 EUR"}]).id for n in range(40)]
        uow.commit()
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def post(ids: list[int], roll_back_every: int) -> None:
        try:
            start.wait()
            for index, invoice_id in enumerate(ids):
                with crm.unit_of_work() as uow:
                    post_invoices(uow, [invoice_id])
                    if index % roll_back_every:  # some postings roll back, giving their number back
                        uow.commit()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(drafts[n::4], 3 + n)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with crm.unit_of_work() as uow:
        numbers = sorted(r["number"] for r in uow.select("invoice", fields=("number",)).where(state="posted").all())
    assert numbers == [f"INV-2026-{n:05d}" for n in range(1, len(numbers) + 1)]
    assert 20 < len(numbers) < 40
