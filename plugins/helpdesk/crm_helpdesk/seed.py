"""What the help desk needs in a fresh database (``crm_seed``; created only when missing).

- the calendar ``Standard``: Monday to Friday, 09:00 to 17:00, in the deployment's time zone;
- a policy per support tier and priority on it (:data:`DEFAULT_TARGETS`), when there is none;
- the default queue (``default_queue``, ``General``), assigning round robin;
- the search index of the knowledge base (:func:`crm_helpdesk.kb.ensure_search_index`);
- the first SLA sweep job, when none is queued or running.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.jobs import QUEUED, RUNNING

from crm_helpdesk.escalation import SWEEP_JOB, queue_sweep
from crm_helpdesk.kb import ensure_search_index
from crm_helpdesk.settings import helpdesk_settings

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["DEFAULT_TARGETS", "seed"]

_HOUR = 60
_DAY = 8 * _HOUR  # a business day of the Standard calendar
#: ``{(tier, priority): (first response, resolution)}`` in business minutes.
DEFAULT_TARGETS: dict[tuple[str, str], tuple[int, int]] = {
    ("basic", "low"): (2 * _DAY, 10 * _DAY),
    ("basic", "normal"): (_DAY, 5 * _DAY),
    ("basic", "high"): (4 * _HOUR, 3 * _DAY),
    ("basic", "urgent"): (2 * _HOUR, _DAY),
    ("standard", "low"): (_DAY, 5 * _DAY),
    ("standard", "normal"): (4 * _HOUR, 3 * _DAY),
    ("standard", "high"): (2 * _HOUR, 2 * _DAY),
    ("standard", "urgent"): (_HOUR, _DAY),
    ("premium", "low"): (4 * _HOUR, 3 * _DAY),
    ("premium", "normal"): (2 * _HOUR, 2 * _DAY),
    ("premium", "high"): (_HOUR, _DAY),
    ("premium", "urgent"): (30, 4 * _HOUR),
}


def seed(uow: UnitOfWork) -> list[str]:
    """Create what is missing; one line per thing created."""
    done: list[str] = []
    registry = uow.registry
    if uow.query("business_calendar").count() == 0:
        tz = registry.timezone
        name = getattr(tz, "key", None) or "UTC"
        standard = uow.create(
            "business_calendar",
            name="Standard",
            timezone=name,
            description="Monday to Friday, 09:00 to 17:00",
        )
        for weekday in ("mon", "tue", "wed", "thu", "fri"):
            uow.create(
                "business_hours",
                calendar_id=standard.id,
                weekday=weekday,
                opens="09:00",
                closes="17:00",
            )
        done.append(f"SLA calendar Standard created ({name}, Monday to Friday 09:00-17:00)")
    if uow.query("sla_policy").count() == 0:
        calendar_id = uow.query("business_calendar").order_by("id").limit(1).ids()[0]
        for (tier, priority), (response, resolution) in DEFAULT_TARGETS.items():
            uow.create(
                "sla_policy",
                name=f"{tier.capitalize()} {priority}",
                calendar_id=calendar_id,
                priority=priority,
                support_tier=tier,
                first_response_minutes=response,
                resolution_minutes=resolution,
                warning_percent=80,
            )
        done.append(f"{len(DEFAULT_TARGETS)} SLA policies created (support tier x priority)")
    default = helpdesk_settings(uow.crm).default_queue
    if uow.query("queue").where(name=default).count() == 0:
        uow.create(
            "queue",
            name=default,
            assignment="round_robin",
            description="Tickets opened without a queue",
        )
        done.append(f"queue {default} created")
    done += ensure_search_index(uow.raw("helpdesk"))  # the search index, not records
    waiting = uow.query("job").where(("status", "in", (QUEUED, RUNNING)), kind=SWEEP_JOB).count()
    if not waiting:
        queue_sweep(uow)
        done.append("SLA sweep job queued")
    return done
