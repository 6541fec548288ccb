"""``crm segments|plans|campaigns ...`` and ``crm marketing ...``: segments, campaigns, running
them, their ROI, and plan reports.

::

    crm segments list|show NAME|members NAME
    crm plans new NAME --from 2026-01-01 --to 2026-12-31 --currency EUR
    crm plans report PLAN [--by product_group,geography] [--period month] [--chart FILE.png|svg]
    crm campaigns list|new NAME --channel email --segment S|run ID|report [ID ...]|send-newsletter ID

The same commands under their earlier names::

    crm marketing segments                      (the segments; with NAME, its members)
    crm marketing segments "Retail in Bavaria"
    crm marketing campaigns
    crm marketing run SPRING                    (a campaign's code, name or id)
    crm marketing roi [ID ...] [--model linear]
    crm marketing plan 2026 [--by ...] [--period ...] [--chart plan.png]  (--chart: crm-marketing[chart])

Every command acts as ``--as USER`` (default: the system actor) in one unit of work, so it sees
the members, deals and figures that user may read; ``--json`` prints JSON instead of text.
"""

from __future__ import annotations

from typing import Any

import click
from crmcore.cli import current_actor, current_app, echo_json, progress
from crmcore.errors import ConfigError

from crm_marketing import ATTRIBUTION_MODELS
from crm_marketing.attribution import campaign_results
from crm_marketing.campaigns import campaign_named, run_campaign
from crm_marketing.plans import PlanReport, plan_report, plan_summary
from crm_marketing.segments import member_count, members, segment_named

__all__ = ["campaigns_group", "marketing", "plans_group", "segments_group"]

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _money(value: Any) -> str:
    return "-" if value is None else f"{value.amount:,.2f} {value.currency}"


@click.group("marketing")
def marketing() -> None:
    """Segments, campaigns, campaign ROI and market plans."""


@marketing.command("segments")
@click.argument("name", required=False)
@_JSON
def segments_command(name: str | None, as_json: bool) -> None:
    """List the segments, or the members of segment NAME (its name or id) you may read."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        if name is None:
            rows = [{"id": s.id, "name": s.values["name"], "members_are": s.values["member_entity"],
                     "kind": s.values["kind"], "members": len(members(uow, s))}
                    for s in uow.query("segment").order_by("name").all()]
            if as_json:
                echo_json(rows)
                return
            for row in rows:
                click.echo(f"{row['id']:>4}  {row['name']}  ({row['kind']}, {row['members']} {row['members_are']}s)")
            return
        segment = segment_named(uow, name)
        found = members(uow, segment, roles=True)
    if as_json:
        echo_json(found)
        return
    for row in found:
        label = " ".join(p for p in (row.get("first_name"), row.get("name")) if p)
        click.echo(f"{row['id']:>6}  {label}  {row.get('email') or ''}")
    entity = segment.values["member_entity"]
    click.echo(f"{len(found)} {entity}{'s' if len(found) != 1 else ''} in segment {segment.values['name']!r}")


@marketing.command("campaigns")
@_JSON
def campaigns_command(as_json: bool) -> None:
    """List the campaigns: code, channel, status, dates and budget."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        found = uow.query("campaign").order_by("id").all()
    rows = [{"id": c.id, "code": c.values.get("code"), "name": c.values["name"],
             "channel": ", ".join([c.values["channel"], *(c.values.get("channels") or [])]),
             "status": c.values["status"], "starts_on": c.values.get("starts_on"), "ends_on": c.values.get("ends_on"),
             "budget": _money(c.values.get("budget"))} for c in found]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['id']:>4}  {row['code'] or '-':<10} {row['name']}  {row['channel']}, {row['status']}, "
                   f"{row['starts_on'] or '?'}..{row['ends_on'] or '?'}, budget {row['budget']}")


@marketing.command("run")
@click.argument("campaign")
@_JSON
def run_command(campaign: str, as_json: bool) -> None:
    """Run CAMPAIGN (its code, name or id): snapshot its segment, then send the e-mail or
    letters, or plan the calls, visits or offers, once per member (a progress bar on a
    terminal)."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        record = campaign_named(uow, campaign)
        ids = [record.values.get("segment_id"), *(record.values.get("segments") or [])]
        length = sum(member_count(uow, i) for i in ids if isinstance(i, int))
        with progress(length=length, label="reaching members") as bar:
            result = run_campaign(uow, record, progress=bar.update)
        uow.commit()
    if as_json:
        echo_json({"run_id": result.run_id, "campaign_id": result.campaign_id, "members": result.members,
                   "counts": result.counts})
        return
    counts = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in sorted(result.counts.items()))
    click.echo(f"campaign {result.campaign_id} run {result.run_id}: {result.members} members ({counts or 'none'})")


@marketing.command("roi")
@click.argument("ids", nargs=-1, type=int)
@click.option("--model", type=click.Choice(ATTRIBUTION_MODELS), help="The attribution model (default: the setting).")
@_JSON
def roi_command(ids: tuple[int, ...], model: str | None, as_json: bool) -> None:
    """Campaign results: reached, leads, conversions, won deals, revenue, cost (once) and ROI."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        results = campaign_results(uow, list(ids) or None, model=model)
    if as_json:
        echo_json([{"campaign_id": r.campaign_id, "name": r.name, "reached": r.reached, "responses": r.responses,
                    "leads": r.leads,
                    "conversions": r.conversions, "won": r.won,
                    "revenue": {c: str(m.amount) for c, m in r.revenue.items()},
                    "cost": None if r.cost is None else str(r.cost.amount),
                    "cost_currency": None if r.cost is None else r.cost.currency,
                    "roi": None if r.roi is None else str(r.roi)} for r in results])
        return
    for r in results:
        revenue = ", ".join(_money(m) for m in r.revenue.values()) or "-"
        roi = "-" if r.roi is None else f"{r.roi * 100:.1f} %"
        click.echo(f"{r.campaign_id:>4}  {r.name}: reached {r.reached}, responded {r.responses}, leads {r.leads}, "
                   f"converted {r.conversions}, "
                   f"won {r.won}, revenue {revenue}, cost {_money(r.cost)}, ROI {roi}")


@marketing.command("plan")
@click.argument("plan")
@click.option("--by", "by", help="Slice by these dimensions, comma-separated: product_group, geography, segment, "
                                 "owner (each line's actuals counted directly; see the README).")
@click.option("--period", type=click.Choice(("month", "quarter", "year")),
              help="Report per month, quarter or year (targets spread over them by days).")
@click.option("--chart", type=click.Path(dir_okay=False), help="Draw target against actual into FILE.png or .svg.")
@_JSON
def plan_command(plan: str, by: str | None, period: str | None, chart: str | None, as_json: bool) -> None:
    """Report market plan PLAN (its name or id): target, actual, variance and attainment per
    product group, geography, segment, owner and period, rolled up the geography tree; and its
    goals. With --by or --period, the lines are those of the chosen dimensions and periods."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        if by is None and period is None:
            report = plan_report(uow, plan)
        else:
            report = plan_summary(uow, plan, by="product_group,geography" if by is None else by, period=period)
        names = _slice_names(uow, report)
    if chart:
        draw_chart(report, chart)
    if as_json:
        echo_json({"plan": report.plan.values["name"], "lines": [_line_json(line) for line in report.lines],
                   "goals": [{"text": g.values["text"], "status": g.values["status"], "score": g.values.get("score"),
                              "evidence": g.values.get("evidence"),
                              "assessment": g.values.get("assessment")} for g in report.goals]})
        return
    values = report.plan.values
    click.echo(f"plan {values['name']} ({values['starts_on']}..{values['ends_on']})")
    for line in report.lines:
        attainment = "-" if line.attainment is None else f"{line.attainment} %"
        count = f"{line.actual_count}" + ("" if line.target_count is None else f"/{line.target_count}")
        where = [line.product_group or "all groups", line.geography]
        where += [names[(kind, ref)] for kind, ref in (("segment", line.segment_id), ("user", line.user_id),
                                                         ("team", line.team_id)) if ref is not None]
        others = "".join(f", {measure.replace('_', ' ')} {line.actuals.get(measure)}"
                         + ("" if line.targets.get(measure) is None else f"/{line.targets[measure]}")
                         for measure in line.actuals)
        click.echo(f"  {' · '.join(where)} · {line.starts_on}..{line.ends_on}: "
                   f"target {_money(line.target_amount)}, actual {_money(line.actual_amount)}, variance "
                   f"{_money(line.variance)}, attainment {attainment}, deals {count}{others}")
    for goal in report.goals:
        assessment = f": {goal.values['assessment']}" if goal.values.get("assessment") else ""
        score = "" if goal.values.get("score") is None else f" score {goal.values['score']}"
        evidence = "".join(f" <{link}>" for link in goal.values.get("evidence") or [])
        click.echo(f"  goal [{goal.values['status']}{score}] {goal.values['text']}{assessment}{evidence}")
    for currency, total in report.other_currencies.items():
        click.echo(f"  not compared: {_money(total)} of actuals in {currency}")
    if chart:
        click.echo(f"chart written to {chart}")


def _slice_names(uow: Any, report: PlanReport) -> dict[tuple[str, int], str]:
    """``{("segment" | "user" | "team", id): what a line shows}`` for the report's lines."""
    names: dict[tuple[str, int], str] = {}
    for kind, attribute, field in (("segment", "segment_id", "name"), ("user", "user_id", "username"),
                                   ("team", "team_id", "name")):
        ids = sorted({getattr(line, attribute) for line in report.lines} - {None})
        if ids:
            rows = uow.select(kind, fields=("id", field)).where(("id", "in", ids)).all()
            found = {row["id"]: row[field] for row in rows}
            names.update({(kind, i): f"{kind} {found.get(i, i)}" for i in ids})
    return names


def _line_json(line: Any) -> dict[str, Any]:
    return {"product_group": line.product_group, "geography_id": line.geography_id, "geography": line.geography,
            "segment_id": line.segment_id, "user_id": line.user_id, "team_id": line.team_id,
            "targets": {m: str(v) for m, v in line.targets.items()},
            "actuals": {m: str(v) for m, v in line.actuals.items()},
            "starts_on": line.starts_on, "ends_on": line.ends_on,
            "target": None if line.target_amount is None else str(line.target_amount.amount),
            "actual": str(line.actual_amount.amount), "target_count": line.target_count,
            "actual_count": line.actual_count, "attainment": None if line.attainment is None else str(line.attainment)}


def draw_chart(report: PlanReport, path: str) -> None:
    """Bars of target and actual amount per report line, into *path* (PNG or SVG).

    :raises ConfigError: when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        raise ConfigError("--chart needs matplotlib; install it with: pip install 'crm-marketing[chart]'") from None
    labels = [f"{line.product_group or 'all'} {line.geography}\n{line.starts_on:%Y-%m}" for line in report.lines]
    targets = [float(line.target_amount.amount) if line.target_amount else 0.0 for line in report.lines]
    actual = [float(line.actual_amount.amount) for line in report.lines]
    figure, axes = pyplot.subplots(figsize=(max(6, len(labels) * 0.9), 4.5))
    positions = range(len(labels))
    axes.bar([p - 0.2 for p in positions], targets, width=0.4, label="target")
    axes.bar([p + 0.2 for p in positions], actual, width=0.4, label="actual")
    axes.set_xticks(list(positions), labels, rotation=45, ha="right", fontsize=7)
    axes.set_ylabel(report.plan.values["currency"])
    axes.set_title(f"Plan {report.plan.values['name']}: target against actual")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


# The names the documentation uses: ``crm segments``, ``crm plans``, ``crm campaigns``; the same
# commands stay reachable under ``crm marketing``.


@click.group("segments")
def segments_group() -> None:
    """Segments: saved filters or static lists of accounts, contacts or leads."""


@segments_group.command("list")
@_JSON
@click.pass_context
def segments_list(ctx: click.Context, as_json: bool) -> None:
    """List the segments with their kind and the number of members you may read."""
    ctx.invoke(segments_command, name=None, as_json=as_json)


@segments_group.command("show")
@click.argument("name")
@_JSON
def segments_show(name: str, as_json: bool) -> None:
    """Show segment NAME (its name or id): what it holds, its conditions and member count."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        segment = segment_named(uow, name)
        count = member_count(uow, segment)
    row = {"id": segment.id, "name": segment.values["name"], "members_are": segment.values["member_entity"],
           "kind": segment.values["kind"], "conditions": segment.values.get("conditions"),
           "geography_id": segment.values.get("geography_id"), "members": count}
    if as_json:
        echo_json(row)
        return
    for key, value in row.items():
        click.echo(f"{key.replace('_', ' ')}: {'-' if value is None else value}")


@segments_group.command("members")
@click.argument("name")
@_JSON
@click.pass_context
def segments_members(ctx: click.Context, name: str, as_json: bool) -> None:
    """The members of segment NAME (its name or id) you may read."""
    ctx.invoke(segments_command, name=name, as_json=as_json)


@click.group("plans")
def plans_group() -> None:
    """Market plans: targets by product group, geography, segment, owner and period."""


@plans_group.command("new")
@click.argument("name")
@click.option("--from", "starts_on", type=click.DateTime(("%Y-%m-%d",)), required=True, help="First day.")
@click.option("--to", "ends_on", type=click.DateTime(("%Y-%m-%d",)), required=True, help="Last day.")
@click.option("--currency", required=True, help="The plan's currency (ISO code).")
@click.option("--period", type=click.Choice(("year", "quarter", "month")), default="year", show_default=True)
@_JSON
def plans_new(name: str, starts_on: Any, ends_on: Any, currency: str, period: str, as_json: bool) -> None:
    """Create market plan NAME; add its targets with add_targets or an import of plan_target."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        plan = uow.create("market_plan", name=name, starts_on=starts_on.date(), ends_on=ends_on.date(),
                          currency=currency.upper(), period=period)
        uow.commit()
    if as_json:
        echo_json({"id": plan.id, "name": name})
        return
    click.echo(f"plan {plan.id} {name} ({starts_on:%Y-%m-%d}..{ends_on:%Y-%m-%d}, {currency.upper()})")


plans_group.add_command(plan_command, "report")


@click.group("campaigns")
def campaigns_group() -> None:
    """Campaigns: list, create, run, report their results, send a newsletter."""


@campaigns_group.command("list")
@_JSON
@click.pass_context
def campaigns_list(ctx: click.Context, as_json: bool) -> None:
    """List the campaigns: code, channel, status, dates and budget."""
    ctx.invoke(campaigns_command, as_json=as_json)


@campaigns_group.command("new")
@click.argument("name")
@click.option("--channel", required=True, help="email, letter, call, visit or offer.")
@click.option("--also", "also", multiple=True, help="A further channel (repeatable): --also call.")
@click.option("--segment", help="The target segment (its name or id).")
@click.option("--code", help="The campaign code leads carry.")
@click.option("--subject", help="The e-mail subject (a template).")
@click.option("--message", help="The message (a template).")
@_JSON
def campaigns_new(name: str, channel: str, also: tuple[str, ...], segment: str | None, code: str | None,
                  subject: str | None, message: str | None, as_json: bool) -> None:
    """Create campaign NAME to a segment through a channel (and --also further ones)."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        values: dict[str, Any] = {"name": name, "channel": channel, "code": code, "subject": subject,
                                  "message": message, "channels": list(also) or None}
        if segment is not None:
            values["segment_id"] = segment_named(uow, segment).id
        campaign = uow.create("campaign", **{k: v for k, v in values.items() if v is not None})
        uow.commit()
    if as_json:
        echo_json({"id": campaign.id, "name": name})
        return
    click.echo(f"campaign {campaign.id} {name} ({', '.join((channel, *also))})")


campaigns_group.add_command(run_command, "run")
campaigns_group.add_command(roi_command, "report")


@campaigns_group.command("send-newsletter")
@click.argument("campaign")
@_JSON
@click.pass_context
def campaigns_send_newsletter(ctx: click.Context, campaign: str, as_json: bool) -> None:
    """Send e-mail campaign CAMPAIGN (its code, name or id) to its segment, once per member."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        channel = campaign_named(uow, campaign).values["channel"]
    if channel != "email":
        raise click.UsageError(f"campaign {campaign!r} goes through {channel}, not e-mail; "
                               f"run it with: crm campaigns run {campaign}")
    ctx.invoke(run_command, campaign=campaign, as_json=as_json)
