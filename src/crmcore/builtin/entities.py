"""The core entity types: users, teams, accounts, contacts, leads, opportunities, activities,
notes, tags and documents, declared through ``crm_entity_types`` like any plugin's."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore import EntityType
from crmcore.actors import Actor
from crmcore.errors import ValidationError
from crmcore.fields import (
    Boolean,
    Choice,
    Date,
    DateTime,
    Email,
    Field,
    Integer,
    Json,
    MoneyType,
    Phone,
    Reference,
    String,
    Text,
    Url,
)
from crmcore.hookspecs import hookimpl
from crmcore.plugins import PluginInfo, Setting

if TYPE_CHECKING:
    from crmcore import UnitOfWork

PLUGIN = PluginInfo(
    name="core",
    title="Core entities",
    description="Users, teams, accounts, contacts, leads, opportunities, activities, notes, tags, documents.",
    settings={
        "private_tags": Setting(bool, default=False, help=(
            "A user's tags are their own by default: only they see them (uow.tag(..., private=...) "
            "chooses per call; the system actor's tags are shared).")),
        "phone_region": Setting(str, default="US", help=(
            "The country (ISO 3166 code) phone numbers without a country code are read in when "
            "duplicates are matched on phone (crm dedupe find).")),
    },
)

LEAD_SOURCES = ("web", "referral", "event", "campaign", "partner", "cold_call", "email", "phone", "import", "other")
OPPORTUNITY_STAGES = (
    "initiation", "identification", "qualification", "rfp_received", "quotation_sent", "final_stage", "won", "lost",
)
ACTIVITY_KINDS = ("meeting", "call", "email", "task")


# Column names of common CRM and contact exports (Outlook, Google Contacts) meaning a field;
# an import matches them without --map (see crmcore.transfer.formats).
_EMAIL = ("E-mail Address", "Email Address", "E-mail 1 - Value")
_PHONE = ("Business Phone", "Work Phone", "Phone Number", "Phone 1 - Value")
_FIRST_NAME = ("Given Name",)
_LAST_NAME = ("Family Name", "Surname")
_JOB_TITLE = ("Job Title", "Organization Title", "Organization 1 - Title")
_WEBSITE = ("Web Page", "Web Site", "Website 1 - Value")
_NOTES = ("Notes",)


def _address(part: str) -> tuple[str, ...]:
    """The columns of an address *part* (``"City"``) in business-contact exports."""
    return (f"Business {part}", f"Address 1 - {part}", part)


def _links(on_delete: str = "cascade") -> tuple[Field, ...]:
    """The records an activity, note or document can be about."""
    return (
        Field("account_id", Reference("account", on_delete=on_delete), label="Account"),
        Field("contact_id", Reference("contact", on_delete=on_delete), label="Contact"),
        Field("lead_id", Reference("lead", on_delete=on_delete), label="Lead"),
        Field("opportunity_id", Reference("opportunity", on_delete=on_delete), label="Opportunity"),
    )


USER = EntityType(
    "user",
    fields=(
        Field("username", String(64), required=True, unique=True, help="Login name, unique."),
        Field("full_name", String(200)),
        Field("email", Email(), index=True),
        Field("phone", Phone()),
        Field("team_id", Reference("team", on_delete="set_null"), label="Team"),
        Field("timezone", String(64), default="UTC", help="IANA time zone name for reminders and the calendar."),
        Field("active", Boolean(), default=True),
    ),
    referable_by_all=True,
    help="A person who signs in and acts: owns records, holds roles.",
)

TEAM = EntityType(
    "team",
    fields=(
        Field("name", String(200), required=True, unique=True),
        Field("description", Text()),
    ),
    referable_by_all=True,
    help="A group of users working together (sales region, support squad).",
)

ACCOUNT = EntityType(
    "account",
    fields=(
        Field("name", String(200), required=True, index=True,
              aliases=("Company Name", "Company", "Account Name", "Organization Name", "Organization 1 - Name")),
        Field("website", Url(), aliases=_WEBSITE),
        Field("industry", String(100)),
        Field("phone", Phone(), aliases=("Business Phone", "Company Main Phone", "Main Phone")),
        Field("email", Email(), aliases=_EMAIL),
        Field("employees", Integer()),
        Field("annual_revenue", MoneyType()),
        Field("billing_street", String(200), aliases=_address("Street")),
        Field("billing_city", String(100), aliases=_address("City")),
        Field("billing_postal_code", String(20), aliases=(*_address("Postal Code"), "ZIP Code", "ZIP")),
        Field("billing_country", String(100), aliases=(*_address("Country"), "Business Country/Region")),
        Field("parent_id", Reference("account", on_delete="set_null"), label="Parent account"),
        Field("description", Text(), aliases=_NOTES),
    ),
    ownable=True,
    help="A company or organisation you do business with.",
)

CONTACT = EntityType(
    "contact",
    fields=(
        Field("first_name", String(100), aliases=_FIRST_NAME),
        Field("last_name", String(100), required=True, index=True, aliases=_LAST_NAME),
        Field("email", Email(), index=True, aliases=_EMAIL),
        Field("phone", Phone(), aliases=_PHONE),
        Field("mobile", Phone(), aliases=("Mobile Phone", "Mobile Number", "Cell Phone", "Cell")),
        Field("title", String(100), aliases=_JOB_TITLE),
        Field("account_id", Reference("account"), label="Account"),
        Field("birthdate", Date()),
        Field("mailing_street", String(200), aliases=_address("Street")),
        Field("mailing_city", String(100), aliases=_address("City")),
        Field("mailing_postal_code", String(20), aliases=(*_address("Postal Code"), "ZIP Code", "ZIP")),
        Field("mailing_country", String(100), aliases=(*_address("Country"), "Business Country/Region")),
        Field("description", Text(), aliases=_NOTES),
    ),
    ownable=True,
    title_field="last_name",
    help="A person, usually at an account.",
)

LEAD = EntityType(
    "lead",
    fields=(
        Field("first_name", String(100), aliases=_FIRST_NAME),
        Field("last_name", String(100), required=True, index=True, aliases=_LAST_NAME),
        Field("company", String(200), aliases=("Company Name", "Account Name", "Organization Name", "Organization 1 - Name")),
        Field("title", String(100), aliases=_JOB_TITLE),
        Field("email", Email(), index=True, aliases=_EMAIL),
        Field("phone", Phone(), aliases=_PHONE),
        Field("website", Url(), aliases=_WEBSITE),
        Field("source", Choice(*LEAD_SOURCES)),
        Field("status", String(64), index=True, help="The stage in the lead pipeline: new, working, qualified, disqualified."),
        Field("status_entered_at", DateTime(), read_only=True, help="When the lead entered its status."),
        Field("score", Integer()),
        Field("account_id", Reference("account", on_delete="set_null"), label="Account",
              help="Set when the lead is converted or linked to a known account."),
        Field("description", Text()),
    ),
    ownable=True,
    title_field="last_name",
    help="A prospective customer not yet qualified.",
)

OPPORTUNITY = EntityType(
    "opportunity",
    fields=(
        Field("name", String(200), required=True),
        Field("account_id", Reference("account"), label="Account", index=True),
        Field("contact_id", Reference("contact", on_delete="set_null"), label="Primary contact"),
        Field("amount", MoneyType()),
        Field("close_date", Date(), index=True),
        Field("pipeline", String(64), index=True, help="The pipeline the opportunity moves through; the default one when empty."),
        Field("stage", String(64), index=True, help="The stage in its pipeline; moves follow the pipeline's transitions."),
        Field("stage_entered_at", DateTime(), read_only=True, help="When the opportunity entered its stage."),
        Field("probability", Integer(minimum=0, maximum=100), help="Percent chance to win, 0 to 100; set from the stage on each move unless given."),
        Field("next_step", String(200)),
        Field("description", Text()),
    ),
    ownable=True,
    plural="Opportunities",
    help="A possible deal with an account.",
)

ACTIVITY = EntityType(
    "activity",
    fields=(
        Field("kind", Choice(*ACTIVITY_KINDS), required=True),
        Field("subject", String(200), required=True),
        Field("description", Text()),
        Field("starts_at", DateTime()),
        Field("ends_at", DateTime()),
        Field("due_at", DateTime(), index=True),
        Field("all_day", Boolean(), default=False),
        Field("timezone", String(64), help="IANA time zone the activity was planned in."),
        Field("status", Choice("planned", "done", "cancelled"), default="planned"),
        Field("participants", Json(), help='A list such as [{"user_id": 3}, {"contact_id": 12}].'),
        *_links(),
    ),
    ownable=True,
    plural="Activities",
    help="A meeting, call, e-mail or task, about any record.",
)

NOTE = EntityType(
    "note",
    fields=(Field("title", String(200)), Field("body", Text(), required=True), *_links()),
    ownable=True,
    help="Free text about a record.",
)

TAG = EntityType(
    "tag",
    fields=(Field("name", String(64), required=True, unique=True), Field("color", String(16))),
    help="A label that ownable records carry (uow.tag(record, 'vip')).",
)

DOCUMENT = EntityType(
    "document",
    fields=(
        Field("title", String(200), required=True),
        Field("filename", String(255)),
        Field("content_type", String(100)),
        Field("size", Integer(), help="Size in bytes."),
        Field("uri", String(2000), label="Location", help="Where the stored file is: a path or URL."),
        Field("checksum", String(128), help="For example 'sha256:...'."),
        *_links(),
    ),
    ownable=True,
    help="The metadata of a stored file and a link to it.",
)

CORE_ENTITIES = (USER, TEAM, ACCOUNT, CONTACT, LEAD, OPPORTUNITY, ACTIVITY, NOTE, TAG, DOCUMENT)


@hookimpl
def crm_entity_types() -> list[EntityType]:
    return list(CORE_ENTITIES)


def _check_activity(values: dict[str, Any]) -> None:
    starts, ends = values.get("starts_at"), values.get("ends_at")
    if starts is not None and ends is not None and ends < starts:
        raise ValidationError({"ends_at": [f"ends before it starts ({ends.isoformat()} < {starts.isoformat()})"]}, entity="activity")
    participants = values.get("participants")
    if participants is not None:
        ok = isinstance(participants, list) and all(
            isinstance(p, dict) and len(p) == 1 and next(iter(p)) in ("user_id", "contact_id")
            and isinstance(next(iter(p.values())), int) for p in participants
        )
        if not ok:
            raise ValidationError(
                {"participants": [f'expected a list such as [{{"user_id": 3}}, {{"contact_id": 12}}], got {participants!r}']},
                entity="activity",
            )


#: How many levels of parent accounts the cycle check follows before giving up.
MAX_ACCOUNT_DEPTH = 1000


def _check_account_parents(uow: UnitOfWork, parents: Mapping[int, int | None]) -> None:
    """Refuse giving account *id* the parent *parents[id]* when that parent is the account
    itself or one of its sub-accounts. The hierarchy is walked up one level at a time for all
    the accounts at once (one read per level, as the system actor: a hidden account still
    closes a loop), with the new parents of the batch in place of the stored ones."""
    known: dict[int, int | None] = dict(parents)
    climbing = {child: parent for child, parent in parents.items() if parent is not None}
    for _ in range(MAX_ACCOUNT_DEPTH):
        for child, ancestor in climbing.items():
            if ancestor == child:
                raise ValidationError({"parent_id": [
                    f"account {parents[child]} is account {child} itself or one of its sub-accounts; "
                    "an account cannot be its own parent or ancestor: choose another parent"]}, entity="account")
        unknown = {ancestor for ancestor in climbing.values() if ancestor not in known}
        if unknown:
            with uow.acting_as(Actor.system()):
                found = {r.id: r.get("parent_id") for r in uow.get_many("account", unknown)}
            known.update({ancestor: found.get(ancestor) for ancestor in unknown})
        climbing = {child: known[a] for child, a in climbing.items() if known[a] is not None}  # type: ignore[misc]
        if not climbing:
            return
    raise ValidationError({"parent_id": [f"the parent accounts go more than {MAX_ACCOUNT_DEPTH} levels up; "
                                         "flatten the account hierarchy"]}, entity="account")


@hookimpl
def crm_before_create(uow: UnitOfWork, entity: str, items: list[dict[str, Any]]) -> None:
    if entity == "activity":
        for values in items:
            _check_activity(values)
    elif entity == "account":
        parents = {v["id"]: v["parent_id"] for v in items if v.get("id") is not None and v.get("parent_id") is not None}
        if parents:  # an import keeping ids
            _check_account_parents(uow, parents)


@hookimpl
def crm_before_update(uow: UnitOfWork, entity: str, items: list[tuple[Any, dict[str, Any]]]) -> None:
    if entity == "activity":
        for record, changes in items:
            _check_activity(record.merged(changes))
    elif entity == "account":
        parents = {record.id: changes["parent_id"] for record, changes in items if "parent_id" in changes}
        if parents:
            _check_account_parents(uow, parents)


@hookimpl
def crm_migrations() -> str:
    """The core's Alembic revisions (branch ``core``, version table ``crm_version_core``)."""
    return str(Path(__file__).resolve().parent.parent / "migrations" / "versions")
