"""The pipelines of quotes and sales orders (their ``state`` field) and the permissions they use.

Quote (``orders.quote``): ``draft`` → ``sent`` → ``accepted`` | ``rejected`` | ``expired``; a
draft may expire too. A pending approval holds the send (:mod:`crmcore.workflow` approvals). The fields that price a quote are locked once it is sent.

Sales order (``orders.sales_order``): ``draft`` → ``confirmed`` → ``in_fulfilment`` →
``fulfilled``; any state but ``fulfilled`` may be ``cancelled``.
"""

from __future__ import annotations

from crmcore.workflow import Pipeline, Stage, Transition

__all__ = [
    "LOCKED_FIELDS",
    "ORDER_PIPELINE",
    "QUOTE_PIPELINE",
    "pipelines",
]

#: What may not change once a document left its draft.
LOCKED_FIELDS = ("account_id", "currency", "document_discount", "rounding_mode", "rounding_method",
                 "rounding_places", "pricing_date")

QUOTE_PIPELINE = Pipeline(
    "orders.quote", "quote",
    (
        Stage("draft", probability=0),
        Stage("sent", probability=50, locked=(*LOCKED_FIELDS, "valid_until"), on_enter={"sent_at": "now"}),
        Stage("accepted", kind="won", probability=100, locked=(*LOCKED_FIELDS, "valid_until"), on_enter={"decided_at": "now"}),
        Stage("rejected", kind="lost", probability=0, locked=LOCKED_FIELDS, on_enter={"decided_at": "now"}),
        Stage("expired", kind="lost", probability=0, locked=LOCKED_FIELDS, on_enter={"decided_at": "now"}),
    ),
    (
        Transition("draft", "sent"),
        Transition("draft", "expired"),
        Transition("sent", "accepted"),
        Transition("sent", "rejected"),
        Transition("sent", "expired"),
    ),
    field="state", label="Quotes", default=True, origin="orders",
)

ORDER_PIPELINE = Pipeline(
    "orders.sales_order", "sales_order",
    (
        Stage("draft", probability=0),
        Stage("confirmed", probability=100, locked=LOCKED_FIELDS, on_enter={"confirmed_at": "now"}),
        Stage("in_fulfilment", probability=100, locked=LOCKED_FIELDS),
        Stage("fulfilled", kind="won", probability=100, locked=LOCKED_FIELDS, on_enter={"fulfilled_at": "now"}),
        Stage("cancelled", kind="lost", probability=0, locked=LOCKED_FIELDS, on_enter={"cancelled_at": "now"}),
    ),
    (
        Transition("draft", "confirmed"),
        Transition("confirmed", "in_fulfilment"),
        Transition("confirmed", "fulfilled"),
        Transition("in_fulfilment", "fulfilled"),
        Transition("draft", "cancelled"),
        Transition("confirmed", "cancelled"),
        Transition("in_fulfilment", "cancelled"),
    ),
    field="state", label="Sales orders", default=True, origin="orders",
)


def pipelines() -> list[Pipeline]:
    return [QUOTE_PIPELINE, ORDER_PIPELINE]
