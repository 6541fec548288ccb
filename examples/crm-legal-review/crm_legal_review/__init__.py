"""crm-legal-review: large deals pass a legal review before the final stage.

A phase plugin: it changes the ``sales`` pipeline of the core through ``crm_extend_pipeline``
instead of declaring a pipeline of its own. The stage ``legal_review`` sits between
``quotation_sent`` and ``final_stage``; a deal whose amount is at most the ``threshold`` setting
may still go straight from ``quotation_sent`` to ``final_stage``, a larger one must pass the
review.
"""

from __future__ import annotations

from crmcore import PluginInfo, Setting

__all__ = ["PLUGIN"]

PLUGIN = PluginInfo(
    name="legal_review",
    title="Legal review",
    description="Deals above a threshold pass a legal review between quotation and final stage.",
    settings={
        "threshold": Setting(
            int, default=100_000,
            help="Deals with an amount above this must pass legal review before the final stage.",
        ),
    },
)
