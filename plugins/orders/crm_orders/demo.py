"""The quotes-and-orders chapter of ``crm demo`` (``crm_demo``): the seed's flow.

On the company the core's chapters built: a small machine catalog with a price list for the
industry segment and a customer discount; then one deal of a rep goes the whole way: it
reaches quotation, its quote is priced by the segment list and the customer discount, sent,
revised (one machine fewer), sent again and accepted; the order is confirmed, its fulfilment
requests go through the outbox (the machines to production), the worker delivers them, and the
deal is won.

Delivery needs the sinks in the deployment's settings; with none configured the chapter says
so and stops before confirming (``[outbox.sinks.production] type = "file"`` ...).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from crm_outbox import deliver
from crm_outbox.settings import outbox_settings
from crmcore.demo import Story, money_text
from crmcore.records import Record

from crm_orders import following
from crm_orders.fulfilment import route_products
from crm_orders.orders import confirm_order, order_from_quote
from crm_orders.quotes import accept_quote, quote_from_opportunity, revise_quote, send_quote
from crm_orders.settings import orders_settings

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["tell"]

SEGMENT = "industry"
PRODUCTS = (  # code, name, group, list price, tax category
    ("LATHE-L1", "Lathe L1", "Lathes", "18500.00", "VAT19"),
    ("MILL-M2", "Milling machine M2", "Machines", "42000.00", "VAT19"),
    ("BELT-07", "Drive belt", "Spare parts", "45.50", "VAT7"),
    ("SETUP", "Installation and training", "Services", "1200.00", "VAT19"),
)


def _catalog(uow: UnitOfWork, currency: str) -> dict[str, Record]:
    machines = uow.create("product_group", name="Machines", code="MAC")
    groups = {
        "Machines": machines,
        "Lathes": uow.create("product_group", name="Lathes", code="LAT", parent_id=machines.id),
        "Spare parts": uow.create("product_group", name="Spare parts", code="SPA"),
        "Services": uow.create("product_group", name="Services", code="SRV"),
    }
    taxes = {"VAT19": uow.create("tax_category", code="VAT19", name="Standard VAT", rate="19.00"),
             "VAT7": uow.create("tax_category", code="VAT7", name="Reduced VAT", rate="7.00")}
    products = {}
    for code, name, group, price, tax in PRODUCTS:
        products[code] = uow.create("product", code=code, name=name, group_id=groups[group].id,
                                    list_price=f"{price} {currency}", tax_category_id=taxes[tax].id)
    price_list = uow.create("price_list", name="Industry", currency=currency, segment=SEGMENT)
    uow.create("price_list_line", price_list_id=price_list.id, group_id=machines.id, priority=10, discount_percent="5")
    return products


def _deal(story: Story) -> Record | None:
    """An open deal of a rep, latest in the pipeline first, brought to ``rfp_received``."""
    opportunities = [o for o in story.opportunities if o.values.get("account_id")]
    order = ("rfp_received", "qualification", "identification", "initiation")
    for stage in order:
        for opportunity in opportunities:
            if opportunity.values.get("stage") == stage:
                with story.crm.unit_of_work() as uow:
                    record = uow.get("opportunity", opportunity.id)
                    moved = record if stage == "rfp_received" else following.advance(uow, record, "rfp_received")
                    uow.commit()
                if moved is not None:
                    return moved
    return None


def tell(story: Story) -> None:
    """Tell the chapter (after the core's and the sales chapters)."""
    echo, crm = story.echo, story.crm
    echo("")
    echo("Quotes and orders")
    deal = _deal(story)
    if deal is None:
        echo("  skipped: no open deal with an account to quote")
        return
    currency = story.currency
    with crm.unit_of_work() as uow:
        products = _catalog(uow, currency)
        account = uow.update("account", deal.values["account_id"], segment=SEGMENT)
        uow.create("customer_discount", account_id=account.id, percent="3")
        uow.delete_where("opportunity_line", {"opportunity_id": deal.id})
        for position, (code, quantity) in enumerate((("LATHE-L1", 3), ("BELT-07", 12), ("SETUP", 1)), start=1):
            product = products[code]
            uow.create("opportunity_line", opportunity_id=deal.id, product=product.values["name"], product_id=product.id,
                       quantity=quantity, unit_price=product.values["list_price"], position=position)
        uow.commit()
    echo(f"  catalog: {len(PRODUCTS)} products in 4 groups; price list Industry (machines 5% off) for segment {SEGMENT!r}; "
         f"{account.values['name']} gets a 3% customer discount")
    rep = story.actor(story.owner_name(deal)) if deal.values.get("owner_id") else None
    with crm.unit_of_work(rep) as uow:
        quote = quote_from_opportunity(uow, deal.id)
        for line in uow.query("quote_line").where(quote_id=quote.id).order_by("position").all():
            kinds = " > ".join(step["kind"] for step in (line.price_snapshot or {}).get("steps", []))
            discounts = " + ".join(f"{d}%" for d in line.discounts)
            echo(f"    {line.quantity.normalize()} x {line.description}: {money_text(line.unit_price)}"
                 f"{' less ' + discounts if discounts else ''} ({kinds or 'given price'})")
        sent = send_quote(uow, quote.id)
        uow.commit()
    echo(f"  quote {quote.id} v1 for {deal.values['name']!r}: net {money_text(quote.net_total)}, total "
         f"{money_text(quote.grand_total)}; {'sent' if not sent.held else 'waiting for approval'}")
    with crm.unit_of_work(rep) as uow:
        stage = uow.get("opportunity", deal.id).values.get("stage")
        second = revise_quote(uow, quote.id)
        lathe = uow.query("quote_line").where(quote_id=second.id, position=1).first()
        uow.update(lathe, quantity=lathe.values["quantity"] - Decimal(1))
        uow.commit()
    with crm.unit_of_work(rep) as uow:
        send_quote(uow, second.id)
        accepted = accept_quote(uow, second.id)
        uow.commit()
    echo(f"  the deal moved to {stage}; the customer wants one lathe fewer: quote {second.id} v2 supersedes v1, "
         f"net {money_text(accepted.values['net_total'])}, sent and accepted")
    with crm.unit_of_work(rep) as uow:
        order = uow.query("sales_order").where(quote_id=second.id).first() or order_from_quote(uow, second.id)
        uow.commit()
    sinks = set(outbox_settings(crm).sinks)
    with crm.unit_of_work() as uow:
        kinds = set(route_products(uow, [p.id for p in products.values()]).values())
    needed = {orders_settings(crm).sink(kind) for kind in kinds}
    if not needed <= sinks:
        echo(f"  sales order {order.id} stays a draft: configure the outbox sinks {', '.join(sorted(needed - sinks))} "
             "([outbox.sinks.NAME] type = \"file\", path = \"...\") to confirm and hand it off")
        return
    with crm.unit_of_work(rep) as uow:
        confirmed = confirm_order(uow, order.id)
        requests = uow.query("outbox_request").where(source_entity="sales_order", source_id=order.id).order_by("kind").all()
        uow.commit()
    echo(f"  sales order {confirmed.id} confirmed ({money_text(confirmed.values['grand_total'])}); fulfilment requests: "
         + ", ".join(f"{r.values['kind']} -> {r.values['sink']}" for r in requests))
    stats = deliver(crm)
    with crm.unit_of_work() as uow:
        won = uow.get("opportunity", deal.id)
    echo(f"  the worker delivered {stats.delivered} request{'s' if stats.delivered != 1 else ''}; "
         f"{deal.values['name']!r} is {won.values['stage']} at {money_text(won.values['amount'])}")

