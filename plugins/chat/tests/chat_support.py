"""Helpers the chat's tests share (plain functions over the public API, no fixtures)."""

from __future__ import annotations

from typing import Any

from crmcore import Actor, Crm
from crmcore import security as admin

#: Reps read only their own opportunities and accounts (sharing private); everybody chats.
SECURITY: dict[str, Any] = {
    "profiles": {
        "rep": {
            "privileges": {
                "opportunity": "all",
                "account": "all",
                "user": ["read"],
                "team": ["read"],
                "chat_room": ["read", "update"],
                "chat_member": ["create", "read", "delete"],
                "chat_message": ["create", "read", "update"],
                "chat_mention": ["create", "read", "delete"],
            }
        },
    },
    "roles": {"rep": {"profiles": ["rep"]}},
    "entities": {
        "opportunity": {"sharing": "private", "hierarchy": "none"},
        "account": {"sharing": "private", "hierarchy": "none"},
    },
}


def users(crm: Crm, *names: str, roles: tuple[str, ...] = (), **fields: Any) -> list[Actor]:
    """Create users (holding *roles*, when security is configured) and return their actors."""
    made = []
    with crm.unit_of_work() as uow:
        for name in names:
            user = (
                admin.add_user(uow, name, roles=list(roles))
                if roles
                else uow.create("user", username=name, **fields)
            )
            made.append(Actor(user.id, name))
        uow.commit()
    return made
