"""The service plugin's settings (``[plugins.service]``), checked once and kept as the app's
state (``crm.state(ServiceSettings)``)."""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import phonenumbers
from crmcore.errors import ConfigError
from crmcore.money import CURRENCIES, Money

if TYPE_CHECKING:
    from crmcore import Crm

__all__ = ["ServiceSettings", "service_settings"]


def _rate(table: Mapping[str, Any], key: str, currency: str) -> Money:
    text = str(table[key]).strip()
    try:
        amount = decimal.Decimal(text)
    except decimal.InvalidOperation:
        amount = decimal.Decimal("NaN")
    if not amount.is_finite() or amount < 0:
        raise ConfigError(
            f"plugins.service.{key} must be a non-negative amount such as '80.00', got {text!r}",
            key=f"plugins.service.{key}",
        )
    return Money(amount, currency)


@attrs.frozen
class ServiceSettings:
    """The checked ``[plugins.service]`` table (see the plugin's README for each key)."""

    currency: str = "EUR"
    labour_rate: Money = Money(decimal.Decimal("80.00"), "EUR")
    travel_rate: Money = Money(decimal.Decimal("0.50"), "EUR")
    plan_horizon_days: int = 90
    phone_region: str = ""

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> ServiceSettings:
        """Check a ``[plugins.service]`` table whose keys and types the plugin manager checked.

        :raises ConfigError: naming the key and value at fault.
        """
        currency = str(table["currency"]).strip().upper()
        if currency not in CURRENCIES:
            raise ConfigError(
                f"plugins.service.currency: unknown currency {table['currency']!r}; "
                "use an ISO 4217 code such as 'EUR'",
                key="plugins.service.currency",
            )
        region = str(table["phone_region"]).strip().upper()
        if region and region not in phonenumbers.SUPPORTED_REGIONS:
            raise ConfigError(
                f"plugins.service.phone_region: unknown region {table['phone_region']!r}; "
                "use an ISO country code such as 'BR'",
                key="plugins.service.phone_region",
            )
        return cls(
            currency,
            _rate(table, "labour_rate", currency),
            _rate(table, "travel_rate", currency),
            table["plan_horizon_days"],
            region,
        )


def service_settings(crm: Crm) -> ServiceSettings:
    """The service settings of *crm* (the defaults when the plugin was not configured)."""
    return crm.find_state(ServiceSettings) or ServiceSettings()
