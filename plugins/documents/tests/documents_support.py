"""Helpers the documents plugin's tests share (plain functions over the public API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crmcore import Actor, Crm
from crmcore import security as admin

#: Reps own their accounts and opportunities (sharing private); documents follow the records.
SECURITY: dict[str, Any] = {
    "profiles": {
        "rep": {
            "privileges": {
                "account": "all",
                "opportunity": "all",
                "contact": "all",
                "activity": "all",
                "document": "all",
                "document_version": ["create", "read"],
                "user": ["read"],
            }
        },
    },
    "roles": {"rep": {"profiles": ["rep"]}},
    "entities": {
        "account": {"sharing": "private", "hierarchy": "none"},
        "opportunity": {"sharing": "private", "hierarchy": "none"},
        "document": {"sharing": "public_read", "hierarchy": "none"},
    },
}


def app(crm_factory: Any, tmp_path: Path, **settings: Any) -> Crm:
    return crm_factory(  # type: ignore[no-any-return]
        plugins=["documents"],
        settings={"plugins": {"documents": {"storage_path": str(tmp_path / "store")}}},
        **settings,
    )


def users(crm: Crm, *names: str, roles: tuple[str, ...] = ()) -> list[Actor]:
    made = []
    with crm.unit_of_work() as uow:
        for name in names:
            user = (
                admin.add_user(uow, name, roles=list(roles))
                if roles
                else uow.create("user", username=name)
            )
            made.append(Actor(user.id, name))
        uow.commit()
    return made
