"""The checked ``[plugins.billing]`` table and the payment terms it names."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs
from crmcore.errors import ConfigError

__all__ = ["BillingSettings", "Term"]


@attrs.frozen
class Term:
    """One instalment of payment terms: due *days* after the invoice date, *percent* of it."""

    days: int
    percent: Decimal


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
        return cls(table["invoice_prefix"], table["credit_note_prefix"], table["number_digits"], terms, default)

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
