"""The hooks the marketing plugin offers to other plugins (added from ``crm_add_hookspecs``).

A plugin that knows revenue better than won opportunities do (orders, invoices) answers
:func:`marketing_actuals`; market plans are then monitored against its figures. Without such
a plugin, the marketing plugin answers from won opportunities itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from crmcore.hookspecs import hookspec

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["marketing_actuals"]


@hookspec(firstresult=True)
def marketing_actuals(
    uow: UnitOfWork, period: tuple[dt.date, dt.date], dimensions: Sequence[str], accounts: Sequence[int] | None
) -> list[dict[str, Any]] | None:
    """Answer the actual revenue and won deals of a period, broken down by *dimensions*.

    Called by :func:`crm_marketing.plans.plan_report` inside the caller's unit of work, as its
    actor (so the figures are those the actor may read), once per period of the plan. The first
    answer that is not ``None`` wins; the marketing plugin's own answer, from won opportunities
    (``close_date`` within the period, ``product_group`` of the deal, ``geography_id`` of its
    account, its ``owner_id``), comes last, so a plugin replaces it by answering. (When nobody
    else answers, the report reads won deals for every period in one statement instead.) A
    plan with ``revenue_from = "orders"`` takes its revenue from the catalog's
    ``catalog_revenue`` hook, which the orders and billing plugins answer.

    :param uow: the unit of work.
    :param period: ``(first day, last day)``, both included.
    :param dimensions: the breakdown asked for, a subset of ``("product_group",
        "geography", "owner")``, in that order.
    :param accounts: only the figures of these accounts (the accounts of a plan line's
        segment), or ``None`` for every account.
    :returns: rows ``{"product_group": code or None, "geography_id": id or None,
        "owner_id": user id or None, "amount": Money, "count": int}`` (a dimension not asked
        for is ``None`` or absent; one row per combination and currency), or ``None`` to
        leave the answer to others.

    Example::

        @hookimpl
        def marketing_actuals(uow, period, dimensions):
            return [{"product_group": "PUMPS", "geography_id": 4,
                     "amount": Money("1200.00", "EUR"), "count": 2}]

    .. versionadded:: 0.1
    .. versionchanged:: 0.1 *accounts* and the ``owner`` dimension.
    """
