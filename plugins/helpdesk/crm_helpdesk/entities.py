"""The entity types the help desk declares, and the fields it adds to the core's.

Tables are ``helpdesk_<entity>``. Fields that the help desk computes (due times, SLA states,
time stamps of the ticket's life) are read-only: users never write them, the plugin's hooks and
the worker do. The core's ``account`` gets ``support_tier`` and ``activity`` gets ``ticket_id``
(columns ``helpdesk_support_tier`` and ``helpdesk_ticket_id``), so a call logged by the call
center is an activity on the ticket, in the ticket's and the account's timelines. SLA policies run
on the core's business calendars (``business_calendar``, :mod:`crmcore.calendars`), which planned
service and scheduling share.
"""

from __future__ import annotations

from crmcore import EntityType, Field
from crmcore.fields import Boolean, Choice, DateTime, Integer, Reference, String, Text

__all__ = [
    "ACCOUNT_FIELDS",
    "ACTIVE_STAGES",
    "ACTIVITY_FIELDS",
    "ARTICLE_STATUSES",
    "CHANNELS",
    "CSAT_SURVEY",
    "ENTITIES",
    "KB_ARTICLE",
    "KB_CATEGORY",
    "PRIORITIES",
    "QUEUE",
    "QUEUE_AGENT",
    "QUEUE_GROUP",
    "SLA_EVENT",
    "SLA_POLICY",
    "SLA_STATUSES",
    "STAGES",
    "TICKET",
    "TICKET_ARTICLE",
    "TIERS",
]

#: Ticket channels.
CHANNELS = ("email", "phone", "web", "chat", "walk_in")
#: Priorities, lowest first (escalation raises one step).
PRIORITIES = ("low", "normal", "high", "urgent")
#: Support tiers of accounts, lowest first.
TIERS = ("basic", "standard", "premium")
#: Stages of the ticket pipeline ``helpdesk.ticket``.
STAGES = ("new", "open", "pending_customer", "pending_third_party", "resolved", "closed")
#: Stages in which SLA clocks may run (``pending_customer`` pauses them).
ACTIVE_STAGES = ("new", "open", "pending_third_party")
#: Stages of a ticket that is done.
DONE_STAGES = ("resolved", "closed")
#: The state of one SLA target of a ticket.
SLA_STATUSES = ("none", "pending", "warning", "met", "breached")
#: Stages of a knowledge base article (pipeline ``helpdesk.kb_article``).
ARTICLE_STATUSES = ("draft", "published", "archived")
#: How a queue assigns new tickets.
ASSIGNMENT_METHODS = ("round_robin", "least_open", "manual")
WEEKDAY_CHOICES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

SLA_POLICY = EntityType(
    "sla_policy",
    fields=(
        Field("name", String(100), required=True),
        Field(
            "calendar_id",
            Reference("business_calendar", on_delete="restrict"),
            required=True,
            label="Calendar",
        ),
        Field("priority", Choice(*PRIORITIES), help="The priority it applies to; empty: any."),
        Field(
            "support_tier",
            Choice(*TIERS),
            help="The account support tier it applies to; empty: any.",
        ),
        Field("first_response_minutes", Integer(), help="Business minutes to the first response."),
        Field("resolution_minutes", Integer(), help="Business minutes to the resolution."),
        Field(
            "warning_percent",
            Integer(),
            default=80,
            help="Warn when this share of a target has passed (0: no warning).",
        ),
        Field("active", Boolean(), default=True),
    ),
    label="SLA policy",
    plural="SLA policies",
    referable_by_all=True,  # stamped on every ticket by the help desk, whoever opens it
    help="Targets by priority and support tier; the most specific active policy applies.",
)

QUEUE = EntityType(
    "queue",
    fields=(
        Field("name", String(100), required=True, unique=True),
        Field("description", Text()),
        Field(
            "assignment",
            Choice(*ASSIGNMENT_METHODS),
            default="round_robin",
            help="How new tickets get an agent: round_robin, least_open or manual.",
        ),
        Field(
            "manager_id",
            Reference("user", on_delete="set_null"),
            label="Manager",
            help="Notified of breaches; may update every ticket of the queue.",
        ),
        Field(
            "escalation_queue_id",
            Reference("queue", on_delete="set_null"),
            label="Escalation queue",
            help="Where breached tickets go, when set.",
        ),
        Field("active", Boolean(), default=True),
    ),
    help="A team's inbox of tickets, with member agents and groups.",
)

QUEUE_AGENT = EntityType(
    "queue_agent",
    fields=(
        Field("queue_id", Reference("queue", on_delete="cascade"), required=True, label="Queue"),
        Field("user_id", Reference("user", on_delete="cascade"), required=True, label="Agent"),
    ),
    help="A user who works a queue: sees its tickets and gets assigned some.",
)

QUEUE_GROUP = EntityType(
    "queue_group",
    fields=(
        Field("queue_id", Reference("queue", on_delete="cascade"), required=True, label="Queue"),
        Field("group_id", Reference("group", on_delete="cascade"), required=True, label="Group"),
    ),
    help="A group whose members (users, roles, role trees) work a queue.",
)

TICKET = EntityType(
    "ticket",
    fields=(
        Field("subject", String(200), required=True),
        Field("description", Text()),
        Field("account_id", Reference("account"), label="Account"),
        Field("contact_id", Reference("contact", on_delete="set_null"), label="Contact"),
        Field("channel", Choice(*CHANNELS), default="web"),
        Field("category", String(100), index=True),
        Field("priority", Choice(*PRIORITIES), default="normal", index=True),
        Field("queue_id", Reference("queue", on_delete="set_null"), label="Queue"),
        Field("assignee_id", Reference("user", on_delete="set_null"), label="Assignee"),
        Field(
            "status",
            Choice(*STAGES),
            index=True,
            help="The stage in the pipeline helpdesk.ticket; moves follow its transitions.",
        ),
        Field(
            "opened_at",
            DateTime(),
            index=True,
            help="When the request came in (default: now); SLA clocks start here.",
        ),
        Field("status_entered_at", DateTime(), read_only=True),
        Field("assigned_at", DateTime(), read_only=True),
        Field("first_response_at", DateTime(), read_only=True),
        Field("resolved_at", DateTime(), read_only=True),
        Field("closed_at", DateTime(), read_only=True),
        Field("reopen_count", Integer(), default=0, read_only=True),
        Field(
            "sla_policy_id",
            Reference("sla_policy", on_delete="set_null"),
            read_only=True,
            label="SLA policy",
        ),
        Field("response_due", DateTime(), read_only=True, index=True),
        Field("response_warn_at", DateTime(), read_only=True, index=True),
        Field("response_status", Choice(*SLA_STATUSES), default="none", read_only=True),
        Field("resolution_due", DateTime(), read_only=True, index=True),
        Field("resolution_warn_at", DateTime(), read_only=True, index=True),
        Field("resolution_status", Choice(*SLA_STATUSES), default="none", read_only=True),
        Field(
            "sla_paused_at",
            DateTime(),
            read_only=True,
            help="Set while the ticket waits on the customer: the SLA clocks stand still.",
        ),
        Field(
            "sla_paused_minutes",
            Integer(),
            default=0,
            read_only=True,
            help="Business minutes the clocks stood still so far.",
        ),
    ),
    ownable=True,
    help="A customer's request for help, from any channel.",
)

KB_CATEGORY = EntityType(
    "kb_category",
    fields=(
        Field("name", String(100), required=True, unique=True),
        Field("parent_id", Reference("kb_category", on_delete="set_null"), label="Parent category"),
        Field("description", Text()),
    ),
    label="Knowledge base category",
    plural="Knowledge base categories",
    help="A shelf of the knowledge base.",
)

KB_ARTICLE = EntityType(
    "kb_article",
    fields=(
        Field("title", String(200), required=True),
        Field("body", Text(), required=True),
        Field("category_id", Reference("kb_category", on_delete="set_null"), label="Category"),
        Field(
            "status",
            Choice(*ARTICLE_STATUSES),
            index=True,
            help="draft, published or archived (pipeline helpdesk.kb_article).",
        ),
        Field("status_entered_at", DateTime(), read_only=True),
        Field("published_at", DateTime(), read_only=True),
    ),
    ownable=True,
    label="Knowledge base article",
    help="An answer written once and found by full-text search; its owner is its author.",
)

TICKET_ARTICLE = EntityType(
    "ticket_article",
    fields=(
        Field("ticket_id", Reference("ticket", on_delete="cascade"), required=True, label="Ticket"),
        Field(
            "article_id",
            Reference("kb_article", on_delete="cascade"),
            required=True,
            label="Article",
        ),
        Field("helped", Boolean(), default=True, help="The article helped resolve the ticket."),
    ),
    help="An article used on a ticket; counts towards the tickets the article helped resolve.",
)

CSAT_SURVEY = EntityType(
    "csat_survey",
    fields=(
        Field("ticket_id", Reference("ticket", on_delete="cascade"), required=True, label="Ticket"),
        Field(
            "token",
            String(64),
            read_only=True,
            unique=True,
            help="The secret of the survey link; answering needs it, not a login.",
        ),
        Field(
            "agent_id",
            Reference("user", on_delete="set_null"),
            read_only=True,
            label="Agent",
            help="The ticket's assignee when it was resolved.",
        ),
        Field("queue_id", Reference("queue", on_delete="set_null"), read_only=True, label="Queue"),
        Field("sent_at", DateTime(), read_only=True),
        Field("expires_at", DateTime(), read_only=True),
        Field("answered_at", DateTime(), read_only=True, index=True),
        Field("score", Integer(), read_only=True, help="1 (very unhappy) to 5 (very happy)."),
        Field("comment", Text(), read_only=True),
    ),
    label="CSAT survey",
    title_field="token",
    help="A satisfaction survey sent when a ticket is resolved, answered through its token.",
)

SLA_EVENT = EntityType(
    "sla_event",
    fields=(
        Field("ticket_id", Reference("ticket", on_delete="cascade"), required=True, label="Ticket"),
        Field("kind", Choice("warning", "breach"), required=True),
        Field("target", Choice("response", "resolution"), required=True),
        Field("at", DateTime(), required=True, index=True),
    ),
    auditable=False,
    label="SLA event",
    title_field="kind",
    help="A warning before, or a breach of, a ticket's SLA target, found by the worker's sweep.",
)

#: Every entity type the help desk owns.
ENTITIES = (
    SLA_POLICY,
    QUEUE,
    QUEUE_AGENT,
    QUEUE_GROUP,
    TICKET,
    KB_CATEGORY,
    KB_ARTICLE,
    TICKET_ARTICLE,
    CSAT_SURVEY,
    SLA_EVENT,
)

#: Fields added to the core's ``account``.
ACCOUNT_FIELDS = (
    Field(
        "support_tier",
        Choice(*TIERS),
        default="basic",
        help="The support contract: basic, standard or premium; SLA policies depend on it.",
    ),
)

#: Fields added to the core's ``activity``.
ACTIVITY_FIELDS = (
    Field(
        "ticket_id",
        Reference("ticket", on_delete="cascade"),
        label="Ticket",
        help="The ticket the activity is about: a reply, a logged call.",
    ),
)
