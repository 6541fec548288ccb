"""Pricing goes the one secured road: a product, account or price list the actor may not read
behaves exactly like a missing one."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from catalog_support import DAY, catalog
from crmcore import Actor
from crmcore.errors import NotFoundError
from crmcore.money import Money
from crmcore.security import add_user

from crm_catalog.pricing import PriceRequest, explain_price, price_lines

READ = ["read"]
CATALOG = {"product": READ, "product_group": READ, "tax_category": READ, "account": "all",
           "customer_discount": READ, "customer_group": READ}
SECURITY: dict[str, Any] = {
    "profiles": {
        "seller": {"privileges": {**CATALOG, "price_list": READ, "price_list_line": READ}},
        "trainee": {"privileges": CATALOG},
        "outsider": {"privileges": {"account": "all", "price_list": READ, "price_list_line": READ}},
    },
    "roles": {"seller": {"profiles": ["seller"]}, "trainee": {"profiles": ["trainee"]},
              "outsider": {"profiles": ["outsider"]}},
}


@pytest.fixture
def shop(crm_factory):
    crm = crm_factory(plugins=["catalog"], settings={"security": SECURITY})
    c = catalog(crm)
    with crm.unit_of_work() as uow:
        retail = uow.create("price_list", name="Retail", currency="EUR")
        uow.create("price_list_line", price_list_id=retail.id, priority=1, discount_percent="10")
        users = {name: add_user(uow, name, roles=[name]) for name in ("seller", "trainee", "outsider")}
        uow.commit()
    return crm, c, {name: Actor(user.id, name) for name, user in users.items()}


def test_a_reader_of_price_lists_gets_their_price(shop) -> None:
    crm, c, actors = shop
    with crm.unit_of_work(actors["seller"]) as uow:
        assert explain_price(uow, c["plain"].id, c["dock"].id, 1, DAY).unit_price == Money("180.00", "EUR")


def test_price_lists_an_actor_may_not_read_do_not_apply(shop) -> None:
    crm, c, actors = shop
    with crm.unit_of_work(actors["trainee"]) as uow:
        line = explain_price(uow, c["plain"].id, c["dock"].id, 1, DAY)
    assert line.unit_price == Money("200.00", "EUR") and line.price_list_id is None


def test_an_unreadable_product_is_not_found_like_a_missing_one(shop) -> None:
    crm, c, actors = shop
    with crm.unit_of_work(actors["outsider"]) as uow:
        with pytest.raises(NotFoundError) as hidden:
            price_lines(uow, [PriceRequest(c["dock"].id, Decimal(1), None, DAY)])
        with pytest.raises(NotFoundError) as missing:
            price_lines(uow, [PriceRequest(9999, Decimal(1), None, DAY)])
    assert str(hidden.value) == str(missing.value).replace("9999", str(c["dock"].id))
    assert hidden.value.entity == missing.value.entity == "product"
