"""The entity reference, generated from the registry: ``python -m crmcore.docgen > docs/entities.md``.

The registry is the single source of truth, so the reference is derived from it like tables
and schemas are: every entity type with its label, table and fields (name, type, required,
default, help). Without arguments the core's entity types are documented; ``--config crm.toml``
documents a deployment, with its plugins' entity types, the fields plugins add and its custom
fields. A test compares ``docs/entities.md`` with the output, so a new core field cannot ship
undocumented.
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

__all__ = ["entity_reference", "main", "render_entity"]

COMMAND = "python -m crmcore.docgen > docs/entities.md"


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


def core_registry() -> Registry:
    """The registry of an app with the core only (settings from the environment are ignored)."""
    from crmcore.app import create_app
    from crmcore.settings import Settings

    crm = create_app(Settings(database="sqlite://"))
    return crm.registry


def main(argv: Sequence[str] | None = None) -> int:
    """Print the entity reference; ``--config crm.toml`` documents that deployment."""
    parser = argparse.ArgumentParser(prog="python -m crmcore.docgen", description=__doc__.splitlines()[0])
    parser.add_argument("--config", metavar="PATH", help="document the deployment of this crm.toml")
    args = parser.parse_args(argv)
    title = "Entity reference"
    if args.config:
        from crmcore.app import create_app
        from crmcore.errors import CrmError

        try:
            registry = create_app(args.config, database="sqlite://").registry
        except CrmError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        title = f"Entity reference of {args.config}"
    else:
        registry = core_registry()
    sys.stdout.write(entity_reference(registry, title=title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
