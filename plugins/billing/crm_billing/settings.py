"""The checked ``[plugins.billing]`` table and the payment terms it names."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs
from crmcore.errors import ConfigError

__all__ = ["CHANNELS", "FEE_POLICIES", "SERVICE_INVOICING", "BillingSettings", "Level", "SmtpSettings", "Term"]

CHANNELS = ("email", "letter", "phone")
FEE_POLICIES = ("collect", "threat", "waive")
#: How billable service work is invoiced: a draft per service order, or collected on the
#: account's open draft of service work.
SERVICE_INVOICING = ("order", "account")


@attrs.frozen
class Term:
    """One instalment of payment terms: due *days* after the invoice date, *percent* of it."""

    days: int
    percent: Decimal


@attrs.frozen
class Level:
    """One dunning level: reached *days* after the due date (``counted_from = "due"``) or
    after the previous reminder (``"previous"``); its *fee*, yearly *interest_rate* in
    percent, *channel* and *template* name."""

    number: int
    days: int
    counted_from: str
    fee: Decimal
    interest_rate: Decimal
    channel: str
    template: str


@attrs.frozen
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    tls: str = "none"
    username: str = ""
    password: str = attrs.field(default="", repr=False)


def _levels(name: str, levels: Any) -> tuple[Level, ...]:
    where = f"dunning_procedures.{name}"
    if not isinstance(levels, list) or not levels:
        raise _fail(where, f"give a list of levels such as [{{days = 7, channel = 'email'}}], got {levels!r}")
    found = []
    for number, level in enumerate(levels, start=1):
        try:
            days = int(level["days"])
            fee, rate = Decimal(str(level.get("fee", "0"))), Decimal(str(level.get("interest_rate", "0")))
        except (KeyError, TypeError, ValueError, InvalidOperation):
            raise _fail(where, f"level {number}: needs days (a number), fee and interest_rate as amounts, got {level!r}") from None
        counted, channel = level.get("counted_from", "due"), level.get("channel", "email")
        if days < 0 or fee < 0 or rate < 0:
            raise _fail(where, f"level {number}: days, fee and interest_rate must not be negative, got {level!r}")
        if counted not in ("due", "previous"):
            raise _fail(where, f"level {number}: counted_from is 'due' or 'previous', got {counted!r}")
        if channel not in CHANNELS:
            raise _fail(where, f"level {number}: channel is one of {list(CHANNELS)}, got {channel!r}")
        found.append(Level(number, days, counted, fee, rate, channel, str(level.get("template", "reminder"))))
    return tuple(found)


def _fail(key: str, message: str) -> ConfigError:
    return ConfigError(f"[plugins.billing] {key}: {message}")


@attrs.frozen
class BillingSettings:
    """The ``[plugins.billing]`` table (see the plugin's README for each key)."""

    invoice_prefix: str = "INV-"
    credit_note_prefix: str = "CN-"
    number_digits: int = 5
    payment_terms: Mapping[str, tuple[Term, ...]] = attrs.field(factory=dict)
    default_terms: str = "net30"
    procedures: Mapping[str, tuple[Level, ...]] = attrs.field(factory=dict)
    default_procedure: str = "standard"
    fee_policy: str = "collect"
    templates_dir: str = ""
    letters_dir: str = ""
    sender: str = "billing@example.com"
    smtp: SmtpSettings = attrs.field(factory=SmtpSettings)
    dunning_hour: int = 6
    service_invoicing: str = "order"
    service_tax_code: str = ""

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> BillingSettings:
        """:raises ConfigError: naming the key and value at fault."""
        terms: dict[str, tuple[Term, ...]] = {}
        for name, parts in dict(table["payment_terms"]).items():
            where = f"payment_terms.{name}"
            if not isinstance(parts, list) or not parts:
                raise _fail(where, f"give a list of instalments such as [{{days = 30, percent = 100}}], got {parts!r}")
            found = []
            for part in parts:
                try:
                    days, percent = int(part["days"]), Decimal(str(part["percent"]))
                except (KeyError, TypeError, ValueError, InvalidOperation):
                    raise _fail(where, f"an instalment is {{days = 30, percent = 100}}, got {part!r}") from None
                if days < 0 or not Decimal(0) < percent <= Decimal(100):
                    raise _fail(where, f"days must be 0 or more and percent above 0 up to 100, got {part!r}")
                found.append(Term(days, percent))
            if sum(t.percent for t in found) != 100:
                raise _fail(where, f"the percents add up to {sum(t.percent for t in found)}, not 100")
            terms[name] = tuple(sorted(found, key=lambda t: t.days))
        default = table["default_terms"]
        if default not in terms:
            raise _fail("default_terms", f"{default!r} is not among the payment terms {sorted(terms)}")
        procedures = {name: _levels(name, levels) for name, levels in dict(table["dunning_procedures"]).items()}
        if table["default_procedure"] not in procedures:
            raise _fail("default_procedure", f"{table['default_procedure']!r} is not among the procedures {sorted(procedures)}")
        if table["fee_policy"] not in FEE_POLICIES:
            raise _fail("fee_policy", f"{table['fee_policy']!r} is not one of {list(FEE_POLICIES)}")
        smtp = dict(table["smtp"])
        unknown = sorted(set(smtp) - {"host", "port", "tls", "username", "password"})
        if unknown:
            raise _fail("smtp", f"unknown key(s) {unknown}; use host, port, tls, username, password")
        if smtp.get("tls", "none") not in ("none", "starttls", "ssl"):
            raise _fail("smtp.tls", f"is 'none', 'starttls' or 'ssl', got {smtp.get('tls')!r}")
        invoicing = table.get("service_invoicing", "order")
        if invoicing not in SERVICE_INVOICING:
            raise _fail("service_invoicing", f"{invoicing!r} is not one of {list(SERVICE_INVOICING)}")
        return cls(table["invoice_prefix"], table["credit_note_prefix"], table["number_digits"], terms, default,
                   procedures, table["default_procedure"], table["fee_policy"], table["templates_dir"],
                   table["letters_dir"], table["sender"], SmtpSettings(**smtp), table["dunning_hour"],
                   invoicing, str(table.get("service_tax_code", "")))

    @property
    def levels(self) -> tuple[Level, ...]:
        """The levels of the default procedure."""
        return self.procedures[self.default_procedure]

    def levels_of(self, procedure: str | None) -> tuple[Level, ...]:
        """The levels of *procedure* (the default one for ``None`` or a name the settings lack)."""
        return self.procedures.get(procedure or self.default_procedure) or self.procedures[self.default_procedure]

    def terms(self, name: str | None) -> tuple[Term, ...]:
        """The instalments of the terms *name* (the default terms for ``None``).

        :raises ValidationError: for unknown terms.
        """
        from crmcore.errors import ValidationError

        chosen = name or self.default_terms
        if chosen not in self.payment_terms:
            raise ValidationError({"payment_terms": [
                f"unknown payment terms {chosen!r}; use one of {sorted(self.payment_terms)} or add it to [plugins.billing] payment_terms"]})
        return self.payment_terms[chosen]
