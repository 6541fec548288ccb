"""Invariants of the help desk's configuration records, checked on every create and update."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crmcore.errors import ValidationError

__all__ = ["applies", "check"]


def _policy(values: Mapping[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    for name in ("first_response_minutes", "resolution_minutes"):
        value = values.get(name)
        if value is not None and value < 0:
            errors[name] = [f"expected business minutes (0 or more), got {value!r}"]
    percent = values.get("warning_percent")
    if percent is not None and not 0 <= percent <= 100:
        errors["warning_percent"] = [f"expected a percentage from 0 to 100, got {percent!r}"]
    if errors:
        raise ValidationError(errors, entity="sla_policy")


def _survey(values: Mapping[str, Any]) -> None:
    score = values.get("score")
    if score is not None and not 1 <= score <= 5:
        raise ValidationError(
            {"score": [f"expected 1 (very unhappy) to 5 (very happy), got {score!r}"]},
            entity="csat_survey",
        )


def _queue(values: Mapping[str, Any]) -> None:
    if values.get("id") is not None and values.get("escalation_queue_id") == values.get("id"):
        raise ValidationError(
            {
                "escalation_queue_id": [
                    f"queue {values['id']} cannot escalate to itself; name another queue"
                ]
            },
            entity="queue",
        )


_CHECKS = {"sla_policy": _policy, "csat_survey": _survey, "queue": _queue}


def applies(entity: str) -> bool:
    """Whether *entity* has invariants :func:`check` checks."""
    return entity in _CHECKS


def check(entity: str, values: Mapping[str, Any]) -> None:
    """Raise :class:`~crmcore.errors.ValidationError` if *values* (a record's values after the
    write) break an invariant of *entity*."""
    found = _CHECKS.get(entity)
    if found is not None:
        found(values)
