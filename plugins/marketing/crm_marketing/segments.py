"""Segments: saved filters over accounts, contacts or leads, or static lists of them.

A filter segment keeps conditions of the query language (:mod:`crmcore.query`) as JSON: a list
of conditions that must all hold, each a text filter (``"industry=Retail"``), a
``[field, operator, value]`` triple or an ``{"all" | "any" | "not": ...}`` group; dotted paths
reach referenced records (``"account_id.industry=Retail"`` for contacts). A static segment lists
records in ``segment_entry``; its conditions, when it has any, narrow the list. A segment with
a geography keeps only members placed in it or below it (a contact through its account).

Members are always computed by the unit of work's actor, through ``uow.select``: a rep sees
only the members they may read, and a field hidden from them cannot be used.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crmcore.actors import Actor
from crmcore.errors import CrmError, NotFoundError, ValidationError

from crm_marketing.geography import read_tree

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.query import Select
    from crmcore.records import Record

__all__ = [
    "MEMBER_FIELDS",
    "check_changed_segments",
    "check_segment",
    "conditions_of",
    "member_chunks",
    "member_count",
    "member_select",
    "members",
    "segment_named",
]

#: What a campaign reads of each member, by member entity: a path per role.
MEMBER_FIELDS: Mapping[str, Mapping[str, str]] = {
    "account": {"email": "email", "owner_id": "owner_id", "account_id": "id",
                "opt_out": "email_opt_out", "name": "name"},
    "contact": {"email": "email", "owner_id": "owner_id", "account_id": "account_id",
                "opt_out": "email_opt_out", "name": "last_name", "first_name": "first_name",
                "account_owner_id": "account_id.owner_id"},
    "lead": {"email": "email", "owner_id": "owner_id", "account_id": "account_id",
             "opt_out": "email_opt_out", "name": "last_name", "first_name": "first_name",
             "company": "company"},
}

_GEOGRAPHY_PATH = {"account": "geography_id", "contact": "account_id.geography_id",
                   "lead": "geography_id"}
_CHUNK = 500


def conditions_of(spec: Any) -> list[Any]:
    """The conditions of a segment's JSON *spec* for ``where``: JSON lists become tuples.

    :raises ValidationError: for a spec that is not a list of conditions.
    """
    if spec is None:
        return []
    if not isinstance(spec, list):
        raise ValidationError({"conditions": [f"expected a list of conditions, got {spec!r}"]},
                              entity="segment")
    return [_condition(item) for item in spec]


def _condition(item: Any) -> Any:
    if isinstance(item, str):
        return item
    if isinstance(item, list | tuple):
        return tuple(item)
    if isinstance(item, Mapping) and len(item) == 1:
        (key, value), = item.items()
        if key in ("all", "any") and isinstance(value, list):
            return {key: [_condition(v) for v in value]}
        if key == "not":
            return {key: _condition(value)}
    raise ValidationError(
        {"conditions": [f"{item!r} is not a condition; use text such as 'industry=Retail', "
                        "[field, operator, value] or {'all'|'any'|'not': ...}"]},
        entity="segment",
    )


def check_segment(uow: UnitOfWork, values: Mapping[str, Any]) -> None:
    """Check a segment's conditions against its member entity before it is saved.

    :raises ValidationError: naming the condition and what is wrong with it.
    """
    entity = values.get("member_entity")
    if entity is None:
        return
    conditions = conditions_of(values.get("conditions"))
    try:
        uow.select(entity, fields=("id",)).where(*conditions)
    except CrmError as exc:
        raise ValidationError({"conditions": [f"{values.get('conditions')!r}: {exc}"]},
                              entity="segment") from exc


def check_changed_segments(uow: UnitOfWork) -> None:
    """Before the unit commits: check the conditions of the segments it created or changed
    against their member entity, so a segment that cannot be evaluated is never saved.

    :raises ValidationError: naming the segment, its condition and what is wrong with it.
    """
    changed = sorted({c.id for c in uow.changes if c.entity == "segment" and c.action != "deleted"})
    if not changed:
        return
    with uow.acting_as(Actor.system()):
        found = uow.find_many("segment", "id", changed)
        for segment in found:
            try:
                check_segment(uow, segment.values)
            except ValidationError as exc:
                raise ValidationError({"conditions": [f"segment {segment.values['name']!r}: {m}"
                                                      for m in exc.messages.get("conditions", [str(exc)])]},
                                      entity="segment") from exc


def segment_named(uow: UnitOfWork, ref: int | str | Record) -> Record:
    """The segment *ref* (a record, an id, or a name) as the actor may read it."""
    if not isinstance(ref, int | str):
        return uow.get("segment", ref.id)
    if isinstance(ref, str) and not ref.isdigit():
        found = uow.query("segment").where(name=ref).first()
        if found is None:
            raise NotFoundError(f"no segment named {ref!r}; crm marketing segments lists them")
        return found
    return uow.get("segment", int(ref))


def member_select(uow: UnitOfWork, segment: Record, fields: Sequence[str] = ("id",),
                  ids: Sequence[int] | None = None) -> Select:
    """The select of *segment*'s members the actor may read, reading *fields*.

    :param ids: for static segments, the listed ids to consider (one chunk of the list).
    """
    entity = segment.values["member_entity"]
    select = uow.select(entity, fields=tuple(fields))
    conditions = conditions_of(segment.values.get("conditions"))
    if conditions:
        try:
            select = select.where(*conditions)
        except ValidationError as exc:
            raise ValidationError({"conditions": [f"segment {segment.values['name']!r} cannot be evaluated: {exc}"]},
                                  entity="segment") from exc
    geography = segment.values.get("geography_id")
    if geography is not None:
        nodes = sorted(read_tree(uow).subtree(geography))
        select = select.where((_GEOGRAPHY_PATH[entity], "in", nodes))
    if ids is not None:
        select = select.where(("id", "in", list(ids)))
    return select.order_by("id")


def member_chunks(uow: UnitOfWork, segment: int | str | Record, *, roles: bool = False,
                  size: int = _CHUNK) -> Iterator[list[dict[str, Any]]]:
    """The members of *segment* the actor may read, in id order, *size* at a time (keyset
    pagination on ``id``): memory stays flat however large the segment.

    :param roles: read what a campaign needs (:data:`MEMBER_FIELDS`: e-mail, owner, account,
        opt-out, name) keyed by role, instead of the ids alone.
    """
    record = segment if not isinstance(segment, int | str) else segment_named(uow, segment)
    entity = record.values["member_entity"]
    paths = MEMBER_FIELDS[entity] if roles else {}
    fields = ("id", *paths.values())

    def shaped(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return _shape(rows, paths)

    if record.values.get("kind") == "static":
        listed = [row["record_id"] for row in uow.select("segment_entry", fields=("record_id",))
                  .where(segment_id=record.id).order_by("record_id").all()]
        for start in range(0, len(listed), size):
            rows = member_select(uow, record, fields, listed[start:start + size]).all()
            if rows:
                yield shaped(rows)
        return
    select = member_select(uow, record, fields).limit(size)
    last = None
    while True:
        rows = (select if last is None else select.where(("id", ">", last))).all()
        if rows:
            yield shaped(rows)
        if len(rows) < size:
            return
        last = rows[-1]["id"]


def member_count(uow: UnitOfWork, segment: int | str | Record) -> int:
    """How many members of *segment* the actor may read (one count query per 500 listed
    records of a static segment)."""
    record = segment if not isinstance(segment, int | str) else segment_named(uow, segment)
    if record.values.get("kind") != "static":
        return member_select(uow, record).count()
    listed = [row["record_id"] for row in uow.select("segment_entry", fields=("record_id",))
              .where(segment_id=record.id).all()]
    return sum(member_select(uow, record, ("id",), listed[start:start + _CHUNK]).count()
               for start in range(0, len(listed), _CHUNK))


def _shape(rows: list[dict[str, Any]], paths: Mapping[str, str]) -> list[dict[str, Any]]:
    """Rows keyed by role (``id`` first) instead of by path."""
    if not paths:
        return [{"id": row["id"]} for row in rows]
    names = ("id", *paths)
    get = operator.itemgetter("id", *paths.values())
    return [dict(zip(names, get(row), strict=True)) for row in rows]


def members(uow: UnitOfWork, segment: int | str | Record, *, roles: bool = False) -> list[dict[str, Any]]:
    """The members of *segment* the actor may read, in id order (all at once; see
    :func:`member_chunks`).

    :param roles: read what a campaign needs (:data:`MEMBER_FIELDS`) keyed by role.
    :returns: ``[{"id": 7, ...}, ...]``.
    """
    record = segment if not isinstance(segment, int | str) else segment_named(uow, segment)
    if record.values.get("kind") != "static":
        paths = MEMBER_FIELDS[record.values["member_entity"]] if roles else {}
        return _shape(member_select(uow, record, ("id", *paths.values())).all(), paths)
    return [row for chunk in member_chunks(uow, record, roles=roles) for row in chunk]
