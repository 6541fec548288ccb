"""Every link to a record that a merge must carry along has a strategy: the registry's
references (repointed unless declared otherwise) and the links plugins declare through
``crm_merge_relations``. An integer field named like a link that nobody declares fails here."""

from __future__ import annotations

from typing import Any

from crmcore import EntityType, Field, hookimpl
from crmcore.fields import Integer, String
from crmcore.merge import MergeRelation, unclassified_links
from crmcore.merge.relations import declared, relations_of
from crmcore.plugins import installed_plugins


def test_every_link_of_every_installed_plugin_has_a_merge_strategy(crm_factory: Any) -> None:
    crm = crm_factory(plugins=sorted(installed_plugins()), create_schema=False)

    missing = unclassified_links(crm.registry, declared(crm.plugins.hook))

    assert missing == [], (
        "these fields look like links to records but have no merge strategy; declare them through "
        "crm_merge_relations (MergeRelation(..., strategy='none') for a field that is no link): " + ", ".join(missing)
    )


class _Undeclared:
    @hookimpl
    def crm_entity_types(self) -> list[EntityType]:
        return [EntityType("pin", fields=(Field("record_entity", String(64)), Field("record_id", Integer())))]


class _Declared(_Undeclared):
    @hookimpl
    def crm_merge_relations(self) -> list[MergeRelation]:
        return [MergeRelation(entity="pin", field="record_id", entity_field="record_entity")]


def test_a_link_without_a_strategy_is_reported(crm_factory: Any) -> None:
    crm = crm_factory(plugins=[_Undeclared()], create_schema=False)

    assert unclassified_links(crm.registry, declared(crm.plugins.hook)) == ["pin.record_id"]


def test_a_declared_link_joins_the_relations_of_every_entity_it_may_point_at(crm_factory: Any) -> None:
    crm = crm_factory(plugins=[_Declared()], create_schema=False)
    items = declared(crm.plugins.hook)

    assert unclassified_links(crm.registry, items) == []
    assert "pin.record_id" in [r.name for r in relations_of(crm.registry, "contact", items)]
    assert "activity.contact_id" in [r.name for r in relations_of(crm.registry, "contact", items)]
