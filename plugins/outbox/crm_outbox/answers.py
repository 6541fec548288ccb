"""Answers: what the other systems say about requests, recorded as each request's supply
state (``requested`` → ``accepted`` → ``fulfilled``, or ``cancelled`` before fulfilment).

Answers arrive three ways: in a sink's response at delivery (the HTTP sink reads
``{"state": ...}``), through :func:`answer` and :func:`answer_many` (``crm outbox answer``), or
as JSON files dropped in a file sink's ``answers`` folder, read after each delivery run
(:func:`collect_file_answers`). Each way updates the requests and calls the
``outbox_answered`` hook in one unit of work, so the poster's records follow in the same
transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
from crmcore import Actor
from crmcore.errors import CrmError, NotFoundError, ValidationError

from crm_outbox.access import ANSWER_PERMISSION
from crm_outbox.entities import SUPPLY_STATES

if TYPE_CHECKING:
    from crmcore import Crm, Record, UnitOfWork

    from crm_outbox.settings import OutboxSettings

__all__ = [
    "Answer",
    "NEXT_STATES",
    "answer",
    "answer_many",
    "apply_answers",
    "collect_file_answers",
    "read_answers_file",
]

log = logging.getLogger(__name__)

#: The supply states a request may move to from each state.
NEXT_STATES: dict[str, tuple[str, ...]] = {
    "requested": ("accepted", "fulfilled", "cancelled"),
    "accepted": ("fulfilled", "cancelled"),
    "fulfilled": (),
    "cancelled": (),
}
_ENTITY = "outbox_request"


@attrs.frozen
class Answer:
    """An answer: the request of idempotency *key* is now in supply *state*."""

    key: str
    state: str


def answer(uow: UnitOfWork, key: str, state: str) -> bool:
    """Record that the request of idempotency *key* is in supply *state* now.

    :returns: whether its state changed (an answer repeating the state changes nothing).
    :raises NotFoundError: naming an unknown key.
    :raises ValidationError: naming the key, its state and the allowed ones, for a move the
        supply states do not allow (a fulfilled request cannot be cancelled).
    """
    return answer_many(uow, [(key, state)]) == 1


def answer_many(uow: UnitOfWork, answers: Sequence[tuple[str, str] | Answer]) -> int:
    """Record many answers at once (all or nothing), calling ``outbox_answered`` once.

    Needs the ``outbox.outbox_request.answer`` privilege.

    :returns: how many requests changed state.
    :raises NotFoundError, ValidationError: as :func:`answer`, for the first answer at fault.
    """
    uow.require(_ENTITY, ANSWER_PERMISSION)
    pairs: list[tuple[str, str]] = []
    for given in answers:
        key, state = (given.key, given.state) if isinstance(given, Answer) else given
        pairs.append((key, state))
    return apply_answers(uow, pairs, at=dt.datetime.now(dt.UTC))


def apply_answers(
    uow: UnitOfWork,
    answers: Sequence[tuple[str, str]],
    *,
    at: dt.datetime,
    skip_invalid: bool = False,
) -> int:
    """Update the supply states and call ``outbox_answered``, as the system on behalf of the
    acting user. With *skip_invalid*, answers that do not fit are logged and left out (a sink's
    answers at delivery) instead of refused.

    :returns: how many requests changed state.
    """
    with uow.system_scope("other systems' answers update the supply state of requests"):
        found = {
            r.idempotency_key: r
            for r in uow.find_many(_ENTITY, "idempotency_key", [key for key, _ in answers])
        }
        latest: dict[str, str] = {}
        for key, state in answers:
            try:
                _check(found, latest, key, state)
            except CrmError as exc:
                if not skip_invalid:
                    raise
                log.warning("answer ignored: %s", exc)
                continue
            latest[key] = state
        plan = [
            (found[key], {"supply_state": state, "answered_at": at})
            for key, state in latest.items()
            if found[key].supply_state != state
        ]
        if not plan:
            return 0
        old = {record.id: record.supply_state for record, _ in plan}
        updated = uow.update_many(_ENTITY, plan)
        uow.crm.hook.outbox_answered(
            uow=uow, items=[(record, old[record.id], record.supply_state) for record in updated]
        )
    return len(updated)


def _check(found: dict[str, Record], latest: dict[str, str], key: str, state: str) -> None:
    if state not in SUPPLY_STATES:
        raise ValidationError(
            f"unknown supply state {state!r} for outbox request {key!r}; "
            f"choose among {', '.join(SUPPLY_STATES)}",
            entity=_ENTITY,
        )
    record = found.get(key)
    if record is None:
        raise NotFoundError(
            f"no outbox request has the idempotency key {key!r}", entity=_ENTITY, id=key
        )
    current = latest.get(key, record.supply_state)
    if state != current and state not in NEXT_STATES[current]:
        allowed = ", ".join(NEXT_STATES[current]) or "none (it is final)"
        raise ValidationError(
            f"outbox request {key!r} is {current}; it cannot become {state} (allowed: {allowed})",
            entity=_ENTITY,
        )


# -- answers files ------------------------------------------------------------------------------


def read_answers_file(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """The answers of a JSON file: an object ``{"key": ..., "state": ...}`` or a list of them.

    :raises ValidationError: naming the file and what does not fit.
    """
    where = str(path)
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationError(f"answers file {where!r} cannot be read as JSON: {exc}") from exc
    items = document if isinstance(document, list) else [document]
    pairs = []
    for index, item in enumerate(items):
        if not (
            isinstance(item, dict)
            and isinstance(item.get("key"), str)
            and isinstance(item.get("state"), str)
        ):
            raise ValidationError(
                f"answers file {where!r}, answer {index}: expected an object with a text "
                f'"key" and "state", got {item!r}'
            )
        pairs.append((item["key"], item["state"]))
    return pairs


def collect_file_answers(crm: Crm, settings: OutboxSettings) -> int:
    """Read the ``*.json`` files of each file sink's ``answers`` folder, record each file's
    answers in a unit of work of its own, and move the file to ``done/`` (or, when it does not
    fit, to ``rejected/`` beside a ``.error`` text saying why).

    :returns: how many requests changed state.
    """
    changed = 0
    for sink in settings.sinks.values():
        folder = getattr(sink, "answers", None)
        if not isinstance(folder, Path) or not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            try:
                pairs = read_answers_file(path)
                with crm.unit_of_work(Actor.system()) as uow:
                    count = apply_answers(uow, pairs, at=dt.datetime.now(dt.UTC))
                    uow.commit()
            except CrmError as exc:
                log.warning("answers file %s rejected: %s", path.name, exc)
                _move(path, folder / "rejected")
                (folder / "rejected" / (path.name + ".error")).write_text(
                    str(exc) + "\n", encoding="utf-8"
                )
                continue
            changed += count
            _move(path, folder / "done")
    return changed


def _move(path: Path, folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    os.replace(path, folder / path.name)
