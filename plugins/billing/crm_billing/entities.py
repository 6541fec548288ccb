"""The entity types of the billing plugin and the one table it keeps beside its records.

An **invoice** (``kind = "invoice"``) or **credit note** (``kind = "credit_note"``) keeps its
lines' inputs and its pricing exactly as a sales order does, so the orders plugin's totals
engine gives it the same totals; it may come from a sales order (``sales_order_id``, lines
with ``sales_order_line_id``) and a credit note names the invoice it reverses
(``credited_invoice_id``, lines with ``credited_line_id``). Posting gives it a ``number``
from a gap-free sequence per kind and year (the ``billing_sequence`` table, reached through
the raw API) and freezes it.

An **instalment** is one due part of a posted invoice (from its payment terms): due date,
amount and the residual still open. A **payment** is money received from an account; its
**allocations** apply it to instalments; what is not applied stays ``unapplied``.
"""

from __future__ import annotations

import sqlalchemy as sa
from crm_orders.fieldtypes import Discounts, currency_choice
from crm_orders.totals import METHODS, MODES
from crmcore import EntityType
from crmcore.fields import (
    Boolean,
    Choice,
    Date,
    DateTime,
    Decimal,
    Field,
    Integer,
    Json,
    MoneyType,
    Reference,
    String,
    Text,
)

__all__ = [
    "ACCOUNT_FIELDS",
    "ALLOCATION",
    "ENTITIES",
    "INSTALMENT",
    "INVOICE",
    "INVOICE_LINE",
    "INVOICE_STATES",
    "KINDS",
    "NOTICE",
    "NOTICE_STATES",
    "OPEN_STATES",
    "PAYMENT",
    "SEQUENCE",
    "sequence_ddl",
]

INVOICE_STATES = ("draft", "posted", "partially_paid", "paid", "cancelled")
#: The states of a posted document that still counts.
OPEN_STATES = ("posted", "partially_paid", "paid")
KINDS = ("invoice", "credit_note")

INVOICE = EntityType(
    "invoice",
    label="Invoice",
    fields=(
        Field("kind", Choice(*KINDS), required=True, default="invoice", help="An invoice or a credit note."),
        Field("number", String(40), read_only=True, unique=True, help="Given when posted, from a gap-free sequence per year."),
        Field("title", String(200)),
        Field("account_id", Reference("account", on_delete="restrict"), required=True, label="Account", index=True),
        Field("sales_order_id", Reference("sales_order", on_delete="restrict"), label="Sales order", index=True),
        Field("credited_invoice_id", Reference("invoice", on_delete="restrict"), label="Credited invoice", index=True,
              help="The posted invoice a credit note reverses."),
        Field("state", Choice(*INVOICE_STATES), required=True, default="draft", read_only=True, index=True,
              help="draft, posted, partially_paid, paid or cancelled."),
        Field("invoice_date", Date(), index=True, help="The day of the invoice; the posting day when empty."),
        Field("posted_at", DateTime(), read_only=True),
        Field("payment_terms", String(60), help="The name of the payment terms (settings); the default terms when empty."),
        Field("due_date", Date(), read_only=True, index=True, help="The last instalment's due date."),
        Field("currency", currency_choice(), required=True),
        Field("document_discount", Decimal(scale=4), default=0, help="A discount in percent of the subtotal."),
        Field("rounding_mode", Choice(*MODES), required=True, default="line"),
        Field("rounding_method", Choice(*METHODS), required=True, default="half_up"),
        Field("rounding_places", Integer(), required=True, default=2),
        Field("subtotal", MoneyType(), read_only=True),
        Field("discount_total", MoneyType(), read_only=True),
        Field("net_total", MoneyType(), read_only=True),
        Field("tax_total", MoneyType(), read_only=True),
        Field("grand_total", MoneyType(), read_only=True),
        Field("open_amount", MoneyType(), read_only=True,
              help="An invoice: what its instalments still await. A credit note: what is not yet set against an invoice."),
        Field("notes", Text()),
        Field("source_ref", String(80), read_only=True, index=True,
              help="The record of another plugin this invoice bills ('service_order 12'; 'service' for collected service work)."),
    ),
    ownable=True,
    title_field="number",
    help="An invoice or a credit note: frozen and numbered when posted.",
)

INVOICE_LINE = EntityType(
    "invoice_line",
    label="Invoice line",
    fields=(
        Field("invoice_id", Reference("invoice", on_delete="cascade"), required=True, label="Invoice", index=True),
        Field("position", Integer()),
        Field("product_id", Reference("product", on_delete="restrict"), label="Product", index=True),
        Field("description", String(500)),
        Field("quantity", Decimal(scale=4), required=True, default=1),
        Field("unit_price", MoneyType(scale=4), required=True),
        Field("discounts", Discounts(), help="Line discounts in percent, applied one after the other."),
        Field("tax_code", String(40)),
        Field("tax_rate", Decimal(scale=4), default=0),
        Field("sales_order_line_id", Reference("sales_order_line", on_delete="restrict"), label="Order line", index=True,
              help="The order line this line invoices."),
        Field("credited_line_id", Reference("invoice_line", on_delete="restrict"), label="Credited line", index=True,
              help="The invoice line a credit note line reverses."),
        Field("source_ref", String(80), read_only=True, index=True,
              help="The record of another plugin this line bills ('work_line 34'): billed on one invoice at most."),
    ),
    title_field="description",
    help="A line of an invoice or credit note.",
)

INSTALMENT = EntityType(
    "instalment",
    label="Instalment",
    fields=(
        Field("invoice_id", Reference("invoice", on_delete="cascade"), required=True, label="Invoice", index=True),
        Field("account_id", Reference("account", on_delete="restrict"), required=True, label="Account", index=True),
        Field("sequence", Integer(), required=True, default=1),
        Field("due_date", Date(), required=True, index=True),
        Field("amount", MoneyType(), required=True),
        Field("residual", MoneyType(), read_only=True, help="What is still open of the amount."),
        Field("blocked", Boolean(), default=False, help="Held from dunning (a dispute, an agreement)."),
        Field("dunning_level", Integer(), default=0, read_only=True, help="The last reminder level reached."),
        Field("last_dunned_on", Date(), read_only=True),
    ),
    help="One due part of a posted invoice.",
)

PAYMENT = EntityType(
    "payment",
    label="Payment",
    fields=(
        Field("account_id", Reference("account", on_delete="restrict"), required=True, label="Account", index=True),
        Field("received_on", Date(), required=True, index=True),
        Field("amount", MoneyType(), required=True),
        Field("unapplied", MoneyType(), read_only=True, help="What no instalment took: the customer's credit."),
        Field("reference", String(200), help="The bank's reference or the payer's note."),
        Field("source", Choice("manual", "statement"), default="manual"),
        Field("statement_key", String(200), read_only=True, unique=True,
              help="File and row of the statement line it came from: a second import skips it."),
    ),
    ownable=True,
    help="Money received from an account.",
)

ALLOCATION = EntityType(
    "payment_allocation",
    label="Payment allocation",
    fields=(
        Field("payment_id", Reference("payment", on_delete="cascade"), label="Payment", index=True),
        Field("credit_note_id", Reference("invoice", on_delete="cascade"), label="Credit note", index=True),
        Field("instalment_id", Reference("instalment", on_delete="cascade"), required=True, label="Instalment", index=True),
        Field("amount", MoneyType(), required=True),
    ),
    help="Part of a payment or credit note applied to an instalment.",
)

NOTICE_STATES = ("pending", "sending", "sent", "failed", "printed", "planned")

NOTICE = EntityType(
    "dunning_notice",
    label="Dunning notice",
    fields=(
        Field("account_id", Reference("account", on_delete="restrict"), required=True, label="Account", index=True),
        Field("level", Integer(), required=True),
        Field("run_date", Date(), required=True, index=True),
        Field("channel", Choice("email", "letter", "phone"), required=True),
        Field("status", Choice(*NOTICE_STATES), required=True, default="pending", index=True,
              help="pending or failed (an e-mail to send; sending while a worker sends it), sent, printed (a letter), planned (a call)."),
        Field("items", Json(), help="The instalments reminded: id, invoice number, due date, residual, days overdue, interest."),
        Field("amount_due", MoneyType(), help="The overdue residuals less the customer's credits."),
        Field("fee", MoneyType()),
        Field("interest", MoneyType()),
        Field("fee_policy", Choice("collect", "threat", "waive")),
        Field("fee_invoice_id", Reference("invoice", on_delete="set_null"), label="Fee invoice"),
        Field("activity_id", Reference("activity", on_delete="set_null"), label="Activity"),
        Field("document_id", Reference("document", on_delete="set_null"), label="Letter"),
        Field("procedure", String(60), help="The dunning procedure whose level this is."),
        Field("attempts", Integer(), default=0),
        Field("last_error", String(500)),
        Field("dunning_key", String(120), required=True, unique=True,
              help="account:currency:level:run date: a rerun or a second worker makes no second notice."),
    ),
    help="A reminder sent (or planned) to a customer for overdue instalments.",
)

ENTITIES = (INVOICE, INVOICE_LINE, INSTALMENT, PAYMENT, ALLOCATION, NOTICE)

#: What billing adds to accounts (column ``billing_dunning_procedure``).
ACCOUNT_FIELDS = (
    Field("dunning_procedure", String(60), label="Dunning procedure",
          help="The dunning procedure the customer follows (settings); the default one when empty."),
)

_METADATA = sa.MetaData()
#: The last number given per kind and year: one row, locked while a posting runs.
SEQUENCE = sa.Table(
    "billing_sequence",
    _METADATA,
    sa.Column("kind", sa.String(20), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("last_number", sa.Integer, nullable=False, server_default="0"),
)


def sequence_ddl() -> list[tuple[str, str]]:
    """``(name, statement)`` of the sequence table (the migration makes the same)."""
    return [(
        "billing_sequence",
        "CREATE TABLE IF NOT EXISTS billing_sequence (kind VARCHAR(20) NOT NULL, year INTEGER NOT NULL, "
        "last_number INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (kind, year))",
    )]
