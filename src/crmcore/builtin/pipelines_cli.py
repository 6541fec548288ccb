"""``crm pipelines`` and ``crm pipelines show NAME``, as a builtin plugin (``core.pipelines``).

The pipelines of the deployment as the app froze them: declared by the core, by plugins or in
``[pipelines.*]`` of the settings, and extended by phase plugins. ``crm pipelines`` lists them
(name, entity, stage count, default or not); ``crm pipelines show NAME`` prints one: its stages
with probability, kind, required and locked fields, and its transitions with their guards and
permission. Both take ``--json`` (the data of
:meth:`~crmcore.workflow.pipelines.Pipeline.describe`). Nothing is read from the database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from crmcore.cli import current_app, echo_json
from crmcore.errors import NotFoundError
from crmcore.hookspecs import hookimpl
from crmcore.plugins import PluginInfo

if TYPE_CHECKING:
    from crmcore.workflow import Pipeline, Workflow

PLUGIN = PluginInfo(name="core.pipelines", title="Pipeline commands")

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    return [pipelines]


def _is_default(workflow: Workflow, pipeline: Pipeline) -> bool:
    """Whether records of the entity follow *pipeline* when they name none."""
    return workflow.defaults.get(pipeline.entity) is pipeline


def find_pipeline(workflow: Workflow, name: str) -> Pipeline:
    """The pipeline called *name*.

    :raises NotFoundError: naming *name* and the known pipelines.
    """
    pipeline = workflow.pipelines.get(name)
    if pipeline is None:
        known = ", ".join(sorted(workflow.pipelines)) or "none"
        raise NotFoundError(f"no pipeline {name!r}; known pipelines: {known}", entity="pipeline", id=name)
    return pipeline


def _table(rows: list[list[str]]) -> list[str]:
    """Rows of cells as left-aligned columns, the first row being the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


@click.group(invoke_without_command=True)
@_JSON
@click.pass_context
def pipelines(ctx: click.Context, as_json: bool) -> None:
    """List the pipelines: name, entity, number of stages, whether it is the entity's default."""
    if ctx.invoked_subcommand is not None:
        return
    workflow = current_app().workflow
    listed = sorted(workflow.pipelines.values(), key=lambda p: p.name)
    if as_json:
        echo_json([{
            "name": p.name, "entity": p.entity, "label": p.label, "stages": len(p.stages),
            "default": _is_default(workflow, p), "origin": p.origin,
        } for p in listed])
        return
    if not listed:
        click.echo("no pipelines")
        return
    lines = [["NAME", "ENTITY", "STAGES", "DEFAULT", "LABEL", "ORIGIN"]]
    lines += [[p.name, p.entity, str(len(p.stages)), "yes" if _is_default(workflow, p) else "no", p.label, p.origin]
              for p in listed]
    click.echo("\n".join(_table(lines)))


@pipelines.command("show")
@click.argument("name")
@_JSON
def pipelines_show(name: str, as_json: bool) -> None:
    """Show a pipeline: stages (probability, kind, required and locked fields) and transitions
    (guards, permission)."""
    workflow = current_app().workflow
    pipeline = find_pipeline(workflow, name)
    if as_json:
        echo_json({**pipeline.describe(), "default": _is_default(workflow, pipeline)})
        return
    default = "default pipeline" if _is_default(workflow, pipeline) else "not the default"
    click.echo(f"{pipeline.name}: {pipeline.label or pipeline.name} ({pipeline.entity}, stage in field "
               f"{pipeline.field!r}, {default}, from {pipeline.origin or '-'})")
    click.echo("")
    stages = [["STAGE", "PROBABILITY", "KIND", "REQUIRED", "LOCKED"]]
    stages += [[s.name, f"{s.probability}%", s.kind, ", ".join(s.required) or "-", ", ".join(s.locked) or "-"]
               for s in pipeline.stages]
    click.echo("\n".join(_table(stages)))
    click.echo("")
    click.echo("transitions:")
    for transition in pipeline.transitions:
        extras = [f"guard: {guard}" for guard in transition.guards]
        if transition.permission is not None:
            extras.append(f"permission: {transition.permission}")
        click.echo(f"  {transition}" + (f"  [{'; '.join(extras)}]" if extras else ""))
