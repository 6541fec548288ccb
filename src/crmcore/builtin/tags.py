"""``crm tags``: a record's tags, adding and removing them, and the tag cloud.

Every command runs as :func:`crmcore.cli.current_actor` through the unit of work's tag methods,
so it sees and changes what that actor may: the tags of records they may read, shared tags on
records they may update, their own private tags on records they may read. The cloud weighs the
tags over the records the actor may read; ``--chart FILE.png`` draws it (matplotlib, the
``charts`` extra). Contributed through ``crm_cli_commands`` like a plugin's commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from crmcore.cli import current_actor, current_app, echo_json
from crmcore.errors import ConfigError
from crmcore.hookspecs import hookimpl
from crmcore.plugins import PluginInfo

if TYPE_CHECKING:
    from crmcore.storage import TagWeight

PLUGIN = PluginInfo(name="core.tags", title="Tag commands", description="crm tags: list, add, remove and the tag cloud.")

_PRIVATE = click.option(
    "--private/--shared", "private", default=None,
    help="The user's own tags, or the shared ones [default: [plugins.core] private_tags; the system's are shared].",
)


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    return [tags]


@click.group()
def tags() -> None:
    """A record's tags and the tag cloud."""


@tags.command("list")
@click.argument("entity")
@click.argument("record_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of names.")
def list_tags(entity: str, record_id: int, as_json: bool) -> None:
    """Print the tags of record RECORD_ID of ENTITY that the actor sees."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        names = uow.tags(uow.get(entity, record_id))
    if as_json:
        echo_json(names)
    elif names:
        click.echo(", ".join(names))
    else:
        click.echo(f"{entity} {record_id} has no tags")


@tags.command("add")
@click.argument("entity")
@click.argument("record_id", type=int)
@click.argument("names", nargs=-1, required=True)
@_PRIVATE
def add(entity: str, record_id: int, names: tuple[str, ...], private: bool | None) -> None:
    """Tag record RECORD_ID of ENTITY with NAMES."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        record = uow.get(entity, record_id)
        uow.tag(record, *names, private=private)
        now = uow.tags(record)
        uow.commit()
    click.echo(f"{entity} {record_id}: {', '.join(now)}")


@tags.command("remove")
@click.argument("entity")
@click.argument("record_id", type=int)
@click.argument("names", nargs=-1, required=True)
@_PRIVATE
def remove(entity: str, record_id: int, names: tuple[str, ...], private: bool | None) -> None:
    """Remove tags NAMES from record RECORD_ID of ENTITY."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        record = uow.get(entity, record_id)
        uow.untag(record, *names, private=private)
        now = uow.tags(record)
        uow.commit()
    click.echo(f"{entity} {record_id}: {', '.join(now) or 'no tags'}")


@tags.command("cloud")
@click.option("--entity", help="Only records of this entity type [default: every taggable one].")
@click.option("--top", type=click.IntRange(min=1), help="Only the N most used tags.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of {name, count, weight}.")
@click.option("--chart", type=click.Path(dir_okay=False, writable=True), metavar="FILE.png",
              help="Draw the cloud into a PNG file (needs matplotlib: pip install 'crmcore[charts]').")
def cloud(entity: str | None, top: int | None, as_json: bool, chart: str | None) -> None:
    """The tag cloud: each tag with the number of readable records carrying it, most used first."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        weights = uow.tag_cloud(entity, top)
    if chart:
        _draw(weights, chart)
    if as_json:
        echo_json([{"name": t.name, "count": t.count, "weight": t.weight} for t in weights])
        return
    if not weights:
        click.echo("no tags on the records you may read")
        return
    width = max(len(t.name) for t in weights)
    for t in weights:
        click.echo(f"{t.name:<{width}}  {t.count:>7}  {'*' * t.weight}")
    if chart:
        click.echo(f"chart written to {chart}", err=True)


def _draw(weights: list[TagWeight], path: str) -> None:
    """The cloud as words sized by weight, laid out in rows, into the PNG file *path*."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        raise ConfigError("--chart needs matplotlib; install it with: pip install 'crmcore[charts]'") from None
    columns = 4
    rows = max(1, -(-len(weights) // columns))
    figure = pyplot.figure(figsize=(8, 0.6 + 0.7 * rows))
    for index, t in enumerate(weights):
        x = (index % columns + 0.5) / columns
        y = 1 - (index // columns + 0.5) / rows
        figure.text(x, y, t.name, ha="center", va="center", fontsize=8 + 4 * t.weight, alpha=0.5 + 0.1 * t.weight)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
