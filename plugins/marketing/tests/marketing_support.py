"""Helpers the marketing tests share (plain functions over the public API, no fixtures)."""

from __future__ import annotations

from typing import Any

from crmcore import Actor, Crm
from crmcore.security import add_user

ALL = {name: "all" for name in (
    "lead", "contact", "account", "opportunity", "activity", "geography", "segment",
    "segment_entry", "campaign", "campaign_cost", "campaign_run", "campaign_member",
    "campaign_touch", "market_plan", "plan_target", "plan_goal",
)}
#: A manager over two reps; accounts, contacts, leads and deals are private to their owners.
SECURITY: dict[str, Any] = {
    "profiles": {"sales": {"privileges": ALL}},
    "roles": {"manager": {"profiles": ["sales"]}, "rep": {"parent": "manager", "profiles": ["sales"]}},
    "entities": {name: {"sharing": "private"} for name in ("lead", "account", "contact", "opportunity")},
}


def office(crm_factory: Any, **settings: Any) -> tuple[Crm, dict[str, Actor]]:
    """An app with marketing and :data:`SECURITY`, a manager ``boss`` and reps ``rep1``, ``rep2``."""
    crm = crm_factory(plugins=["marketing"], settings={"security": SECURITY, **settings})
    with crm.unit_of_work() as uow:
        users = {name: add_user(uow, name, roles=[role])
                 for name, role in (("boss", "manager"), ("rep1", "rep"), ("rep2", "rep"))}
        uow.commit()
    return crm, {name: Actor(user.id, name) for name, user in users.items()}


def world(uow: Any) -> dict[str, Any]:
    """Germany (Bavaria: Munich; Hesse: Frankfurt) and France (Paris), by code."""
    made: dict[str, Any] = {}
    for code, name, level, parent in (
        ("DE", "Germany", "country", None), ("DE-BY", "Bavaria", "region", "DE"),
        ("DE-BY-MUC", "Munich", "city", "DE-BY"), ("DE-HE", "Hesse", "region", "DE"),
        ("DE-HE-FRA", "Frankfurt", "city", "DE-HE"), ("FR", "France", "country", None),
        ("FR-PAR", "Paris", "city", "FR"),
    ):
        made[code] = uow.create("geography", name=name, code=code, level=level,
                                parent_id=made[parent].id if parent else None)
    return made
