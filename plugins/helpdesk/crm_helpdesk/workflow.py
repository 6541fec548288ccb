"""The help desk's pipelines: tickets (``helpdesk.ticket``) and articles (``helpdesk.kb_article``).

A ticket is ``new`` until someone works it, ``open`` while worked, ``pending_customer`` while
waiting on the customer (its SLA clocks stand still), ``pending_third_party`` while waiting on
someone else (the clocks run), then ``resolved`` and ``closed``. A resolved or closed ticket
may be reopened within the reopen window: the moves ``resolved -> open`` and ``closed -> open``
carry the guard ``now - resolved_at <= :days``, added from the plugin's settings
(``reopen_window_days``, bound as the parameter ``days``, never formatted into the text) when
the app starts. Closing needs the permission
``helpdesk.ticket.close``; publishing an article ``helpdesk.kb_article.publish``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.workflow import Condition, Pipeline, Stage, Transition, parse_condition

from crm_helpdesk.entities import STAGES

if TYPE_CHECKING:
    from crmcore.workflow import PipelineBuilder

__all__ = [
    "ARTICLE_PIPELINE",
    "CLOSE_PERMISSION",
    "PUBLISH_PERMISSION",
    "REOPEN_GUARD",
    "TICKET_PIPELINE",
    "add_reopen_guards",
    "pipelines",
    "reopen_guard",
]

TICKET_PIPELINE = "helpdesk.ticket"
ARTICLE_PIPELINE = "helpdesk.kb_article"
CLOSE_PERMISSION = "helpdesk.ticket.close"
PUBLISH_PERMISSION = "helpdesk.kb_article.publish"

#: The reopen guard's text; the window is bound as the parameter ``days``.
REOPEN_GUARD = "now - resolved_at <= :days"

_WORKING = ("new", "open", "pending_customer", "pending_third_party")


def _ticket_pipeline() -> Pipeline:
    labels = {
        "pending_customer": "Pending on customer",
        "pending_third_party": "Pending on third party",
    }
    stages = tuple(
        Stage(
            name,
            label=labels.get(name, ""),
            kind="won" if name in ("resolved", "closed") else "open",
        )
        for name in STAGES
    )
    transitions: list[Transition] = []
    for source in _WORKING:
        for target in _WORKING[1:]:
            if target != source:
                transitions.append(Transition(source, target))
        transitions.append(Transition(source, "resolved"))
        transitions.append(Transition(source, "closed", permission=CLOSE_PERMISSION))
    transitions += [
        Transition("resolved", "open"),
        Transition("resolved", "closed", permission=CLOSE_PERMISSION),
        Transition("closed", "open"),
    ]
    return Pipeline(
        TICKET_PIPELINE,
        "ticket",
        stages,
        tuple(transitions),
        field="status",
        label="Tickets",
        default=True,
        origin="helpdesk",
    )


def _article_pipeline() -> Pipeline:
    stages = (Stage("draft"), Stage("published", kind="won"), Stage("archived", kind="lost"))
    transitions = (
        Transition("draft", "published", permission=PUBLISH_PERMISSION),
        Transition("draft", "archived"),
        Transition("published", "draft"),
        Transition("published", "archived"),
        Transition("archived", "draft"),
        Transition("archived", "published", permission=PUBLISH_PERMISSION),
    )
    return Pipeline(
        ARTICLE_PIPELINE,
        "kb_article",
        stages,
        transitions,
        field="status",
        label="Knowledge base",
        default=True,
        origin="helpdesk",
    )


def pipelines() -> list[Pipeline]:
    """The two pipelines the help desk declares."""
    return [_ticket_pipeline(), _article_pipeline()]


def reopen_guard(days: float) -> Condition:
    """The guard of a reopening: at most *days* since the resolution (``resolved_at``), the
    number bound as the parameter ``:days`` of :data:`REOPEN_GUARD`."""
    return parse_condition(
        REOPEN_GUARD,
        where="plugins.helpdesk.reopen_window_days",
        params={"days": days},
    )


def add_reopen_guards(builder: PipelineBuilder, days: float) -> None:
    """Guard the moves from ``resolved`` and ``closed`` back to ``open`` of the ticket pipeline
    with the reopen window (those the pipeline has: settings may have replaced it)."""
    for source in ("resolved", "closed"):
        if any(t.source == source and t.target == "open" for t in builder.transitions):
            builder.add_guard(source, "open", reopen_guard(days))
