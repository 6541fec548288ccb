"""crm-helpdesk: tickets, queues, SLA in business hours, escalation, knowledge base and customer
satisfaction for crmcore.

Enable it per deployment with ``plugins = ["helpdesk"]``; it works through crmcore's public
hooks only (see ``plugin.py``). The modules beside this one hold the logic: business time
(:mod:`~crm_helpdesk.businesstime`), SLA clocks and the breach sweep (:mod:`~crm_helpdesk.sla`),
tickets (:mod:`~crm_helpdesk.tickets`), assignment (:mod:`~crm_helpdesk.assignment`), the
knowledge base (:mod:`~crm_helpdesk.kb`), surveys (:mod:`~crm_helpdesk.surveys`) and reports
(:mod:`~crm_helpdesk.reports`).
"""

from __future__ import annotations

from crmcore import PluginInfo, Setting

__all__ = ["MAX_DAYS", "PLUGIN"]

#: The longest span in days a day-count setting accepts (a hundred years).
MAX_DAYS = 36500

PLUGIN = PluginInfo(
    name="helpdesk",
    title="Help desk",
    requires=("core.calendars",),
    description=(
        "Tickets, queues with automatic assignment, SLA clocks in business hours with warnings "
        "and escalations, a knowledge base with full-text search, and satisfaction surveys."
    ),
    settings={
        "default_queue": Setting(
            str, default="General", help="The queue of tickets opened without one (seeded)."
        ),
        "reopen_window_days": Setting(
            (int, float),
            default=7,
            maximum=MAX_DAYS,
            help="Days after resolution during which a resolved or closed ticket may be reopened; "
            "resolved tickets close by themselves when it ends.",
        ),
        "sweep_interval_minutes": Setting(
            int,
            default=5,
            minimum=1,
            maximum=MAX_DAYS * 24 * 60,
            help="Minutes between two SLA sweeps of the worker.",
        ),
        "survey_valid_days": Setting(
            int,
            default=30,
            minimum=1,
            maximum=MAX_DAYS,
            help="Days during which a satisfaction survey can be answered.",
        ),
        "escalation_actions": Setting(
            list,
            default=["raise_priority", "reassign", "notify_manager"],
            help="What a breach does: raise_priority, reassign (to the queue's escalation queue, "
            "else its manager), notify_manager.",
        ),
    },
)
