"""The catalog's settings (``[plugins.catalog]``), parsed once when the app starts.

::

    [plugins.catalog]
    discount_combination = "best"    # several customer discounts: the best one, or "cascade"
    revenue_months = 12              # the trailing window of the discount tiers' revenue
    price_decimals = 2               # unit prices are rounded half up to this many places
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import ConfigError

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["COMBINATIONS", "CatalogSettings", "catalog_settings"]

#: How several customer discounts that apply to one line combine.
COMBINATIONS = ("best", "cascade")


@attrs.frozen
class CatalogSettings:
    """The parsed ``[plugins.catalog]`` table."""

    discount_combination: str = "best"
    revenue_months: int = 12
    price_decimals: int = 2

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> CatalogSettings:
        combination = table.get("discount_combination", "best")
        if combination not in COMBINATIONS:
            raise ConfigError(
                f"[plugins.catalog] discount_combination = {combination!r} is not one of {', '.join(map(repr, COMBINATIONS))}",
                key="discount_combination",
            )
        return cls(combination, int(table.get("revenue_months", 12)), int(table.get("price_decimals", 2)))


def catalog_settings(uow: UnitOfWork) -> CatalogSettings:
    """The catalog settings of the unit of work's app (the defaults when none were kept)."""
    return uow.crm.find_state(CatalogSettings) or CatalogSettings()
