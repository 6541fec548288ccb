"""The marketing entity types and the fields the plugin adds to the core's.

Tables are ``marketing_<entity>``; the fields added to accounts, contacts, leads and
opportunities get ``marketing_<field>`` columns. Everything is declared once, here.
"""

from __future__ import annotations

from crmcore import EntityType, Field
from crmcore.fields import (
    Boolean,
    Choice,
    Date,
    DateTime,
    Decimal,
    Integer,
    Json,
    MoneyType,
    Reference,
    String,
    Text,
)

__all__ = [
    "ACCOUNT_FIELDS",
    "CAMPAIGN",
    "CAMPAIGN_COST",
    "CAMPAIGN_MEMBER",
    "CAMPAIGN_RUN",
    "CAMPAIGN_STATUSES",
    "CAMPAIGN_TOUCH",
    "CHANNELS",
    "CONTACT_FIELDS",
    "ENTITIES",
    "GEOGRAPHY",
    "GOAL_STATUSES",
    "LEAD_FIELDS",
    "MARKET_PLAN",
    "MEMBER_ENTITIES",
    "MEMBER_STATUSES",
    "OPPORTUNITY_FIELDS",
    "PLAN_GOAL",
    "PLAN_TARGET",
    "SEGMENT",
    "SEGMENT_ENTRY",
    "TOUCH_KINDS",
]

#: What a segment's members are.
MEMBER_ENTITIES = ("account", "contact", "lead")
#: How a campaign reaches its members.
CHANNELS = ("email", "letter", "call", "visit", "offer")
CAMPAIGN_STATUSES = ("planned", "active", "completed", "cancelled")
#: What happened to one member in one run.
MEMBER_STATUSES = ("sent", "already_sent", "planned", "quoted", "opted_out", "no_address", "failed")
#: Every contact of a campaign with a member, a lead or a deal.
TOUCH_KINDS = (
    "sent", "opened", "clicked", "response", "lead", "visit", "call", "offer", "opt_out", "linked",
)
GOAL_STATUSES = ("open", "on_track", "at_risk", "achieved", "missed")


def _links() -> tuple[Field, ...]:
    return (
        Field("account_id", Reference("account", on_delete="set_null"), label="Account", index=True),
        Field("contact_id", Reference("contact", on_delete="set_null"), label="Contact", index=True),
        Field("lead_id", Reference("lead", on_delete="set_null"), label="Lead", index=True),
    )


GEOGRAPHY = EntityType(
    "geography",
    label="Geography",
    plural="Geographies",
    fields=(
        Field("name", String(200), required=True, index=True),
        Field("code", String(64), unique=True, help="A short unique code, such as DE or DE-BY."),
        Field("level", String(64), help="The node's level: country, region, city or a deployment's own."),
        Field("parent_id", Reference("geography", on_delete="restrict"), label="Parent", index=True),
    ),
    referable_by_all=True,
    title_field="name",
    help="A node of the geography tree accounts and leads are placed in.",
)

SEGMENT = EntityType(
    "segment",
    fields=(
        Field("name", String(200), required=True, unique=True),
        Field("member_entity", Choice(*MEMBER_ENTITIES), required=True, label="Members are",
              help="account, contact or lead."),
        Field("kind", Choice("filter", "static"), default="filter",
              help="filter: the records matching a saved filter; static: a list of records."),
        Field("conditions", Json(), help='Conditions of the query language, all of which hold: '
              '["industry=Retail", ["employees", ">", 50]].'),
        Field("geography_id", Reference("geography", on_delete="restrict"), label="Geography",
              help="Only members placed in this geography or below it."),
        Field("description", Text()),
    ),
    ownable=True,
    title_field="name",
    help="A saved group of accounts, contacts or leads a campaign targets.",
)

SEGMENT_ENTRY = EntityType(
    "segment_entry",
    fields=(
        Field("segment_id", Reference("segment", on_delete="cascade"), required=True, index=True),
        Field("record_id", Integer(), required=True, help="The id of the listed account, contact or lead."),
    ),
    help="One record on a static segment's list.",
)

CAMPAIGN = EntityType(
    "campaign",
    fields=(
        Field("name", String(200), required=True),
        Field("code", String(64), unique=True, help="The code leads carry back (a web form, an import column)."),
        Field("channel", Choice(*CHANNELS), required=True),
        Field("channels", Json(), label="Further channels",
              help='Channels the campaign also reaches its members through, e.g. ["call"] beside e-mail.'),
        Field("status", Choice(*CAMPAIGN_STATUSES), default="planned"),
        Field("objective", Text()),
        Field("product_group", String(64), index=True,
              help="The product group the message is about (a catalog code, or a free code)."),
        Field("subject", String(200), help="The e-mail subject or the activity subject (a template)."),
        Field("message", Text(), help="The message: a Jinja2 template for e-mail and letters."),
        Field("segment_id", Reference("segment", on_delete="restrict"), label="Target segment"),
        Field("segments", Json(), label="Further target segments",
              help="Ids of further segments the campaign targets, e.g. [3, 4]; a member of several is reached once."),
        Field("starts_on", Date()),
        Field("ends_on", Date()),
        Field("product_code", String(64), label="Offered product",
              help="Special offers: the code of the catalog product offered (orders enabled: a quote line)."),
        Field("offer_discount", Decimal(scale=2), label="Offer discount (%)",
              help="Special offers: the discount in percent the quote gives (orders enabled)."),
        Field("repeat_days", Integer(minimum=1, maximum=366), label="Repeat every (days)",
              help="Calls, visits and offers: plan them again every N days until the end date (job queue)."),
        Field("budget", MoneyType()),
        Field("expected_revenue", MoneyType()),
    ),
    ownable=True,
    title_field="name",
    help="A campaign through one or more channels to one or more segments, with a message about a product group.",
)

CAMPAIGN_COST = EntityType(
    "campaign_cost",
    fields=(
        Field("campaign_id", Reference("campaign", on_delete="cascade"), required=True, index=True),
        Field("description", String(200), required=True),
        Field("amount", MoneyType(), required=True),
        Field("incurred_on", Date()),
    ),
    help="One cost of a campaign; the campaign's actual cost is their sum.",
)

CAMPAIGN_RUN = EntityType(
    "campaign_run",
    fields=(
        Field("campaign_id", Reference("campaign", on_delete="cascade"), required=True, index=True),
        Field("run_at", DateTime(), required=True),
        Field("members", Integer(), default=0, help="Members in the segment's snapshot."),
        Field("reached", Integer(), default=0, help="Members sent to or planned in this run."),
    ),
    help="One run of a campaign: the segment's members are snapshotted in campaign members.",
)

CAMPAIGN_MEMBER = EntityType(
    "campaign_member",
    fields=(
        Field("run_id", Reference("campaign_run", on_delete="cascade"), required=True, index=True),
        Field("campaign_id", Reference("campaign", on_delete="cascade"), required=True, index=True),
        Field("member_entity", Choice(*MEMBER_ENTITIES), required=True),
        Field("member_id", Integer(), required=True),
        *_links(),
        Field("email", String(320)),
        Field("channel", Choice(*CHANNELS), help="The channel this status is for (a campaign may have several)."),
        Field("status", Choice(*MEMBER_STATUSES), required=True),
    ),
    auditable=False,  # a snapshot written once per run, itself the record of it; touches are audited
    help="A member of a segment as it was when a campaign ran, and what the run did for it.",
)

CAMPAIGN_TOUCH = EntityType(
    "campaign_touch",
    fields=(
        Field("campaign_id", Reference("campaign", on_delete="cascade"), required=True, index=True),
        Field("kind", Choice(*TOUCH_KINDS), required=True),
        Field("at", DateTime(), required=True, index=True),
        *_links(),
        Field("opportunity_id", Reference("opportunity", on_delete="set_null"), label="Opportunity",
              index=True),
        Field("activity_id", Reference("activity", on_delete="set_null"), label="Activity"),
        Field("quote_id", Integer(), label="Quote", help="The quote a special offer made (orders enabled)."),
        Field("key", String(200), unique=True,
              help="Makes a touch happen once: a send per campaign and recipient."),
    ),
    help="A send, visit, call, offer, response or lead of a campaign with a member or a deal.",
)

MARKET_PLAN = EntityType(
    "market_plan",
    fields=(
        Field("name", String(200), required=True, unique=True),
        Field("period", Choice("year", "quarter", "month"), default="year"),
        Field("starts_on", Date(), required=True),
        Field("ends_on", Date(), required=True),
        Field("currency", String(3), required=True),
        Field("revenue_from", Choice("won_deals", "orders"), default="won_deals", label="Revenue from",
              help="won_deals: won opportunities; orders: confirmed orders and invoices (orders enabled)."),
        Field("description", Text()),
    ),
    ownable=True,
    title_field="name",
    help="A market plan: targets for a period, monitored against actuals.",
)

PLAN_TARGET = EntityType(
    "plan_target",
    fields=(
        Field("plan_id", Reference("market_plan", on_delete="cascade"), required=True, index=True),
        Field("product_group", String(64), help="A product group code; empty for all groups."),
        Field("geography_id", Reference("geography", on_delete="restrict"), label="Geography"),
        Field("segment_id", Reference("segment", on_delete="restrict"), label="Segment",
              help="Only the actuals of the segment's accounts (or leads); empty for all."),
        Field("user_id", Reference("user", on_delete="restrict"), label="Owner",
              help="Only the actuals of records this user owns; empty for everyone's."),
        Field("team_id", Reference("team", on_delete="restrict"), label="Owner team",
              help="Only the actuals of records the team's members own."),
        Field("starts_on", Date(), required=True),
        Field("ends_on", Date(), required=True),
        Field("amount", MoneyType(), help="Target revenue."),
        Field("count", Integer(minimum=0), help="Target number of won deals."),
        Field("quantity", Decimal(scale=2), help="Target quantity sold (lines of won deals)."),
        Field("new_accounts", Integer(minimum=0), help="Target number of accounts created."),
        Field("leads", Integer(minimum=0), help="Target number of leads created."),
        Field("visits", Integer(minimum=0), help="Target number of visits (meetings) done."),
        Field("calls", Integer(minimum=0), help="Target number of calls done."),
    ),
    help="A quantitative target of a plan: product group × geography × segment × owner × period.",
)

PLAN_GOAL = EntityType(
    "plan_goal",
    fields=(
        Field("plan_id", Reference("market_plan", on_delete="cascade"), required=True, index=True),
        Field("text", Text(), required=True),
        Field("status", Choice(*GOAL_STATUSES), default="open"),
        Field("score", Integer(minimum=0, maximum=100), help="How far the goal is met, 0 to 100."),
        Field("evidence", Json(), help='Links backing the assessment: ["https://...", ...].'),
        Field("assessment", Text()),
    ),
    help="A qualitative target of a plan, with its status and an assessment.",
)

ENTITIES = (
    GEOGRAPHY, SEGMENT, SEGMENT_ENTRY, CAMPAIGN, CAMPAIGN_COST, CAMPAIGN_RUN, CAMPAIGN_MEMBER,
    CAMPAIGN_TOUCH, MARKET_PLAN, PLAN_TARGET, PLAN_GOAL,
)

_GEOGRAPHY_FIELD = Field(
    "geography_id", Reference("geography", on_delete="set_null"), label="Geography", index=True,
    help="Where the record is placed in the geography tree.",
)
_OPT_OUT = Field("email_opt_out", Boolean(), default=False, label="E-mail opt-out",
                 help="Receives no campaign e-mail.")

ACCOUNT_FIELDS = (_GEOGRAPHY_FIELD, _OPT_OUT)
CONTACT_FIELDS = (_OPT_OUT,)
LEAD_FIELDS = (
    _GEOGRAPHY_FIELD,
    _OPT_OUT,
    Field("campaign_id", Reference("campaign", on_delete="set_null"), label="Campaign", index=True,
          help="The campaign the lead came from (its first touch)."),
    Field("campaign_code", String(64), label="Campaign code",
          help="The code of the campaign the lead came from (an import column, a web form)."),
)
OPPORTUNITY_FIELDS = (
    Field("product_group", String(64), index=True,
          help="The product group of the deal, for market plans (a free code without a catalog)."),
)
