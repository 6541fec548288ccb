"""Stock reservations and the reorder list."""

from __future__ import annotations

from decimal import Decimal

from catalog_support import catalog

from crm_catalog.stock import available, release, reorder_list, reserve


def test_reserve_and_release_touch_tracked_products_only(crm_factory) -> None:
    crm = crm_factory(plugins=["catalog"])
    c = catalog(crm)
    with crm.unit_of_work() as uow:
        uow.update(c["laptop"], track_stock=True, reorder_point="5")
        store = uow.create("stock_location", name="Main")
        uow.create("stock_level", product_id=c["laptop"].id, location_id=store.id, on_hand="8")
        reserve(uow, [(c["laptop"].id, Decimal(2)), (c["dock"].id, Decimal(1))], source="order:1")
        reserve(uow, [(c["laptop"].id, Decimal(1))], source="order:2")
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.query("stock_reservation").count() == 2
        assert available(uow, [c["laptop"].id, c["dock"].id]) == {c["laptop"].id: (Decimal(8), Decimal(3))}
        [due] = reorder_list(uow)
        assert (due.code, due.available) == ("LAP-14", Decimal(5))
        release(uow, [(c["laptop"].id, Decimal(1))], source="order:1")
        release(uow, [(c["laptop"].id, Decimal(5))], source="order:2")
        uow.commit()
    with crm.unit_of_work() as uow:
        assert [(r.source, r.quantity) for r in uow.query("stock_reservation").all()] == [("order:1", Decimal(1))]
        assert reorder_list(uow) == []
