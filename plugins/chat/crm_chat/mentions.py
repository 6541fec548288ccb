"""Record mentions: typed links from a message to records, stored as (entity, id).

A body's ``#opportunity:42`` (any entity type of the deployment, plugins' included) and
``@username`` are parsed into ``chat_mention`` records (origin ``text``); the API adds others
(origin ``picker``). A mention is refused when its author may not read the record, so nobody
learns through the chat that an id exists. Each reader sees the label of a mentioned record
only if they may read the record; otherwise :data:`RESTRICTED`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import attrs
from crmcore.errors import PermissionDeniedError, ValidationError

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = [
    "RESTRICTED",
    "Mention",
    "labels",
    "mentions_of",
    "parse",
    "record_messages",
    "resolve",
]

#: What a reader sees of a record they may not read.
RESTRICTED = "a restricted record"
_RECORD = re.compile(r"(?<![\w&])#([a-z][a-z0-9_]*):(\d+)\b")
_USER = re.compile(r"(?<![\w@])@([A-Za-z0-9_.\-]+[A-Za-z0-9_])")


@attrs.frozen
class Mention:
    """A mentioned record: its entity type, id and the label the reader may see."""

    entity: str
    id: int
    label: str

    @property
    def token(self) -> str:
        return f"#{self.entity}:{self.id}"


def parse(text: str, entities: Iterable[str]) -> tuple[list[tuple[str, int]], list[str]]:
    """``([(entity, id)], [username])`` mentioned in *text*, in order, without repeats:
    ``#entity:id`` for the entity types named in *entities*, and ``@username``."""
    known = set(entities)
    records = [(e, int(i)) for e, i in _RECORD.findall(text or "") if e in known]
    users = _USER.findall(text or "")
    return list(dict.fromkeys(records)), list(dict.fromkeys(users))


def resolve(
    uow: UnitOfWork, text: str, picked: Sequence[tuple[str, int]] = ()
) -> list[dict[str, object]]:
    """The ``chat_mention`` values (without the message) of *text* and of *picked*
    ``(entity, id)`` pairs; unknown usernames in the text are left as text.

    :raises ValidationError: for a picked entity type the deployment does not have.
    """
    records, usernames = parse(text, [e.name for e in uow.registry])
    found: list[dict[str, object]] = [
        {"target_entity": e, "target_id": i, "origin": "text"} for e, i in records
    ]
    if usernames:
        rows = (
            uow.select("user", fields=("id", "username")).where(("username", "in", usernames)).all()
        )
        ids = {row["username"]: row["id"] for row in rows}
        found += [
            {"target_entity": "user", "target_id": ids[n], "origin": "text"}
            for n in usernames
            if n in ids
        ]
    seen = {(m["target_entity"], m["target_id"]) for m in found}
    for entity, record_id in picked:
        if entity not in uow.registry:
            raise ValidationError(
                {"mentions": [f"no entity type {entity!r}; mention records as (entity, id)"]},
                entity="chat_mention",
            )
        if (entity, int(record_id)) not in seen:
            seen.add((entity, int(record_id)))
            found.append({"target_entity": entity, "target_id": int(record_id), "origin": "picker"})
    return found


def check_readable(uow: UnitOfWork, pairs: Iterable[tuple[str, int]]) -> None:
    """Refuse a mention of a record the actor may not read (or that does not exist): one read
    per entity type.

    :raises ValidationError: naming the first such record.
    """
    wanted: dict[str, set[int]] = {}
    for entity, record_id in pairs:
        wanted.setdefault(entity, set()).add(record_id)
    for entity, ids in sorted(wanted.items()):
        if entity not in uow.registry:
            raise ValidationError(
                {"target_entity": [f"no entity type {entity!r}"]}, entity="chat_mention"
            )
        present = {r.id for r in uow.get_many(entity, ids)}
        missing = sorted(ids - present)
        if missing:
            raise ValidationError(
                {
                    "target_id": [
                        f"no {entity} {missing[0]} you may read; mention records you can open"
                    ]
                },
                entity="chat_mention",
            )


def labels(uow: UnitOfWork, pairs: Iterable[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """``{(entity, id): label}``: the title of each record the actor may read, else
    :data:`RESTRICTED` (a record deleted since, or of an entity type no longer enabled, reads
    the same). One read per entity type."""
    wanted: dict[str, set[int]] = {}
    for entity, record_id in pairs:
        wanted.setdefault(entity, set()).add(record_id)
    found: dict[tuple[str, int], str] = {}
    for entity, ids in wanted.items():
        for record_id in ids:
            found[(entity, record_id)] = RESTRICTED
        if entity not in uow.registry:
            continue
        etype = uow.registry.entity(entity)
        title = etype.title_field
        try:
            rows = uow.select(entity, fields=("id", title)).where(("id", "in", sorted(ids))).all()
        except PermissionDeniedError:  # the title is hidden from the reader: name it by id
            rows = [
                {"id": r["id"], title: None}
                for r in uow.select(entity, fields=("id",)).where(("id", "in", sorted(ids))).all()
            ]
        for row in rows:
            text = row.get(title)
            found[(entity, row["id"])] = (
                str(text) if text not in (None, "") else f"{etype.label} {row['id']}"
            )
    return found


def mentions_of(uow: UnitOfWork, messages: Sequence[Record]) -> dict[int, list[Mention]]:
    """``{message id: [Mention]}`` of *messages*, labelled for the actor (two reads plus one
    per mentioned entity type)."""
    ids = [m.id for m in messages]
    if not ids:
        return {}
    rows = (
        uow.select("chat_mention", fields=("message_id", "target_entity", "target_id"))
        .where(("message_id", "in", ids))
        .order_by("id")
        .all()
    )
    named = labels(uow, [(r["target_entity"], r["target_id"]) for r in rows])
    found: dict[int, list[Mention]] = {i: [] for i in ids}
    for r in rows:
        key = (r["target_entity"], r["target_id"])
        found[r["message_id"]].append(Mention(key[0], key[1], named[key]))
    return found


def timeline_records(uow: UnitOfWork, entity: str, record_id: int) -> dict[str, list[int]] | None:
    """The messages mentioning record *record_id* of *entity*, for its timeline (the answer of
    ``crm_timeline_records``; the core keeps those of the rooms the reader belongs to)."""
    if entity.startswith("chat_"):
        return None
    found = uow.select("chat_mention", fields=("message_id",)).where(
        target_entity=entity, target_id=record_id
    )
    ids = [row["message_id"] for row in found.all()]
    return {"chat_message": ids} if ids else None


def record_messages(uow: UnitOfWork, entity: str, record_id: int) -> list[Record]:
    """The messages mentioning record *record_id* of *entity*, oldest first: those of the rooms
    the actor belongs to, when the actor may read the record.

    :raises NotFoundError: when the actor may not read the record.
    """
    uow.get(entity, record_id)
    ids = [
        row["message_id"]
        for row in uow.select("chat_mention", fields=("message_id",))
        .where(target_entity=entity, target_id=record_id)
        .all()
    ]
    if not ids:
        return []
    return (
        uow.query("chat_message")
        .where(("id", "in", sorted(set(ids))), ("deleted_at", "is null"))
        .order_by("created_at", "id")
        .all()
    )
