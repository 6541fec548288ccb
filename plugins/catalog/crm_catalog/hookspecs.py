"""The hooks the catalog offers to other plugins (added through ``crm_add_hookspecs``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from crmcore.hookspecs import hookspec

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["catalog_revenue"]


@hookspec
def catalog_revenue(uow: UnitOfWork, account_ids: list[int], since: dt.date, until: dt.date) -> list[dict[str, Any]] | None:
    """Report confirmed revenue of accounts, per product group, for the discount tiers.

    Called by the tier job (:func:`crm_catalog.tiers.recompute_tiers`) inside its unit of work,
    once per batch of accounts. All implementations are called and their answers are summed:
    the orders plugin reports confirmed orders, a billing plugin its invoices (report each sale
    once).

    :param uow: the job's unit of work (the system actor).
    :param account_ids: the accounts asked about.
    :param since: the first day of the window (included).
    :param until: the last day of the window (included).
    :returns: a list of ``{"account_id": int, "product_group_id": int | None, "amount": Money}``
        (``None`` for revenue of products without a group), or ``None`` for none.

    Example::

        @hookimpl
        def catalog_revenue(uow, account_ids, since, until):
            rows = (uow.select("sales_order_line", fields=(...)).where(...).group_by(...).aggregate(sum=["total"]))
            return [{"account_id": r["account"], "product_group_id": r["group"], "amount": r["sum_total"]} for r in rows]

    .. versionadded:: 0.1
    """
