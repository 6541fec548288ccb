"""What the catalog checks when its records are saved (called from the before-create and
before-update hooks, a batch at a time).

- a product group may not sit below itself;
- a price list serves at most one audience (an account, a customer group or a segment) and
  prices in a known currency, with ``valid_from`` not after ``valid_to``;
- a price list line covers a product, a group or everything (not a product and a group), has a
  base that makes sense (``price_list`` names another list, ``fixed`` a fixed price), and may
  not overlap a line of the same list at the same priority (one scope contains the other: the
  same product, a product of the group or of a subgroup, a group and its subgroup, everything):
  a product covered by both would have no declared winner, so the save is refused naming the
  products they share (checked once the lines are written, in the same transaction, so the
  lines of one import or batch are checked against each other too);
- a discount's percent is between 0 and 100, and its validity is ordered.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from crmcore.errors import ValidationError

from crm_catalog.loading import chunks, group_ancestors

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["check_batch", "check_moved", "check_ties", "flag_vendors", "overlap_problem"]

_HUNDRED = decimal.Decimal(100)
#: Shared products named in a refusal, at most.
NAMED = 10


def check_batch(uow: UnitOfWork, entity: str, rows: Sequence[dict[str, Any]]) -> None:
    """Check the merged values (stored values with the changes) of records of *entity* about
    to be saved; each row carries ``id`` when it is an update.

    :raises ValidationError: naming the record and the value at fault.
    """
    if entity == "product_group":
        _groups(uow, rows)
    elif entity == "price_list":
        for row in rows:
            _price_list(row)
    elif entity == "price_list_line":
        for row in rows:
            _line(row)
    elif entity == "customer_discount":
        for row in rows:
            _dates(entity, row)


def _dates(entity: str, row: dict[str, Any]) -> None:
    start, end = row.get("valid_from"), row.get("valid_to")
    if start is not None and end is not None and end < start:
        raise ValidationError({"valid_to": [f"{end} is before valid_from {start}; the last day comes after the first"]},
                              entity=entity)


def _groups(uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> None:
    moving = {r["id"]: r.get("parent_id") for r in rows if r.get("id") is not None}
    if not any(moving.values()):
        return
    parents = {r["id"]: r["parent_id"] for r in uow.select("product_group", fields=("id", "parent_id")).all()}
    parents.update(moving)
    for gid, parent in moving.items():
        if parent is not None and gid in group_ancestors(parents, parent):
            raise ValidationError({"parent_id": [
                f"product group {gid} cannot sit below group {parent}, which is itself or one of its subgroups; "
                "choose another parent"]}, entity="product_group")


def _price_list(row: dict[str, Any]) -> None:
    audiences = [name for name in ("account_id", "customer_group_id", "segment") if row.get(name)]
    if len(audiences) > 1:
        raise ValidationError({audiences[1]: [
            f"price list {row.get('name')!r} names {' and '.join(audiences)}; a list serves one audience "
            "(an account, a customer group or a segment) or, with none, everyone"]}, entity="price_list")
    _dates("price_list", row)


def _line(row: dict[str, Any]) -> None:
    if row.get("product_id") is not None and row.get("group_id") is not None:
        raise ValidationError({"group_id": [
            "a price list line covers a product or a product group, not both; leave one empty"]},
            entity="price_list_line")
    base = row.get("base") or "list_price"
    if base == "price_list":
        if row.get("base_price_list_id") is None:
            raise ValidationError({"base_price_list_id": [
                "a line with base 'price_list' names the list it starts from; set base_price_list_id"]},
                entity="price_list_line")
        if row.get("base_price_list_id") == row.get("price_list_id"):
            raise ValidationError({"base_price_list_id": [
                f"price list {row.get('price_list_id')} cannot start from itself; choose another base list"]},
                entity="price_list_line")
    if base == "fixed" and row.get("fixed_price") is None:
        raise ValidationError({"fixed_price": ["a line with base 'fixed' needs a fixed_price"]}, entity="price_list_line")
    low, high = row.get("min_margin_percent"), row.get("max_margin_percent")
    for name, value in (("min_margin_percent", low), ("max_margin_percent", high)):
        if value is not None and value >= _HUNDRED:
            raise ValidationError({name: [f"a margin is less than 100 percent of the price, got {value}"]},
                                  entity="price_list_line")
    if low is not None and high is not None and high < low:
        raise ValidationError({"max_margin_percent": [f"{high} is below min_margin_percent {low}"]},
                              entity="price_list_line")


def _scope(row: dict[str, Any]) -> tuple[str, int | None]:
    if row.get("product_id") is not None:
        return "product", row["product_id"]
    if row.get("group_id") is not None:
        return "group", row["group_id"]
    return "all", None


def overlap_problem(
    a: tuple[str, int | None], b: tuple[str, int | None], product_groups: dict[int, int | None],
    parents: dict[int, int | None],
) -> list[int] | None:
    """The product ids two overlapping line scopes share today (possibly none yet), or ``None``
    when the scopes are disjoint. *a* and *b* are ``("product", id)``, ``("group", id)`` or
    ``("all", None)``; scopes overlap when one contains the other (a group contains its
    subgroups and their products). *product_groups* maps products to their group, *parents*
    groups to their parent."""
    if a[0] == "all" or b[0] == "all":
        inner = b if a[0] == "all" else a
        return _covered(inner, product_groups, parents)
    if a[0] == "product" or b[0] == "product":
        product, other = (a, b) if a[0] == "product" else (b, a)
        assert product[1] is not None
        if other[0] == "product":
            return [product[1]] if other[1] == product[1] else None
        return [product[1]] if other[1] in group_ancestors(parents, product_groups.get(product[1])) else None
    if a[1] in group_ancestors(parents, b[1]):  # a contains b
        return _covered(b, product_groups, parents)
    if b[1] in group_ancestors(parents, a[1]):
        return _covered(a, product_groups, parents)
    return None


def _covered(scope: tuple[str, int | None], product_groups: dict[int, int | None],
             parents: dict[int, int | None]) -> list[int]:
    kind, ref = scope
    if kind == "all":
        return sorted(product_groups)
    if kind == "product":
        return [ref] if ref is not None else []
    return sorted(pid for pid, gid in product_groups.items() if ref in group_ancestors(parents, gid))


def check_ties(uow: UnitOfWork, records: Sequence[Any]) -> None:
    """Refuse price list lines just written (*records*) that overlap another line of their list
    at the same priority. Run after the write, so lines of one batch (an import, a
    ``create_many``) are checked against each other and against those saved before; the
    refusal rolls the whole write back."""
    _overlaps(uow, [{**record.values, "id": record.id} for record in records])


def check_moved(uow: UnitOfWork, entity: str, ids: Sequence[int]) -> None:
    """Refuse moving products to another group (or groups below another parent) when their
    lines would then overlap a line of the same list at the same priority."""
    if not ids:
        return
    field = "product_id" if entity == "product" else "group_id"
    lines: list[Any] = []
    for part in chunks(sorted(ids)):
        lines += uow.query("price_list_line").where((field, "in", part)).all()
    if entity == "product_group":
        parents = {r["id"]: r["parent_id"] for r in uow.select("product_group", fields=("id", "parent_id")).all()}
        moved = set(ids)
        subtree = sorted(g for g in parents if set(group_ancestors(parents, g)) & moved)
        for part in chunks(sorted(set(subtree) - moved)):
            lines += uow.query("price_list_line").where(("group_id", "in", part)).all()
        products = [r["id"] for part in chunks(subtree)
                    for r in uow.select("product", fields=("id",)).where(("group_id", "in", part)).all()]
        for part in chunks(products):
            lines += uow.query("price_list_line").where(("product_id", "in", part)).all()
    check_ties(uow, lines)


def _overlaps(uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> None:
    by_list: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_list.setdefault(row["price_list_id"], []).append(row)
    saved: dict[int, list[dict[str, Any]]] = {}
    priorities = sorted({r["priority"] for r in rows})
    for part in chunks(sorted(by_list)):
        for prio in chunks(priorities):
            for line in (uow.select("price_list_line", fields=("id", "price_list_id", "product_id", "group_id", "priority"))
                         .where(("price_list_id", "in", part), ("priority", "in", prio)).all()):
                saved.setdefault(line["price_list_id"], []).append(line)
    context: list[tuple[dict[int, int | None], dict[int, int | None]]] = []

    def tree() -> tuple[dict[int, int | None], dict[int, int | None]]:
        if not context:
            context.append(_tree(uow))
        return context[0]

    for list_id, batch in by_list.items():
        updated = {r["id"] for r in batch if r.get("id") is not None}
        # per priority: the lines by product id, and the group and everything lines
        products: dict[int, dict[int, dict[str, Any]]] = {}
        wide: dict[int, list[dict[str, Any]]] = {}
        for other in [s for s in saved.get(list_id, []) if s["id"] not in updated]:
            _index(other, products, wide)
        for row in batch:
            prio, scope = row["priority"], _scope(row)
            same = products.get(prio, {})
            rivals = list(wide.get(prio, ()))
            if scope[0] == "product":
                if scope[1] in same:
                    rivals.append(same[scope[1]])
            elif same:
                rivals += list(same.values())
            for other in rivals:
                shared = overlap_problem(scope, _scope(other), *tree())
                if shared is not None:
                    raise ValidationError({"priority": [_tie_message(uow, row, other, shared)]}, entity="price_list_line")
            _index(row, products, wide)


def _index(line: dict[str, Any], products: dict[int, dict[int, dict[str, Any]]],
           wide: dict[int, list[dict[str, Any]]]) -> None:
    if line.get("product_id") is not None:
        products.setdefault(line["priority"], {})[line["product_id"]] = line
    else:
        wide.setdefault(line["priority"], []).append(line)


def _tree(uow: UnitOfWork) -> tuple[dict[int, int | None], dict[int, int | None]]:
    parents = {r["id"]: r["parent_id"] for r in uow.select("product_group", fields=("id", "parent_id")).all()}
    products = {r["id"]: r["group_id"] for r in uow.select("product", fields=("id", "group_id")).all()}
    return products, parents


def _tie_message(uow: UnitOfWork, row: dict[str, Any], other: dict[str, Any], shared: list[int]) -> str:
    codes = {r["id"]: r["code"] for r in uow.select("product", fields=("id", "code")).where(("id", "in", shared[:NAMED])).all()}
    names = ", ".join(codes.get(pid, str(pid)) for pid in shared[:NAMED]) or "no products yet, but their scopes overlap"
    more = f" and {len(shared) - NAMED} more" if len(shared) > NAMED else ""
    return (f"line {row['id']} overlaps line {other['id']} of price list {row['price_list_id']} at the same priority {row['priority']}: "
            f"both cover {names}{more}; give one of them another priority")


def flag_vendors(uow: UnitOfWork, records: Sequence[Any]) -> None:
    """Flag the accounts that vendor products name as vendors (those not flagged yet)."""
    ids = sorted({r.vendor_id for r in records})
    accounts: list[Any] = []
    for part in chunks(ids):
        accounts += uow.query("account").where(("id", "in", part)).where({"any": [
            ("vendor", "is null"), ("vendor", "=", False)]}).all()
    if accounts:
        uow.update_many("account", [(account, {"vendor": True}) for account in accounts])
