"""crm-example-plugin: site visits to accounts, and a customer-since date on accounts.

An example of a third-party crmcore plugin in a package of its own: it declares an entity type
(``site_visit``), adds a field to the core's ``account``, and ships its Alembic revisions.
"""

from __future__ import annotations

from crmcore import PluginInfo

__all__ = ["PLUGIN"]

PLUGIN = PluginInfo(
    name="example",
    title="Site visits",
    requires=(),
    description=(
        "Visits to customer sites with a rating and notes; the date an account became a customer."
    ),
)
