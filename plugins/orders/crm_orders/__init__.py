"""crm-orders: quotes and sales orders for crmcore, priced by the catalog, totalled by one
engine, handed off to production, delivery or the sales office through the outbox.

Enable it per deployment with ``plugins = ["orders"]`` (it brings ``catalog``, ``sales`` and
``outbox``). The modules beside this one hold the logic: the totals engine
(:mod:`~crm_orders.totals`), document totals (:mod:`~crm_orders.documents`), quotes
(:mod:`~crm_orders.quotes`), orders (:mod:`~crm_orders.orders`), the opportunity following its
documents (:mod:`~crm_orders.following`), fulfilment hand-off (:mod:`~crm_orders.fulfilment`)
and printing (:mod:`~crm_orders.printing`).
"""

from __future__ import annotations

from crmcore import PluginInfo, Setting

__all__ = ["PLUGIN"]

PLUGIN = PluginInfo(
    name="orders",
    title="Quotes and orders",
    requires=("catalog", "sales", "outbox"),
    description=(
        "Versioned quotes priced by the catalog with frozen price snapshots, sales orders with "
        "lineage, one exact totals engine, fulfilment requests through the outbox, PDFs."
    ),
    settings={
        "rounding_mode": Setting(str, default="line", help="Taxes rounded per 'line' or once per tax category ('global')."),
        "rounding_method": Setting(str, default="half_up", help="'half_up' or 'half_even' for currencies not in rounding_methods."),
        "rounding_methods": Setting(dict, default={}, help="Rounding method per currency, e.g. {CHF = \"half_even\"}."),
        "currency_places": Setting(dict, default={}, help="Decimal places per currency where ISO 4217's do not suit."),
        "quote_valid_days": Setting(int, default=30, minimum=1, maximum=3650, help="Days a new quote stays valid."),
        "order_on_accept": Setting(bool, default=False, help="Accepting a quote makes its sales order (a draft)."),
        "confirm_on_accept": Setting(bool, default=False, help="... and confirms it (with order_on_accept)."),
        "won_on": Setting(str, default="confirmed",
                          help="What marks the opportunity won: 'accepted' (quote), 'confirmed' or 'fulfilled' (order), or 'never'."),
        "lost_when_quotes_closed": Setting(bool, default=True,
                                           help="An opportunity whose quotes are all rejected or expired, without orders, is lost."),
        "approval_discount_percent": Setting((int, float), default=20, minimum=0, maximum=100,
                                             help="A quote with a line discount above this needs approval before sending."),
        "approval_role": Setting(str, default="sales_manager", help="The role that approves such quotes."),
        "routes": Setting(dict, default={},
                          help="Fulfilment kind per product group name (subgroups inherit): production, delivery or sales_office_review."),
        "default_route": Setting(str, default="sales_office_review", help="The fulfilment kind of products in no routed group."),
        "sinks": Setting(dict, default={},
                         help="Outbox sink per fulfilment kind; the kind's own name when absent."),
        "pdf_layout": Setting(str, default="", help="A TOML layout file for quote and order PDFs (the built-in one when empty)."),
        "expire_interval_minutes": Setting(int, default=60, minimum=1, maximum=525600,
                                           help="Minutes between two runs of the quote expiry job."),
    },
)
