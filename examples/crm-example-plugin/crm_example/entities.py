"""The entity type the example plugin owns (``site_visit``, table ``example_site_visit``) and the
field it adds to the core's ``account`` (``customer_since``, column ``example_customer_since``)."""

from __future__ import annotations

from crmcore import EntityType, Field
from crmcore.fields import Choice, Date, Reference, Text

__all__ = ["ACCOUNT_FIELDS", "RATINGS", "SITE_VISIT"]

#: How a visit went, worst first.
RATINGS = ("poor", "fair", "good", "excellent")

SITE_VISIT = EntityType(
    "site_visit",
    fields=(
        Field("account_id", Reference("account"), label="Account", required=True),
        Field("visited_on", Date(), label="Visited on", required=True, index=True),
        Field("rating", Choice(*RATINGS), help="How the visit went."),
        Field("notes", Text()),
    ),
    ownable=True,
    title_field="visited_on",
    help="A visit to a customer's site.",
)

#: Fields added to the core's ``account``.
ACCOUNT_FIELDS = (
    Field("customer_since", Date(), label="Customer since", help="The date of the first order."),
)
