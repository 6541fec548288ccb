"""``crm outbox ...``: watch, retry and deliver requests to other systems.

::

    crm outbox list [--state pending|delivering|delivered|failed] [--supply STATE] [--json]
    crm outbox retry ID [ID ...]          (or --failed: every failed request)
    crm outbox deliver [--limit N]        (what the worker's outbox.deliver job does)
    crm outbox answer KEY STATE           (record another system's answer)
    crm outbox answers FILE               (a JSON file of answers)

Every command acts as ``--as USER`` (default: the system actor): listing needs
``outbox.outbox_request.view``, retrying and delivering ``outbox.outbox_request.retry``,
answering ``outbox.outbox_request.answer``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click
from crmcore.cli import current_actor, current_app, dump_record, echo_json

from crm_outbox.access import RETRY_PERMISSION, VIEW_PERMISSION
from crm_outbox.answers import answer_many, read_answers_file
from crm_outbox.delivery import deliver, retry, retry_failed
from crm_outbox.entities import DELIVERIES, SUPPLY_STATES

if TYPE_CHECKING:
    from crmcore import Crm

__all__ = ["outbox"]

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _when(crm: Crm, moment: dt.datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(crm.registry.timezone or dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


@click.group("outbox")
def outbox() -> None:
    """Requests to other systems: list, retry, deliver, answer."""


@outbox.command("list")
@click.option(
    "--state", type=click.Choice(DELIVERIES), help="Only requests in this delivery state."
)
@click.option(
    "--supply", type=click.Choice(SUPPLY_STATES), help="Only requests in this supply state."
)
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@_JSON
def list_requests(state: str | None, supply: str | None, limit: int, as_json: bool) -> None:
    """List requests, newest first."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        uow.require("outbox_request", VIEW_PERMISSION)
        query = uow.query("outbox_request")
        if state:
            query = query.where(delivery=state)
        if supply:
            query = query.where(supply_state=supply)
        records = query.order_by("-id").limit(limit).all()
    if as_json:
        echo_json([dump_record(crm, record) for record in records])
        return
    if not records:
        click.echo("no outbox requests")
        return
    for r in records:
        line = (
            f"{r.id:>6}  {r.delivery:<10} {r.supply_state:<9} {r.sink:<12} {r.kind:<16} "
            f"{r.idempotency_key}  attempts {r.attempts}"
        )
        if r.delivery == "pending" and r.attempts:
            line += f", next {_when(crm, r.next_attempt_at)}"
        if r.last_error and r.delivery != "delivered":
            line += f"\n        last error: {r.last_error}"
        click.echo(line)


@outbox.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--failed", "all_failed", is_flag=True, help="Retry every failed request.")
def retry_command(ids: tuple[int, ...], all_failed: bool) -> None:
    """Send failed requests again (by id, or every failed one with --failed)."""
    if bool(ids) == all_failed:
        raise click.UsageError("give request ids or --failed (not both)")
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        done = retry_failed(uow) if all_failed else retry(uow, list(ids))
        uow.commit()
    if not done:
        click.echo("no failed requests")
        return
    click.echo(
        f"{len(done)} request{'s' if len(done) != 1 else ''} queued again: "
        + ", ".join(map(str, done))
    )


@outbox.command("deliver")
@click.option("--limit", type=click.IntRange(1), help="Deliver at most this many requests.")
def deliver_command(limit: int | None) -> None:
    """Deliver the due requests now (the worker does it too)."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        uow.require("outbox_request", RETRY_PERMISSION)
    click.echo(deliver(crm, limit=limit).summary())


@outbox.command("answer")
@click.argument("key")
@click.argument("state", type=click.Choice(SUPPLY_STATES))
def answer_command(key: str, state: str) -> None:
    """Record that request KEY is in supply STATE now."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        changed = answer_many(uow, [(key, state)])
        uow.commit()
    click.echo(f"{key}: {state}" if changed else f"{key}: already {state}")


@outbox.command("answers")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def answers_command(path: str) -> None:
    """Record the answers of a JSON file ([{"key": ..., "state": ...}, ...])."""
    crm = current_app()
    pairs = read_answers_file(path)
    with crm.unit_of_work(current_actor()) as uow:
        changed = answer_many(uow, pairs)
        uow.commit()
    click.echo(f"{len(pairs)} answers read, {changed} requests changed state")
