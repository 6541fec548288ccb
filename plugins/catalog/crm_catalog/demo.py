"""The catalog chapter of ``crm demo`` (told through ``crm_demo``).

After the core's and the sales chapters: the sales director sets up a small catalog (a product
group tree, a tax category, five products with list prices and costs, a vendor with its
products, stock with a reorder point), a price list for the retail segment (a quantity break,
a group discount with rounding and a minimum margin), files the first account under that
segment with a manual customer discount, and explains one price step by step (``crm price
explain``); the reorder list ends the chapter (``crm catalog reorder``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING

from crm_catalog.cli import explain_lines
from crm_catalog.pricing import explain_price
from crm_catalog.stock import reorder_list, reserve

if TYPE_CHECKING:
    from crmcore.demo import Story

__all__ = ["tell"]

#: The retail segment the chapter's price list serves.
SEGMENT = "retail"
#: Products: code, name, group, list price, cost, tracked stock on hand (None: untracked).
PRODUCTS = (
    ("LAP-14", "Laptop 14-inch", "Laptops", "1200.00", "840.00", "6"),
    ("LAP-16", "Laptop 16-inch", "Laptops", "1650.00", "1150.00", "20"),
    ("DOCK-1", "Docking station", "Accessories", "240.00", "150.00", "40"),
    ("BAG-1", "Laptop bag", "Accessories", "60.00", "22.00", None),
    ("SETUP", "On-site setup", "Services", "180.00", None, None),
)


def tell(story: Story) -> None:
    """Build the catalog, price for the retail segment and explain one price."""
    crm, currency = story.crm, story.currency
    account = next(iter(story.accounts.values()), None)
    with crm.unit_of_work() as uow:
        hardware = uow.create("product_group", name="Hardware", code="HW")
        groups = {"Hardware": hardware}
        for name, parent in (("Laptops", hardware), ("Accessories", hardware), ("Services", None)):
            groups[name] = uow.create("product_group", name=name, code=name[:3].upper(),
                                      parent_id=parent.id if parent is not None else None)
        vat = uow.create("tax_category", code="STD", name="Standard rate", rate="20.00")
        products = {}
        for code, name, group, price, cost, stock in PRODUCTS:
            products[code] = uow.create(
                "product", code=code, name=name, group_id=groups[group].id, tax_category_id=vat.id,
                list_price=f"{price} {currency}", cost=f"{cost} {currency}" if cost else None,
                track_stock=stock is not None, reorder_point="5" if stock is not None else None,
                reorder_quantity="10" if stock is not None else None)
        vendor = uow.create("account", name="Northwind Components", industry="Wholesale")
        uow.create_many("vendor_product", [
            {"vendor_id": vendor.id, "product_id": products[code].id, "vendor_code": f"NW-{code}",
             "cost": f"{cost} {currency}", "lead_time_days": days, "preferred": True}
            for code, cost, days in (("LAP-14", "820.00", 14), ("LAP-16", "1120.00", 14), ("DOCK-1", "145.00", 5))])
        store = uow.create("stock_location", name="Main warehouse")
        uow.create_many("stock_level", [{"product_id": products[code].id, "location_id": store.id, "on_hand": stock}
                                        for code, *_, stock in PRODUCTS if stock is not None])
        retail = uow.create("price_list", name="Retail", currency=currency, segment=SEGMENT, stacking="exclusive",
                            valid_from=story.today.replace(month=1, day=1),
                            description="Prices for retail customers")
        uow.create_many("price_list_line", [
            {"price_list_id": retail.id, "group_id": groups["Hardware"].id, "priority": 10, "discount_percent": "8",
             "rounding": "5", "min_margin_percent": "25", "note": "hardware -8%, to 5, keep 25% margin"},
            {"price_list_id": retail.id, "group_id": groups["Laptops"].id, "priority": 20, "min_quantity": "10",
             "discount_percent": "12", "rounding": "5", "min_margin_percent": "25", "note": "10 laptops or more"},
            {"price_list_id": retail.id, "product_id": products["SETUP"].id, "priority": 30, "base": "fixed",
             "fixed_price": f"150.00 {currency}", "note": "setup at a flat price"},
        ])
        if account is not None:
            uow.update("account", account.id, segment=SEGMENT)
            uow.create("customer_discount", account_id=account.id, percent="3", kind="manual",
                       valid_from=story.today, valid_to=story.today + dt.timedelta(days=365),
                       note="loyalty, agreed by the sales director")
            reserve(uow, [(products["LAP-14"].id, Decimal(2))], source=f"demo:{account.id}")
        uow.commit()
    story.echo(f"Catalog: {len(PRODUCTS)} products in {len(groups)} groups, vendor {vendor.name} supplies 3 of them; "
               f"price list Retail for the {SEGMENT} segment with 3 lines")
    if account is None:
        return
    story.echo(f"  {account.name} joins the {SEGMENT} segment with a 3% loyalty discount")
    with crm.unit_of_work(story.actor(story.director)) as uow:
        line = explain_price(uow, account.id, products["LAP-14"].id, Decimal(12), story.today)
        reorder = reorder_list(uow)
    story.echo(f"  crm price explain --account {account.id} --product LAP-14 --quantity 12")
    for text in explain_lines(line):
        story.echo(f"    {text}")
    for item in reorder:
        story.echo(f"  reorder {item.code}: available {item.available.normalize():f} at reorder point "
                   f"{item.reorder_point.normalize():f}, from {item.vendor} in {item.lead_time_days} days at {item.cost}")
