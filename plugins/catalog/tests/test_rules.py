"""What the catalog refuses when its records are saved: rule ties named by their products, a
group below itself, a list for two audiences, nonsense formulas."""

from __future__ import annotations

import pytest
from catalog_support import catalog
from crmcore.errors import ValidationError


@pytest.fixture
def app(crm_factory):
    crm = crm_factory(plugins=["catalog"])
    c = catalog(crm)
    with crm.unit_of_work() as uow:
        c["list"] = uow.create("price_list", name="Main", currency="EUR")
        uow.commit()
    return crm, c


def _line(crm, c, **values):
    with crm.unit_of_work() as uow:
        made = uow.create("price_list_line", price_list_id=c["list"].id, **values)
        uow.commit()
    return made


def test_a_group_line_and_a_product_line_of_it_at_one_priority_are_refused_naming_the_product(app) -> None:
    crm, c = app
    first = _line(crm, c, product_id=c["laptop"].id, priority=5)
    with pytest.raises(ValidationError, match=rf"line {first.id + 1} overlaps line {first.id} of price list "
                                              rf"{c['list'].id} at the same priority 5: both cover LAP-14;"):
        _line(crm, c, group_id=c["hardware"].id, priority=5)
    _line(crm, c, group_id=c["hardware"].id, priority=6)         # another priority: fine


def test_a_line_for_everything_names_every_shared_product(app) -> None:
    crm, c = app
    _line(crm, c, group_id=c["hardware"].id, priority=1)
    with pytest.raises(ValidationError, match="both cover LAP-14, DOCK; give one of them another priority"):
        _line(crm, c, priority=1)


def test_a_group_and_its_subgroup_overlap(app) -> None:
    crm, c = app
    _line(crm, c, group_id=c["laptops"].id, priority=3)
    with pytest.raises(ValidationError, match="both cover LAP-14"):
        _line(crm, c, group_id=c["hardware"].id, priority=3)


def test_disjoint_scopes_share_a_priority(app) -> None:
    crm, c = app
    _line(crm, c, product_id=c["laptop"].id, priority=1)
    _line(crm, c, product_id=c["dock"].id, priority=1)
    _line(crm, c, group_id=c["services"].id, priority=1)
    with crm.unit_of_work() as uow:
        assert uow.query("price_list_line").count() == 3


def test_lines_of_other_lists_do_not_tie(app) -> None:
    crm, c = app
    _line(crm, c, product_id=c["laptop"].id, priority=1)
    with crm.unit_of_work() as uow:
        other = uow.create("price_list", name="Other", currency="EUR")
        uow.create("price_list_line", price_list_id=other.id, product_id=c["laptop"].id, priority=1)
        uow.commit()


def test_an_update_to_a_taken_priority_is_refused_and_a_batch_with_a_tie_too(app) -> None:
    crm, c = app
    _line(crm, c, product_id=c["laptop"].id, priority=1)
    moved = _line(crm, c, group_id=c["laptops"].id, priority=2)
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match=f"line {moved.id} overlaps line"):
        uow.update("price_list_line", moved.id, priority=1)
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="at the same priority 7: both cover DOCK"):
        uow.create_many("price_list_line", [{"price_list_id": c["list"].id, "product_id": c["dock"].id, "priority": 7},
                                            {"price_list_id": c["list"].id, "priority": 7}])
    with crm.unit_of_work() as uow:
        assert uow.query("price_list_line").count() == 2


def test_an_empty_group_still_overlaps_by_scope(app) -> None:
    crm, c = app
    with crm.unit_of_work() as uow:
        empty = uow.create("product_group", name="Empty", parent_id=c["hardware"].id)
        uow.commit()
    _line(crm, c, group_id=empty.id, priority=4)
    with pytest.raises(ValidationError, match="no products yet, but their scopes overlap"):
        _line(crm, c, group_id=c["hardware"].id, priority=4)


def test_a_group_cannot_sit_below_itself(app) -> None:
    crm, c = app
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="cannot sit below group"):
        uow.update("product_group", c["hardware"].id, parent_id=c["laptops"].id)


@pytest.mark.parametrize(("values", "message"), [
    ({"product_id": "laptop", "group_id": "hardware"}, "a product or a product group, not both"),
    ({"base": "price_list"}, "names the list it starts from"),
    ({"base": "fixed"}, "needs a fixed_price"),
    ({"min_margin_percent": "100"}, "less than 100 percent"),
    ({"min_margin_percent": "30", "max_margin_percent": "20"}, "is below min_margin_percent"),
    ({"discount_percent": "120"}, "percentage from 0 to 100"),
])
def test_nonsense_lines_are_refused(app, values, message) -> None:
    crm, c = app
    given = {k: (c[v].id if k.endswith("_id") else v) for k, v in values.items()}
    with pytest.raises(ValidationError, match=message):
        _line(crm, c, priority=1, **given)


def test_a_list_serves_one_audience(app) -> None:
    crm, c = app
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="names account_id and segment"):
        uow.create("price_list", name="Two", currency="EUR", account_id=c["retail"].id, segment="retail")
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="currency"):
        uow.create("price_list", name="Bad", currency="XXX")


def test_naming_an_account_in_a_vendor_product_makes_it_a_vendor(app) -> None:
    crm, c = app
    with crm.unit_of_work() as uow:
        uow.create("vendor_product", vendor_id=c["plain"].id, product_id=c["dock"].id, cost="100 EUR")
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.get("account", c["plain"].id).vendor is True
        assert uow.get("account", c["retail"].id).vendor is False


def test_moving_a_product_into_a_group_with_a_line_at_its_priority_is_refused(app) -> None:
    crm, c = app
    _line(crm, c, product_id=c["setup"].id, priority=8)
    _line(crm, c, group_id=c["hardware"].id, priority=8)            # setup is a service: no overlap yet
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="both cover SETUP"):
        uow.update("product", c["setup"].id, group_id=c["laptops"].id)
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="both cover SETUP"):
        uow.update("product_group", c["services"].id, parent_id=c["hardware"].id)
