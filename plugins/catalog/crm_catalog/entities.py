"""The entity types the catalog declares, and the fields it adds to the core's.

Tables are ``catalog_<entity>``. Vendors are accounts: the catalog adds a ``vendor`` flag to the
core's ``account`` (column ``catalog_vendor``), with its market ``segment`` and its
``customer_group_id`` (the two other audiences a price list may serve), so a company that both
buys from and sells to another keeps one account. ``opportunity_line`` gains ``product_id``.
"""

from __future__ import annotations

from crmcore import EntityType, Field
from crmcore.fields import Boolean, Choice, Date, Decimal, Integer, MoneyType, Reference, String, Text
from crmcore.money import CURRENCIES

from crm_catalog.fieldtypes import Percent

__all__ = [
    "ACCOUNT_FIELDS",
    "BASES",
    "CUSTOMER_DISCOUNT",
    "CUSTOMER_GROUP",
    "DISCOUNT_KINDS",
    "DISCOUNT_TIER",
    "ENTITIES",
    "OPPORTUNITY_LINE_FIELDS",
    "PRICE_LIST",
    "PRICE_LIST_LINE",
    "PRODUCT",
    "PRODUCT_GROUP",
    "STACKING",
    "STOCK_LEVEL",
    "STOCK_LOCATION",
    "STOCK_RESERVATION",
    "TAX_CATEGORY",
    "VENDOR_PRODUCT",
]

#: What a price list line's formula starts from.
BASES = ("list_price", "cost", "price_list", "fixed")
#: How the lines of one list that match a product combine (declared per list, never implied).
STACKING = ("exclusive", "cumulative", "best_for_customer")
#: A customer discount set by hand, or by the tier job.
DISCOUNT_KINDS = ("manual", "tier")

PRODUCT_GROUP = EntityType(
    "product_group",
    fields=(
        Field("name", String(200), required=True),
        Field("code", String(64), unique=True, help="A short unique code, for files and the CLI."),
        Field("parent_id", Reference("product_group", on_delete="restrict"), label="Parent group", index=True),
        Field("description", Text()),
    ),
    help="A node of the product group tree: lines, discounts and tiers for a group cover its subgroups.",
)

TAX_CATEGORY = EntityType(
    "tax_category",
    fields=(
        Field("code", String(32), required=True, unique=True),
        Field("name", String(200)),
        Field("rate", Percent(), required=True, help="Tax rate in percent, e.g. 19.00."),
    ),
    title_field="code",
    label="Tax category",
    plural="Tax categories",
    help="A tax rate products are sold under.",
)

PRODUCT = EntityType(
    "product",
    fields=(
        Field("code", String(64), required=True, unique=True, help="The product code (SKU), unique."),
        Field("name", String(200), required=True),
        Field("description", Text()),
        Field("group_id", Reference("product_group", on_delete="set_null"), label="Product group", index=True),
        Field("uom", String(16), required=True, default="unit", label="Unit of measure"),
        Field("list_price", MoneyType(), required=True),
        Field("cost", MoneyType(), help="What a unit costs the company (base of margins and of cost-based lines)."),
        Field("tax_category_id", Reference("tax_category", on_delete="restrict"), label="Tax category"),
        Field("active", Boolean(), default=True, help="Inactive products cannot be priced or sold."),
        Field("track_stock", Boolean(), default=False, help="Keep stock on hand and reservations for it."),
        Field("reorder_point", Decimal(scale=3), help="Reorder when the available stock falls to this quantity."),
        Field("reorder_quantity", Decimal(scale=3), help="How much to order when reordering."),
    ),
    title_field="code",
    help="A product or service sold from the catalog.",
)

VENDOR_PRODUCT = EntityType(
    "vendor_product",
    fields=(
        Field("vendor_id", Reference("account", on_delete="cascade"), required=True, label="Vendor", index=True),
        Field("product_id", Reference("product", on_delete="cascade"), required=True, label="Product", index=True),
        Field("vendor_code", String(64), help="The vendor's own code for the product."),
        Field("cost", MoneyType(), help="The vendor's price per unit."),
        Field("lead_time_days", Integer(minimum=0, maximum=3650), help="Days from order to delivery."),
        Field("preferred", Boolean(), default=False, help="The vendor to reorder from."),
    ),
    title_field="vendor_code",
    label="Vendor product",
    help="A product a vendor (an account, flagged vendor by it) supplies: its code, cost and lead time.",
)

CUSTOMER_GROUP = EntityType(
    "customer_group",
    fields=(
        Field("name", String(200), required=True, unique=True),
        Field("description", Text()),
    ),
    label="Customer group",
    help="A group of accounts a price list may serve.",
)

PRICE_LIST = EntityType(
    "price_list",
    fields=(
        Field("name", String(200), required=True, unique=True),
        Field("currency", Choice(*sorted(CURRENCIES)), required=True, help="ISO 4217 code; the list prices in it only."),
        Field("segment", String(64), index=True, help="The market segment it serves (accounts' segment)."),
        Field("customer_group_id", Reference("customer_group", on_delete="restrict"), label="Customer group"),
        Field("account_id", Reference("account", on_delete="cascade"), label="Account", index=True),
        Field("valid_from", Date(), help="First day it applies; empty: always."),
        Field("valid_to", Date(), help="Last day it applies; empty: open-ended."),
        Field("priority", Integer(minimum=0, maximum=1_000_000), default=0,
              help="Among lists of the same audience, the higher priority is tried first."),
        Field("stacking", Choice(*STACKING), required=True, default="exclusive",
              help="How its lines matching one product combine: exclusive (the first by priority), "
                   "cumulative (each in turn) or best_for_customer (the lowest price)."),
        Field("active", Boolean(), default=True),
        Field("description", Text()),
    ),
    label="Price list",
    help="Prices for an audience: one account, a customer group, a segment, or everyone when none is set.",
)

PRICE_LIST_LINE = EntityType(
    "price_list_line",
    fields=(
        Field("price_list_id", Reference("price_list", on_delete="cascade"), required=True, label="Price list", index=True),
        Field("product_id", Reference("product", on_delete="cascade"), label="Product", index=True),
        Field("group_id", Reference("product_group", on_delete="cascade"), label="Product group", index=True,
              help="The line covers the group and its subgroups; with no product nor group, everything."),
        Field("min_quantity", Decimal(scale=3), required=True, default=0, help="Applies from this quantity on."),
        Field("priority", Integer(minimum=0, maximum=1_000_000), required=True,
              help="Higher first; overlapping lines of one list may not share a priority."),
        Field("base", Choice(*BASES), required=True, default="list_price",
              help="What the formula starts from: list_price, cost, price_list (another list) or fixed."),
        Field("base_price_list_id", Reference("price_list", on_delete="restrict"), label="Base price list"),
        Field("fixed_price", MoneyType(scale=4), help="The price when the base is fixed."),
        Field("discount_percent", Percent(scale=4), help="Taken off the base, in percent."),
        Field("surcharge", MoneyType(scale=4), help="Added after the discount, in the list's currency."),
        Field("rounding", Decimal(scale=4), help="Round half up to a multiple of this (0.05, 1, 0.01)."),
        Field("min_margin_percent", Percent(), help="The price keeps at least this margin over cost."),
        Field("max_margin_percent", Percent(), help="The price keeps at most this margin over cost."),
        Field("note", String(200)),
    ),
    title_field="note",
    label="Price list line",
    help="A rule of a price list: what it covers, from which quantity, and its formula.",
)

DISCOUNT_TIER = EntityType(
    "discount_tier",
    fields=(
        Field("name", String(200), required=True),
        Field("group_id", Reference("product_group", on_delete="cascade"), label="Product group",
              help="Revenue of this group (and subgroups) counts; empty: all revenue."),
        Field("min_revenue", MoneyType(), required=True, help="Trailing twelve months' revenue from which it applies."),
        Field("percent", Percent(), required=True, help="The discount it gives, in percent."),
    ),
    label="Discount tier",
    help="A customer discount earned by trailing twelve months' revenue, set by the tier job.",
)

CUSTOMER_DISCOUNT = EntityType(
    "customer_discount",
    fields=(
        Field("account_id", Reference("account", on_delete="cascade"), required=True, label="Account", index=True),
        Field("group_id", Reference("product_group", on_delete="cascade"), label="Product group",
              help="Applies to this group and its subgroups; empty: every product."),
        Field("percent", Percent(), required=True),
        Field("kind", Choice(*DISCOUNT_KINDS), required=True, default="manual"),
        Field("tier_id", Reference("discount_tier", on_delete="set_null"), label="Tier"),
        Field("revenue", MoneyType(), help="The revenue that earned the tier (tier discounts)."),
        Field("valid_from", Date(), help="First day it applies; empty: always."),
        Field("valid_to", Date(), help="Last day it applies; empty: open-ended."),
        Field("note", String(200)),
    ),
    title_field="note",
    label="Customer discount",
    help="A customer's discount: manual, or a tier the job set (closed tiers stay as history).",
)

STOCK_LOCATION = EntityType(
    "stock_location",
    fields=(Field("name", String(200), required=True, unique=True), Field("description", Text())),
    label="Stock location",
    help="A place stock is kept.",
)

STOCK_LEVEL = EntityType(
    "stock_level",
    fields=(
        Field("product_id", Reference("product", on_delete="cascade"), required=True, label="Product", index=True),
        Field("location_id", Reference("stock_location", on_delete="cascade"), required=True, label="Location"),
        Field("on_hand", Decimal(scale=3), required=True, default=0),
    ),
    title_field="product_id",
    label="Stock level",
    help="Stock on hand of a product at a location.",
)

STOCK_RESERVATION = EntityType(
    "stock_reservation",
    fields=(
        Field("product_id", Reference("product", on_delete="cascade"), required=True, label="Product", index=True),
        Field("quantity", Decimal(scale=3), required=True),
        Field("source", String(200), required=True, index=True, help="What holds it, e.g. 'order:42'."),
    ),
    title_field="source",
    label="Stock reservation",
    help="Stock held for a confirmed order until it is released.",
)

ACCOUNT_FIELDS = (
    Field("vendor", Boolean(), default=False,
          help="The account supplies products; naming it in a vendor product sets it."),
    Field("segment", String(64), index=True, help="The market segment whose price lists apply."),
    Field("customer_group_id", Reference("customer_group", on_delete="set_null"), label="Customer group"),
)

OPPORTUNITY_LINE_FIELDS = (
    Field("product_id", Reference("product", on_delete="restrict"), label="Catalog product", index=True),
)

ENTITIES = (
    PRODUCT_GROUP,
    TAX_CATEGORY,
    PRODUCT,
    VENDOR_PRODUCT,
    CUSTOMER_GROUP,
    PRICE_LIST,
    PRICE_LIST_LINE,
    DISCOUNT_TIER,
    CUSTOMER_DISCOUNT,
    STOCK_LOCATION,
    STOCK_LEVEL,
    STOCK_RESERVATION,
)
