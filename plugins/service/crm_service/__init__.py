"""crm-service: field service for crmcore.

The installed base (units at customer sites, their components and locations), warranty terms
and registrations, service contracts, the entitlement that decides what a service line costs
the customer, service orders with work reports, planned service and a call center lookup.

Enable it per deployment with ``plugins = ["service"]``. It runs on the core alone; with the
help desk enabled a service order can come from a ticket and a contract can name an SLA
policy. Plugins that price parts or turn billable lines into invoice lines (a catalog, a
billing plugin) join through the hooks of :mod:`crm_service.hookspecs`.
"""

from __future__ import annotations

from crmcore import PluginInfo, Setting

__all__ = ["PLUGIN"]

PLUGIN = PluginInfo(
    name="service",
    title="Field service",
    requires=("core.calendars",),
    description=(
        "Installed base, warranties, service contracts, entitlement, service orders with work "
        "reports, planned service and call center lookup."
    ),
    settings={
        "currency": Setting(
            str, default="EUR", help="The currency of service prices when a line names none."
        ),
        "labour_rate": Setting(
            str, default="80.00", help="The price of one hour of labour, in the currency."
        ),
        "travel_rate": Setting(
            str, default="0.50", help="The price of one unit of travel (km), in the currency."
        ),
        "phone_region": Setting(
            str,
            default="",
            help="The ISO country (such as 'BR') callers' numbers without a country code are "
            "read in; empty: such numbers match only as dialled.",
        ),
        "plan_horizon_days": Setting(
            int,
            default=90,
            minimum=1,
            maximum=3660,
            help="Days ahead planned service occurrences are generated for (per plan unless set).",
        ),
    },
)
