"""Answers of other systems: supply states, the outbox_answered hook, answers files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from crmcore import NotFoundError, ValidationError, hookimpl
from outbox_support import items, outbox_app, post_items, requests

from crm_outbox import answer, answer_many, deliver


class Follower:
    """Records the hook's calls; refuses a cancellation when told to."""

    def __init__(self, refuse: bool = False) -> None:
        self.calls: list[list[tuple[str, str, str]]] = []
        self.refuse = refuse

    @hookimpl
    def outbox_answered(self, uow: Any, items: Any) -> None:
        self.calls.append([(r.idempotency_key, old, new) for r, old, new in items])
        if self.refuse and any(new == "cancelled" for _, _, new in items):
            raise ValidationError("the order cannot be cancelled any more")
        for request, _, new in items:  # the poster writes in the same unit
            uow.create("note", body=f"{request.source_entity} {request.source_id}: {new}")


def _notes(crm: Any) -> list[str]:
    with crm.unit_of_work() as uow:
        return [n.body for n in uow.query("note").order_by("id").all()]


def test_answers_move_the_supply_state_and_call_the_hook_once_per_batch(
    crm_factory: Any, tmp_path: Path
) -> None:
    follower = Follower()
    crm = outbox_app(crm_factory, tmp_path, plugins=(follower,))
    post_items(crm, items(3))
    with crm.unit_of_work() as uow:
        assert (
            answer_many(
                uow,
                [
                    ("sales_order:1:production", "accepted"),
                    ("sales_order:2:production", "fulfilled"),
                    ("sales_order:3:production", "requested"),
                ],
            )
            == 2
        )
        uow.commit()
    assert follower.calls == [
        [
            ("sales_order:1:production", "requested", "accepted"),
            ("sales_order:2:production", "requested", "fulfilled"),
        ]
    ]
    assert [r.supply_state for r in requests(crm)] == ["accepted", "fulfilled", "requested"]
    assert _notes(crm) == ["sales_order 1: accepted", "sales_order 2: fulfilled"]
    with crm.unit_of_work() as uow:
        assert answer(uow, "sales_order:1:production", "accepted") is False  # a repeat
        assert answer(uow, "sales_order:1:production", "fulfilled") is True
        uow.commit()
    assert len(follower.calls) == 2


def test_a_hook_that_refuses_rolls_the_answers_back(crm_factory: Any, tmp_path: Path) -> None:
    crm = outbox_app(crm_factory, tmp_path, plugins=(Follower(refuse=True),))
    post_items(crm, items(1))
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="cannot be cancelled"):
        answer(uow, "sales_order:1:production", "cancelled")
    assert requests(crm)[0].supply_state == "requested"


@pytest.mark.parametrize(
    ("pairs", "error", "message"),
    [
        ([("nobody:1:x", "accepted")], NotFoundError, "no outbox request has the idempotency key"),
        (
            [("sales_order:1:production", "shipped")],
            ValidationError,
            "unknown supply state 'shipped' for outbox request 'sales_order:1:production'; "
            "choose among requested, accepted, fulfilled, cancelled",
        ),
        (
            [("sales_order:1:production", "fulfilled"), ("sales_order:1:production", "cancelled")],
            ValidationError,
            "'sales_order:1:production' is fulfilled; it cannot become cancelled "
            "\\(allowed: none \\(it is final\\)\\)",
        ),
        (
            [("sales_order:1:production", "accepted"), ("sales_order:1:production", "requested")],
            ValidationError,
            "is accepted; it cannot become requested \\(allowed: fulfilled, cancelled\\)",
        ),
    ],
)
def test_an_answer_that_does_not_fit_is_refused_naming_the_key(
    crm_factory: Any, tmp_path: Path, pairs: Any, error: type, message: str
) -> None:
    crm = outbox_app(crm_factory, tmp_path)
    post_items(crm, items(1))
    with crm.unit_of_work() as uow, pytest.raises(error, match=message):
        answer_many(uow, pairs)
    assert requests(crm)[0].supply_state == "requested"


def test_answers_files_are_read_after_delivery_and_moved_aside(
    crm_factory: Any, tmp_path: Path
) -> None:
    follower = Follower()
    inbox = tmp_path / "answers"
    crm = outbox_app(
        crm_factory,
        tmp_path,
        plugins=(follower,),
        sinks={
            "production": {"type": "file", "path": str(tmp_path / "drop"), "answers": str(inbox)}
        },
    )
    post_items(crm, items(2))
    assert deliver(crm).delivered == 2
    inbox.mkdir()
    (inbox / "a.json").write_text(
        json.dumps(
            [
                {"key": "sales_order:1:production", "state": "accepted"},
                {"key": "sales_order:2:production", "state": "cancelled"},
            ]
        )
    )
    (inbox / "b.json").write_text(
        json.dumps({"key": "sales_order:1:production", "state": "requested"})
    )
    (inbox / "c.json").write_text("{not json")
    stats = deliver(crm)
    assert (stats.handled, stats.answered) == (0, 2)
    assert [r.supply_state for r in requests(crm)] == ["accepted", "cancelled"]
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["a.json"]
    assert sorted(p.name for p in (inbox / "rejected").iterdir()) == [
        "b.json",
        "b.json.error",
        "c.json",
        "c.json.error",
    ]
    assert (
        "is accepted; it cannot become requested"
        in (inbox / "rejected" / "b.json.error").read_text()
    )
    assert "cannot be read as JSON" in (inbox / "rejected" / "c.json.error").read_text()
    assert not list(inbox.glob("*.json"))
