"""crm-catalog: products and their group tree, vendors and vendor products, price lists with
explained prices, customer discounts (manual and by revenue tier), optional stock and the
reorder list for crmcore.

Enable it per deployment with ``plugins = ["catalog"]`` (it requires ``sales``). Pricing is
:mod:`crm_catalog.pricing` (``price_lines``, ``explain_price``); stock is
:mod:`crm_catalog.stock` (``reserve``, ``release``, ``reorder_list``); discount tiers are
:mod:`crm_catalog.tiers`. ``plugin.py`` wires them into crmcore's hooks.
"""

from __future__ import annotations

from crmcore import PluginInfo, Setting

__all__ = ["PLUGIN"]

PLUGIN = PluginInfo(
    name="catalog",
    title="Catalog",
    requires=("sales",),
    description=(
        "Products and product groups, vendors, price lists with deterministic, explained prices, "
        "customer discounts by revenue tier or by hand, optional stock with a reorder list."
    ),
    settings={
        "discount_combination": Setting(
            str, default="best",
            help="How several customer discounts on one line combine: 'best' (the largest) or 'cascade'.",
        ),
        "revenue_months": Setting(
            int, default=12, minimum=1, maximum=120,
            help="Months of revenue the discount tiers look back on.",
        ),
        "price_decimals": Setting(
            int, default=2, minimum=0, maximum=4,
            help="Decimal places unit prices are rounded to (half up).",
        ),
    },
)
