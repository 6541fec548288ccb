"""The catalog's own field type: a percentage from 0 to 100."""

from __future__ import annotations

import decimal
from typing import Any, ClassVar

import attrs
from crmcore.fields import Decimal

__all__ = ["Percent"]

_HUNDRED = decimal.Decimal(100)


@attrs.frozen
class Percent(Decimal):
    """A percentage: an exact decimal from 0 to 100 (a discount, a margin, a tier's rate)."""

    scale: int = 2
    kind: ClassVar[str] = "decimal"

    def parse(self, value: Any) -> decimal.Decimal:
        number = super().parse(value)
        if not 0 <= number <= _HUNDRED:
            raise self._fail(value)
        return number

    def describe(self) -> str:
        return f"a percentage from 0 to 100 with at most {self.scale} decimal places"

    def sample(self, n: int) -> decimal.Decimal:
        """A valid sample (for conformance checks): 10 percent."""
        return decimal.Decimal(10).quantize(decimal.Decimal(1).scaleb(-self.scale))
