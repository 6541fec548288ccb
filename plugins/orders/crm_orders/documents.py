"""Documents (quotes and sales orders) and their totals.

A document's lines keep their inputs; its totals are recomputed by the engine of
:mod:`crm_orders.totals` from those inputs and the rounding the document was priced with, so a
quote, the order made from it and (later) an invoice made from that order agree to the cent.

Writes of lines (through the services of this plugin, ``crm create quote_line``, imports)
mark their documents; before the unit of work commits, :func:`refresh_pending` recomputes each
marked document once, set-based (one read of their lines, one batch update of the documents
whose totals changed). Services that need the totals at once call :func:`refresh`.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import attrs
from crmcore import Actor
from crmcore.errors import ValidationError
from crmcore.money import Money

from crm_orders.entities import TOTAL_FIELDS
from crm_orders.totals import DocumentTotals, LineInput, Rounding, compute_totals

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = [
    "DOCUMENTS",
    "LINE_FIELDS",
    "PRICING_FIELDS",
    "PRICING_FIELDS_SET",
    "Document",
    "PendingTotals",
    "copy_lines",
    "copy_pricing",
    "document_of_line",
    "line_input",
    "lines_of",
    "mark",
    "mark_documents",
    "prepare",
    "take_prepared",
    "forget",
    "parse_discounts",
    "refresh",
    "refresh_pending",
    "rounding_of",
    "totals_of",
]


@attrs.frozen
class Document:
    """A document entity, its line entity and the line's reference to it."""

    entity: str
    line_entity: str
    parent_field: str


DOCUMENTS = {
    "quote": Document("quote", "quote_line", "quote_id"),
    "sales_order": Document("sales_order", "sales_order_line", "sales_order_id"),
}
_BY_LINE = {d.line_entity: d for d in DOCUMENTS.values()}

#: The fields of a line that carry its price; copied from a quote line to an order line.
LINE_FIELDS = ("position", "product_id", "description", "quantity", "unit_price", "discounts", "tax_code",
               "tax_rate", "price_snapshot")
#: The fields of a document its totals depend on besides its lines; copied to the order.
PRICING_FIELDS = ("currency", "document_discount", "rounding_mode", "rounding_method", "rounding_places", "pricing_date")
#: The document fields whose change calls for new totals.
PRICING_FIELDS_SET = frozenset(("currency", "document_discount", "rounding_mode", "rounding_method", "rounding_places"))
_READ_FIELDS = ("id", "position", "quantity", "unit_price", "discounts", "tax_code", "tax_rate")


def document_of_line(line_entity: str) -> Document | None:
    """The document kind whose lines are *line_entity* records."""
    return _BY_LINE.get(line_entity)


def parse_discounts(value: Any, *, where: str = "discounts") -> tuple[Decimal, ...]:
    """A line's ``discounts`` as decimals: a list of percentages (numbers or texts), or empty.

    :raises ValidationError: naming the value for anything else, or a percentage out of 0..100.
    """
    if value in (None, ""):
        return ()
    if type(value) is list and all(type(item) is str for item in value):  # as stored: parsed once per text
        key = tuple(value)
        found = _PARSED_DISCOUNTS.get((where, key))
        if found is None:
            found = _parse_discounts(key, where)
            if len(_PARSED_DISCOUNTS) >= 10_000:
                _PARSED_DISCOUNTS.clear()
            _PARSED_DISCOUNTS[(where, key)] = found
        return found
    return _parse_discounts(value if isinstance(value, list | tuple) else [value], where)


#: Discounts as stored (texts) and their decimals: lines share a few of them.
_PARSED_DISCOUNTS: dict[tuple[str, tuple[str, ...]], tuple[Decimal, ...]] = {}


def _parse_discounts(items: Sequence[Any], where: str) -> tuple[Decimal, ...]:
    found = []
    for item in items:
        try:
            if isinstance(item, bool) or isinstance(item, float):
                raise TypeError
            number = Decimal(str(item))
        except (InvalidOperation, TypeError, ValueError):
            raise ValidationError({where: [f"a discount is a percentage such as \"12.5\", got {item!r}"]}) from None
        if not Decimal(0) <= number <= Decimal(100):
            raise ValidationError({where: [f"a discount is a percentage from 0 to 100, got {item!r}"]})
        found.append(number)
    return tuple(found)


def line_input(values: Mapping[str, Any]) -> LineInput:
    """The engine's view of a line record's *values*."""
    price = values.get("unit_price")
    return LineInput(
        quantity=Decimal(values.get("quantity") or 0),
        unit_price=price.amount if isinstance(price, Money) else Decimal(0),
        discounts=parse_discounts(values.get("discounts")),
        tax_code=values.get("tax_code"),
        tax_rate=Decimal(values.get("tax_rate") or 0),
    )


def rounding_of(document: Mapping[str, Any]) -> Rounding:
    """The rounding a document was priced with."""
    return Rounding(document.get("rounding_mode") or "line", document.get("rounding_method") or "half_up",
                    int(document.get("rounding_places") if document.get("rounding_places") is not None else 2))


def totals_of(document: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]) -> DocumentTotals:
    """The totals of a document with these values and lines (in their position order)."""
    discount = document.get("document_discount")
    return compute_totals(
        [line_input(line) for line in lines],
        document_discount=Decimal(discount) if discount else None,
        rounding=rounding_of(document),
        currency=document["currency"],
    )


def copy_pricing(document: Mapping[str, Any]) -> dict[str, Any]:
    """What a document made from *document* takes over so its totals stay identical."""
    return {name: document.get(name) for name in PRICING_FIELDS}


def copy_lines(lines: Sequence[Mapping[str, Any]], *, quote_id: int | None = None) -> list[dict[str, Any]]:
    """Order line values from quote line values, in order, with their lineage."""
    copied = []
    for line in lines:
        values = {name: line.get(name) for name in LINE_FIELDS}
        if quote_id is not None:
            values["quote_id"] = quote_id
            values["quote_line_id"] = line.get("id")
        copied.append(values)
    return copied


def lines_of(uow: UnitOfWork, document: Document, ids: Iterable[int], fields: Sequence[str] = _READ_FIELDS) -> dict[int, list[dict[str, Any]]]:
    """The lines of the documents *ids*, by document, in position order (one query per 500
    documents; read as the system: totals do not depend on who asks)."""
    wanted = sorted(set(ids))
    found: dict[int, list[dict[str, Any]]] = {i: [] for i in wanted}
    columns = tuple(dict.fromkeys((*fields, document.parent_field)))
    with uow.acting_as(Actor.system()):
        for start in range(0, len(wanted), 500):
            rows = (uow.select(document.line_entity, fields=columns)
                    .where((document.parent_field, "in", wanted[start:start + 500]))
                    .order_by(document.parent_field, "position", "id").all())
            for row in rows:
                found[row[document.parent_field]].append(row)
    return found


def refresh(uow: UnitOfWork, entity: str, ids: Iterable[int], *,
            lines: Mapping[int, Sequence[Mapping[str, Any]]] | None = None) -> dict[int, DocumentTotals]:
    """Recompute the totals of the documents *ids* of *entity* and write those that changed
    (as the system: totals are read-only). Returns the totals by document id.

    :param lines: every line of each document, in position order, when the caller has them
        (it just wrote them): they are not read again.
    """
    document = DOCUMENTS[entity]
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    pending = _pending(uow)
    if pending is not None:
        pending.discard(uow, entity, wanted)
    if lines is None:
        lines = lines_of(uow, document, wanted)
    with uow.acting_as(Actor.system()):
        records = uow.get_many(entity, wanted)
        found: dict[int, DocumentTotals] = {}
        changes: list[tuple[Record, dict[str, Any]]] = []
        for record in records:
            totals = totals_of(record.values, lines[record.id])
            found[record.id] = totals
            fields = totals.as_fields()
            if any(record.values.get(name) != fields[name] for name in TOTAL_FIELDS):
                changes.append((record, fields))
        if changes:
            uow.update_many(entity, changes)
    return found


# -- documents whose lines changed in a unit of work ------------------------------------------


@attrs.define(eq=False)
class PendingTotals:
    """Per unit of work, the documents whose lines changed and whose totals are not yet
    recomputed (the app's state; forgotten with the unit)."""

    units: weakref.WeakKeyDictionary[Any, dict[str, set[int]]] = attrs.field(factory=weakref.WeakKeyDictionary)
    prepared: weakref.WeakKeyDictionary[Any, tuple[str, list[dict[str, Any]]]] = attrs.field(factory=weakref.WeakKeyDictionary)

    def add(self, uow: UnitOfWork, entity: str, ids: Iterable[int]) -> None:
        self.units.setdefault(uow, {}).setdefault(entity, set()).update(i for i in ids if i is not None)

    def discard(self, uow: UnitOfWork, entity: str, ids: Iterable[int]) -> None:
        self.units.get(uow, {}).get(entity, set()).difference_update(ids)

    def take(self, uow: UnitOfWork) -> dict[str, set[int]]:
        return self.units.pop(uow, {})


def _pending(uow: UnitOfWork) -> PendingTotals | None:
    return uow.crm.find_state(PendingTotals)


def mark(uow: UnitOfWork, line_entity: str, lines: Iterable[Mapping[str, Any]]) -> None:
    """Note that the documents of these line values changed (their totals are recomputed by
    :func:`refresh_pending` before the commit)."""
    document = document_of_line(line_entity)
    pending = _pending(uow)
    if document is None or pending is None:
        return
    pending.add(uow, document.entity, (line.get(document.parent_field) for line in lines))


def prepare(uow: UnitOfWork, entity: str, totals: Sequence[DocumentTotals]) -> None:
    """Hand the totals of the documents about to be created (the next ``create_many`` of
    *entity* in *uow*, one per row, in order) to :func:`take_prepared`: a service that priced
    the lines before the documents exist writes the totals with them, read-only as they are."""
    pending = _pending(uow)
    if pending is not None:
        pending.prepared[uow] = (entity, [t.as_fields() for t in totals])


def take_prepared(uow: UnitOfWork, entity: str, count: int) -> list[dict[str, Any]] | None:
    """``crm_before_create``: the totals :func:`prepare` handed over for these *count* new
    documents of *entity*, or ``None`` (any other creation)."""
    pending = _pending(uow)
    if pending is None:
        return None
    found = pending.prepared.pop(uow, None)
    if found is None or found[0] != entity or len(found[1]) != count:
        return None
    return found[1]


def forget(uow: UnitOfWork, entity: str, ids: Iterable[int]) -> None:
    """Unmark documents whose totals the caller has just written itself."""
    pending = _pending(uow)
    if pending is not None:
        pending.discard(uow, entity, ids)


def mark_documents(uow: UnitOfWork, entity: str, ids: Iterable[int]) -> None:
    """Note that documents *ids* of *entity* need their totals recomputed before the commit."""
    pending = _pending(uow)
    if pending is not None:
        pending.add(uow, entity, ids)


def refresh_pending(uow: UnitOfWork) -> dict[str, dict[int, DocumentTotals]]:
    """Recompute the totals of every document marked in *uow* (and not refreshed since)."""
    pending = _pending(uow)
    if pending is None:
        return {}
    done: dict[str, dict[int, DocumentTotals]] = {}
    while True:  # a refresh may mark again (hooks of other plugins writing lines)
        marked = pending.take(uow)
        if not any(marked.values()):
            return done
        for entity, ids in marked.items():
            done.setdefault(entity, {}).update(refresh(uow, entity, ids))
