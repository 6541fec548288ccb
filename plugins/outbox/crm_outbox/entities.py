"""The outbox's entity type: ``outbox_request``, one typed request to another system.

Every field is written by the system only (``read_only``): requests are posted with
:func:`crm_outbox.post`, delivered by the worker and answered with :func:`crm_outbox.answer`,
each of which writes in the system's name on behalf of the acting user. :func:`post` checks
that a request has its kind, sink, key and source (the fields carry no ``required`` flag, which
only applies to what users write).
"""

from __future__ import annotations

from crmcore import EntityType, Field
from crmcore.fields import Choice, DateTime, Integer, Json, String, Text

__all__ = [
    "DELIVERED",
    "DELIVERIES",
    "DELIVERING",
    "FAILED",
    "KEY_LENGTH",
    "OUTBOX_REQUEST",
    "PENDING",
    "SUPPLY_STATES",
]

#: Supply states: what the other system says about the request.
SUPPLY_STATES = ("requested", "accepted", "fulfilled", "cancelled")
#: Delivery states: where the request is on its way to the sink.
PENDING, DELIVERING, DELIVERED, FAILED = "pending", "delivering", "delivered", "failed"
DELIVERIES = (PENDING, DELIVERING, DELIVERED, FAILED)
#: The longest idempotency key.
KEY_LENGTH = 200

OUTBOX_REQUEST = EntityType(
    "outbox_request",
    label="Outbox request",
    fields=(
        Field(
            "kind",
            String(100),
            read_only=True,
            index=True,
            help="The type of request (production, delivery, ...), chosen by its poster.",
        ),
        Field(
            "sink",
            String(100),
            read_only=True,
            help="The sink it goes to, as named in [outbox.sinks].",
        ),
        Field("payload", Json(), read_only=True, help="What the other system receives (JSON)."),
        Field(
            "idempotency_key",
            String(KEY_LENGTH),
            unique=True,
            read_only=True,
            help="Names the request to the other system, which never acts on a key twice.",
        ),
        Field(
            "supply_state",
            Choice(*SUPPLY_STATES),
            default="requested",
            read_only=True,
            index=True,
            help="What the other system answered.",
        ),
        Field(
            "delivery",
            Choice(*DELIVERIES),
            default=PENDING,
            read_only=True,
            index=True,
            help="pending, delivering (claimed by a worker), delivered or failed.",
        ),
        Field("attempts", Integer(), default=0, read_only=True, help="Deliveries tried so far."),
        Field("last_error", Text(), read_only=True, help="Why the last attempt failed."),
        Field(
            "next_attempt_at",
            DateTime(),
            read_only=True,
            index=True,
            help="When a pending request is due.",
        ),
        Field("last_attempt_at", DateTime(), read_only=True, help="When it was last tried."),
        Field("delivered_at", DateTime(), read_only=True, help="When its sink took it."),
        Field(
            "locked_by",
            String(100),
            read_only=True,
            help="The worker delivering it (while delivering).",
        ),
        Field(
            "lease_until",
            DateTime(),
            read_only=True,
            help="Until when that worker holds it; another one takes it over afterwards.",
        ),
        Field(
            "source_entity",
            String(64),
            read_only=True,
            help="The kind of record the request is about (sales_order, ...).",
        ),
        Field("source_id", Integer(), read_only=True, index=True, help="The id of that record."),
        Field(
            "answered_at", DateTime(), read_only=True, help="When the supply state last changed."
        ),
    ),
    auditable=False,
    title_field="idempotency_key",
    help="A typed request to another system, delivered by the worker to a sink.",
)
