"""Lead checks: contact information, e-mail and phone sanity, authenticity, duplicates.

:func:`check_lead` looks at one lead (a record, an id, or values not saved yet) and returns a
:class:`LeadCheck`; :func:`check_leads` checks many set-based and stores what it found on each
lead: the e-mail address in its normalised form, the phone number in E.164
(``+442079460958``), the ``quality_issues`` and ``checked_at``. What is checked:

- contact information: an e-mail address or a phone number (``no_contact``);
- the e-mail address, with `email-validator`: its syntax (``invalid_email``), a domain that can
  receive mail (``undeliverable_email``: reserved names such as ``.invalid`` or ``.local``; with
  ``[sales] check_deliverability`` also the domain's MX record, looked up once per domain), and
  a disposable domain (``disposable_email``, from the bundled list and ``[sales]
  disposable_domains``);
- the phone number, with `phonenumbers`, read in ``[sales] default_region`` when it has no
  ``+CC`` (``invalid_phone``);
- duplicates among the other leads and the contacts, by e-mail address (case-insensitively)
  and by phone number (whatever its separators and whether written with ``+CC`` or
  nationally): ``duplicate_lead``, ``duplicate_contact``. Duplicates are searched among the
  records the actor may read (the system actor: all), comparing only the fields not hidden
  from the actor, so a check never reveals a record, or a value, the actor could not see.

E-mail validation and phone parsing cost a fraction of a millisecond per lead, so they do not
run on every create: bulk imports stay fast. Leads are checked by :func:`check_leads` (``crm
leads check``), and, with ``[sales] check_on_commit``, when a unit of work that created or
changed a few leads commits.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmcore.errors import NotFoundError, PermissionDeniedError, ValidationError
from crmcore.records import Record
from crmcore.sales.settings import ISSUES, SalesSettings
from crmcore.storage import internal
from crmcore.storage.batch import update_many
from crmcore.validation import validate

if TYPE_CHECKING:
    from crmcore.query import Query
    from crmcore.storage.uow import UnitOfWork

__all__ = ["Issue", "LeadCheck", "check_lead", "check_leads", "check_records", "phone_keys", "read_leads", "sales_settings"]

_BATCH = 1000
_ISSUE_ORDER = {code: index for index, code in enumerate(ISSUES)}
_SEPARATORS = (" ", "-", "(", ")", ".", "/")
_CHECKED = ("email", "phone")  # the fields of a saved lead a check reads and shows


@attrs.frozen
class Issue:
    """One quality issue of a lead: its code (a key of :data:`ISSUES`), the field, a message."""

    code: str
    field: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@attrs.frozen
class LeadCheck:
    """What a check found about one lead.

    :ivar lead_id: the lead's id (``None`` for values not saved yet).
    :ivar issues: the quality issues, in the order of :data:`ISSUES`.
    :ivar email: the normalised e-mail address (``None`` when absent or invalid).
    :ivar phone: the phone number in E.164, with `` ext. N`` when it has an extension
        (``None`` when absent or invalid).
    :ivar duplicates: ``(entity, id)`` of the leads and contacts it duplicates.
    """

    lead_id: int | None
    issues: tuple[Issue, ...] = ()
    email: str | None = None
    phone: str | None = None
    duplicates: tuple[tuple[str, int], ...] = ()

    @property
    def ok(self) -> bool:
        """No issue was found."""
        return not self.issues

    @property
    def codes(self) -> tuple[str, ...]:
        """The codes of the issues, in the order of :data:`ISSUES`."""
        return tuple(dict.fromkeys(issue.code for issue in self.issues))

    def __repr__(self) -> str:
        return f"<LeadCheck lead={self.lead_id} issues={list(self.codes)}>"


def sales_settings(uow: UnitOfWork) -> SalesSettings:
    """The app's ``[sales]`` settings (defaults when the sales plugin is not configured)."""
    return uow.crm.find_state(SalesSettings) or SalesSettings()


# -- one lead -------------------------------------------------------------------------------------


def check_lead(uow: UnitOfWork, lead: Record | int | Mapping[str, Any], *, resolver: Any = None) -> LeadCheck:
    """Check one lead without storing anything.

    :param lead: a lead record, its id, or lead values not saved yet (``{"email": ...}``),
        parsed like a create's.
    :param resolver: a ``dns.resolver.Resolver`` (or an object with its ``resolve`` method) for
        the deliverability lookups of ``[sales] check_deliverability``.
    :raises NotFoundError: for a lead (id or record) the actor may not read.
    :raises ValidationError: for values that do not fit the lead's fields.
    :raises PermissionDeniedError: for a saved lead whose e-mail or phone is hidden from the actor.
    """
    if isinstance(lead, Mapping):
        values: Mapping[str, Any] = validate(uow.registry.entity("lead"), lead, partial=True)
    else:  # a record is read again: only what the actor may read is checked
        _require_visible(uow, "lead", _CHECKED)
        values = read_leads(uow, [_lead_id(lead)], update=False, explicit=True)[0].values
    checker = _Checker(uow, sales_settings(uow), resolver)
    return checker.run([values])[0]


# -- many leads -----------------------------------------------------------------------------------


def check_leads(
    uow: UnitOfWork,
    leads: Iterable[Record | int] | Query | None = None,
    *,
    store: bool = True,
    unchecked: bool = False,
    resolver: Any = None,
) -> list[LeadCheck]:
    """Check many leads, set-based, and (with *store*) write what was found on each.

    :param leads: records or ids, a query over ``lead``, or ``None`` for every lead the actor
        may read (with *store*: may update).
    :param store: write the normalised e-mail and phone, ``quality_issues`` and ``checked_at``
        (audited like any update). The actor must be allowed to update the leads.
    :param unchecked: only the leads never checked (``checked_at`` empty).
    :param resolver: see :func:`check_lead`.
    :returns: one :class:`LeadCheck` per lead, in id order.
    :raises NotFoundError: for a given id the actor may not read.
    :raises PermissionDeniedError: with *store*, for a given lead the actor may not update; for
        a lead e-mail or phone hidden from the actor.
    """
    ids, explicit = _lead_ids(uow, leads, unchecked=unchecked)
    _require_visible(uow, "lead", _CHECKED)
    if store:
        uow.require("lead", "update")
    checker = _Checker(uow, sales_settings(uow), resolver)
    results: list[LeadCheck] = []
    for start in range(0, len(ids), _BATCH):
        records = read_leads(uow, ids[start:start + _BATCH], update=store, explicit=explicit)
        results.extend(check_records(uow, records, store=store, checker=checker))
    return results


def check_records(uow: UnitOfWork, records: Sequence[Record], *, store: bool, checker: Any = None) -> list[LeadCheck]:
    """Check full lead *records* as read (one query per table and key for the duplicates)
    and, with *store*, write what was found (no access check: the caller made it)."""
    checks = (checker or _Checker(uow, sales_settings(uow), None)).run([r.values for r in records])
    if store:
        _store(uow, records, checks)
    return checks


def _store(uow: UnitOfWork, records: Sequence[Record], checks: Sequence[LeadCheck]) -> list[Record]:
    """Write the normalised e-mail and phone, ``quality_issues`` and ``checked_at`` of checked
    *records*, set-based; returns the records that changed."""
    now = dt.datetime.now(dt.UTC)
    plan = []
    for record, check in zip(records, checks, strict=True):
        changes: dict[str, Any] = {"quality_issues": check.codes or None, "checked_at": now}
        if check.email is not None:
            changes["email"] = check.email
        if check.phone is not None:
            changes["phone"] = check.phone
        plan.append((record, changes))
    return update_many(uow, "lead", plan)


def _lead_ids(uow: UnitOfWork, leads: Iterable[Record | int] | Query | None, *, unchecked: bool) -> tuple[list[int], bool]:
    """The ids to work on, and whether they were named one by one (then each must be there)."""
    from crmcore.query import Query

    if leads is None:
        query = uow.query("lead")
    elif isinstance(leads, Query):
        if leads.entity.name != "lead":
            raise NotFoundError(f"expected a query over leads, got one over {leads.entity.name}", entity="lead")
        query = leads
    else:
        ids = sorted({_lead_id(item) for item in leads})
        return ids, True
    if unchecked:
        query = query.where(("checked_at", "is null"))
    return sorted(query.ids()), False


def _lead_id(lead: Record | int) -> int:
    """The id of a lead given as a record or an id (a record of another entity is refused)."""
    if isinstance(lead, Record):
        if lead.entity != "lead":
            raise ValidationError(f"expected a lead, got a {lead.entity} record ({lead.id!r})", entity="lead")
        return int(lead.id)
    return int(lead)


def read_leads(uow: UnitOfWork, ids: Sequence[int], *, update: bool, explicit: bool) -> list[Record]:
    """The full lead records of *ids* the actor may read, in id order.

    With *update*, only those it may also update. When the ids were *explicit* (named by the
    caller), a lead the actor may not read is a :class:`NotFoundError` and one it may not update
    a :class:`PermissionDeniedError`; otherwise such leads are left out. The records are full
    (every field, for the writes): callers that show what they read check hidden fields.
    """
    if not ids:
        return []
    etype = uow.registry.entity("lead")
    table = uow.registry.table("lead")
    statement = sa.select(table).where(table.c.id.in_(list(ids)), uow.read_filter("lead", table)).order_by(table.c.id)
    records = [internal.row_of(uow, etype, row, full=True) for row in internal.execute(uow, statement).mappings()]
    if explicit and len(records) != len(ids):
        missing = sorted(set(ids) - {r.id for r in records})[0]
        raise NotFoundError(f"lead {missing} not found", entity="lead", id=missing)
    if update and not uow.actor.is_system:
        allowed_sql = uow.predicate("lead", "update").sql(table)
        allowed = {row[0] for row in internal.execute(uow, sa.select(table.c.id).where(table.c.id.in_(list(ids)), allowed_sql))}
        if explicit:
            for record in records:
                if record.id not in allowed:
                    uow.check_access(record, "update")  # raises, with the reasons
                    raise PermissionDeniedError(f"{uow.actor.username} may not update lead {record.id}")
        records = [r for r in records if r.id in allowed]
    return records


def _require_visible(uow: UnitOfWork, entity: str, names: Iterable[str]) -> None:
    """Refuse, as a query refuses a hidden field, when a field a check reads is hidden."""
    hidden = uow.hidden_fields(entity)
    for name in names:
        if name in hidden:
            raise PermissionDeniedError(
                f"{entity}.{name} is hidden from {uow.actor.username}; it cannot be used to check leads",
                field=name, reasons=[f"field access of {entity}.{name} is hidden"],
            )


# -- the checks -----------------------------------------------------------------------------------


class _Checker:
    """Checks batches of lead values; caches per-domain verdicts across batches."""

    def __init__(self, uow: UnitOfWork, settings: SalesSettings, resolver: Any) -> None:
        self.uow = uow
        self.settings = settings
        self.resolver = resolver
        self.domains: dict[str, Issue | None] = {}

    def run(self, rows: Sequence[Mapping[str, Any]]) -> list[LeadCheck]:
        parts = [self._sanity(values) for values in rows]
        duplicates = self._duplicates(rows, parts)
        checks = []
        for values, (issues, email, phone, _keys), found in zip(rows, parts, duplicates, strict=True):
            if any(entity == "lead" for entity, _ in found):
                shown = ", ".join(str(i) for e, i in found if e == "lead")
                issues.append(Issue("duplicate_lead", None, f"same e-mail address or phone number as lead {shown}"))
            if any(entity == "contact" for entity, _ in found):
                shown = ", ".join(str(i) for e, i in found if e == "contact")
                issues.append(Issue("duplicate_contact", None, f"same e-mail address or phone number as contact {shown}"))
            issues.sort(key=lambda issue: _ISSUE_ORDER[issue.code])
            checks.append(LeadCheck(values.get("id"), tuple(issues), email, phone, tuple(found)))
        return checks

    def _sanity(self, values: Mapping[str, Any]) -> tuple[list[Issue], str | None, str | None, set[str]]:
        issues: list[Issue] = []
        email = phone = None
        keys: set[str] = set()
        raw_email, raw_phone = values.get("email"), values.get("phone")
        if not raw_email and not raw_phone:
            issues.append(Issue("no_contact", None, "give an e-mail address or a phone number"))
        if raw_email:
            email, problem = self._email(raw_email)
            if problem is not None:
                issues.append(problem)
        if raw_phone:
            phone, problem, keys = _phone(raw_phone, self.settings.default_region)
            if problem is not None:
                issues.append(problem)
        return issues, email, phone, keys

    def _email(self, address: str) -> tuple[str | None, Issue | None]:
        import email_validator

        reserved = self._reserved(address.rpartition("@")[2].lower().rstrip("."))
        if reserved is not None:
            return None, reserved
        try:
            valid = email_validator.validate_email(address, check_deliverability=False, globally_deliverable=False)
        except email_validator.EmailNotValidError as exc:
            return None, Issue("invalid_email", "email", f"{address!r}: {exc}")
        domain = valid.ascii_domain or valid.domain
        if domain not in self.domains:
            self.domains[domain] = self._domain(domain)
        return valid.normalized, self.domains[domain]

    @staticmethod
    def _reserved(domain: str) -> Issue | None:
        """An issue for a special-use or reserved domain (``.invalid``, ``.local``...), which
        email-validator's own list names."""
        import email_validator

        for reserved in email_validator.SPECIAL_USE_DOMAIN_NAMES:
            if domain == reserved or domain.endswith("." + reserved):
                return Issue("undeliverable_email", "email", f"{domain!r} is a reserved name that cannot receive mail")
        return None

    def _domain(self, domain: str) -> Issue | None:
        import email_validator

        parts = domain.split(".")
        for index in range(len(parts) - 1):
            if ".".join(parts[index:]) in self.settings.disposable_domains:
                return Issue("disposable_email", "email", f"{domain!r} is a disposable e-mail domain")
        if self.settings.check_deliverability:
            resolver = self.resolver
            if resolver is None:
                resolver = self.resolver = email_validator.caching_resolver(timeout=int(max(self.settings.dns_timeout, 1)))
            try:
                email_validator.validate_email(f"postmaster@{domain}", check_deliverability=True, dns_resolver=resolver)
            except email_validator.EmailNotValidError as exc:
                return Issue("undeliverable_email", "email", f"{domain!r}: {exc}")
        return None

    def _duplicates(self, rows: Sequence[Mapping[str, Any]], parts: Sequence[tuple[Any, ...]]) -> list[list[tuple[str, int]]]:
        """``[(entity, id), ...]`` per row: other leads and contacts sharing an e-mail address
        (case-insensitively) or a phone number, found with one query per table and key."""
        emails: dict[str, list[int]] = {}
        phones: dict[str, list[int]] = {}
        for index, (values, (_, email, _, keys)) in enumerate(zip(rows, parts, strict=True)):
            address = email or values.get("email")
            if address:
                emails.setdefault(address.lower(), []).append(index)
            for key in keys:
                phones.setdefault(key, []).append(index)
        found: list[dict[tuple[str, int], None]] = [{} for _ in rows]
        for entity, phone_columns in (("lead", ("phone",)), ("contact", ("phone", "mobile"))):
            for record_id, indexes in self._matches(entity, emails, phones, phone_columns):
                for index in indexes:
                    if not (entity == "lead" and rows[index].get("id") == record_id):
                        found[index][(entity, record_id)] = None
        return [sorted(f) for f in found]

    def _matches(
        self, entity: str, emails: dict[str, list[int]], phones: dict[str, list[int]], phone_columns: Sequence[str],
    ) -> Iterable[tuple[int, list[int]]]:
        """``(record id, indexes of the rows it matches)`` for the records of *entity* the actor
        may read sharing an e-mail address or a phone key with the rows (fields hidden from
        the actor are not compared)."""
        uow = self.uow
        table = uow.registry.table(entity)
        hidden = uow.hidden_fields(entity)
        readable = uow.read_filter(entity, table)
        searches: list[tuple[sa.ColumnElement[Any], dict[str, list[int]]]] = []
        if emails and "email" in table.c and "email" not in hidden:
            searches.append((sa.func.lower(table.c.email), emails))
        if phones:
            searches.extend((_stripped(table.c[c]), phones) for c in phone_columns if c in table.c and c not in hidden)
        for key, wanted in searches:
            names = sorted(wanted)
            for start in range(0, len(names), _BATCH):
                statement = sa.select(table.c.id, key).where(key.in_(names[start:start + _BATCH]), readable)
                for record_id, value in internal.execute(self.uow, statement):
                    yield record_id, wanted[value]


def _stripped(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """*column* without the usual phone separators, in SQL (``replace`` on both databases)."""
    expression: sa.ColumnElement[Any] = column
    for separator in _SEPARATORS:
        expression = sa.func.replace(expression, separator, "")
    return expression


def _phone(text: str, region: str | None) -> tuple[str | None, Issue | None, set[str]]:
    """``(E.164 text, issue, duplicate keys)`` of a phone number."""
    import phonenumbers

    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        hint = "" if region or text.lstrip().startswith("+") else "; write it with +CC or set [sales] default_region"
        reason = re.sub(r"^\(\d+\)\s*", "", str(exc)).rstrip(".")
        digits = {"".join(c for c in text if c.isdigit() or c == "+")}
        return None, Issue("invalid_phone", "phone", f"{text!r}: {reason}{hint}"), digits
    keys = phone_keys(number)
    if not phonenumbers.is_possible_number(number):
        return None, Issue("invalid_phone", "phone", f"{text!r} has too few or too many digits for a phone number"), keys
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if number.extension:
        e164 = f"{e164} ext. {number.extension}"
    if not phonenumbers.is_valid_number(number):
        return e164, Issue("invalid_phone", "phone", f"{text!r} is not a number in use in its country's numbering plan"), keys
    return e164, None, keys


def phone_keys(number: Any) -> set[str]:
    """The forms a stored phone number may take once its separators are removed, for
    duplicate searches: ``+CCNSN``, ``CCNSN``, ``00CCNSN``, the national number with its trunk
    prefix, and the bare national number.

    :param number: a ``phonenumbers.PhoneNumber``.
    """
    import phonenumbers

    national = phonenumbers.national_significant_number(number)
    code = str(number.country_code)
    keys = {f"+{code}{national}", f"{code}{national}", f"00{code}{national}", national}
    prefix = phonenumbers.ndd_prefix_for_region(phonenumbers.region_code_for_number(number) or "", True)
    if prefix:
        keys.add(f"{prefix}{national}")
    return keys
