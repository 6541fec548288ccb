"""The example plugin's hook implementations (the entry point ``example``)."""

from __future__ import annotations

from pathlib import Path

from crmcore import EntityType, Field, hookimpl

from crm_example.entities import ACCOUNT_FIELDS, SITE_VISIT


@hookimpl
def crm_entity_types() -> list[EntityType]:
    return [SITE_VISIT]


@hookimpl
def crm_entity_fields(entity_type: str) -> list[Field] | None:
    if entity_type == "account":
        return list(ACCOUNT_FIELDS)
    return None


@hookimpl
def crm_migrations() -> str:
    return str(Path(__file__).resolve().parent / "migrations" / "versions")
