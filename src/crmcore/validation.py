"""Validation of input values against an entity type, without marshmallow overhead.

:func:`validate` is the tight-loop path the unit of work and the bulk import use. The marshmallow
schemas of :mod:`crmcore.schemas` give the same results and the same messages, because both call
:meth:`crmcore.fields.Field.parse` and share the messages defined here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from crmcore.errors import ValidationError
from crmcore.fields import REQUIRED_MESSAGE, FieldValueError
from crmcore.registry import SYSTEM_FIELD_NAMES, EntityType

__all__ = ["UNKNOWN_MESSAGE", "check_values", "order_errors", "validate", "validate_many"]

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


#: How one key of an input row is parsed: the field's name, its type's ``parse``, ``required``.
_Step = tuple[str, Callable[[Any], Any], bool]


def validate_many(entity: EntityType, rows: Sequence[Mapping[str, Any]], *, partial: bool = False) -> list[dict[str, Any]]:
    """:func:`validate` of each of *rows*, with the work that depends only on which keys a row
    gives (the fields, the defaults to apply) done once per set of keys: a batch of rows alike
    costs the parsing of its values, not a look-up per value. The first row that does not fit
    raises exactly what :func:`validate` raises for it."""
    plans: dict[tuple[str, ...], tuple[list[_Step], list[Any]] | None] = {}
    out: list[dict[str, Any]] = []
    append = out.append
    for row in rows:
        keys = tuple(row)
        plan = plans[keys] if keys in plans else plans.setdefault(keys, _plan(entity, keys, partial=partial))
        parsed = None if plan is None else _parse_row(row, *plan)
        append(validate(entity, row, partial=partial) if parsed is None else parsed)  # the error, as one row gives it
    return out


def _plan(entity: EntityType, keys: tuple[str, ...], *, partial: bool) -> tuple[list[_Step], list[Any]] | None:
    """The steps of rows with *keys*, and the fields whose default applies; ``None`` when a key
    is no writable field (such rows take the general path, which names the error)."""
    by_name = entity._by_name
    steps: list[_Step] = []
    for key in keys:
        field = by_name.get(key)
        if field is None or key in SYSTEM_FIELD_NAMES:
            return None
        steps.append((key, field.type.parse, field.required))
    given = set(keys)
    defaults = [] if partial else [field for field in entity.fields
                                   if (field.default is not None or field.required) and field.name not in given]
    return steps, defaults


def _parse_row(row: Mapping[str, Any], steps: list[_Step], defaults: list[Any]) -> dict[str, Any] | None:
    """*row* parsed as :func:`check_values` does (``Field.parse``, then the defaults), or
    ``None`` when some value does not fit."""
    parsed: dict[str, Any] = {}
    try:
        for key, parse, required in steps:
            raw = row[key]
            value = None if raw is None or (isinstance(raw, str) and not raw.strip()) else parse(raw)
            if value is None and required:
                return None
            parsed[key] = value
        for field in defaults:
            default = field.default_value()
            if default is None:  # a required field without a value
                return None
            parsed[field.name] = field.parse(default)
    except FieldValueError:
        return None
    return parsed
