"""Contacts in and out: vCard 2.1, 3.0 and 4.0 files keyed on UID, and the contact CSV exports of
Outlook (desktop and Outlook.com) and Google (Google CSV, legacy Google CSV, Outlook CSV).

A card or row becomes a :class:`ContactCard`; :func:`apply_cards` writes a batch of them,
set-based: a card is matched with the contact holding its UID (``vcard_uid``), else with a
contact having its e-mail address (without case), else its phone or mobile number (without
separators), and only then created, so importing the same people twice, or from two programs,
never duplicates them; a contact matched without its UID gets it. Fields the card leaves empty
keep the contact's value. The company (``ORG``, ``Company``, ``Organization Name``) is linked
to the account of that name, made when there is none.

CSV columns are matched by their header, never by position, with the names those programs
write (the aliases of the contact's fields, plus the company columns); Google's
``value ::: value`` lists give their first (primary) value. vCard 2.1 cards (Outlook and
Android, quoted-printable) are read by :mod:`~crm_calendar_sync.vcard21`, 3.0 and 4.0 by
vobject. :func:`export_vcards` writes vCard 2.1, 3.0 or 4.0, giving a UID to contacts without
one.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from crm_calendar_sync import vcard21

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["ContactCard", "ContactSummary", "apply_cards", "export_vcards", "read_contact_csv", "read_vcards"]

#: The contact fields a card carries (besides the company).
CARD_FIELDS = ("first_name", "last_name", "email", "phone", "mobile", "title", "birthdate", "mailing_street",
               "mailing_city", "mailing_postal_code", "mailing_country", "description")
#: The vCard versions read and written.
VCARD_VERSIONS = ("2.1", "3.0", "4.0")
_PHONE_CHARS = " -()./"
#: Telephone types that are not a number to call.
_NOT_VOICE = frozenset({"fax", "pager"})
_COMPANY_COLUMNS = ("company", "organization name", "organization 1 - name", "company name")
#: ``PROFILE:VCard`` (RFC 2425), which Lotus Notes writes and vobject refuses; not a contact field.
_PROFILE = re.compile(r"^PROFILE[;:][^\r\n]*(?:\r?\n[ \t][^\r\n]*)*\r?\n", re.IGNORECASE | re.MULTILINE)
_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})")


@attrs.frozen
class ContactCard:
    """One person from a file: the UID if the file gave one, the contact fields, the company."""

    uid: str | None
    values: dict[str, Any]
    company: str | None = None
    source: str = ""


@attrs.frozen
class ContactSummary:
    """What an import of contacts did."""

    cards: int
    created: int
    updated: int
    unchanged: int
    linked: int
    skipped: tuple[str, ...] = ()
    #: The contact each card became, in the order of the cards.
    contact_ids: tuple[int, ...] = ()

    def line(self) -> str:
        return (f"{self.cards} contacts: {self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.linked} matched by e-mail or phone, {len(self.skipped)} skipped")


# -- reading vCards ------------------------------------------------------------------------------


def _types(line: Any) -> set[str]:
    return {t.lower() for value in line.params.get("TYPE", []) for t in str(value).split(",")}


def _first(card: Any, name: str, prefer: Sequence[str] = (), avoid: frozenset[str] = frozenset()) -> Any:
    """The first line of property *name* having the first type of *prefer* found, leaving out
    those with a type in *avoid* unless there is nothing else."""
    lines = card.contents.get(name, [])
    lines = [line for line in lines if not _types(line) & avoid] or lines
    if not lines:
        return None
    for wanted in prefer:
        for line in lines:
            if wanted in _types(line):
                return line
    return lines[0]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        value = " ".join(str(v) for v in value if v)
    text = str(value).strip()
    return text or None


def _phone(value: Any) -> str | None:
    """A TEL value as a number: a vCard 4.0 ``tel:`` URI without its scheme, its extension as
    `` ext. N``."""
    text = _text(value)
    if text is None or not text.lower().startswith("tel:"):
        return text
    number, _, params = text[4:].partition(";")
    extension = next((p[4:] for p in params.split(";") if p.lower().startswith("ext=")), None)
    return f"{number} ext. {extension}" if extension else number


def _birthday(text: str | None) -> str | None:
    match = _DATE.match(text or "")
    return f"{match.group(1)}-{match.group(2)}-{match.group(3)}" if match else None


def _card(card: Any, source: str) -> ContactCard:
    values: dict[str, Any] = {}
    name = _first(card, "n")
    if name is not None and hasattr(name.value, "family"):
        values["first_name"] = _text(name.value.given)
        values["last_name"] = _text(name.value.family)
    full = _text(getattr(_first(card, "fn"), "value", None))
    org = _first(card, "org")
    company = _text(org.value[0] if org is not None and isinstance(org.value, list) and org.value else getattr(org, "value", None))
    if not values.get("last_name"):
        values["last_name"] = full or company
    email = _first(card, "email", ("pref", "work", "internet"))
    values["email"] = _text(getattr(email, "value", None))
    values["phone"] = _phone(getattr(_first(card, "tel", ("work", "voice", "pref"), _NOT_VOICE), "value", None))
    mobile = next((line for line in card.contents.get("tel", [])
                   if "cell" in {t.lower() for value in line.params.get("TYPE", []) for t in str(value).split(",")}), None)
    values["mobile"] = _phone(getattr(mobile, "value", None))
    if values["mobile"] and values["mobile"] == values["phone"]:
        others = [line for line in card.contents.get("tel", []) if line is not mobile]
        values["phone"] = _phone(others[0].value) if others else None
    values["title"] = _text(getattr(_first(card, "title"), "value", None))
    values["birthdate"] = _birthday(_text(getattr(_first(card, "bday"), "value", None)))
    address = _first(card, "adr", ("work", "pref"))
    if address is not None and hasattr(address.value, "street"):
        values["mailing_street"] = _text(address.value.street)
        values["mailing_city"] = _text(address.value.city)
        values["mailing_postal_code"] = _text(address.value.code)
        values["mailing_country"] = _text(address.value.country)
    values["description"] = _text(getattr(_first(card, "note"), "value", None))
    if not values.get("last_name"):  # a saved address without a name is kept under the address
        values["last_name"] = values.get("email")
    uid = _text(getattr(_first(card, "uid"), "value", None))
    return ContactCard(uid, {k: v for k, v in values.items() if v is not None}, company, source)


def read_vcards(data: bytes | str, *, name: str = "contacts.vcf") -> tuple[list[ContactCard], list[str]]:
    """The cards of a vCard 2.1, 3.0 or 4.0 file; a card that cannot be read is skipped with a
    line saying why. A card without a name is kept under its e-mail address."""
    import vobject

    text = _text_of(data)
    cards: list[ContactCard] = []
    skipped: list[str] = []
    blocks = re.findall(r"BEGIN:VCARD.*?END:VCARD", text, flags=re.DOTALL | re.IGNORECASE)
    for position, block in enumerate(blocks, start=1):
        try:
            card = vcard21.read_card(block) if vcard21.is_21(block) else vobject.readOne(_PROFILE.sub("", block))
            read = _card(card, f"{name} card {position}")
        except Exception as exc:  # noqa: BLE001 - vobject raises many kinds; the card is reported, the rest imports
            reason = f"{type(exc).__name__}: {exc}"[:200]
            skipped.append(f"{name}: card {position} skipped: {reason}; check that it is a vCard 2.1, 3.0 or 4.0")
            continue
        if not read.values.get("last_name"):
            skipped.append(f"{name}: card {position} skipped: it has no name, company or e-mail address "
                           "(N, FN, ORG or EMAIL)")
            continue
        cards.append(read)
    return cards, skipped


def _text_of(data: bytes | str) -> str:
    """The text of a file: UTF-8 (with or without a BOM), else the Windows code page older
    Outlook versions write."""
    if isinstance(data, str):
        return data.lstrip("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


# -- reading CSV exports -------------------------------------------------------------------------


def _primary(value: str) -> str:
    """Google's ``a ::: b`` multi-value: the first (primary) one."""
    return value.split(" ::: ")[0].strip().replace("\r\n", "\n")


def read_contact_csv(data: bytes | str, columns: Mapping[str, str], *, name: str = "contacts.csv",
                     ) -> tuple[list[ContactCard], list[str]]:
    """The rows of an Outlook or Google contact export as cards.

    :param columns: ``{header in lower case: contact field}``, from the contact's field names,
        labels and aliases (:func:`contact_columns`).
    """
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data.lstrip("\ufeff")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    cards: list[ContactCard] = []
    skipped: list[str] = []
    for number, row in enumerate(reader, start=1):
        values: dict[str, Any] = {}
        company = None
        email_fallback = None
        for header, cell in row.items():
            if header is None or cell is None or not cell.strip():
                continue
            key = header.strip().lower()
            value = _primary(cell)
            if key in _COMPANY_COLUMNS:
                company = company or value
            elif key in columns and columns[key] not in values:
                values[columns[key]] = value
            elif "e-mail" in key and "value" in key or key.startswith("e-mail") and "address" in key:
                email_fallback = email_fallback or value
        if "email" not in values and email_fallback:
            values["email"] = email_fallback
        if "birthdate" in values:
            values["birthdate"] = _birthday(values["birthdate"]) or _us_date(values["birthdate"])
            if values["birthdate"] is None:
                del values["birthdate"]
        if not values.get("last_name"):
            values["last_name"] = values.pop("first_name", None) or company or values.get("email")
        if not values.get("last_name"):
            skipped.append(f"{name}: row {number} skipped: no name, company or e-mail address")
            continue
        cards.append(ContactCard(None, values, company, f"{name} row {number}"))
    return cards, skipped


def _us_date(text: str) -> str | None:
    match = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text.strip())
    return f"{match.group(3)}-{int(match.group(1)):02d}-{int(match.group(2)):02d}" if match else None


def contact_columns(uow: UnitOfWork) -> dict[str, str]:
    """``{header in lower case: field}`` for the card fields: names, labels and aliases."""
    etype = uow.registry.entity("contact")
    found: dict[str, str] = {}
    for field in etype.fields:
        if field.name in CARD_FIELDS:
            for header in (field.name, field.label, *field.aliases):
                if header:
                    found.setdefault(str(header).lower(), field.name)
    found.update({"first name": "first_name", "last name": "last_name", "birthday": "birthdate"})
    return found


# -- writing -------------------------------------------------------------------------------------


def apply_cards(uow: UnitOfWork, cards: Sequence[ContactCard], *, owner_id: int | None = None,
                skipped: Iterable[str] = ()) -> ContactSummary:
    """Write *cards* as contacts: matched by UID, then e-mail, then phone; created otherwise."""
    uids = {c.uid for c in cards if c.uid}
    emails = {c.values["email"].lower() for c in cards if c.values.get("email")}
    phones = {_digits(c.values[k]) for c in cards for k in ("phone", "mobile") if c.values.get(k)}
    by_uid = {r.get("vcard_uid"): r for r in uow.find_many("contact", "vcard_uid", uids)}
    by_email = {str(r.get("email")).lower(): r for r in reversed(uow.find_many("contact", "email", emails, ignore_case=True))}
    by_phone: dict[str, Record] = {}
    for key in ("mobile", "phone"):
        by_phone.update({_digits(r.get(key)): r for r in reversed(uow.find_many("contact", key, phones, ignore_chars=_PHONE_CHARS))})
    accounts = _accounts(uow, {c.company for c in cards if c.company}, owner_id)
    plan: dict[int, tuple[Record, dict[str, Any]]] = {}
    fresh: dict[str, dict[str, Any]] = {}
    linked = 0
    ids: list[int | str] = []  # per card: the contact matched, or the key of the one to make
    for card in cards:
        values = dict(card.values)
        if card.company:
            values["account_id"] = accounts[card.company.lower()]
        if card.uid:
            values["vcard_uid"] = card.uid
        match = by_uid.get(card.uid) if card.uid else None
        if match is None:
            match = by_email.get((values.get("email") or "").lower()) or next(
                (by_phone[_digits(values[k])] for k in ("phone", "mobile") if values.get(k) and _digits(values[k]) in by_phone), None)
            linked += match is not None
        if match is None:
            key = card.uid or (values.get("email") or "").lower() or _digits(values.get("phone") or "") or card.source
            fresh.setdefault(key, {"owner_id": owner_id, **values})
            ids.append(key)
            continue
        ids.append(match.id)
        if match.get("vcard_uid") and card.uid and match.get("vcard_uid") != card.uid:
            values.pop("vcard_uid")  # a contact keeps the UID it was first linked with
        current, changes = plan.get(match.id, (match, {}))
        changes.update({k: v for k, v in values.items() if _stored(match, k) != v})
        plan[match.id] = (current, changes)
    changed = [(record, changes) for record, changes in plan.values() if changes]
    updated = uow.update_many("contact", changed) if changed else []
    made = uow.create_many("contact", list(fresh.values())) if fresh else []
    made_ids = {key: record.id for key, record in zip(fresh, made, strict=True)}
    return ContactSummary(cards=len(cards), created=len(made), updated=len(updated), unchanged=len(plan) - len(updated),
                          linked=linked, skipped=tuple(skipped),
                          contact_ids=tuple(made_ids[i] if isinstance(i, str) else i for i in ids))


def _stored(record: Record, name: str) -> Any:
    value = record.get(name)
    return value.isoformat() if hasattr(value, "isoformat") else value


def _digits(text: str | None) -> str:
    return "".join(ch for ch in (text or "") if ch not in _PHONE_CHARS)


def _accounts(uow: UnitOfWork, names: set[str], owner_id: int | None) -> dict[str, int]:
    if not names:
        return {}
    found = {str(r.get("name")).lower(): r.id for r in uow.find_many("account", "name", names, ignore_case=True)}
    # SQLite's lower() folds ASCII letters only: names with others are also looked up as written
    exact = {name for name in names if not name.isascii() and name.lower() not in found}
    found.update({str(r.get("name")).lower(): r.id for r in uow.find_many("account", "name", exact)} if exact else {})
    missing: dict[str, dict[str, Any]] = {}
    for name in sorted(names):
        if name.lower() not in found:
            missing.setdefault(name.lower(), {"name": name, "owner_id": owner_id})
    for record in uow.create_many("account", list(missing.values())) if missing else []:
        found[str(record.get("name")).lower()] = record.id
    return found


def _escape(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace(",", "\\,").replace(";", "\\;")


def _fold(line: str) -> str:
    data = line.encode()
    parts: list[str] = []
    while len(data) > 75:
        cut = 75 if not parts else 74
        while cut > 0 and (data[cut] & 0xC0) == 0x80:  # never inside a UTF-8 sequence
            cut -= 1
        parts.append(data[:cut].decode())
        data = data[cut:]
    parts.append(data.decode())
    return "\r\n ".join(parts)


def export_vcards(uow: UnitOfWork, contacts: Sequence[Record] | None = None, *, version: str = "3.0") -> str:
    """The vCard file (2.1, 3.0 or 4.0) of *contacts* (default: every one the actor may read);
    a contact without a UID is given one."""
    if version not in VCARD_VERSIONS:
        raise ValueError(f"vCard version {version!r}: choose one of {', '.join(VCARD_VERSIONS)}")
    records = list(contacts) if contacts is not None else uow.query("contact").order_by("id").all()
    missing = [(r, {"vcard_uid": f"urn:uuid:{uuid.uuid4()}"}) for r in records if not r.get("vcard_uid")]
    if missing:
        given = {r.id: r for r in uow.update_many("contact", missing)}
        records = [given.get(r.id, r) for r in records]
    companies = {r.id: r.get("name") for r in uow.get_many("account", {c.get("account_id") for c in records if c.get("account_id")})}
    if version == "2.1":
        return "".join(_card_21(record, companies.get(record.get("account_id"))) for record in records)
    lines: list[str] = []
    work = "TYPE=work" if version == "4.0" else "TYPE=WORK"
    for record in records:
        get = record.get
        first, last = get("first_name") or "", get("last_name") or ""
        card = ["BEGIN:VCARD", f"VERSION:{version}", f"UID:{_escape(get('vcard_uid'))}",
                f"FN:{_escape(' '.join(p for p in (first, last) if p))}", f"N:{_escape(last)};{_escape(first)};;;"]
        if get("account_id") in companies:
            card.append(f"ORG:{_escape(companies[get('account_id')])}")
        if get("title"):
            card.append(f"TITLE:{_escape(get('title'))}")
        if get("email"):
            card.append(f"EMAIL;{work}:{get('email')}")
        if get("phone"):
            card.append(f"TEL;{work}:{get('phone')}")
        if get("mobile"):
            card.append(f"TEL;{'TYPE=cell' if version == '4.0' else 'TYPE=CELL'}:{get('mobile')}")
        if any(get(k) for k in ("mailing_street", "mailing_city", "mailing_postal_code", "mailing_country")):
            parts = ["", "", get("mailing_street") or "", get("mailing_city") or "", "", get("mailing_postal_code") or "",
                     get("mailing_country") or ""]
            card.append(f"ADR;{work}:" + ";".join(_escape(p) for p in parts))
        if get("birthdate"):
            card.append(f"BDAY:{get('birthdate').strftime('%Y%m%d') if version == '4.0' else get('birthdate').isoformat()}")
        if get("description"):
            card.append(f"NOTE:{_escape(get('description'))}")
        card.append("END:VCARD")
        lines.extend(_fold(line) for line in card)
    return "".join(line + "\r\n" for line in lines)


def _card_21(record: Record, company: str | None) -> str:
    """One contact as a vCard 2.1 card (the properties of the 3.0 card, written the 2.1 way)."""
    get = record.get
    first, last = get("first_name") or "", get("last_name") or ""
    line = vcard21.property_line
    card = ["BEGIN:VCARD", "VERSION:2.1", line("UID", get("vcard_uid")),
            line("N", [last, first, "", "", ""]), line("FN", " ".join(p for p in (first, last) if p))]
    if company:
        card.append(line("ORG", [company]))
    if get("title"):
        card.append(line("TITLE", get("title")))
    if get("email"):
        card.append(line("EMAIL", get("email"), ["INTERNET", "WORK"]))
    if get("phone"):
        card.append(line("TEL", get("phone"), ["WORK", "VOICE"]))
    if get("mobile"):
        card.append(line("TEL", get("mobile"), ["CELL"]))
    if any(get(k) for k in ("mailing_street", "mailing_city", "mailing_postal_code", "mailing_country")):
        card.append(line("ADR", ["", "", get("mailing_street") or "", get("mailing_city") or "", "",
                                 get("mailing_postal_code") or "", get("mailing_country") or ""], ["WORK"]))
    if get("birthdate"):
        card.append(line("BDAY", get("birthdate").strftime("%Y%m%d")))
    if get("description"):
        card.append(line("NOTE", get("description")))
    card.append("END:VCARD")
    return "".join(text + "\r\n" for text in card)
