"""crm-scheduling: resource planning and scheduling for crmcore.

Technicians and other resources (vehicles, rooms, tools) with skills and levels, territories,
a home base, working hours on a service calendar minus absences, and a cost per hour; the
demand of service orders, planned-service occurrences and activities; free time and capacity
against demand for any period; and the assignment of service orders to the best resource,
explained, booked through the unit of work without double bookings.

Enable it per deployment with ``plugins = ["scheduling"]`` (it requires ``service``). With
``marketing`` enabled a territory may name a node of its geography tree.
"""

from __future__ import annotations

from crmcore import PluginInfo, Setting

__all__ = ["PLUGIN"]

PLUGIN = PluginInfo(
    name="scheduling",
    title="Scheduling",
    requires=("service",),
    description=(
        "Resources with skills, territories, calendars and absences; capacity against demand; "
        "assignment and booking of service orders."
    ),
    settings={
        "solver": Setting(
            str, default="greedy",
            help="The solver proposals use unless one is named: 'greedy', 'routing' (OR-Tools, "
            "the routing extra) or one a plugin adds.",
        ),
        "routing_seconds": Setting(
            int, default=30, minimum=1, maximum=3600,
            help="The time limit of the routing solver's search, in seconds.",
        ),
        "speed_kmh": Setting(
            int, default=40, minimum=1, maximum=300,
            help="Average travel speed between sites, in km/h, for travel times.",
        ),
        "default_duration": Setting(
            int, default=60, minimum=5, maximum=1440,
            help="Minutes of work of a service order that names no duration.",
        ),
        "territory_penalty_km": Setting(
            int, default=50, minimum=0, maximum=10000,
            help="Kilometres of travel a resource outside the order's territory counts as "
            "(the order prefers resources of its territory).",
        ),
    },
)
