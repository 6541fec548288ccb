"""Contract reminders through the job queue: the account owner is reminded before the notice
date and the end date; moved dates move the jobs; a deleted contract cancels them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from crmcore.jobs import due_reminders, run_worker
from documents_support import app, users

from crm_documents import documents


def _queued(crm: Any) -> dict[str, dt.datetime]:
    with crm.unit_of_work() as uow:
        jobs = uow.query("job").where(kind="documents.contract_reminder", status="queued").all()
        return {j.values["key"]: j.values["run_at"] for j in jobs}


def test_the_account_owner_is_reminded_before_notice_and_end(
    crm_factory: Any, tmp_path: Path
) -> None:
    crm = app(crm_factory, tmp_path)
    ada, bob = users(crm, "ada", "bob")
    with crm.unit_of_work(ada) as uow:
        account = uow.create("account", name="Acme", owner_id=bob.user_id)
        deal = uow.create("opportunity", name="Deal", account_id=account.id, stage="qualification")
        contract = documents.attach(
            uow,
            deal,
            "Acme contract",
            b"terms",
            kind="contract",
            valid_until="2026-12-31",
            notice_days=90,
        )
        documents.attach(uow, account, "Offer", b"offer", kind="offer", valid_until="2026-12-31")
        uow.commit()
    key = f"documents.contract:{contract.id}"
    queued = _queued(crm)
    assert sorted(queued) == [f"{key}:end", f"{key}:notice"]
    assert queued[f"{key}:notice"].date() == dt.date(2026, 9, 18)  # 2026-10-02 minus 14 days
    assert queued[f"{key}:end"].date() == dt.date(2026, 12, 17)
    with crm.unit_of_work(ada) as uow:
        uow.update("document", contract.id, notice_days=30)
        uow.commit()
    assert _queued(crm)[f"{key}:notice"].date() == dt.date(2026, 11, 17)
    run_worker(crm, once=True, now=dt.datetime(2026, 11, 17, 12, tzinfo=dt.UTC))
    with crm.unit_of_work(bob) as uow:
        (reminder,) = due_reminders(uow)
        assert "last day to give notice 2026-12-01" in reminder.values["message"]
        task = uow.get("activity", reminder.values["activity_id"])
        assert task.values["account_id"] == account.id and task.values["owner_id"] == bob.user_id
    assert list(_queued(crm)) == [f"{key}:end"]
    with crm.unit_of_work(ada) as uow:
        uow.delete("document", contract.id)
        uow.commit()
    assert _queued(crm) == {}


def test_a_document_that_stops_being_a_contract_cancels_its_reminders(
    crm_factory: Any, tmp_path: Path
) -> None:
    crm = app(crm_factory, tmp_path)
    (ada,) = users(crm, "ada")
    with crm.unit_of_work(ada) as uow:
        account = uow.create("account", name="Acme")
        contract = documents.attach(uow, account, "C", kind="contract", valid_until="2026-12-31")
        uow.commit()
    assert len(_queued(crm)) == 2  # no notice period: both on the end date
    with crm.unit_of_work(ada) as uow:
        uow.update("document", contract.id, kind="other")
        uow.commit()
    assert _queued(crm) == {}
