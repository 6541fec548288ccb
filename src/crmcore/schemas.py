"""Marshmallow schemas derived from the registry, for the edges (REST, CLI, files).

Each schema field delegates to :meth:`crmcore.fields.Field.parse`, the one implementation of
parsing and validation, so a schema accepts and rejects exactly what the unit of work and the
bulk import do, with the same messages (a test feeds both the same corpus).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import marshmallow as ma

from crmcore.errors import ValidationError
from crmcore.fields import REQUIRED_MESSAGE, Field, FieldValueError
from crmcore.validation import SYSTEM_MESSAGE, UNKNOWN_MESSAGE, order_errors

if TYPE_CHECKING:
    from crmcore.registry import EntityType, Registry

__all__ = ["RegistryField", "SchemaFactory"]

_MISSING = ma.missing


class RegistryField(ma.fields.Field):  # type: ignore[type-arg]
    """A marshmallow field that parses with a registry :class:`~crmcore.fields.Field`.

    A missing value is handled here, as :func:`crmcore.validation.check_values` does: the
    declared default is parsed like a given value (marshmallow would hand a ``load_default``
    over as it is), and a required field without one is reported.
    """

    def __init__(self, declaration: Field, **kwargs: Any) -> None:
        self.declaration = declaration
        kwargs.setdefault("error_messages", {"required": REQUIRED_MESSAGE, "null": REQUIRED_MESSAGE})
        super().__init__(**kwargs)

    def deserialize(self, value: Any, attr: str | None = None, data: Any = None, **kwargs: Any) -> Any:
        if value is _MISSING:  # only asked when the load is not partial
            default = self.declaration.default_value()
            if default is None:
                if self.declaration.required:
                    raise ma.ValidationError(REQUIRED_MESSAGE)
                return _MISSING
            try:
                return self.declaration.parse(default)
            except FieldValueError as exc:
                raise ma.ValidationError(f"default {default!r} is invalid: {exc}") from None
        try:
            parsed = self.declaration.parse(value)
        except FieldValueError as exc:
            raise ma.ValidationError(str(exc)) from None
        if parsed is None and self.declaration.required:
            raise ma.ValidationError(REQUIRED_MESSAGE)
        return parsed

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else self.declaration.type.dump(value)


class _RejectSystem(ma.fields.Field):  # type: ignore[type-arg]
    def deserialize(self, value: Any, attr: str | None = None, data: Any = None, **kwargs: Any) -> Any:
        if value is _MISSING:
            return _MISSING
        raise ma.ValidationError(SYSTEM_MESSAGE)


class SchemaFactory:
    """Builds (and caches) the marshmallow schemas of one registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._cache: dict[tuple[str, bool], type[ma.Schema]] = {}

    def schema_class(self, entity: str, *, partial: bool = False) -> type[ma.Schema]:
        key = (entity, partial)
        if key not in self._cache:
            self._cache[key] = _build(self.registry.entity(entity), partial=partial)
        return self._cache[key]

    def for_entity(self, entity: str, *, partial: bool = False) -> ma.Schema:
        """A schema instance for *entity*: ``load`` validates input, ``dump`` renders a record's
        values as JSON-compatible data. ``partial=True`` is for updates."""
        return self.schema_class(entity, partial=partial)(partial=partial)

    def load(self, entity: str, data: dict[str, Any], *, partial: bool = False, row: int | None = None) -> dict[str, Any]:
        """Validate *data* through the schema, raising crmcore's :class:`ValidationError`."""
        try:
            return self.for_entity(entity, partial=partial).load(data)  # type: ignore[no-any-return]
        except ma.ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
            messages = order_errors(self.registry.entity(entity), messages)
            raise ValidationError(messages, entity=entity, row=row) from None


def _build(entity: EntityType, *, partial: bool) -> type[ma.Schema]:
    attributes: dict[str, Any] = {}
    for declaration in entity.fields:
        required = declaration.required and declaration.default is None and not partial
        attributes[declaration.name] = RegistryField(declaration, required=required, allow_none=True)
    for name in ("id", "version", "created_at", "updated_at", "created_by", "updated_by"):
        attributes[name] = _RejectSystem(load_only=True)

    class Meta:
        unknown = ma.RAISE

    attributes["Meta"] = Meta
    schema = type(f"{entity.name.title().replace('_', '')}Schema", (ma.Schema,), attributes)
    schema.error_messages = {**ma.Schema.error_messages, "unknown": UNKNOWN_MESSAGE}  # type: ignore[attr-defined]
    return schema
