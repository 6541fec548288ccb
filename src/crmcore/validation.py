"""Validation of input values against an entity type, without marshmallow overhead.

:func:`validate` is the tight-loop path the unit of work and the bulk import use. The marshmallow
schemas of :mod:`crmcore.schemas` give the same results and the same messages, because both call
:meth:`crmcore.fields.Field.parse` and share the messages defined here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crmcore.errors import ValidationError
from crmcore.fields import REQUIRED_MESSAGE, FieldValueError
from crmcore.registry import SYSTEM_FIELD_NAMES, EntityType

__all__ = ["UNKNOWN_MESSAGE", "check_values", "order_errors", "validate"]

UNKNOWN_MESSAGE = "unknown field"
SYSTEM_MESSAGE = "is set by crmcore and cannot be written"


def check_values(
    entity: EntityType, values: Mapping[str, Any], *, partial: bool
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Parse *values*; return ``(parsed, errors)`` without raising.

    :param partial: ``True`` for updates: absent fields are left alone and defaults are not
        applied; required fields may still not be cleared.
    """
    parsed: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    by_name = entity._by_name
    for key, raw in values.items():
        field = by_name.get(key)
        if field is None:
            errors[key] = [UNKNOWN_MESSAGE]
            continue
        if key in SYSTEM_FIELD_NAMES:
            errors[key] = [SYSTEM_MESSAGE]
            continue
        try:
            value = field.parse(raw)
        except FieldValueError as exc:
            errors[key] = [str(exc)]
            continue
        if value is None and field.required:
            errors[key] = [REQUIRED_MESSAGE]
            continue
        parsed[key] = value
    if not partial:
        for field in entity.fields:
            if field.default is None and not field.required:  # nothing to do when absent
                continue
            if field.name in values:
                continue
            default = field.default_value()
            if default is not None:
                try:
                    parsed[field.name] = field.parse(default)
                except FieldValueError as exc:
                    errors[field.name] = [f"default {default!r} is invalid: {exc}"]
            elif field.required:
                errors[field.name] = [REQUIRED_MESSAGE]
    if errors:
        errors = order_errors(entity, errors)
    return parsed, errors


def order_errors(entity: EntityType, errors: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """*errors* in the entity's field order, then unknown keys as given, so that both paths
    (and every run) report them alike."""
    ordered = {name: list(errors[name]) for name in entity._by_name if name in errors}
    ordered.update((name, list(messages)) for name, messages in errors.items() if name not in ordered)
    return ordered


def validate(
    entity: EntityType, values: Mapping[str, Any], *, partial: bool = False, row: int | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """Parse *values* for *entity*.

    :returns: ``{field: canonical value}``; for a create, every field with a default included.
    :raises ValidationError: with one message per failing field.
    """
    parsed, errors = check_values(entity, values, partial=partial)
    if errors:
        raise ValidationError(errors, entity=entity.name, row=row, source=source)
    return parsed
