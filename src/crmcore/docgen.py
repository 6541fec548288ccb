"""The entity reference, generated from the registry: ``python -m crmcore.docgen > docs/entities.md``;
and the pipeline reference: ``python -m crmcore.docgen --pipelines > docs/pipelines.md``.

The registry is the single source of truth, so the reference is derived from it like tables
and schemas are: every entity type with its label, table and fields (name, type, required,
default, help). Without arguments the core's entity types are documented; ``--config crm.toml``
documents a deployment, with its plugins' entity types, the fields plugins add and its custom
fields. A test compares ``docs/entities.md`` with the output, so a new core field cannot ship
undocumented. The pipeline reference is derived from the frozen pipelines the same way (stages,
probabilities, kinds, transitions, guards), with the rules every pipeline follows.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from crmcore.fields import Reference
from crmcore.registry import SYSTEM_FIELDS

if TYPE_CHECKING:
    from crmcore.fields import Field
    from crmcore.registry import EntityType, Registry
    from crmcore.workflow.pipelines import Pipeline

__all__ = ["core_pipelines", "entity_reference", "main", "pipeline_reference", "render_entity", "render_pipeline"]

COMMAND = "python -m crmcore.docgen > docs/entities.md"
PIPELINES_COMMAND = "python -m crmcore.docgen --pipelines > docs/pipelines.md"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _default_label(name: str) -> str:
    base = name[:-3] if name.endswith("_id") else name
    return base.replace("_", " ").capitalize()


def describe_type(field: Field) -> str:
    """A short description of the values *field* accepts."""
    ftype = field.type
    if isinstance(ftype, Reference):
        return f"reference to `{ftype.entity}` (on delete: {ftype.on_delete.replace('_', ' ')})"
    description = ftype.describe()
    return ftype.kind if description == ftype.kind else f"{ftype.kind}: {description}"


def describe_default(field: Field) -> str:
    """The default of *field* as written in the reference (empty when there is none)."""
    default = field.default
    if default is None:
        return ""
    if callable(default):
        return "computed"
    if isinstance(default, bool):
        return "`true`" if default else "`false`"
    if isinstance(default, str):
        return f'`"{default}"`'
    return f"`{default!r}`"


def render_entity(entity: EntityType) -> str:
    """The reference section of one entity type."""
    lines = [f"## {entity.name}", ""]
    if entity.help:
        lines += [entity.help, ""]
    facts = [f"Label: {entity.label} (plural: {entity.plural})", f"table `{entity.table}`"]
    if entity.origin and entity.origin != "core":
        facts.append(f"declared by plugin `{entity.origin}`")
    facts.append(f"title field `{entity.title_field}`")
    if entity.ownable:
        facts.append("ownable (has an owner, can be tagged)")
    facts.append("audited" if entity.auditable else "not audited")
    lines += ["; ".join(facts) + ".", ""]
    lines += ["| Field | Type | Required | Default | Help |", "| --- | --- | --- | --- | --- |"]
    for field in entity.fields:
        name = f"`{field.name}`"
        notes = []
        if field.label and field.label != _default_label(field.name):
            notes.append(f"label “{field.label}”")
        if field.column != field.name:
            notes.append(f"column `{field.column}`")
        if field.origin and field.origin not in ("core", entity.origin):
            notes.append(f"from `{field.origin}`")
        if field.unique:
            notes.append("unique")
        if field.read_only:
            notes.append("read-only")
        help_text = field.help
        if notes:
            help_text = f"{help_text} ({'; '.join(notes)})" if help_text else f"({'; '.join(notes)})"
        lines.append(
            f"| {name} | {_cell(describe_type(field))} | {'yes' if field.required else 'no'} "
            f"| {_cell(describe_default(field))} | {_cell(help_text)} |"
        )
    lines.append("")
    return "\n".join(lines)


def entity_reference(registry: Registry, *, title: str = "Entity reference") -> str:
    """The whole reference for the entity types of *registry*, as Markdown."""
    system = ", ".join(f"`{f.name}`" for f in SYSTEM_FIELDS)
    parts = [
        f"# {title}",
        "",
        f"<!-- Generated from the entity registry by `{COMMAND}`; do not edit by hand. -->",
        "",
        "Every entity type is declared once, as data; its table, marshmallow schema, filters, sort",
        "keys and import/export columns are derived from the declaration. Each table also has the",
        f"system fields {system},",
        "written by the unit of work and read-only for callers.",
        "See [the plugin guide](plugin-guide.md) for adding fields to these entity types.",
        "",
        "Entity types: " + ", ".join(f"[{e.name}](#{e.name.replace('_', '-')})" for e in registry) + ".",
        "",
    ]
    parts += [render_entity(entity) for entity in registry]
    return "\n".join(parts).rstrip("\n") + "\n"


#: The pipeline declared in settings that the reference shows (the tests run it).
PIPELINE_EXAMPLE = """\
[pipelines.renewals]
entity = "opportunity"
label = "Renewals"
stages = [
    { name = "due", probability = 40 },
    { name = "negotiation", probability = 70, required = ["amount"] },
    { name = "renewed", kind = "won", probability = 100, locked = ["amount"] },
    { name = "churned", kind = "lost" },
]
transitions = [
    { from = "due", to = "negotiation" },
    { from = "negotiation", to = "renewed", guards = ["amount >= 1000", "close_date is not null"] },
    { from = "*", to = "churned", permission = "delete" },
]
"""

_PIPELINE_RULES = """\
A pipeline is data: the stages a record of one entity type goes through (each with a
probability, a kind `open`, `won` or `lost`, fields required to enter it and fields locked
while in it) and the transitions allowed between them, each with optional guards (conditions
that must hold, see [the condition language](conditions.md)) and an optional permission.
Pipelines are declared by the core and by plugins (`crm_pipelines`), in `[pipelines.<name>]` of
the settings (below), and changed by phase plugins
(`crm_extend_pipeline`, see [the plugin guide](plugin-guide.md#pipelines-and-phase-plugins)).
`crm pipelines` lists a deployment's pipelines and `crm pipelines show NAME` prints one.

## The rules of every pipeline

- **A move** (`uow.move(record, "won")`, or an update of the stage field) is allowed when the
  pipeline has a transition from the record's stage to the target (or from `*`, any stage).
  The actor must hold the transition's permission, every guard must hold on the record as it
  will be after the move, the target's required fields must have a value, and the
  `crm_before_move` hooks (approvals) must not refuse. An illegal move raises
  `TransitionError` naming the record, the stages and the allowed targets or the failed guard.
- **Locked fields** of the current stage cannot change while the record stays in it.
- **On enter** values fill fields that are empty when a record enters the stage, before its
  required fields are checked: `on_enter = { close_date = "today" }` (`"today"` or `"now"`).
  The core's `lost` stage sets the close date so, as `won` requires one.
- **A new record** starts in the first stage of its pipeline unless it names another stage. A
  record created directly in a later stage S (`uow.create("opportunity", stage="won", ...)`,
  an import row, a conversion) must satisfy what entering S requires, as if it had moved
  there: the required fields of S, and **one** transition into S must admit it (its permission
  held by the actor, all its guards holding on the new record). One is enough, as a moving
  record takes one path; if none admits it, or no transition leads into S, the create is
  refused with a `ValidationError` on the stage field that names each transition into S and
  why it refused (an import rejects the row). The first stage needs its required fields only.
- **A change of pipeline** (`uow.update(record, pipeline="renewals", stage="due")`) enters the
  new pipeline's stage by the same rule (a `TransitionError` when no transition admits it).
- **One transition per source and target.** `PipelineBuilder.add_transition` refuses a second
  transition between the same stages, naming it; a plugin tightens a move someone else
  declared with `PipelineBuilder.add_guard(source, target, guard)`, or replaces it with
  `remove_transition` then `add_transition`. A pipeline of the settings declaring a transition
  twice stops start-up.
- **Without `transitions`** (in the settings or `default_transitions(stages)` in code), a record
  moves to the next or the previous open stage, from any open stage to a lost stage, and from
  the last open stage to the won stages.

## Declaring a pipeline in the settings

A `[pipelines.<name>]` table with the name of a plugin's pipeline replaces it; phase plugins
still extend it. Every key is checked at start-up, guards against the entity's fields.

```toml
{PIPELINE_EXAMPLE}```

An entity with several pipelines needs a `pipeline` field; a record names the pipeline it
follows there (the one marked `default = true`, else the first, when it names none).

## Built-in pipelines

The pipelines of the core (a deployment's plugins may change them: see `crm pipelines show`).
"""


def render_pipeline(pipeline: Pipeline, *, default: bool) -> str:
    """The reference section of one pipeline: its stages and its transitions, as Markdown."""
    role = f"the default pipeline of `{pipeline.entity}`" if default else f"a pipeline of `{pipeline.entity}`"
    lines = [f"### {pipeline.name}", "", f"{pipeline.label or pipeline.name}: {role}, stage in field `{pipeline.field}`.", ""]
    lines += ["| Stage | Label | Probability | Kind | Required | Locked | On enter |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for stage in pipeline.stages:
        required = ", ".join(f"`{f}`" for f in stage.required)
        locked = ", ".join(f"`{f}`" for f in stage.locked)
        on_enter = ", ".join(f"`{f}` = {value}" for f, value in stage.on_enter)
        lines.append(f"| `{stage.name}` | {_cell(stage.label)} | {stage.probability}% | {stage.kind} | {required} | {locked} "
                     f"| {on_enter} |")
    lines += ["", "| From | To | Guards | Permission |", "| --- | --- | --- | --- |"]
    for transition in pipeline.transitions:
        guards = "; ".join(f"`{_cell(str(g))}`" for g in transition.guards)
        permission = f"`{transition.permission}`" if transition.permission else ""
        lines.append(f"| `{transition.source}` | `{transition.target}` | {guards} | {permission} |")
    lines.append("")
    return "\n".join(lines)


def pipeline_reference(pipelines: Sequence[Pipeline], *, title: str = "Pipelines") -> str:
    """The pipeline reference: the rules every pipeline follows and a section per pipeline of
    *pipelines* (the first of an entity's is taken as its default unless one says it is)."""
    defaults = {p.entity: p for p in pipelines if p.default}
    for pipeline in pipelines:
        defaults.setdefault(pipeline.entity, pipeline)
    parts = [f"# {title}", "", f"<!-- Generated from the pipelines by `{PIPELINES_COMMAND}`; do not edit by hand. -->", "",
             _PIPELINE_RULES.replace("{PIPELINE_EXAMPLE}", PIPELINE_EXAMPLE)]
    parts += [render_pipeline(p, default=defaults[p.entity] is p) for p in pipelines]
    return "\n".join(parts).rstrip("\n") + "\n"


def core_pipelines() -> list[Pipeline]:
    """The pipelines of an app with the core only, by name."""
    from crmcore.app import create_app
    from crmcore.settings import Settings

    workflow = create_app(Settings(database="sqlite://")).workflow
    return sorted(workflow.pipelines.values(), key=lambda p: p.name)


def core_registry() -> Registry:
    """The registry of an app with the core only (settings from the environment are ignored)."""
    from crmcore.app import create_app
    from crmcore.settings import Settings

    crm = create_app(Settings(database="sqlite://"))
    return crm.registry


def main(argv: Sequence[str] | None = None) -> int:
    """Print the entity reference, or with ``--pipelines`` the pipeline reference;
    ``--config crm.toml`` documents that deployment."""
    parser = argparse.ArgumentParser(prog="python -m crmcore.docgen", description=__doc__.splitlines()[0])
    parser.add_argument("--config", metavar="PATH", help="document the deployment of this crm.toml")
    parser.add_argument("--pipelines", action="store_true", help="print the pipeline reference instead")
    args = parser.parse_args(argv)
    if args.config:
        from crmcore.app import create_app
        from crmcore.errors import CrmError

        try:
            crm = create_app(args.config, database="sqlite://")
        except CrmError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if args.pipelines:
            pipelines = sorted(crm.workflow.pipelines.values(), key=lambda p: p.name)
            sys.stdout.write(pipeline_reference(pipelines, title=f"Pipelines of {args.config}"))
        else:
            sys.stdout.write(entity_reference(crm.registry, title=f"Entity reference of {args.config}"))
    elif args.pipelines:
        sys.stdout.write(pipeline_reference(core_pipelines()))
    else:
        sys.stdout.write(entity_reference(core_registry()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
