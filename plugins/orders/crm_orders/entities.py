"""The entity types of the orders plugin: quotes and sales orders with their lines.

A document keeps its inputs (lines: product, quantity, unit price, cascading discounts, tax
category and rate, the catalog's price snapshot; the document discount and the rounding it was
priced with) and its totals, which :mod:`crm_orders.documents` recomputes with the one engine
of :mod:`crm_orders.totals` whenever lines change. Totals are read-only: only that
recomputation writes them.

Quote versions: the first version's id is the ``root_id`` of every later version;
``supersedes_id`` and ``superseded_by_id`` link neighbours; ``is_current`` marks the version an
order may come from.
"""

from __future__ import annotations

from crmcore import EntityType
from crmcore.fields import (
    Boolean,
    Choice,
    Date,
    DateTime,
    Decimal,
    Field,
    Integer,
    MoneyType,
    Reference,
    String,
    Text,
)

from crm_orders.fieldtypes import Discounts, PriceSnapshot, currency_choice
from crm_orders.totals import METHODS, MODES

__all__ = [
    "ENTITIES",
    "ORDER_STATES",
    "QUOTE",
    "QUOTE_LINE",
    "QUOTE_STATES",
    "SALES_ORDER",
    "SALES_ORDER_LINE",
    "TOTAL_FIELDS",
]

QUOTE_STATES = ("draft", "sent", "accepted", "rejected", "expired")
ORDER_STATES = ("draft", "confirmed", "in_fulfilment", "fulfilled", "cancelled")
#: The read-only totals every document keeps.
TOTAL_FIELDS = ("subtotal", "discount_total", "net_total", "tax_total", "grand_total")


def _totals() -> tuple[Field, ...]:
    return (
        Field("subtotal", MoneyType(), read_only=True, help="Lines after their own discounts."),
        Field("discount_total", MoneyType(), read_only=True, help="The document discount, spread over the lines."),
        Field("net_total", MoneyType(), read_only=True, help="Subtotal less the document discount: the taxable base."),
        Field("tax_total", MoneyType(), read_only=True, help="Taxes of every tax category."),
        Field("grand_total", MoneyType(), read_only=True, help="Net total plus taxes."),
    )


def _pricing() -> tuple[Field, ...]:
    return (
        Field("currency", currency_choice(), required=True, help="ISO 4217 code of every amount of the document."),
        Field("document_discount", Decimal(scale=4), default=0,
              help="A discount in percent of the subtotal, spread over the lines."),
        Field("rounding_mode", Choice(*MODES), required=True, default="line",
              help="Taxes rounded per line or once per tax category (from settings when the document is made)."),
        Field("rounding_method", Choice(*METHODS), required=True, default="half_up",
              help="half_up or half_even (from settings when the document is made)."),
        Field("rounding_places", Integer(), required=True, default=2, help="Decimal places of the amounts."),
        Field("pricing_date", Date(), help="The day prices were resolved for."),
    )


def _line_inputs() -> tuple[Field, ...]:
    return (
        Field("position", Integer(), help="The line's place on the document."),
        Field("product_id", Reference("product", on_delete="restrict"), label="Product", index=True),
        Field("description", String(500), help="What the line sells; the product's name by default."),
        Field("quantity", Decimal(scale=4), required=True, default=1),
        Field("unit_price", MoneyType(scale=4), required=True),
        Field("discounts", Discounts(), help="Line discounts in percent, applied one after the other, e.g. [\"10\", \"5\"]."),
        Field("tax_code", String(40), help="The tax category's code."),
        Field("tax_rate", Decimal(scale=4), default=0, help="The tax rate in percent."),
        Field("price_snapshot", PriceSnapshot(), help="The catalog's resolved price and the rules behind it, frozen."),
    )


QUOTE = EntityType(
    "quote",
    label="Quote",
    fields=(
        Field("title", String(200), required=True),
        Field("account_id", Reference("account", on_delete="restrict"), label="Account", index=True),
        Field("opportunity_id", Reference("opportunity", on_delete="set_null"), label="Opportunity", index=True),
        Field("state", Choice(*QUOTE_STATES), index=True, help="draft, sent, accepted, rejected or expired (pipeline orders.quote)."),
        Field("valid_until", Date(), index=True, help="The last day the customer may accept the quote."),
        Field("version_number", Integer(), required=True, default=1, read_only=True),
        Field("root_id", Reference("quote", on_delete="set_null"), label="First version", read_only=True, index=True),
        Field("supersedes_id", Reference("quote", on_delete="set_null"), label="Supersedes", read_only=True),
        Field("superseded_by_id", Reference("quote", on_delete="set_null"), label="Superseded by", read_only=True),
        Field("is_current", Boolean(), default=True, read_only=True, index=True,
              help="The latest version: the one an order may come from."),
        Field("sent_at", DateTime(), read_only=True),
        Field("decided_at", DateTime(), read_only=True, help="When it was accepted, rejected or expired."),
        *_pricing(),
        *_totals(),
        Field("notes", Text()),
    ),
    ownable=True,
    title_field="title",
    help="An offer to a customer: priced lines, a version, a validity date.",
)

QUOTE_LINE = EntityType(
    "quote_line",
    label="Quote line",
    fields=(
        Field("quote_id", Reference("quote", on_delete="cascade"), required=True, label="Quote", index=True),
        *_line_inputs(),
        Field("opportunity_line_id", Reference("opportunity_line", on_delete="set_null"), label="Opportunity line"),
    ),
    title_field="description",
    help="A priced line of a quote.",
)

SALES_ORDER = EntityType(
    "sales_order",
    label="Sales order",
    fields=(
        Field("title", String(200), required=True),
        Field("account_id", Reference("account", on_delete="restrict"), label="Account", index=True),
        Field("opportunity_id", Reference("opportunity", on_delete="set_null"), label="Opportunity", index=True),
        Field("quote_id", Reference("quote", on_delete="restrict"), label="Quote", index=True,
              help="The quote version the order came from."),
        Field("state", Choice(*ORDER_STATES), index=True,
              help="draft, confirmed, in_fulfilment, fulfilled or cancelled (pipeline orders.sales_order)."),
        Field("confirmed_at", DateTime(), read_only=True, index=True),
        Field("fulfilled_at", DateTime(), read_only=True),
        Field("cancelled_at", DateTime(), read_only=True),
        *_pricing(),
        *_totals(),
        Field("notes", Text()),
    ),
    ownable=True,
    title_field="title",
    help="A customer's order: from an accepted quote or straight from an opportunity.",
)

SALES_ORDER_LINE = EntityType(
    "sales_order_line",
    label="Sales order line",
    fields=(
        Field("sales_order_id", Reference("sales_order", on_delete="cascade"), required=True, label="Sales order", index=True),
        *_line_inputs(),
        Field("quote_id", Reference("quote", on_delete="set_null"), label="Quote version",
              help="Lineage: the quote version the line came from."),
        Field("quote_line_id", Reference("quote_line", on_delete="set_null"), label="Quote line",
              help="Lineage: the quote line it came from."),
    ),
    title_field="description",
    help="A line of a sales order, with its lineage.",
)

ENTITIES = (QUOTE, QUOTE_LINE, SALES_ORDER, SALES_ORDER_LINE)
