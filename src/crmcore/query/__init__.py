"""Queries: filters, sorting, keyset pagination, counts and aggregates over one entity type.

``uow.query("opportunity")`` returns an immutable, chainable :class:`Query`. Conditions are
Python data, validated against the registry and compiled to SQLAlchemy Core with every value a
bound parameter::

    query = (
        uow.query("opportunity")
        .where(("amount", ">", 50000), stage="rfp_received")
        .where({"any": [("close_date", "<", "2026-07-01"), ("owner_id", "is null")]})
        .order_by("-amount", "name")
    )
    page = query.page(50)                       # Page(records, next_cursor)
    more = query.page(50, after=page.next_cursor)
    query.count()
    query.aggregate(group_by=["stage"], sum=["amount"])

A condition is one of:

- ``(field, operator, value)``, or ``(field, "is null")`` / ``(field, "is not null")``;
- ``{"all": [condition, ...]}``, ``{"any": [condition, ...]}``, ``{"not": condition}``;
- a text filter such as ``"amount>50000"`` (see :func:`parse_where`);
- keyword equality: ``.where(stage="won")`` (``None`` means ``is null``);
- on an ownable entity type, the pseudo field ``tags``: ``("tags", "=", "vip")``, ``"tags in
  vip,partner"`` (any of them), ``!=`` and ``not in`` (the others), ``("tags", "is null")``
  (no tag): the tags the actor sees, shared or their own private ones.

Semantics, the same on SQLite and PostgreSQL:

- Values go through the field's own :meth:`~crmcore.fields.Field.parse`, so ``"50000"`` works
  for money and ``"2026-01-01"`` for dates. ``contains`` and ``startswith`` take plain text,
  match case-insensitively (ASCII letters on SQLite, all letters on PostgreSQL) and treat
  ``%`` and ``_`` literally. On a multi-choice field, ``contains`` names choices: the record
  must carry each of them.
- Money compares amounts. A value that names its currency (``"50000 EUR"``, a
  :class:`~crmcore.money.Money`) also requires that currency; a bare number does not. Every
  money field ``amount`` has a companion filter and group field ``amount_currency``.
- Empty values: comparisons never match an empty (NULL) field, except ``!=`` and ``not in``,
  which do, as ``None != value`` does in Python; ``{"not": c}`` matches exactly the records
  ``c`` does not. An empty value (``None``, ``""``) with ``=`` means ``is null`` and with
  ``!=`` means ``is not null``.
- Sorting: empty values sort after every value ascending and before every value descending
  (``NULLS LAST`` / ``NULLS FIRST``); money sorts by amount; ``id`` is always the final key.
  Text compares and sorts by the database's collation (codepoint order on SQLite and on a
  PostgreSQL database created with the ``C`` collation).

Every statement starts from :func:`base_where`, the read predicate of (actor, entity type),
which the permission model compiles; the fields a query names all pass through
:func:`~crmcore.query.conditions.resolve`, which refuses fields hidden from the actor.

The package: :mod:`~crmcore.query.conditions` (the filter language), :mod:`~crmcore.query.base`
(:class:`Query`, :class:`Page`), :mod:`~crmcore.query.aggregate` (aggregates) and
:mod:`~crmcore.query.select` (:class:`Select`, set-based reads across references).
"""

from crmcore.query.base import Page, Query, base_where
from crmcore.query.conditions import OPERATORS, parse_where
from crmcore.query.select import Select

__all__ = ["OPERATORS", "Page", "Query", "Select", "base_where", "parse_where"]
