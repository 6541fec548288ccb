"""``crm dedupe`` and ``crm merge``: finding duplicates, merging them and undoing a merge, and
the ``merge`` privilege.

Every command runs as :func:`crmcore.cli.current_actor` through the unit of work's merge
methods (:mod:`crmcore.merge`): ``crm dedupe find`` lists the groups among the records the
actor may read; ``crm merge ENTITY ID ID... --into ID`` merges (``--dry-run``: prints the plan
and writes nothing); ``crm merge undo MERGE_ID`` undoes; ``crm merge list`` shows the merges.
Contributed through ``crm_cli_commands`` like a plugin's commands.
"""

from __future__ import annotations

from typing import Any

import click

from crmcore.cli import current_actor, current_app, echo_json
from crmcore.hookspecs import hookimpl
from crmcore.merge import MERGE_ACTION, MergePlan, MergeRelation, merges
from crmcore.plugins import PluginInfo

PLUGIN = PluginInfo(name="core.merge", title="Duplicates and merges",
                    description="crm dedupe find, crm merge: merge duplicates with every relation, and undo.")


@hookimpl
def crm_permissions() -> list[str]:
    """``merge``: merge records of an entity type (a profile names it; ``"all"`` does not grant it)."""
    return [MERGE_ACTION]


@hookimpl
def crm_merge_relations() -> list[MergeRelation]:
    """The core's own links by id: an approval and a notification about a record merged away
    are about the record kept."""
    return [MergeRelation(entity=name, field="record_id", entity_field="record_entity") for name in ("approval", "notification")]


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    return [dedupe, merge]


@click.group()
def dedupe() -> None:
    """Find duplicate records."""


@dedupe.command("find")
@click.argument("entity")
@click.option("--min-score", type=click.FloatRange(0.01, 1.0), default=0.8, show_default=True,
              help="The least score (0 to 1) of a pair of records joining a group.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of groups.")
def find(entity: str, min_score: float, as_json: bool) -> None:
    """List groups of probable duplicates of ENTITY among the records the actor may read."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        groups = uow.find_duplicates(entity, min_score)
    if as_json:
        echo_json([{"ids": list(g.ids), "score": g.score, "reasons": list(g.reasons)} for g in groups])
        return
    if not groups:
        click.echo(f"no duplicate {entity} records scoring {min_score} or more")
    for group in groups:
        click.echo(f"{entity} {' '.join(map(str, group.ids))}  score {group.score:.2f}  ({', '.join(group.reasons)})")


class _MergeGroup(click.Group):
    """``crm merge ENTITY ID...`` runs the ``records`` command; ``undo`` and ``list`` are named."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "records", self.commands["records"], args
        return super().resolve_command(ctx, args)


@click.group(cls=_MergeGroup)
def merge() -> None:
    """Merge duplicate records: crm merge ENTITY ID ID... --into ID [--dry-run]; crm merge undo MERGE_ID."""


def _parse_fields(values: tuple[str, ...]) -> dict[str, int | str]:
    chosen: dict[str, int | str] = {}
    for item in values:
        name, sep, how = item.partition("=")
        if not sep or not name.strip() or not how.strip():
            raise click.BadParameter(f"{item!r}: write FIELD=ID (take the value of record ID) or FIELD=STRATEGY", param_hint="--field")
        chosen[name.strip()] = int(how) if how.strip().isdigit() else how.strip()
    return chosen


def _print_plan(plan: MergePlan) -> None:
    click.echo(f"merge {plan.entity} {', '.join(map(str, plan.sources))} into {plan.into}")
    for name, (before, after) in plan.values.items():
        click.echo(f"  {name}: {before!r} -> {after!r}")
    for relation in plan.relations:
        if not (relation.count or relation.merged_count or relation.conflicts):
            continue
        hidden = f", {relation.hidden} you may not read" if relation.hidden else ""
        click.echo(f"  {relation.name} ({relation.strategy}): {relation.count} moving, "
                   f"{relation.merged_count} merged away{hidden}")
        for conflict in relation.conflicts:
            click.echo(f"    {conflict}")


@merge.command("records")
@click.argument("entity")
@click.argument("ids", nargs=-1, type=int, required=True)
@click.option("--into", "into", type=int, required=True, help="The record kept.")
@click.option("--field", "fields", multiple=True, metavar="FIELD=ID|STRATEGY",
              help="Take FIELD from record ID, or by a strategy (concatenate, max, min, union, target). Repeatable.")
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan (and the merge id) as JSON.")
def records(entity: str, ids: tuple[int, ...], into: int, fields: tuple[str, ...], dry_run: bool, as_json: bool) -> None:
    """Merge records IDS of ENTITY into record --into."""
    crm = current_app()
    chosen = _parse_fields(fields)
    with crm.unit_of_work(current_actor()) as uow:
        if dry_run:
            plan = uow.plan_merge(entity, ids, into=into, fields=chosen)
            echo_json(plan.summary()) if as_json else _print_plan(plan)
            return
        result = uow.merge(entity, ids, into=into, fields=chosen)
        uow.commit()
    if as_json:
        echo_json({"merge_id": result.merge_id, **result.plan.summary()})
        return
    _print_plan(result.plan)
    click.echo(f"merged as merge {result.merge_id}; undo with: crm merge undo {result.merge_id}")


@merge.command("undo")
@click.argument("merge_id", type=int)
def undo(merge_id: int) -> None:
    """Undo merge MERGE_ID while nothing has written over it since."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        record = uow.undo_merge(merge_id)
        uow.commit()
    click.echo(f"merge {merge_id} undone; {record.entity} {record.id} and the records merged into it are back")


@merge.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_merges(as_json: bool) -> None:
    """List the merges of entity types the actor may merge, newest first."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        rows = merges(uow)
    out: list[dict[str, Any]] = [{"id": r["id"], "entity": r["entity"], "into": r["into_id"], "sources": r["sources"],
                                  "at": r["at"].isoformat(), "undone": r["undone_at"] is not None} for r in rows]
    if as_json:
        echo_json(out)
        return
    for r in out:
        state = " (undone)" if r["undone"] else ""
        click.echo(f"{r['id']}: {r['entity']} {', '.join(map(str, r['sources']))} into {r['into']} at {r['at']}{state}")
