"""Small helpers the help desk's tests share (plain functions over the public API, no fixtures)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crmcore import Actor, Crm, NotFoundError
from crmcore import security as admin

#: A Monday in March 2026, 10:00 UTC: tickets opened then have fixed due times on the seeded
#: Standard calendar (Monday to Friday, 09:00 to 17:00, UTC).
MONDAY = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)

#: Profiles of a support team, for apps with [security]: agents work tickets they may see,
#: leads may also assign, close and publish; everybody reads accounts and contacts only
#: through the help desk's grants (accounts and contacts are private).
SECURITY: dict[str, Any] = {
    "profiles": {
        "agent": {
            "privileges": {
                "ticket": ["create", "read", "update"],
                "activity": "all",
                "account": ["read"],
                "contact": ["read"],
                "kb_article": ["create", "read", "update"],
                "kb_category": ["read"],
                "ticket_article": ["create", "read"],
                "queue": ["read"],
                "user": ["read"],
            }
        },
        "lead": {
            "privileges": {
                "ticket": [
                    "create",
                    "read",
                    "update",
                    "helpdesk.ticket.assign",
                    "helpdesk.ticket.close",
                ],
                "activity": "all",
                "account": ["read"],
                "contact": ["read"],
                "kb_article": ["create", "read", "update", "helpdesk.kb_article.publish"],
                "ticket_article": ["create", "read"],
                "queue": ["read"],
                "user": ["read"],
            }
        },
    },
    "roles": {
        "support_lead": {"profiles": ["lead"]},
        "support_agent": {"parent": "support_lead", "profiles": ["agent"]},
    },
    "groups": {"second_line": {}},
    "entities": {
        "ticket": {"sharing": "private", "hierarchy": "none"},
        "account": {"sharing": "private", "hierarchy": "none"},
        "contact": {"sharing": "private", "hierarchy": "none"},
        "kb_article": {"sharing": "private", "hierarchy": "none"},
    },
}


def users(crm: Crm, *names: str, roles: tuple[str, ...] = ()) -> list[Actor]:
    """Create users (holding *roles*, when security is configured) and return their actors."""
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


def queue(crm: Crm, name: str = "General", *, agents: tuple[Actor, ...] = (), **values: Any) -> int:
    """The id of queue *name* (created unless it is the seeded default), with *agents* added."""
    from crm_helpdesk.tickets import find_queue

    with crm.unit_of_work() as uow:
        try:
            queue_id = find_queue(uow, name)
            if values:
                uow.update("queue", queue_id, values)
        except NotFoundError:  # not there yet
            queue_id = uow.create("queue", name=name, **values).id
        for agent in agents:
            uow.create("queue_agent", queue_id=queue_id, user_id=agent.user_id)
        uow.commit()
    return queue_id


def account(crm: Crm, name: str = "Acme", tier: str | None = None, **values: Any) -> int:
    with crm.unit_of_work() as uow:
        if tier is not None:
            values["support_tier"] = tier
        record = uow.create("account", name=name, **values)
        uow.commit()
    return record.id


def open_ticket(
    crm: Crm, subject: str = "Printer on fire", actor: Actor | None = None, **values: Any
) -> Any:
    """Open and commit one ticket; returns the record."""
    from crm_helpdesk import tickets

    with crm.unit_of_work(actor) as uow:
        record = tickets.open_ticket(uow, subject, **values)
        uow.commit()
    return record


def get(crm: Crm, entity: str, record_id: int) -> Any:
    with crm.unit_of_work() as uow:
        return uow.get(entity, record_id)
