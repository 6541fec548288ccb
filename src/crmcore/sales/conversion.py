"""Lead conversion: a qualified lead becomes an account, a contact and maybe an opportunity.

``convert_lead(uow, lead, opportunity={"amount": "12000 EUR"})`` does, in the unit of work's
transaction and all or nothing:

1. checks that the actor may update the lead and that its status may convert
   (``[sales.conversion] statuses``, ``qualified`` by default); a lead converted before is
   refused with a :class:`~crmcore.sales.errors.ConversionError` saying what it became;
2. finds the account: the one given, else the lead's own ``account_id``, else an account the
   actor may read whose name is the lead's company (case-insensitively) or whose ``domain`` is
   the lead's website or e-mail domain (free mail providers excepted); else creates one from
   the lead's company (leads without a company get no account);
3. finds the contact by e-mail address among the contacts the actor may read, else creates one;
4. creates the opportunity when asked (``opportunity=`` values, or ``{}`` for the defaults),
   with the account and the contact, through the workflow like any new opportunity;
5. moves what was about the lead (its activities, notes, documents, and the records of plugins
   that refer to leads) to the contact, the account and the opportunity, and its tags to the
   contact;
6. removes the lead from the lead list: the lead is deleted, and its audit trail keeps its full
   snapshot (the ``deleted`` entry) after a ``converted`` entry naming what it became; the
   account's timeline gets a ``converted`` entry too. ``lead-converted`` is announced after the
   commit.

Which lead fields go to which field of the new account, contact and opportunity is
``[sales.conversion]`` (plugin and custom fields included); see :mod:`crmcore.sales.settings`.
:func:`convert_leads` converts many leads with the same steps, set-based: one query per batch
for each lookup, one statement per batch for each kind of write.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import operator
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmcore.actors import Actor
from crmcore.errors import NotFoundError, PermissionDeniedError, ReferenceError, ValidationError
from crmcore.fields import FieldType, FieldValueError
from crmcore.records import Record
from crmcore.sales._writes import create_many, delete_many
from crmcore.sales.errors import ConversionError
from crmcore.sales.leads import sales_settings
from crmcore.storage import internal
from crmcore.storage.batch import update_many
from crmcore.storage.uow import _atomic

if TYPE_CHECKING:
    from crmcore.registry import EntityType
    from crmcore.sales.settings import ConversionSettings, SalesSettings
    from crmcore.storage.uow import UnitOfWork

__all__ = ["LEAD_CONVERTED", "Conversion", "ConversionEvent", "convert_lead", "convert_leads", "domain_of"]

#: The signal announced after the commit for each converted lead (sender: ``"lead"``).
LEAD_CONVERTED = "lead-converted"

_BATCH = 500
_SYSTEM_NAMES = ("id", "version", "created_at", "updated_at", "created_by", "updated_by")


def _listed(name: str) -> sa.BindParameter[Any]:
    """A list of values bound as one parameter (``column.in_(_listed("b_ids"))``): SQLAlchemy
    then neither coerces each value into the statement nor keys its cache on them."""
    return sa.bindparam(name, expanding=True)


OpportunitySpec = Mapping[str, Any] | bool | None


@attrs.frozen
class Conversion:
    """What one lead became.

    :ivar lead_id: the converted (now deleted) lead's id.
    :ivar account: the account found or created, or ``None`` (a lead without a company).
    :ivar contact: the contact found or created.
    :ivar opportunity: the opportunity created, or ``None``.
    :ivar account_created: the account is new (not matched).
    :ivar contact_created: the contact is new (not matched).
    """

    lead_id: int
    account: Record | None
    contact: Record
    opportunity: Record | None = None
    account_created: bool = False
    contact_created: bool = False

    def __repr__(self) -> str:
        account = self.account.id if self.account is not None else None
        opportunity = self.opportunity.id if self.opportunity is not None else None
        return f"<Conversion lead={self.lead_id} account={account} contact={self.contact.id} opportunity={opportunity}>"


@attrs.frozen
class ConversionEvent:
    """The argument ``event`` of ``lead-converted``: the lead as it was, what it became, who
    converted it."""

    lead: Record
    conversion: Conversion
    actor: Actor


def convert_lead(
    uow: UnitOfWork, lead: Record | int, opportunity: OpportunitySpec = None, account_id: int | None = None,
) -> Conversion:
    """Convert one qualified lead (see the module docs).

    :param lead: the lead record or its id.
    :param opportunity: values of the opportunity to create (``{"amount": "12000 EUR",
        "close_date": ...}``; the name defaults from the mapping), ``{}`` or ``True`` for one with
        the defaults, ``None`` for none.
    :param account_id: attach to this account (which the actor must be able to read) instead of
        finding or creating one.
    :returns: the :class:`Conversion`.
    :raises ConversionError: for a lead converted before, or not in a status that converts.
    :raises NotFoundError: for a lead or account the actor may not read.
    :raises PermissionDeniedError: when the actor may not update the lead or create the records.
    """
    return convert_leads(uow, [lead], opportunity=opportunity, account_id=account_id)[0]


def convert_leads(
    uow: UnitOfWork,
    leads: Iterable[Record | int],
    *,
    opportunity: OpportunitySpec | Callable[[Record], OpportunitySpec] = None,
    account_id: int | None = None,
) -> list[Conversion]:
    """Convert many qualified leads at once, all or nothing (see the module docs).

    :param leads: lead records or ids.
    :param opportunity: as for :func:`convert_lead`, the same for every lead, or a function of
        the lead record returning it.
    :param account_id: attach every lead to this account.
    :returns: one :class:`Conversion` per lead, in the order given.
    """
    return _convert_all(uow, list(leads), opportunity, account_id)  # type: ignore[no-any-return]


@_atomic
def _convert_all(uow: UnitOfWork, leads: list[Record | int], opportunity: Any, account_id: int | None) -> list[Conversion]:
    ids: list[int] = []
    seen: set[int] = set()
    versions: dict[int, int] = {}
    for lead in leads:
        if isinstance(lead, Record) and lead.entity != "lead":
            raise ValidationError(f"convert_leads takes leads, got a {lead.entity} record ({lead.id!r})", entity="lead")
        lead_id = lead.id if isinstance(lead, Record) else int(lead)
        if lead_id in seen:
            raise ValidationError(f"lead {lead_id} is given twice; a lead converts once", entity="lead")
        seen.add(lead_id)
        ids.append(lead_id)
        if isinstance(lead, Record):
            versions[lead_id] = lead.version
    if not ids:
        return []
    uow.require("lead", "update")
    settings = sales_settings(uow)
    account = uow.get("account", account_id) if account_id is not None else None
    results: list[Conversion] = []
    converter = _Converter(uow, settings, opportunity, account)
    # A conversion makes many short-lived objects without cycles, which reference counting
    # frees; the cyclic collector's scans of them (and of the records the unit of work keeps
    # until the commit) would cost about a fifth of the time. As in the bulk import, it is
    # paused while the leads convert and collects the young generations between batches.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start:start + _BATCH]
            results.extend(converter.run(_read_leads(uow, chunk, versions, converter.reader("lead"))))
            if collecting:
                gc.collect(1)
    finally:
        if collecting:
            gc.enable()
    return results


def _read_leads(uow: UnitOfWork, ids: Sequence[int], versions: Mapping[int, int], read: _Reader) -> list[Record]:
    """The full lead records of *ids*, locked, in the order of *ids*; the actor must be able to
    update each, and each must be in a status that converts."""
    table = uow.registry.table("lead")
    given = {"b_ids": list(ids)}
    statement = sa.select(table).where(table.c.id.in_(_listed("b_ids")), uow.read_filter("lead", table)).with_for_update()
    found = {record.id: record for record in map(read, internal.execute(uow, statement, given))}
    for lead_id in ids:
        if lead_id not in found:
            raise _missing(uow, lead_id)
        expected = versions.get(lead_id)
        if expected is not None and found[lead_id].version != expected:
            raise internal.stale(uow, "lead", lead_id, expected, found[lead_id].version)
    if not uow.actor.is_system:
        may = uow.predicate("lead", "update").sql(table)
        allowed = {r[0] for r in internal.execute(uow, sa.select(table.c.id).where(table.c.id.in_(_listed("b_ids")), may), given)}
        for lead_id in ids:
            if lead_id not in allowed:
                uow.check_access(found[lead_id], "update")
    statuses = sales_settings(uow).conversion.statuses
    for lead_id in ids:
        status = found[lead_id].values.get("status")
        if status not in statuses:
            shown = " or ".join(repr(s) for s in statuses)
            raise ConversionError(
                f"lead {lead_id} is in status {status!r}; only leads in status {shown} convert; "
                f"move it first (uow.move(lead, {statuses[0]!r}))",
                id=lead_id, reason="status",
            )
    return [found[lead_id] for lead_id in ids]


def _missing(uow: UnitOfWork, lead_id: int) -> Exception:
    """Why lead *lead_id* cannot be read: converted before (its audit says so) by a lead the
    actor could read, or not found (the same error, with the same text, whether the lead never
    existed or the actor may not read it)."""
    not_found = NotFoundError(f"lead {lead_id} not found", entity="lead", id=lead_id)
    uow.flush()
    audit = uow.crm.core_tables["audit"]
    row = internal.execute(uow,
        sa.select(audit.c.at, audit.c.changes)
        .where(audit.c.entity == "lead", audit.c.record_id == lead_id, audit.c.action == "converted")
        .order_by(audit.c.id.desc()).limit(1)
    ).first()
    if row is None or not _was_readable(uow, lead_id):
        return not_found
    previous: dict[str, Any] = {name: change[1] for name, change in row.changes.items()}
    made = ", ".join(f"{name[:-3]} {value}" for name, value in previous.items() if value is not None)
    previous["at"] = row.at
    return ConversionError(
        f"lead {lead_id} was converted on {row.at:%Y-%m-%d %H:%M} UTC (into {made}); converting twice is "
        "refused: work on those records instead",
        id=lead_id, reason="converted", previous=previous,
    )


def _was_readable(uow: UnitOfWork, lead_id: int) -> bool:
    """Whether the actor may read the deleted lead *lead_id* as it was when deleted (its
    ``deleted`` audit entry holds its snapshot; the actor's read predicate is tested on it)."""
    if uow.actor.is_system:
        return True
    audit = uow.crm.core_tables["audit"]
    changes = internal.execute(uow,
        sa.select(audit.c.changes)
        .where(audit.c.entity == "lead", audit.c.record_id == lead_id, audit.c.action == "deleted")
        .order_by(audit.c.id.desc()).limit(1)
    ).scalar()
    if isinstance(changes, str):
        changes = json.loads(changes)
    if not changes:
        return False
    etype = uow.registry.entity("lead")
    values: dict[str, Any] = {"id": lead_id}
    for field in etype.fields:
        old = (changes.get(field.name) or (None, None))[0]
        try:
            values[field.name] = None if old is None else field.parse(old)
        except FieldValueError:
            values[field.name] = old
    try:
        uow.check_access(Record("lead", values), "read")
    except (NotFoundError, PermissionDeniedError):
        return False
    return True


def domain_of(website: str | None, email: str | None, *, free: frozenset[str] = frozenset()) -> str | None:
    """The company's internet domain: the host of *website* without ``www.``, else the domain
    of *email* unless it is a free mail provider's (in *free*)."""
    if website:
        host = urllib.parse.urlsplit(website if "://" in website else f"https://{website}").hostname
        if host:
            host = host.lower().rstrip(".")
            return host[4:] if host.startswith("www.") and host.count(".") > 1 else host
    if email and "@" in email:
        domain = email.rpartition("@")[2].lower().rstrip(".")
        if domain and domain not in free:
            return domain
    return None


class _Reader:
    """Makes full records of one entity type out of the rows of ``select(table)``, as the unit
    of work's ``_row_to_record(..., full=True)`` does, with the positions of the columns worked
    out once for all the rows of a conversion."""

    def __init__(self, etype: EntityType, table: sa.Table) -> None:
        position = {column.name: index for index, column in enumerate(table.columns)}
        self.entity = etype.name
        self.names = [*_SYSTEM_NAMES, *(f.name for f in etype.fields)]
        self.pick = operator.itemgetter(*[position[n] for n in _SYSTEM_NAMES], *[position[f.column] for f in etype.fields])
        # fields stored otherwise than as their own column (money: amount and currency)
        self.special = [(f.name, f.type.from_db, f.column) for f in etype.fields if type(f.type).from_db is not FieldType.from_db]

    def __call__(self, row: sa.Row[Any]) -> Record:
        values = dict(zip(self.names, self.pick(row), strict=True))
        if self.special:
            mapping: Mapping[str, Any] = row._mapping  # type: ignore[assignment]
            for name, from_db, column in self.special:
                values[name] = from_db(mapping, column)  # in place: the order of the fields stays
        return Record(self.entity, values)


class _Converter:
    """The conversion of the leads of one call, batch by batch. What does not depend on the
    leads (the mapping, the readers of rows) is worked out once."""

    def __init__(self, uow: UnitOfWork, settings: SalesSettings, opportunity: Any, account: Record | None) -> None:
        self.uow = uow
        self.settings = settings
        self.conversion: ConversionSettings = settings.conversion
        self.opportunity = opportunity
        self.account = account
        self.registry = uow.registry
        self.lead_type = self.registry.entity("lead")
        self._plans: dict[str, list[tuple[str, str, Callable[[Any], str] | None]]] = {}
        self._readers: dict[str, _Reader] = {}
        # the accounts this call created or read, by id: an account matched again (by a later
        # batch's leads) is taken from here when its version shows it has not changed since
        self._accounts_known: dict[int, Record] = {}

    def reader(self, entity: str) -> _Reader:
        found = self._readers.get(entity)
        if found is None:
            found = self._readers[entity] = _Reader(self.registry.entity(entity), self.registry.table(entity))
        return found

    def run(self, leads: list[Record]) -> list[Conversion]:
        uow = self.uow
        # what the actor may see of the leads finds and fills the records they become; the
        # full leads are deleted (their audit keeps the whole snapshot)
        hidden_lead = uow.hidden_fields("lead")
        seen = [Record("lead", {k: v for k, v in lead.values.items() if k not in hidden_lead}) for lead in leads] if hidden_lead else leads
        accounts, created_accounts = self._accounts(seen)
        contacts, created_contacts = self._contacts(seen, accounts)
        opportunities = self._opportunities(seen, accounts, contacts)
        conversions = []
        for lead in leads:
            lead_id = lead.id
            account = accounts.get(lead_id)
            contact = contacts[lead_id]
            conversions.append(Conversion(
                lead_id, account, contact, opportunities.get(lead_id),
                account is not None and account.id in created_accounts, contact.id in created_contacts,
            ))
        self._relink(conversions)
        self._move_tags(conversions)
        self._audit(conversions)
        delete_many(uow, "lead", leads)
        hidden = any(uow.hidden_fields(entity) for entity in ("account", "contact", "opportunity"))
        visible = internal.visible(uow)
        announce = uow.announce
        actor = uow.actor
        out = []
        for lead, conversion in zip(leads, conversions, strict=True):
            shown = conversion
            if hidden:
                shown = attrs.evolve(
                    conversion,
                    account=visible(conversion.account) if conversion.account is not None else None,
                    contact=visible(conversion.contact),
                    opportunity=visible(conversion.opportunity) if conversion.opportunity is not None else None,
                )
            announce(LEAD_CONVERTED, "lead", event=ConversionEvent(lead, shown, actor))
            out.append(shown)
        return out

    # -- values -----------------------------------------------------------------------------
    def _carry(self, target: str, lead: Record) -> dict[str, Any]:
        """The values of a new *target* record from the lead, by the mapping."""
        plan = self._plans.get(target)
        if plan is None:
            etype = self.registry.entity(target)
            plan = self._plans[target] = []
            for target_field, lead_field in self.conversion.mapping.get(target, {}).items():
                source = self.lead_type.field(lead_field).type
                plan.append((target_field, lead_field, source.format if source.kind != etype.field(target_field).type.kind else None))
        get = lead.values.get
        values: dict[str, Any] = {}
        for target_field, lead_field, text in plan:
            value = get(lead_field)
            if value is not None:
                values[target_field] = value if text is None else text(value)
        return values

    def _domain(self, lead: Record) -> str | None:
        return domain_of(lead.values.get("website"), lead.values.get("email"), free=self.settings.free_mail_domains)

    # -- accounts ---------------------------------------------------------------------------
    def _accounts(self, leads: list[Record]) -> tuple[dict[int, Record], set[int]]:
        """``{lead id: account}`` and the ids of the accounts created."""
        uow = self.uow
        if self.account is not None:
            return {lead.id: self.account for lead in leads}, set()
        table = self.registry.table("account")
        hidden = uow.hidden_fields("account")  # a hidden field matches nothing: it would show
        by_name_on = "name" in self.conversion.match_account_by and "name" not in hidden
        by_domain_on = "domain" in self.conversion.match_account_by and "domain" not in hidden
        has_domain = "domain" in table.c
        domain_of_lead = {lead.id: self._domain(lead) for lead in leads}
        linked = {lead.values["account_id"] for lead in leads if lead.values.get("account_id") is not None}
        names = {(lead.values.get("company") or "").strip().lower() for lead in leads} - {""}
        domains = set(domain_of_lead.values()) - {None}
        conditions = []
        given: dict[str, list[Any]] = {}
        if linked:
            conditions.append(table.c.id.in_(_listed("b_ids")))
            given["b_ids"] = sorted(linked)
        if names and by_name_on:
            conditions.append(sa.func.lower(table.c.name).in_(_listed("b_names")))
            given["b_names"] = sorted(names)
        if domains and by_domain_on and has_domain:
            conditions.append(table.c.domain.in_(_listed("b_domains")))
            given["b_domains"] = sorted(domains)
        by_id: dict[int, Record] = {}
        by_name: dict[str, Record] = {}
        by_domain: dict[str, Record] = {}
        if conditions:
            # the keys first; the full records of the accounts this call has not seen as they are
            keys = [table.c.id, table.c.version, table.c.name, *([table.c.domain] if has_domain else [])]
            statement = sa.select(*keys).where(sa.or_(*conditions), uow.read_filter("account", table)).order_by(table.c.id)
            rows = internal.execute(uow, statement, given).all()
            records = self._account_records(rows)
            for row in rows:
                record = by_id[row[0]] = records[row[0]]
                if row[2]:
                    by_name.setdefault(row[2].strip().lower(), record)
                if has_domain and row[3]:
                    by_domain.setdefault(row[3], record)
        found: dict[int, Record] = {}
        wanted: dict[str, list[Record]] = {}
        for lead in leads:
            company = (lead.values.get("company") or "").strip()
            domain = domain_of_lead[lead.id]
            match = by_id.get(lead.values.get("account_id") or 0)
            if match is None and by_name_on:
                match = by_name.get(company.lower())
            if match is None and domain is not None and by_domain_on:
                match = by_domain.get(domain)
            if match is not None:
                found[lead.id] = match
            elif company:
                wanted.setdefault(company.lower(), []).append(lead)
        rows_out = []
        for group in wanted.values():
            first = group[0]
            values = self._carry("account", first)
            domain = domain_of_lead[first.id]
            if domain is not None and has_domain and not values.get("domain"):
                values["domain"] = domain
            rows_out.append(values)
        created = create_many(uow, "account", rows_out)
        for group, record in zip(wanted.values(), created, strict=True):
            self._accounts_known[record.id] = record
            for lead in group:
                found[lead.id] = record
        return found, {r.id for r in created}

    def _account_records(self, rows: Sequence[Sequence[Any]]) -> dict[int, Record]:
        """The full accounts of *rows* (``id, version, ...``): those this call created or read,
        at the same version, as they were; the others read now."""
        known = self._accounts_known
        records: dict[int, Record] = {}
        missing = []
        for row in rows:
            record = known.get(row[0])
            if record is not None and record.version == row[1]:
                records[row[0]] = record
            else:
                missing.append(row[0])
        if missing:
            table = self.registry.table("account")
            read = self.reader("account")
            for row in internal.execute(self.uow, sa.select(table).where(table.c.id.in_(_listed("b_ids"))), {"b_ids": missing}):
                known[row[0]] = records[row[0]] = read(row)
        return records

    # -- contacts ---------------------------------------------------------------------------
    def _contacts(self, leads: list[Record], accounts: Mapping[int, Record]) -> tuple[dict[int, Record], set[int]]:
        uow = self.uow
        table = self.registry.table("contact")
        emails = {lead.values["email"].lower() for lead in leads if lead.values.get("email")}
        by_email: dict[str, Record] = {}
        if emails and "email" in self.conversion.match_contact_by and "email" not in uow.hidden_fields("contact"):
            key = sa.func.lower(table.c.email)
            statement = sa.select(table).where(key.in_(_listed("b_emails")), uow.read_filter("contact", table)).order_by(table.c.id)
            read = self.reader("contact")
            for row in internal.execute(uow, statement, {"b_emails": sorted(emails)}):
                record = read(row)
                by_email.setdefault(record.values["email"].lower(), record)
        found: dict[int, Record] = {}
        wanted: dict[str, list[Record]] = {}
        for lead in leads:
            email = (lead.values.get("email") or "").lower()
            if email and email in by_email:
                found[lead.id] = by_email[email]
            else:
                wanted.setdefault(email or f"lead:{lead.id}", []).append(lead)
        rows = []
        for group in wanted.values():
            values = self._carry("contact", group[0])
            account = accounts.get(group[0].id)
            if account is not None:
                values["account_id"] = account.id
            rows.append(values)
        created = create_many(uow, "contact", rows, known={"account": {a.id for a in accounts.values()}})
        for group, record in zip(wanted.values(), created, strict=True):
            for lead in group:
                found[lead.id] = record
        return found, {r.id for r in created}

    # -- opportunities ----------------------------------------------------------------------
    def _opportunities(self, leads: list[Record], accounts: Mapping[int, Record], contacts: Mapping[int, Record]) -> dict[int, Record]:
        rows = []
        owners = []
        for lead in leads:
            spec = self.opportunity(lead) if callable(self.opportunity) else self.opportunity
            if spec is None or spec is False:
                continue
            values = self._carry("opportunity", lead)
            if not values.get("name"):
                values["name"] = " ".join(p for p in (lead.values.get("first_name"), lead.values.get("last_name")) if p)
            account = accounts.get(lead.id)
            if account is not None:
                values["account_id"] = account.id
            values["contact_id"] = contacts[lead.id].id
            if isinstance(spec, Mapping):
                values.update(spec)
            rows.append(values)
            owners.append(lead.id)
        known = {"account": {a.id for a in accounts.values()}, "contact": {c.id for c in contacts.values()}}
        created = create_many(self.uow, "opportunity", rows, known=known)
        return dict(zip(owners, created, strict=True))

    # -- what was about the lead ------------------------------------------------------------
    def _relink(self, conversions: Sequence[Conversion]) -> None:
        """Point the records that refer to the leads at the contact, account and opportunity."""
        uow = self.uow
        by_lead = {c.lead_id: c for c in conversions}
        lead_ids = sorted(by_lead)
        for child, field in self.registry.referencing("lead"):
            table = self.registry.table(child.name)
            column = table.c[field.column]
            statement = sa.select(table).where(column.in_(_listed("b_ids"))).order_by(table.c.id)
            rows = internal.execute(uow, statement, {"b_ids": lead_ids}).mappings().all()
            if not rows:
                continue
            if field.required:
                raise ReferenceError(
                    f"cannot convert lead {rows[0][field.column]}: {child.name} {rows[0]['id']} requires a lead "
                    f"(field {field.name}); delete or reassign it first", entity="lead",
                )
            plan = []
            for row in rows:
                record = internal.row_of(uow, child, row, full=True)
                conversion = by_lead[row[field.column]]
                changes: dict[str, Any] = {field.name: None}
                targets = (("contact", conversion.contact), ("account", conversion.account), ("opportunity", conversion.opportunity))
                for entity, target in targets:
                    slot = _slot(child, entity, exclude=field.name)
                    if target is not None and slot is not None and record.values.get(slot) is None:
                        changes[slot] = target.id
                plan.append((record, changes))
            update_many(uow, child.name, plan)

    def _move_tags(self, conversions: Sequence[Conversion]) -> None:
        uow = self.uow
        tagging = uow.crm.core_tables["tagging"]
        tags = self.registry.table("tag")
        by_lead = {c.lead_id: c.contact.id for c in conversions}
        rows = internal.execute(uow,
            sa.select(tagging.c.record_id, tagging.c.tag_id, tags.c.name).join(tags, tags.c.id == tagging.c.tag_id)
            .where(tagging.c.entity == "lead", tagging.c.record_id.in_(_listed("b_ids"))).order_by(tags.c.name),
            {"b_ids": sorted(by_lead)},
        ).all()
        if not rows:
            return
        contact_ids = sorted(set(by_lead.values()))
        present = {(r[0], r[1]) for r in internal.execute(uow,
            sa.select(tagging.c.record_id, tagging.c.tag_id).where(tagging.c.entity == "contact", tagging.c.record_id.in_(_listed("b_ids"))),
            {"b_ids": contact_ids},
        )}
        added: dict[int, list[str]] = {}
        links = []
        for lead_id, tag_id, name in rows:
            contact_id = by_lead[lead_id]
            if (contact_id, tag_id) not in present:
                present.add((contact_id, tag_id))
                links.append({"tag_id": tag_id, "entity": "contact", "record_id": contact_id})
                added.setdefault(contact_id, []).append(name)
        if links:
            internal.execute(uow, sa.insert(tagging), links)
        contact_type = self.registry.entity("contact")
        for contact_id, names in added.items():
            uow.queue_audit(contact_type, contact_id, "tagged", {"tags": (None, ", ".join(names))})

    def _audit(self, conversions: Sequence[Conversion]) -> None:
        """A ``converted`` entry on each lead and on each account, naming what it became."""
        uow = self.uow
        now = dt.datetime.now(dt.UTC)
        account_type = self.registry.entity("account")
        for conversion in conversions:
            made = {
                "account_id": (None, conversion.account.id if conversion.account is not None else None),
                "contact_id": (None, conversion.contact.id),
                "opportunity_id": (None, conversion.opportunity.id if conversion.opportunity is not None else None),
            }
            uow.queue_audit(self.lead_type, conversion.lead_id, "converted", made, at=now)
            if conversion.account is not None:
                uow.queue_audit(account_type, conversion.account.id, "converted",
                                {"lead_id": (None, conversion.lead_id), **{k: v for k, v in made.items() if k != "account_id"}}, at=now)


def _slot(entity: EntityType, target: str, *, exclude: str) -> str | None:
    """The first reference field of *entity* to *target* (other than *exclude*)."""
    for field in entity.fields:
        if field.name != exclude and field.is_reference and field.type.entity == target:  # type: ignore[attr-defined]
            return field.name
    return None
