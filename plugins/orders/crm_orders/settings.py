"""The orders plugin's settings (``[plugins.orders]``), checked once and kept as the app's state
(``crm.state(OrdersSettings)``)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import ConfigError
from crmcore.money import CURRENCIES

from crm_orders.totals import METHODS, MODES, Rounding, rounding_for

if TYPE_CHECKING:
    from crmcore import Crm

__all__ = ["FULFILMENT_KINDS", "WON_ON", "OrdersSettings", "orders_settings"]

#: The kinds of fulfilment request an order line is routed to.
FULFILMENT_KINDS = ("production", "delivery", "sales_office_review")
#: What may mark an opportunity won.
WON_ON = ("accepted", "confirmed", "fulfilled", "never")


def _fail(key: str, message: str) -> ConfigError:
    return ConfigError(f"plugins.orders.{key}: {message}", key=f"plugins.orders.{key}")


def _choice(table: Mapping[str, Any], key: str, allowed: tuple[str, ...] | Mapping[str, Any]) -> str:
    value = table[key]
    if value not in allowed:
        raise _fail(key, f"unknown value {value!r}; choose among {', '.join(allowed)}")
    return value


@attrs.frozen
class OrdersSettings:
    """The checked ``[plugins.orders]`` table (see the plugin's README for each key)."""

    rounding_mode: str = "line"
    rounding_method: str = "half_up"
    rounding_methods: Mapping[str, str] = attrs.field(factory=dict)
    currency_places: Mapping[str, int] = attrs.field(factory=dict)
    quote_valid_days: int = 30
    order_on_accept: bool = False
    confirm_on_accept: bool = False
    won_on: str = "confirmed"
    lost_when_quotes_closed: bool = True
    approval_discount_percent: Decimal = Decimal(20)
    approval_role: str = "sales_manager"
    routes: Mapping[str, str] = attrs.field(factory=dict)
    default_route: str = "sales_office_review"
    sinks: Mapping[str, str] = attrs.field(factory=dict)
    pdf_layout: str = ""
    expire_interval_minutes: int = 60

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> OrdersSettings:
        """Check a ``[plugins.orders]`` table whose keys and types the plugin manager checked.

        :raises ConfigError: naming the key and value at fault.
        """
        methods = dict(table["rounding_methods"])
        for currency, method in methods.items():
            if currency not in CURRENCIES:
                raise _fail("rounding_methods", f"unknown currency {currency!r}; use ISO 4217 codes such as 'EUR'")
            if method not in METHODS:
                raise _fail("rounding_methods", f"unknown method {method!r} for {currency}; choose among {', '.join(METHODS)}")
        places = dict(table["currency_places"])
        for currency, digits in places.items():
            if currency not in CURRENCIES:
                raise _fail("currency_places", f"unknown currency {currency!r}; use ISO 4217 codes such as 'EUR'")
            if not isinstance(digits, int) or isinstance(digits, bool) or not 0 <= digits <= 6:
                raise _fail("currency_places", f"{currency} = {digits!r}: give a whole number of places from 0 to 6")
        routes = dict(table["routes"])
        for group, kind in routes.items():
            if kind not in FULFILMENT_KINDS:
                raise _fail("routes", f"product group {group!r} goes to unknown kind {kind!r}; choose among {', '.join(FULFILMENT_KINDS)}")
        sinks = dict(table["sinks"])
        for kind, sink in sinks.items():
            if kind not in FULFILMENT_KINDS:
                raise _fail("sinks", f"unknown fulfilment kind {kind!r}; choose among {', '.join(FULFILMENT_KINDS)}")
            if not isinstance(sink, str) or not sink.strip():
                raise _fail("sinks", f"{kind} = {sink!r}: name an outbox sink")
        role = table["approval_role"].strip()
        if not role:
            raise _fail("approval_role", "name a role, got an empty text")
        return cls(
            rounding_mode=_choice(table, "rounding_mode", MODES),
            rounding_method=_choice(table, "rounding_method", METHODS),
            rounding_methods=methods,
            currency_places=places,
            quote_valid_days=table["quote_valid_days"],
            order_on_accept=table["order_on_accept"],
            confirm_on_accept=table["confirm_on_accept"],
            won_on=_choice(table, "won_on", WON_ON),
            lost_when_quotes_closed=table["lost_when_quotes_closed"],
            approval_discount_percent=Decimal(str(table["approval_discount_percent"])),
            approval_role=role,
            routes=routes,
            default_route=_choice(table, "default_route", FULFILMENT_KINDS),
            sinks=sinks,
            pdf_layout=table["pdf_layout"],
            expire_interval_minutes=table["expire_interval_minutes"],
        )

    def rounding(self, currency: str) -> Rounding:
        """The rounding a new document in *currency* is priced with."""
        return rounding_for(currency, mode=self.rounding_mode, methods=self.rounding_methods,
                            default_method=self.rounding_method, places=self.currency_places)

    def sink(self, kind: str) -> str:
        """The outbox sink of fulfilment requests of *kind*."""
        return self.sinks.get(kind, kind)


def orders_settings(crm: Crm) -> OrdersSettings:
    """The orders settings of *crm* (the defaults when the plugin was not configured)."""
    return crm.find_state(OrdersSettings) or OrdersSettings()
