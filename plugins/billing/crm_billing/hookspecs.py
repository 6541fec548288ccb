"""The hooks billing offers to other plugins (added through ``crm_add_hookspecs``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from crmcore.hookspecs import hookspec

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["billing_recurring_revenue"]


@hookspec
def billing_recurring_revenue(uow: UnitOfWork, account_ids: list[int] | None, since: dt.date,
                              until: dt.date) -> list[dict[str, Any]] | None:
    """Report recurring revenue (contracts, subscriptions) expected from accounts in a window,
    for the revenue estimate.

    Called by :func:`crm_billing.estimate.estimate` inside the caller's unit of work, once per
    estimate. All implementations are called and their answers are added up per account and
    currency; each row is shown as a source of the estimate's recurring part.

    :param uow: the caller's unit of work (its actor's read access applies).
    :param account_ids: the accounts asked about (child accounts included), or ``None`` for all.
    :param since: the first day of the horizon (included).
    :param until: the last day of the horizon (excluded).
    :returns: a list of ``{"account_id": int, "amount": Money, "source": str}`` (``source``
        names the record, e.g. ``"contract:12"``), or ``None`` for none.

    Example::

        @hookimpl
        def billing_recurring_revenue(uow, account_ids, since, until):
            rows = uow.select("contract", fields=("id", "account_id", "monthly_fee")).where(state="active").all()
            months = (until.year - since.year) * 12 + until.month - since.month
            return [{"account_id": r["account_id"], "amount": r["monthly_fee"] * months,
                     "source": f"contract:{r['id']}"} for r in rows]

    .. versionadded:: 0.1
    """
