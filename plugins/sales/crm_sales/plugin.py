"""The sales plugin's hook implementations: every ``@hookimpl`` of ``crm_sales`` and nothing else.

Reads the ``[sales]`` settings (:mod:`crm_sales.settings`), checks a new lead's contact details
([sales] require_contact), keeps account domains up to date, checks and scores the leads a unit
of work changed ([sales] check_on_commit), adds ``crm leads check|score|convert`` and ``crm
forecast``, and tells the sales chapters of ``crm demo``. The entities and fields it works on
(the lead's temperature, quality issues and check time, the account's domain...) are the
core's; the logic lives in the modules beside this one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmcore.errors import ConfigError, ValidationError
from crmcore.hookspecs import hookimpl

from crm_sales import cli as sales_cli
from crm_sales import demo
from crm_sales.conversion import domain_of
from crm_sales.leads import sales_settings
from crm_sales.scoring import check_changed_leads
from crm_sales.settings import parse_sales_settings

if TYPE_CHECKING:
    import click
    from crmcore import Crm, UnitOfWork
    from crmcore.demo import Story
    from crmcore.records import Record


# -- settings ----------------------------------------------------------------------------------


@hookimpl
def crm_configure(crm: Crm) -> None:
    statuses = tuple(dict.fromkeys(s.name for p in crm.workflow.by_entity.get("lead", []) for s in p.stages))
    try:
        crm.set_state(parse_sales_settings(crm.settings.sections.get("sales"), crm.registry, lead_statuses=statuses))
    except ConfigError as exc:
        raise ConfigError(f"{crm.settings.source}: {exc}", path=crm.settings.path, key=exc.key) from None


# -- records ----------------------------------------------------------------------------------


@hookimpl
def crm_before_create(uow: UnitOfWork, entity: str, items: list[dict[str, Any]]) -> list[dict[str, Any] | None] | None:
    if entity == "lead":
        if sales_settings(uow).require_contact:
            for values in items:
                if not values.get("email") and not values.get("phone"):
                    raise ValidationError({"email": ["a lead needs an e-mail address or a phone number ([sales] require_contact)"]},
                                          entity="lead")
        return None
    if entity == "account":
        free = sales_settings(uow).free_mail_domains
        return [_account_domain(values, free) for values in items]
    return None


def _account_domain(values: dict[str, Any], free: Any) -> dict[str, Any] | None:
    if values.get("domain") is None:
        domain = domain_of(values.get("website"), values.get("email"), free=free)
        return {"domain": domain} if domain is not None else None
    return None


@hookimpl
def crm_before_update(uow: UnitOfWork, entity: str, items: list[tuple[Record, dict[str, Any]]]) -> list[dict[str, Any] | None] | None:
    if entity != "account":
        return None
    free = sales_settings(uow).free_mail_domains
    return [_account_changes(record, changes, free) for record, changes in items]


def _account_changes(record: Record, changes: dict[str, Any], free: Any) -> dict[str, Any] | None:
    """The account's derived ``domain`` again, when its website or e-mail changes and the
    domain was derived from them before (not set by hand)."""
    if ("website" in changes or "email" in changes) and "domain" not in changes:
        kept = domain_of(record.values.get("website"), record.values.get("email"), free=free)
        if record.values.get("domain") in (None, kept):  # derived before, so derived again
            merged = record.merged(changes)
            return {"domain": domain_of(merged.get("website"), merged.get("email"), free=free)}
    return None


@hookimpl
def crm_before_commit(uow: UnitOfWork) -> None:
    check_changed_leads(uow)


# -- command line ------------------------------------------------------------------------------


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    return [sales_cli.leads, sales_cli.forecast]


# -- demo --------------------------------------------------------------------------------------


@hookimpl
def crm_demo(story: Story) -> None:
    demo.tell(story)


@hookimpl
def crm_demo_summary(crm: Crm) -> list[str]:
    return demo.summary(crm)
