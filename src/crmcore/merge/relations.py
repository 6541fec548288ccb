"""What a merge moves: the relations of an entity type and the strategy of each.

A merge of records of one entity type must carry along everything that points at the records
merged away. Three kinds of relation do:

- **references** the registry knows (:class:`~crmcore.fields.Reference` fields of core and
  plugin entities pointing at the entity type): found by themselves, repointed by default;
- **links** that are not references: an entity's pair of fields naming a record of any
  entity type (a chat mention's ``target_entity`` and ``target_id``, a document's
  ``record_entity`` and ``record_id``), or a column of a plugin's own non-record table (a
  calendar-sync link's ``activity_id``). Plugins declare them with the
  ``crm_merge_relations`` hook, which may also give a reference a strategy of its own;
- the core's **taggings**, always a union.

Each relation has a strategy (:data:`STRATEGIES`): ``repoint`` every row to the record kept;
``union`` repoints and merges away the rows that would then duplicate one (same values of the
relation's ``unique`` fields); ``sum`` does the same and adds the ``sum_fields`` of the rows
merged away into the row kept; ``keep`` keeps the kept record's rows when it has any (and merges
the others away), else repoints; ``refuse`` refuses the merge while a record merged away has
rows. Rows merged away are never deleted: records become tombstones like the merged records,
rows of a plugin's table are kept in the merge's journal, and :func:`crmcore.merge.undo`
restores them.

:class:`MergeField` declares how a field's value is chosen when records are merged
(:data:`FIELD_STRATEGIES`); without one the kept record's value wins, and an empty one is
filled from the first record merged away that has a value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs

from crmcore.errors import ConfigError
from crmcore.fields import Integer, Reference

if TYPE_CHECKING:
    from crmcore.registry import Registry

__all__ = [
    "FIELD_STRATEGIES", "STRATEGIES", "MergeField", "MergeRelation", "declared", "field_rules", "relations_of",
    "unclassified_links",
]

#: What a relation does with the rows of the records merged away.
STRATEGIES = ("repoint", "union", "sum", "keep", "refuse")
#: How a field's value is chosen from the merged records' values.
FIELD_STRATEGIES = ("target", "concatenate", "max", "min", "union")
#: Integer fields with these names, or ending in ``_id``, look like links to records: each must
#: be a reference or have a declared relation (or be declared ``strategy="none"``), see
#: :func:`unclassified_links`.
_LINK_NAMES = ("record_id", "target_id", "member_id", "object_id")


@attrs.frozen
class MergeRelation:
    """A relation a merge carries along, as a plugin declares it (``crm_merge_relations``).

    :param entity: the entity type whose records hold the link (records: written through the
        unit of work, audited, versioned); or ``None`` with *table*.
    :param field: the field (or column of *table*) holding the linked record's id.
    :param entity_field: the field (or column) naming the linked record's entity type, for
        links to records of any type; ``None`` when *targets* says which type.
    :param targets: the entity types the link points at (``("*",)``: any, told by
        *entity_field*).
    :param strategy: one of :data:`STRATEGIES`, or ``"none"`` for an integer field that is
        not a link at all (it quiets :func:`unclassified_links`).
    :param unique: fields that, beside the link, make a row unique (for ``union``, ``sum``).
    :param sum_fields: numeric fields added up by ``sum``.
    :param table: a plugin's own non-record table holding the link (reached through
        ``uow.raw(plugin)``), instead of *entity*.
    :param plugin: the plugin owning *table*.
    :param key: the primary key columns of *table*.
    """

    entity: str | None = None
    field: str = "record_id"
    entity_field: str | None = None
    targets: tuple[str, ...] = ("*",)
    strategy: str = "repoint"
    unique: tuple[str, ...] = ()
    sum_fields: tuple[str, ...] = ()
    table: str | None = None
    plugin: str | None = None
    key: tuple[str, ...] = ("id",)

    def __attrs_post_init__(self) -> None:
        if self.strategy not in (*STRATEGIES, "none"):
            raise ConfigError(f"merge relation {self.name}: unknown strategy {self.strategy!r}; known: {', '.join(STRATEGIES)}, none")
        if (self.entity is None) == (self.table is None):
            raise ConfigError(f"merge relation {self.name}: give entity= (records) or table= with plugin= (a plugin's own table)")
        if self.table is not None and self.plugin is None:
            raise ConfigError(f"merge relation {self.name}: a table link needs plugin= (the plugin owning {self.table!r})")
        if self.strategy in ("union", "sum") and not self.unique:
            raise ConfigError(f"merge relation {self.name}: strategy {self.strategy!r} needs unique= (the fields a duplicate shares)")

    @property
    def name(self) -> str:
        """``holder.field``: the entity (or table) and the field holding the link."""
        return f"{self.entity or self.table}.{self.field}"

    @property
    def is_table(self) -> bool:
        return self.table is not None

    def points_at(self, entity: str) -> bool:
        return "*" in self.targets or entity in self.targets

    def __repr__(self) -> str:
        return f"<MergeRelation {self.name} {self.strategy}>"


@attrs.frozen
class MergeField:
    """How a merge chooses the value of *field* of *entity* (``crm_merge_relations``).

    :param strategy: one of :data:`FIELD_STRATEGIES`: ``target`` (the kept record's, filled
        when empty), ``concatenate`` (distinct texts joined by a new line), ``max``, ``min``,
        ``union`` (distinct items of lists, or of comma-separated texts).
    """

    entity: str
    field: str
    strategy: str

    def __attrs_post_init__(self) -> None:
        if self.strategy not in FIELD_STRATEGIES:
            raise ConfigError(
                f"merge field {self.entity}.{self.field}: unknown strategy {self.strategy!r}; known: {', '.join(FIELD_STRATEGIES)}",
            )


def declared(hook: Any) -> list[MergeRelation | MergeField]:
    """Every relation and field rule the plugins declare through ``crm_merge_relations``."""
    found: list[MergeRelation | MergeField] = []
    for result in hook.crm_merge_relations():
        for item in result or ():
            if not isinstance(item, (MergeRelation, MergeField)):
                raise ConfigError(f"crm_merge_relations returned {item!r}; return MergeRelation and MergeField values")
            found.append(item)
    return found


def relations_of(registry: Registry, entity: str, declared_items: Iterable[MergeRelation | MergeField]) -> list[MergeRelation]:
    """The relations a merge of *entity* records carries along: every reference to *entity*
    (``repoint`` unless declared otherwise) and every declared link pointing at it, in a
    stable order. Declared relations with strategy ``none`` are left out."""
    items = [item for item in declared_items if isinstance(item, MergeRelation)]
    by_field = {(item.entity, item.field): item for item in items if item.entity is not None}
    found: list[MergeRelation] = []
    for child, field in registry.referencing(entity):
        assert isinstance(field.type, Reference)
        given = by_field.get((child.name, field.name))
        found.append(attrs.evolve(given, targets=(entity,)) if given is not None
                     else MergeRelation(entity=child.name, field=field.name, targets=(entity,)))
    taken = {(r.entity, r.field) for r in found}
    for item in items:
        if item.strategy == "none" or (item.entity, item.field) in taken or not item.points_at(entity):
            continue
        if item.entity is not None and item.entity not in registry:
            continue  # the entity of a plugin not enabled here
        if item.entity is not None and isinstance(registry.entity(item.entity).field(item.field).type, Reference):
            continue  # a reference to another entity type: its strategy applies when that one merges
        found.append(item)
    return found


def field_rules(entity: str, declared_items: Iterable[MergeRelation | MergeField]) -> dict[str, str]:
    """``{field: strategy}`` declared for *entity*'s fields."""
    return {item.field: item.strategy for item in declared_items if isinstance(item, MergeField) and item.entity == entity}


def _looks_like_link(name: str, field_type: Any) -> bool:
    return isinstance(field_type, Integer) and (name in _LINK_NAMES or name.endswith("_id"))


def unclassified_links(registry: Registry, declared_items: Iterable[MergeRelation | MergeField]) -> list[str]:
    """``entity.field`` of every field that links to records of a mergeable entity type
    without a strategy: integer fields named like links (``record_id``, ``target_id``,
    ``member_id``, ``..._id``) that are no reference and that no relation declares (a
    relation with strategy ``none`` says the field is not a link), and references to a
    field marked unique (one-to-one: repointing several rows would break it) that no relation
    gives a strategy. Empty when every link is accounted for."""
    items = [item for item in declared_items if isinstance(item, MergeRelation)]
    named = {(item.entity, item.field) for item in items if item.entity is not None}
    missing: list[str] = []
    for name in sorted(registry.entity_names):
        etype = registry.entity(name)
        for field in etype.fields:
            if field.name == "owner_id" or (name, field.name) in named:
                continue
            if isinstance(field.type, Reference):
                if field.unique:
                    missing.append(f"{name}.{field.name}")
            elif _looks_like_link(field.name, field.type):
                missing.append(f"{name}.{field.name}")
    return missing
