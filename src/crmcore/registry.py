"""Entity types and the registry: the single source of truth of an app.

An :class:`EntityType` is declared once, as data. The :class:`Registry` collects the entity
types of every enabled plugin, the fields plugins add to other entity types, and the custom
fields of the settings, then freezes. Everything else is derived from it: SQL tables
(:meth:`Registry.build_tables`), marshmallow schemas, filterable and sortable fields, import and
export columns, the reference docs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmcore.errors import ConfigError, NotFoundError
from crmcore.fields import (
    DateTime,
    Field,
    Integer,
    Reference,
    check_snake_name,
    field_type_from_spec,
)

if TYPE_CHECKING:
    import datetime as dt

__all__ = ["SYSTEM_FIELDS", "EntityType", "Registry"]

#: The range of the ``INTEGER`` columns ``id`` and ``version`` (32 bits on PostgreSQL).
_INT32 = {"minimum": -(2**31), "maximum": 2**31 - 1}

#: Columns every table has, managed by the unit of work.
SYSTEM_FIELDS: tuple[Field, ...] = (
    Field("id", Integer(**_INT32), label="ID", read_only=True, origin="core"),
    Field("version", Integer(**_INT32), label="Version", read_only=True, origin="core"),
    Field("created_at", DateTime(), label="Created at", read_only=True, origin="core"),
    Field("updated_at", DateTime(), label="Updated at", read_only=True, origin="core"),
    Field("created_by", Reference("user", on_delete="set_null"), label="Created by", read_only=True, origin="core"),
    Field("updated_by", Reference("user", on_delete="set_null"), label="Updated by", read_only=True, origin="core"),
)
SYSTEM_FIELD_NAMES = frozenset(f.name for f in SYSTEM_FIELDS)

OWNER_FIELD = Field("owner_id", Reference("user", on_delete="restrict"), label="Owner", index=True, origin="core")


def _field_tuple(fields: Iterable[Field]) -> tuple[Field, ...]:
    return tuple(fields)


@attrs.frozen
class EntityType:
    """The declaration of a kind of record.

    :param name: singular snake-case noun (``"ticket"``).
    :param fields: its own fields, in display order.
    :param label: human name; derived from *name*.
    :param plural: human plural; derived from *label*.
    :param ownable: records have an owner (``owner_id``) and take part in sharing and tags.
    :param auditable: every change writes an audit entry.
    :param referable_by_all: any actor may name its records in a reference (an owner, a
        role, a policy a plugin stamps on a record): references to it are checked for existence
        only. Reading its records still needs read access. Meant for directories and
        configuration (users, teams, roles, groups, a help desk's SLA policies); without it, a
        reference to a record the actor cannot read is refused exactly like a missing one.
    :param title_field: the field that names a record in lists and timelines.
    :param table: the table name; filled in by the registry (``crm_<name>`` for the core,
        ``<plugin>_<name>`` for a plugin).
    :param origin: the declaring plugin; filled in by the registry.
    """

    name: str
    fields: tuple[Field, ...] = attrs.field(converter=_field_tuple)
    label: str = ""
    plural: str = ""
    ownable: bool = False
    auditable: bool = True
    referable_by_all: bool = False
    title_field: str = ""
    table: str = ""
    origin: str = ""
    help: str = ""
    _by_name: dict[str, Field] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        check_snake_name("entity", self.name)
        if not self.label:
            object.__setattr__(self, "label", self.name.replace("_", " ").capitalize())
        if not self.plural:
            object.__setattr__(self, "plural", _plural(self.label))
        fields = self.fields
        if self.ownable and not any(f.name == "owner_id" for f in fields):
            fields = (*fields, OWNER_FIELD)
            object.__setattr__(self, "fields", fields)
        if not self.title_field:
            title = next((f.name for f in fields if f.name in ("name", "subject", "title", "username")), "")
            if not title:
                title = next((f.name for f in fields if f.type.kind == "string"), "id")
            object.__setattr__(self, "title_field", title)
        by_name = {f.name: f for f in SYSTEM_FIELDS}
        for f in fields:
            if f.name in by_name:
                raise ValueError(f"entity {self.name!r} declares field {f.name!r} twice (or a system field)")
            by_name[f.name] = f
        object.__setattr__(self, "_by_name", by_name)

    # -- lookups ------------------------------------------------------------------------------
    def field(self, name: str) -> Field:
        """The field called *name* (system fields included).

        :raises NotFoundError: naming the entity and listing its fields.
        """
        try:
            return self._by_name[name]
        except KeyError:
            raise NotFoundError(
                f"{self.name} has no field {name!r}; its fields are: {', '.join(self.field_names)}",
                entity=self.name,
            ) from None

    def has_field(self, name: str) -> bool:
        return name in self._by_name

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def all_fields(self) -> tuple[Field, ...]:
        """System fields followed by declared fields."""
        return (*SYSTEM_FIELDS, *self.fields)

    @property
    def references(self) -> list[Field]:
        return [f for f in self.all_fields if isinstance(f.type, Reference)]

    @property
    def filterable(self) -> dict[str, frozenset[str]]:
        """``{field name: operators}`` for every field (derived from the field types)."""
        return {f.name: f.type.operators for f in self.all_fields}

    @property
    def sortable(self) -> list[str]:
        return [f.name for f in self.all_fields if f.type.sortable]

    @property
    def columns(self) -> list[str]:
        """Import and export columns: id, version, then every declared field."""
        return ["id", "version", *self.field_names]

    def __repr__(self) -> str:
        return f"<EntityType {self.name} fields={len(self.fields)}>"


def _plural(label: str) -> str:
    if label.endswith("y") and not label.endswith(("ay", "ey", "oy", "uy")):
        return label[:-1] + "ies"
    if label.endswith(("s", "x", "ch", "sh")):
        return label + "es"
    return label + "s"


@attrs.define(eq=False)
class Registry:
    """Collects declarations, then freezes; read-only afterwards.

    :param currency: the deployment's default currency (``[crm] currency``).
    :param timezone: the deployment's time zone for naive datetimes (``[crm] timezone``).
    """

    currency: str = "USD"
    timezone: dt.tzinfo | None = None
    _entities: dict[str, EntityType] = attrs.field(factory=dict)
    _extensions: dict[str, list[Field]] = attrs.field(factory=dict)
    _frozen: bool = False
    metadata: sa.MetaData | None = None
    tables: dict[str, sa.Table] = attrs.field(factory=dict)

    # -- collecting ---------------------------------------------------------------------------
    def add_entity(self, entity: EntityType, *, origin: str) -> None:
        """Add an entity type declared by plugin *origin*."""
        self._check_open()
        if entity.name in self._entities:
            other = self._entities[entity.name].origin
            raise ConfigError(
                f"entity type {entity.name!r} is declared by both {other!r} and {origin!r}; "
                "a plugin adds fields to another's entity through crm_entity_fields instead"
            )
        table = entity.table or (f"crm_{entity.name}" if origin == "core" or origin.startswith("core.") else f"{origin}_{entity.name}")
        fields = tuple(attrs.evolve(f, origin=f.origin or origin) for f in entity.fields)
        self._entities[entity.name] = attrs.evolve(entity, fields=fields, table=table, origin=origin)

    def extend_entity(self, entity_name: str, fields: Iterable[Field], *, origin: str) -> None:
        """Add *fields* from plugin (or ``"settings"``) *origin* to another entity type."""
        self._check_open()
        prefix = "custom" if origin == "settings" else origin
        core = origin == "core" or origin.startswith("core.")
        for f in fields:
            column = f.column if f.column != f.name or core else f"{prefix}_{f.name}"
            self._extensions.setdefault(entity_name, []).append(attrs.evolve(f, origin=origin, column=column))

    def add_custom_fields(self, specs: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> None:
        """Add the ``[custom_fields.<entity>]`` tables of the settings.

        :raises ConfigError: naming the key at fault.
        """
        for entity_name, fields in specs.items():
            declared = []
            for name, spec in fields.items():
                where = f"custom_fields.{entity_name}.{name}"
                try:
                    ftype = field_type_from_spec(spec, where=where)
                    declared.append(
                        Field(
                            name,
                            ftype,
                            label=spec.get("label", ""),
                            required=spec.get("required", False),
                            default=spec.get("default"),
                            unique=spec.get("unique", False),
                            index=spec.get("index", False),
                            read_only=spec.get("read_only", False),
                            help=spec.get("help", ""),
                            aliases=spec.get("aliases", ()),
                        )
                    )
                except ValueError as exc:
                    raise ConfigError(str(exc), key=where) from None
            self.extend_entity(entity_name, declared, origin="settings")

    def freeze(self) -> None:
        """Merge extensions, bind deployment defaults, check references; then allow no change.

        :raises ConfigError: for an extension of an unknown entity, a clash of field names, or a
            reference to an unknown entity.
        """
        self._check_open()
        import datetime as _dt

        tz = self.timezone or _dt.UTC
        for entity_name, fields in self._extensions.items():
            if entity_name not in self._entities:
                origins = sorted({f.origin for f in fields})
                raise ConfigError(
                    f"{', '.join(origins)} adds fields to unknown entity type {entity_name!r}; "
                    f"known entity types: {', '.join(sorted(self._entities))}",
                    key=f"custom_fields.{entity_name}" if "settings" in origins else None,
                )
            entity = self._entities[entity_name]
            existing = set(entity.field_names)
            for f in fields:
                if f.name in existing:
                    raise ConfigError(
                        f"{f.origin} adds field {f.name!r} to {entity_name!r}, which already has one",
                        key=f"custom_fields.{entity_name}.{f.name}" if f.origin == "settings" else None,
                    )
                existing.add(f.name)
            self._entities[entity_name] = attrs.evolve(entity, fields=(*entity.fields, *fields))
        for name, entity in list(self._entities.items()):
            bound = tuple(attrs.evolve(f, type=f.type.bind(currency=self.currency, timezone=tz)) for f in entity.fields)
            self._entities[name] = attrs.evolve(entity, fields=bound)
        for entity in self._entities.values():
            for f in entity.references:
                target = f.type.entity  # type: ignore[attr-defined]
                if target not in self._entities:
                    raise ConfigError(
                        f"field {entity.name}.{f.name} (from {f.origin}) refers to unknown entity type {target!r}",
                        key=f"custom_fields.{entity.name}.{f.name}" if f.origin == "settings" else None,
                    )
            for f in entity.fields:
                key = f"custom_fields.{entity.name}.{f.name}" if f.origin == "settings" else None
                where = key or f"field {entity.name}.{f.name} (from {f.origin})"
                problem = f.type.declaration_problem()
                if problem is not None:
                    raise ConfigError(f"{where}: {problem}", key=key)
                if f.default is not None and not callable(f.default):
                    try:
                        f.parse(f.default)
                    except ValueError as exc:
                        raise ConfigError(f"{where}: default {f.default!r} is invalid: {exc}", key=key) from None
        self._frozen = True

    def _check_open(self) -> None:
        if self._frozen:
            raise ConfigError("the registry is frozen once the app has started; declare entities and fields from hooks")

    # -- reading ------------------------------------------------------------------------------
    def entity(self, name: str) -> EntityType:
        """The entity type called *name*.

        :raises NotFoundError: listing the known entity types.
        """
        try:
            return self._entities[name]
        except KeyError:
            raise NotFoundError(
                f"unknown entity type {name!r}; known: {', '.join(sorted(self._entities))}", entity=name
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entities

    def __iter__(self) -> Iterator[EntityType]:
        return iter(self._entities.values())

    @property
    def entity_names(self) -> list[str]:
        return list(self._entities)

    def referencing(self, target: str) -> list[tuple[EntityType, Field]]:
        """Every (entity type, field) whose reference points at *target* (system fields excluded)."""
        found = []
        for entity in self._entities.values():
            for f in entity.fields:
                if isinstance(f.type, Reference) and f.type.entity == target:
                    found.append((entity, f))
        return found

    # -- tables -------------------------------------------------------------------------------
    def build_tables(self, metadata: sa.MetaData) -> dict[str, sa.Table]:
        """Create one table per entity type on *metadata* and return them by entity name."""
        tables: dict[str, sa.Table] = {}
        table_owner: dict[str, str] = {name: "crmcore" for name in metadata.tables}
        for entity in self._entities.values():
            if entity.table in table_owner:
                raise ConfigError(
                    f"entity type {entity.name!r} (from {entity.origin}) would use table {entity.table!r}, "
                    f"which {table_owner[entity.table]} already uses; rename one of them"
                )
            table_owner[entity.table] = f"entity type {entity.name!r} (from {entity.origin})"
            column_owner = {name: "crmcore" for name in ("id", "version", "created_at", "updated_at", "created_by", "updated_by")}
            columns: list[sa.schema.SchemaItem] = [
                sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
                sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
                sa.Column("created_at", SYSTEM_FIELDS[2].type.sql_type(), nullable=False),
                sa.Column("updated_at", SYSTEM_FIELDS[3].type.sql_type(), nullable=False),
                sa.Column("created_by", sa.Integer(), nullable=True),
                sa.Column("updated_by", sa.Integer(), nullable=True),
            ]
            for f in entity.fields:
                for column in f.type.columns(f.column):
                    if column.name in column_owner:
                        raise ConfigError(
                            f"field {entity.name}.{f.name} (from {f.origin}) would store column {column.name!r} "
                            f"of table {entity.table!r}, which {column_owner[column.name]} already uses; rename one of them",
                            key=f"custom_fields.{entity.name}.{f.name}" if f.origin == "settings" else None,
                        )
                    column_owner[column.name] = f"field {entity.name}.{f.name} (from {f.origin})"
                    column.info["origin"] = f.origin
                    if f.unique and column.name == f.column:
                        column.unique = True
                    if (f.index or f.is_reference) and column.name == f.column and not f.unique:
                        column.index = True
                    if f.is_reference and column.name == f.column:
                        target = self._entities[f.type.entity]  # type: ignore[attr-defined]
                        column.append_foreign_key(sa.ForeignKey(f"{target.table}.id"))
                    columns.append(column)
            table = sa.Table(entity.table, metadata, *columns, info={"origin": entity.origin, "entity": entity.name})
            tables[entity.name] = table
        self.metadata = metadata
        self.tables = tables
        return tables

    def table(self, entity: str) -> sa.Table:
        try:
            return self.tables[entity]
        except KeyError:
            self.entity(entity)
            raise
