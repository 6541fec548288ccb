"""Writing a contact back into the card it came from, changing only what changed.

:func:`patch_card` takes the card as last received from the address book, the contact fields
as they were then (the snapshot) and as they are now, and rewrites only the properties of the
fields that differ: ``N`` and ``FN`` for the name, the ``EMAIL``, ``TEL`` (voice, then cell),
``TITLE``, ``BDAY``, ``ADR`` (street, city, postal code, country; box, extended address and
region kept), ``NOTE`` and the first unit of ``ORG`` the import reads. Every other property,
and the other values of a property the CRM keeps one of (a second e-mail address, a fax
number), stays as received. A 2.1 card is written back as 3.0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm_calendar_sync import vcard21
from crm_calendar_sync.contacts import _NOT_VOICE, _PROFILE, _first, _types

__all__ = ["patch_card"]

_ADDRESS = {"mailing_street": "street", "mailing_city": "city", "mailing_postal_code": "code", "mailing_country": "country"}


def _set(card: Any, name: str, line: Any, value: Any, types: tuple[str, ...] = ()) -> None:
    """Give *line* (a property of *card*, or ``None``) the *value*; remove it when empty."""
    if value in (None, ""):
        if line is not None:
            card.remove(line)
        return
    if line is None:
        line = card.add(name)
        if types:
            line.params["TYPE"] = list(types)
    line.value = value


def _read(text: str) -> Any:
    import vobject

    if vcard21.is_21(text):
        card = vcard21.read_card(text)
        card.add("version").value = "3.0"
        return card
    return vobject.readOne(_PROFILE.sub("", text))


def patch_card(text: str, base: Mapping[str, Any], local: Mapping[str, Any], values: Mapping[str, Any],
               company: str | None) -> str:
    """The card *text* with the fields of *local* that differ from *base* written in.

    :param base: the contact fields (plain values) the card held when it was received.
    :param local: the contact fields now (plain values: dates as ISO text).
    :param values: the contact's values (for the name, kept as given).
    :param company: the name of the contact's account, the card's ``ORG``.
    """
    import vobject

    card = _read(text)
    changed = {name for name, value in local.items() if value != base.get(name)}
    if changed & {"first_name", "last_name"}:
        first, last = values.get("first_name") or "", values.get("last_name") or ""
        name_line = _first(card, "n")
        old = name_line.value if name_line is not None and hasattr(name_line.value, "family") else vobject.vcard.Name()
        _set(card, "n", name_line, vobject.vcard.Name(family=last, given=first, additional=old.additional,
                                                       prefix=old.prefix, suffix=old.suffix))
        _set(card, "fn", _first(card, "fn"), " ".join(p for p in (first, last) if p) or last)
    if "email" in changed:
        _set(card, "email", _first(card, "email", ("pref", "work", "internet")), local["email"], ("INTERNET",))
    tels = card.contents.get("tel", [])
    mobile = next((line for line in tels if "cell" in _types(line)), None)
    if "mobile" in changed:
        _set(card, "tel", mobile, local["mobile"], ("CELL",))
    if "phone" in changed:
        voice = [line for line in card.contents.get("tel", []) if line is not mobile and not _types(line) & _NOT_VOICE]
        line = next((candidate for wanted in ("work", "voice", "pref") for candidate in voice if wanted in _types(candidate)),
                    voice[0] if voice else None)
        _set(card, "tel", line, local["phone"], ("WORK", "VOICE"))
    for field, name in (("title", "title"), ("description", "note"), ("birthdate", "bday")):
        if field in changed:
            _set(card, name, _first(card, name), local[field])
    if changed & set(_ADDRESS):
        line = _first(card, "adr", ("work", "pref"))
        old = line.value if line is not None and hasattr(line.value, "street") else vobject.vcard.Address()
        parts = {attr: getattr(old, attr) for attr in ("box", "extended", "street", "city", "region", "code", "country")}
        parts.update({attr: local[field] or "" for field, attr in _ADDRESS.items()})
        empty = not any(parts.values())
        _set(card, "adr", line, None if empty else vobject.vcard.Address(**parts), ("WORK",))
    if "account_id" in changed:
        line = _first(card, "org")
        rest = list(line.value[1:]) if line is not None and isinstance(line.value, list) else []
        _set(card, "org", line, [company, *rest] if company else None)
    return str(card.serialize())
