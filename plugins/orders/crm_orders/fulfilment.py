"""Hand-off of confirmed orders: typed fulfilment requests written through the outbox in the
order's own transaction, and the order's state following the answers.

Each line goes to a fulfilment kind (``production``, ``delivery`` or ``sales_office_review``)
by its product's group: ``[plugins.orders] routes`` maps group names (or codes) to kinds, a
subgroup inheriting its parent's route, ``default_route`` covering the rest and lines without
a product. An order gets one request per kind with its lines, posted to the sink
``sinks[kind]`` (the kind's own name by default) with an idempotency key per order and kind.

When the other system answers, the order follows the supply states of its requests: any
accepted or fulfilled makes it ``in_fulfilment``; all fulfilled (cancelled ones aside) makes it
``fulfilled``; all cancelled cancels it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from crm_outbox import OutboxItem, post
from crmcore import Actor

from crm_orders import documents, following
from crm_orders.settings import orders_settings

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["SOURCE", "follow_answers", "post_requests", "route_products", "supply_target"]

#: The ``source_entity`` of the requests orders post.
SOURCE = "sales_order"
_ORDER_LINE_FIELDS = ("id", "position", "product_id", "description", "quantity")


def route_products(uow: UnitOfWork, product_ids: Sequence[int]) -> dict[int, str]:
    """The fulfilment kind of each product (two reads: the products, the group tree)."""
    settings = orders_settings(uow.crm)
    if not product_ids:
        return {}
    with uow.acting_as(Actor.system()):
        products = {p.id: p.values.get("group_id") for p in uow.find_many("product", "id", sorted(set(product_ids)), fields=("group_id",))}
        groups = {row["id"]: row for row in uow.select("product_group", fields=("id", "name", "code", "parent_id")).all()}
    routes = settings.routes
    kinds: dict[int, str] = {}
    for product_id, group_id in products.items():
        kind, seen = None, set()
        while group_id is not None and group_id not in seen and kind is None:
            seen.add(group_id)
            group = groups.get(group_id)
            if group is None:
                break
            kind = routes.get(group.get("name")) or routes.get(group.get("code"))
            group_id = group.get("parent_id")
        kinds[product_id] = kind or settings.default_route
    return kinds


def post_requests(uow: UnitOfWork, orders: Sequence[Record]) -> list[int]:
    """Write the fulfilment requests of the confirmed *orders* through the outbox (in this unit
    of work); returns the requests' ids."""
    if not orders:
        return []
    settings = orders_settings(uow.crm)
    lines = documents.lines_of(uow, documents.DOCUMENTS["sales_order"], [o.id for o in orders], fields=_ORDER_LINE_FIELDS)
    kinds = route_products(uow, [line["product_id"] for found in lines.values() for line in found if line.get("product_id")])
    items = []
    for order in orders:
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for line in lines[order.id]:
            kind = kinds.get(line.get("product_id"), settings.default_route) if line.get("product_id") else settings.default_route
            by_kind.setdefault(kind, []).append({
                "line_id": line["id"], "position": line.get("position"), "product_id": line.get("product_id"),
                "description": line.get("description"), "quantity": str(line["quantity"]),
            })
        for kind, kind_lines in sorted(by_kind.items()):
            items.append(OutboxItem(kind=kind, sink=settings.sink(kind), payload=_payload(order, kind, kind_lines),
                                    source_entity=SOURCE, source_id=order.id))
    return post(uow, items)


def _payload(order: Record, kind: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    values = order.values
    total = values.get("net_total")
    return {
        "kind": kind, "order_id": order.id, "title": values.get("title"), "account_id": values.get("account_id"),
        "opportunity_id": values.get("opportunity_id"), "quote_id": values.get("quote_id"),
        "currency": values.get("currency"), "net_total": str(total.amount) if total is not None else None,
        "lines": lines,
    }


def supply_target(states: Sequence[str]) -> str | None:
    """The order state the supply states of its requests call for (``None``: no change)."""
    live = [s for s in states if s != "cancelled"]
    if states and not live:
        return "cancelled"
    if live and all(s == "fulfilled" for s in live):
        return "fulfilled"
    if any(s in ("accepted", "fulfilled") for s in live):
        return "in_fulfilment"
    return None


_ORDER_OF = {"confirmed": ("in_fulfilment", "fulfilled", "cancelled"), "in_fulfilment": ("fulfilled", "cancelled")}


def follow_answers(uow: UnitOfWork, items: Sequence[tuple[Record, str, str]]) -> list[Record]:
    """``outbox_answered``: move the orders whose requests were answered to the state their
    requests' supply states call for (one read of their requests, one batch move per state)."""
    ids = sorted({r.values.get("source_id") for r, _, _ in items if r.values.get("source_entity") == SOURCE})
    if not ids:
        return []
    with uow.acting_as(Actor.system()):
        states: dict[int, list[str]] = {i: [] for i in ids}
        for row in uow.select("outbox_request", fields=("source_id", "supply_state")).where(
                ("source_id", "in", ids), source_entity=SOURCE).all():
            states[row["source_id"]].append(row["supply_state"])
        orders = uow.get_many("sales_order", ids)
        by_target: dict[str, list[Record]] = {}
        for order in orders:
            target = supply_target(states[order.id])
            if target is not None and target in _ORDER_OF.get(order.values.get("state"), ()):
                by_target.setdefault(target, []).append(order)
        moved: list[Record] = []
        for target in ("in_fulfilment", "fulfilled", "cancelled"):
            if by_target.get(target):
                moved.extend(uow.move_many(by_target[target], target))
    fulfilled = [o for o in moved if o.values.get("state") == "fulfilled"]
    if fulfilled:
        following.mark_won(uow, "fulfilled", fulfilled)
    return moved

