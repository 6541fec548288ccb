"""The documents chapter of ``crm demo`` (``crm_demo``): a rep files the maintenance contract
of one of their accounts as a PDF (ending in a hundred days, ninety days' notice), a work
report on an opportunity and an offer; a search finds the contract by words inside the PDF.
The contract's notice reminder is due now (``reminder_days`` before its notice date): the
demo's worker chapter runs it, and the account owner finds a task and a reminder in ``crm
reminders``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from crm_documents import documents, samples, search
from crm_documents.settings import documents_settings

if TYPE_CHECKING:
    from crmcore import Crm

__all__ = ["tell"]


def tell(crm: Crm, echo: Callable[[str], None], *, today: dt.date | None = None) -> None:
    """Tell the documents chapter on *crm* (after the core's chapters), on *today* (default:
    the clock's day)."""
    echo("")
    echo("Documents")
    with crm.unit_of_work() as uow:
        accounts = uow.query("account").where(("owner_id", "is not null")).order_by("id").limit(1)
        account = next(iter(accounts.all()), None)
        deal = uow.query("opportunity").order_by("id").first()
    if account is None:
        echo("Documents: skipped (the demo company has no account with an owner)")
        return
    with crm.unit_of_work() as uow:
        owner = uow.get("user", account.values["owner_id"]).values["username"]
    today = today or dt.datetime.now(dt.UTC).date()
    until = today + dt.timedelta(days=100)
    name = account.values["name"]
    with crm.unit_of_work(owner) as uow:
        contract = documents.attach(
            uow,
            account,
            f"{name} maintenance contract",
            samples.pdf(
                f"Maintenance agreement with {name}\nQuarterly printer servicing\n"
                "Either party may terminate with ninety days notice."
            ),
            filename="maintenance-contract.pdf",
            kind="contract",
            valid_from=today,
            valid_until=until,
            notice_days=90,
        )
        if deal is not None and uow.get_many("opportunity", [deal.id]):
            documents.attach(
                uow,
                deal,
                "Site visit report",
                b"Visited the site; two printers need new rollers.",
                filename="visit.txt",
                kind="work_report",
            )
        documents.attach(
            uow,
            account,
            f"{name} renewal offer",
            b"Renewal at the same price.",
            filename="offer.txt",
            kind="offer",
        )
        hits = search.search(uow, "servicing printer")
        uow.commit()
    echo(
        f"{owner} filed 3 documents; the contract of {name} runs until {until}, notice by "
        f"{contract.values['notice_date']} (90 days)"
    )
    echo(
        f"  search 'servicing printer' finds: {', '.join(h.document.values['title'] for h in hits)}"
    )
    days = documents_settings(crm).reminder_days
    remind_on = contract.values["notice_date"] - dt.timedelta(days=days)
    echo(
        f"  {owner} is reminded on {remind_on} ({days} days before the notice date): the "
        "worker below runs the reminder"
    )
