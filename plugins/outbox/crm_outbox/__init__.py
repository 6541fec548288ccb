"""crm-outbox: a transactional outbox of typed requests to other systems.

A plugin that hands work to another system (an order going to production, say) writes
requests with :func:`post` in the same unit of work as the change that decides them: they exist
once that unit commits, never if it rolls back. The worker delivers them to sinks named in the
settings (a JSON file drop, an HTTP webhook, or a type another plugin adds), with retries and an
idempotency key per request, and records the answers of the other system as each request's
supply state. Modules: requests and posting (:mod:`~crm_outbox.posting`), delivery
(:mod:`~crm_outbox.delivery`), sinks (:mod:`~crm_outbox.sinks`), answers
(:mod:`~crm_outbox.answers`), settings (:mod:`~crm_outbox.settings`).
"""

from __future__ import annotations

from crmcore import PluginInfo, Setting

__all__ = [
    "PLUGIN",
    "Answer",
    "DeliveryStats",
    "Outcome",
    "OutboxItem",
    "OutgoingRequest",
    "SinkType",
    "answer",
    "answer_many",
    "deliver",
    "post",
    "retry",
    "retry_failed",
]

#: The longest wait in seconds any duration setting accepts (thirty days).
MAX_SECONDS = 30 * 24 * 3600

PLUGIN = PluginInfo(
    name="outbox",
    title="Outbox",
    requires=(),
    description=(
        "Typed requests to other systems written in the caller's transaction and delivered by "
        "the worker to file and HTTP sinks, with leases, retries and idempotency keys."
    ),
    sections=("outbox",),
    settings={
        "batch_size": Setting(
            int,
            default=500,
            minimum=1,
            maximum=10000,
            help="Requests claimed and handed to a sink at a time.",
        ),
        "lease_seconds": Setting(
            (int, float),
            default=300,
            minimum=1,
            maximum=MAX_SECONDS,
            help="Seconds a worker holds the requests it claimed; after that, a request whose "
            "worker stopped is delivered by another one.",
        ),
        "max_attempts": Setting(
            int,
            default=8,
            minimum=1,
            maximum=1000,
            help="Attempts before a request is kept as failed.",
        ),
        "retry_delay": Setting(
            (int, float),
            default=30,
            minimum=0,
            maximum=MAX_SECONDS,
            help="Seconds before the second attempt; each further one waits twice as long.",
        ),
        "retry_delay_max": Setting(
            (int, float),
            default=3600,
            minimum=0,
            maximum=MAX_SECONDS,
            help="The longest wait between two attempts, in seconds.",
        ),
    },
)


from crm_outbox.answers import Answer, answer, answer_many  # noqa: E402
from crm_outbox.delivery import DeliveryStats, deliver, retry, retry_failed  # noqa: E402
from crm_outbox.posting import OutboxItem, post  # noqa: E402
from crm_outbox.sinks import Outcome, OutgoingRequest, SinkType  # noqa: E402
