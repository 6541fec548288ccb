"""Call center support: who is calling, and everything about them at a glance.

A number in any format (``+55 47 99638-1719``, ``(47) 99638-1719``, ``0047...``) is read
with phonenumbers (in the deployment's ``phone_region`` when it has no country code) and
turned into the spellings a stored number may have once its separators are left out:
international with and without ``+`` or ``00``, national with and without the trunk prefix.
The plugin's phone index (:mod:`~crm_service.phoneindex`) names the contacts (phone, mobile)
and accounts (phone) whose numbers end in the same eight digits; those are read on the
actor's secured road and kept when a stored number, without its separators, is one of the
spellings. The view lists, for their accounts, the open tickets (with the help desk), the
open service orders, the units under warranty today and the active contracts. A call is
logged as an activity of kind ``call`` about the contact, its account and, when named, the
ticket or the service order.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import attrs
import phonenumbers
from crmcore.errors import ValidationError

from crm_service import phoneindex
from crm_service.settings import service_settings

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["CallerView", "IGNORED", "caller", "log_call", "number_variants"]

#: Separators left out of stored numbers when they are compared.
IGNORED = " -()./"
_OPEN_ORDERS = ("new", "scheduled", "in_progress")
_DONE_TICKETS = ("resolved", "closed")


def _stripped(text: str | None) -> str:
    return "".join(c for c in text or "" if c not in IGNORED)


def number_variants(text: str, region: str | None = None) -> list[str]:
    """The spellings, without separators, a stored number matching *text* may have.

    :raises ValidationError: when *text* holds fewer than three digits.
    """
    digits = "".join(c for c in text if c.isdigit())
    if len(digits) < 3:
        raise ValidationError({"number": [f"{text!r} is not a phone number"]})
    plain = ("+" if text.strip().startswith("+") else "") + digits
    found = [plain, digits]
    try:
        number = phonenumbers.parse(text, region or None)
    except phonenumbers.NumberParseException:
        return list(dict.fromkeys(found))
    national = str(number.national_number)
    if number.italian_leading_zero:
        national = "0" * (number.number_of_leading_zeros or 1) + national
    code = str(number.country_code)
    region_code = phonenumbers.region_code_for_number(number)
    trunk = phonenumbers.ndd_prefix_for_region(region_code, True) if region_code else None
    found += [f"+{code}{national}", f"{code}{national}", f"00{code}{national}", national]
    if trunk:
        found.append(f"{trunk}{national}")
    return list(dict.fromkeys(found))


@attrs.frozen
class CallerView:
    """What the call center sees of a caller."""

    number: str
    contacts: tuple[Record, ...]
    accounts: tuple[Record, ...]
    tickets: tuple[Record, ...]
    orders: tuple[Record, ...]
    units: tuple[dict[str, Any], ...]
    contracts: tuple[Record, ...]

    @property
    def found(self) -> bool:
        return bool(self.contacts or self.accounts)


def caller(uow: UnitOfWork, number: str, *, today: dt.date | None = None,
           region: str | None = None) -> CallerView:
    """Look up the caller of *number*: contacts and accounts, then their accounts' open
    tickets and service orders, units under warranty on *today* and active contracts."""
    region = region or service_settings(uow.crm).phone_region or None
    variants = set(number_variants(number, region))
    found = phoneindex.candidates(uow, number)

    def matches(record: Record, fields: tuple[str, ...]) -> bool:
        return any(_stripped(record.values.get(f)) in variants for f in fields)

    contacts = {r.id: r for r in uow.find_many("contact", "id", found["contact"])
                if matches(r, phoneindex.FIELDS["contact"])}
    accounts = {r.id: r for r in uow.find_many("account", "id", found["account"])
                if matches(r, phoneindex.FIELDS["account"])}
    linked = sorted({c.account_id for c in contacts.values() if c.account_id} - set(accounts))
    for record in uow.find_many("account", "id", linked):
        accounts[record.id] = record
    ids = sorted(accounts)
    today = today or dt.date.today()
    tickets: list[Record] = []
    if "ticket" in uow.registry and (ids or contacts):
        either = [("account_id", "in", ids)] if ids else []
        if contacts:
            either.append(("contact_id", "in", sorted(contacts)))
        tickets = uow.query("ticket").where({"any": either}, ("status", "not in",
                                                             list(_DONE_TICKETS))).all()
    orders = contracts = []
    units: list[dict[str, Any]] = []
    if ids:
        orders = uow.query("service_order").where(("account_id", "in", ids),
                                                  ("status", "in", list(_OPEN_ORDERS))).all()
        contracts = uow.query("service_contract").where(
            ("account_id", "in", ids), ("starts_on", "<=", today), ("ends_on", ">=", today),
            status="active").all()
        units = uow.select("warranty_registration", (
            "unit_id", "unit_id.serial_number", "unit_id.product_code", "kind", "ends_on")).where(
            ("unit_id.account_id", "in", ids), ("starts_on", "<=", today),
            ("ends_on", ">=", today)).order_by("unit_id", "ends_on").all()
    return CallerView(number, tuple(contacts.values()), tuple(accounts.values()),
                      tuple(tickets), tuple(orders), tuple(units), tuple(contracts))


def log_call(uow: UnitOfWork, view: CallerView, subject: str, *, ticket_id: int | None = None,
             order_id: int | None = None, notes: str | None = None) -> Record:
    """Log the call as a done activity of kind ``call`` about the caller's (first) contact
    and account, and the ticket or service order named.

    :raises ValidationError: when the number matched nobody.
    """
    if not view.found:
        raise ValidationError(
            {"number": [f"no contact or account has the number {view.number!r}"]},
            entity="activity")
    contact = view.contacts[0] if view.contacts else None
    values: dict[str, Any] = {
        "kind": "call", "subject": subject[:200], "status": "done", "description": notes,
        "contact_id": contact.id if contact else None,
        "account_id": (contact.account_id if contact and contact.account_id
                       else view.accounts[0].id if view.accounts else None),
        "starts_at": dt.datetime.now(dt.UTC),
    }
    if order_id is not None:
        values["service_order_id"] = order_id
    if ticket_id is not None:
        if "ticket" not in uow.registry:
            raise ValidationError(
                {"ticket_id": ["logging a call on a ticket needs the help desk enabled"]},
                entity="activity")
        values["ticket_id"] = ticket_id
    return uow.create("activity", values)
