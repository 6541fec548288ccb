"""The quotes-and-orders chapter of ``crm demo`` (``crm_demo``): the seed's flow.

On the company the core's chapters built and the catalog the catalog chapter set up (a retail
price list, an account in the retail segment with a customer discount): a rep's new deal for
that account goes the whole way. It reaches quotation, its quote is priced by the segment list
and the customer discount, sent, revised (one laptop fewer), sent again and accepted; the order
is confirmed, its fulfilment requests go through the outbox (routed by product group, e.g.
hardware to production), the worker delivers them, and the deal is won.

Delivery needs the sinks in the deployment's settings; with none configured the chapter says
so and stops before confirming (``[outbox.sinks.production] type = "file"`` ...).
"""

from __future__ import annotations

from decimal import Decimal

from crm_outbox import deliver
from crm_outbox.settings import outbox_settings
from crmcore.demo import Story, money_text
from crmcore.records import Record

from crm_orders import following
from crm_orders.fulfilment import route_products
from crm_orders.orders import confirm_order, order_from_quote
from crm_orders.quotes import accept_quote, quote_from_opportunity, revise_quote, send_quote
from crm_orders.settings import orders_settings

__all__ = ["tell"]

#: What the customer wants: catalog product codes (the catalog chapter's) and quantities.
WANTED = (("LAP-14", 12), ("DOCK-1", 12), ("SETUP", 1))


def _deal(story: Story, account: Record, products: dict[str, Record]) -> Record | None:
    """A new deal of the account's rep for :data:`WANTED`, brought to ``rfp_received``."""
    crm = story.crm
    owner = story.users[story.reps[0]].id if story.reps else None
    with crm.unit_of_work() as uow:
        deal = uow.create("opportunity", name=f"{account.values['name']}: laptop refresh", account_id=account.id,
                          owner_id=owner, stage="initiation", amount=f"1.00 {story.currency}")
        uow.create_many("opportunity_line", [
            {"opportunity_id": deal.id, "product": products[code].values["name"], "product_id": products[code].id,
             "quantity": quantity, "unit_price": products[code].values["list_price"], "position": position}
            for position, (code, quantity) in enumerate(WANTED, start=1)])
        moved = following.advance(uow, deal, "rfp_received")
        uow.commit()
    return moved


def tell(story: Story) -> None:
    """Tell the chapter (after the core's and the sales chapters)."""
    echo, crm = story.echo, story.crm
    echo("")
    echo("Quotes and orders")
    account = next(iter(story.accounts.values()), None)
    with crm.unit_of_work() as uow:
        products = {p.values["code"]: p for p in uow.find_many("product", "code", [code for code, _ in WANTED])}
    if account is None or len(products) < len(WANTED):
        echo("  skipped: the catalog chapter made no account or products to quote")
        return
    deal = _deal(story, account, products)
    if deal is None:
        echo("  skipped: the deal could not reach rfp_received in this pipeline")
        return
    echo(f"  {deal.values['name']!r} reaches {deal.values['stage']} with {len(WANTED)} catalog lines")
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
        laptops = uow.query("quote_line").where(quote_id=second.id, position=1).first()
        uow.update(laptops, quantity=laptops.values["quantity"] - Decimal(1))
        uow.commit()
    with crm.unit_of_work(rep) as uow:
        send_quote(uow, second.id)
        accepted = accept_quote(uow, second.id)
        uow.commit()
    echo(f"  the deal moved to {stage}; the customer wants one laptop fewer: quote {second.id} v2 supersedes v1, "
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

