"""The marketing chapter of ``crm demo`` (``crm_demo``), after the sales chapters.

1. The accounts are placed in a geography tree (country, region, city) from their billing
   address, and the deals get product groups (Software, Services).
2. A yearly market plan by product group and region, with a qualitative goal.
3. A newsletter to the contacts in the United States goes out to a local SMTP server started
   for the demo (one contact had opted out; three recipients click through and one follows the
   signed unsubscribe link of the message received).
4. A door-to-door campaign plans visits to the US accounts for their owners over two weeks.
5. Three web-form leads come in with the newsletter's code; they are checked and scored, the
   best one converted, and its deal won.
6. A special offer to the Northeast accounts: a draft quote per account when the orders
   plugin is enabled (a planned task for the owner otherwise).
7. The campaign ROI (the cost counted once), the plan report against actuals, and the plan's
   lines by segment and by owner (each counting its own deals once).
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import socket
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs
from crm_sales import check_leads, convert_lead, score_leads
from crmcore.demo import money_text
from crmcore.money import Money

from crm_marketing.attribution import campaign_results, capture_lead
from crm_marketing.campaigns import run_campaign, track, unsubscribe
from crm_marketing.offers import enabled as offers_enabled
from crm_marketing.plans import plan_report, plan_summary
from crm_marketing.settings import marketing_settings

if TYPE_CHECKING:
    from crmcore.demo import Story

__all__ = ["tell"]

#: Regions of the United States cities in the sample accounts.
REGIONS = {
    "Los Angeles": "West", "San Luis Obispo": "West", "Denver": "West", "Fort Wayne": "Midwest",
    "Kansas City": "Midwest", "Evanston": "Midwest", "New York City": "Northeast", "Newark": "Northeast",
    "Albany": "Northeast", "Tulsa": "South",
}
GROUPS = ("Software", "Services")
NEWSLETTER = """Dear {{ first_name or name }},

our {{ campaign.product_group }} spring release is out: faster reports, simpler imports.
Answer this e-mail or sign up at https://example.com/spring?code={{ campaign.code }}.

To receive no more news: {{ unsubscribe_url }}
"""
WEB_LEADS = (
    ("Grace", "Hopper", "Cobol Works", "grace@cobolworks.example.com", "+1 212 555 0101"),
    ("Alan", "Turing", "Bletchley Analytics", "alan@bletchley.example.com", "+1 312 555 0102"),
    ("Ann", "Onymous", None, None, None),
)


@attrs.define(eq=False)
class _Sink:
    """The SMTP server the demo sends to: on 127.0.0.1, keeping what it receives."""

    messages: list[Any] = attrs.field(factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        import email
        import email.policy

        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@contextmanager
def _smtp_server() -> Iterator[tuple[_Sink, int]]:
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = _Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def tell(story: Story) -> None:
    """Tell the marketing chapter (see the module docs)."""
    echo = story.echo
    echo("")
    echo("Marketing")
    regions = _geographies(story)
    plan, northeast = _plan(story, regions)
    newsletter = _newsletter(story)
    _visits(story)
    _leads(story, newsletter)
    _offer(story, northeast)
    _results(story, plan)


def _geographies(story: Story) -> dict[str, Any]:
    with story.crm.unit_of_work() as uow:
        us = uow.create("geography", name="United States", code="US", level="country")
        regions = {name: uow.create("geography", name=name, code=f"US-{name[:2].upper()}", level="region",
                                    parent_id=us.id) for name in sorted(set(REGIONS.values()))}
        cities = {city: uow.create("geography", name=city, code=f"US-{city[:3].upper()}-{i}", level="city",
                                   parent_id=regions[region].id)
                  for i, (city, region) in enumerate(sorted(REGIONS.items()))}
        accounts = uow.query("account").where(("billing_city", "in", sorted(cities))).all()
        uow.update_many("account", [(a, {"geography_id": cities[a.billing_city].id}) for a in accounts])
        deals = uow.query("opportunity").order_by("id").all()
        uow.update_many("opportunity", [(d, {"product_group": GROUPS[i % 2]}) for i, d in enumerate(deals)])
        uow.commit()
    story.echo(f"Geographies: United States, {len(regions)} regions, {len(cities)} cities; "
               f"{len(accounts)} accounts placed, {len(deals)} deals given a product group")
    return {"US": us, **regions}


def _plan(story: Story, regions: dict[str, Any]) -> tuple[Any, Any]:
    year = story.today.year
    with story.crm.unit_of_work(story.actor(story.director)) as uow:
        plan = uow.create("market_plan", name=f"Plan {year}", period="year", starts_on=dt.date(year, 1, 1),
                          ends_on=dt.date(year, 12, 31), currency=story.currency,
                          description="Revenue by product group and region.")
        rows = []
        for i, region in enumerate(("Midwest", "Northeast", "South", "West")):
            for j, group in enumerate(GROUPS):
                rows.append({"plan_id": plan.id, "product_group": group, "geography_id": regions[region].id,
                             "starts_on": plan.starts_on, "ends_on": plan.ends_on, "count": 2 + i % 2,
                             "amount": Money(decimal.Decimal(40000 + 20000 * ((i + j) % 3)), story.currency)})
        uow.create_many("plan_target", rows)
        northeast = uow.create("segment", name="Northeast accounts", member_entity="account",
                               geography_id=regions["Northeast"].id)
        rep = story.users[story.reps[0]]
        uow.create_many("plan_target", [
            {"plan_id": plan.id, "segment_id": northeast.id, "starts_on": plan.starts_on, "ends_on": plan.ends_on,
             "amount": Money(decimal.Decimal(60000), story.currency)},
            {"plan_id": plan.id, "user_id": rep.id, "starts_on": plan.starts_on, "ends_on": plan.ends_on,
             "amount": Money(decimal.Decimal(50000), story.currency)},
        ])
        uow.create("plan_goal", plan_id=plan.id, text="Visit every US account in spring", status="on_track",
                   assessment="door-to-door visits planned over two weeks")
        uow.commit()
    story.echo(f"Plan: {plan.name}, {len(rows)} targets (2 product groups × 4 regions), a line for segment "
               f"{northeast.name!r}, a line for {story.reps[0]}, and 1 goal")
    return plan, northeast


def _newsletter(story: Story) -> Any:
    director = story.actor(story.director)
    with story.crm.unit_of_work(director) as uow:
        us = uow.query("geography").where(code="US").first()
        segment = uow.create("segment", name="US contacts with e-mail", member_entity="contact",
                             conditions=["email is not null"], geography_id=us.id)
        campaign = uow.create(
            "campaign", name="Spring newsletter", code="SPRING", channel="email", segment_id=segment.id,
            product_group="Software", subject="{{ campaign.product_group }}: the spring release",
            message=NEWSLETTER, starts_on=story.today, ends_on=story.today + dt.timedelta(days=30),
            budget=Money(decimal.Decimal(1500), story.currency), objective="Leads for the spring release",
        )
        uow.create_many("campaign_cost", [
            {"campaign_id": campaign.id, "description": what, "amount": Money(decimal.Decimal(cost), story.currency)}
            for what, cost in (("Design", 800), ("Mailing", 400))
        ])
        first = (uow.select("contact", fields=("id",))
                 .where(("email", "is not null"), ("account_id.geography_id", "is not null")).order_by("id").first())
        uow.update("contact", first["id"], email_opt_out=True)  # asked on the phone to get no news
        uow.commit()
    with _smtp_server() as (sink, port), story.crm.unit_of_work(director) as uow:
        settings = attrs.evolve(marketing_settings(uow), smtp_host="127.0.0.1", smtp_port=port,
                                secret=marketing_settings(uow).secret or "demo-secret", sender="news@example.com")
        result = run_campaign(uow, campaign, now=_now(story), settings=settings)
        uow.commit()
    received = len(sink.messages)
    tokens = [re.search(r"token=(\S+)", m.get_content()).group(1) for m in sink.messages]
    with story.crm.unit_of_work() as uow:
        for token in tokens[:3]:  # three recipients follow the link to the release
            track(uow, token, "clicked", settings=settings, now=_now(story))
        unsubscribe(uow, tokens[-1], settings=settings, now=_now(story))
        uow.commit()
    story.echo(f"Newsletter: {campaign.name!r} to segment {segment.name!r}: {result.members} members, "
               f"{result.counts.get('sent', 0)} sent, {result.counts.get('opted_out', 0)} opted out, "
               f"{result.counts.get('no_address', 0)} without address; the local SMTP server received {received} "
               f"messages; three recipients clicked through, one followed the signed unsubscribe link")
    return campaign


def _now(story: Story) -> dt.datetime:
    return dt.datetime.combine(story.today, dt.time(9), dt.UTC)


def _visits(story: Story) -> None:
    with story.crm.unit_of_work(story.actor(story.director)) as uow:
        us = uow.query("geography").where(code="US").first()
        segment = uow.create("segment", name="US accounts", member_entity="account", geography_id=us.id)
        campaign = uow.create("campaign", name="US door to door", code="US-VISITS", channel="visit",
                              segment_id=segment.id, product_group="Services", starts_on=story.today,
                              ends_on=story.today + dt.timedelta(days=13),
                              budget=Money(decimal.Decimal(2000), story.currency))
        uow.create("campaign_cost", campaign_id=campaign.id, description="Travel",
                   amount=Money(decimal.Decimal(600), story.currency))
        result = run_campaign(uow, campaign, now=_now(story))
        visits = uow.query("activity").where(("id", "in", [t.activity_id for t in uow.query("campaign_touch")
                                                          .where(campaign_id=campaign.id).all()])).all()
        uow.commit()
    owners = Counter(story.username(v.owner_id) for v in visits)
    days = sorted({v.due_at.date() for v in visits})
    story.echo(f"Visits: {campaign.name!r}: {result.counts.get('planned', 0)} visits planned "
               f"({', '.join(f'{n} for {who}' for who, n in sorted(owners.items()))}) from {days[0]} to {days[-1]}")


def _leads(story: Story, newsletter: Any) -> None:
    rep = story.reps[0]
    with story.crm.unit_of_work(story.actor(rep)) as uow:
        leads = [capture_lead(uow, {"first_name": f, "last_name": last, "company": company, "email": email,
                                    "phone": phone}, campaign="SPRING")
                 for f, last, company, email, phone in WEB_LEADS]
        ids = [lead.id for lead in leads]
        checks = check_leads(uow, ids)
        scores = score_leads(uow, ids)
        best = uow.get("lead", leads[0].id)
        best = uow.move(best, "qualified")
        conversion = convert_lead(uow, best, opportunity={
            "name": "Cobol Works spring licences", "amount": Money(decimal.Decimal(24000), story.currency),
            "close_date": story.today, "stage": "final_stage", "product_group": "Software"})
        won = uow.move(conversion.opportunity, "won")
        uow.commit()
    with story.crm.unit_of_work() as uow:  # the new account is in New York City
        city = uow.query("geography").where(name="New York City").first()
        uow.update("account", conversion.account.id, geography_id=city.id)
        uow.commit()
    temperatures = Counter(s.temperature for s in scores)
    flagged = sum(1 for c in checks if not c.ok)
    story.echo(f"Campaign leads: {len(leads)} web-form leads with code SPRING ({flagged} with issues; "
               f"{', '.join(f'{n} {t}' for t, n in sorted(temperatures.items()))}); {rep} converted "
               f"{best.first_name} {best.last_name} and won {won.name!r} ({money_text(won.amount)}), "
               f"its account placed in New York City")


def _offer(story: Story, segment: Any) -> None:
    with story.crm.unit_of_work(story.actor(story.director)) as uow:
        campaign = uow.create("campaign", name="Northeast spring offer", code="NE-OFFER", channel="offer",
                              segment_id=segment.id, product_group="Services", offer_discount="10",
                              message="10 % off services ordered before summer", starts_on=story.today,
                              ends_on=story.today + dt.timedelta(days=30))
        result = run_campaign(uow, campaign, now=_now(story))
        quotes = (uow.query("quote").where(title=f"Offer: {campaign.name}").order_by("id").all()
                  if offers_enabled(uow) else [])
        uow.commit()
    if quotes:
        story.echo(f"Offer: {campaign.name!r} to segment {segment.name!r}: {len(quotes)} draft quotes made through "
                   f"orders, e.g. quote {quotes[0].id} for {story.username(quotes[0].owner_id)}'s account, valid "
                   f"until {quotes[0].valid_until}")
    else:
        story.echo(f"Offer: {campaign.name!r} to segment {segment.name!r}: {result.counts.get('planned', 0)} offer "
                   f"tasks planned for the owners (orders is not enabled, so no quotes)")


def _results(story: Story, plan: Any) -> None:
    with story.crm.unit_of_work(story.actor(story.director)) as uow:
        results = campaign_results(uow)
        report = plan_report(uow, plan)
        sliced = plan_summary(uow, plan, by="segment,owner")
        segment_names = {s.id: s.name for s in uow.query("segment").all()}
    for r in results:
        revenue = ", ".join(money_text(m) for m in r.revenue.values()) or "none"
        roi = "-" if r.roi is None else f"{r.roi * 100:.0f} %"
        story.echo(f"  ROI {r.name}: reached {r.reached}, responded {r.responses}, leads {r.leads}, "
                   f"converted {r.conversions}, won {r.won}, "
                   f"revenue {revenue}, cost {money_text(r.cost)} (once), ROI {roi}")
    top = [line for line in report.lines if line.geography == "United States"]
    for line in top:
        story.echo(f"  Plan {plan.name} · {line.product_group} · United States: "
                   f"target {money_text(line.target_amount)}, "
                   f"actual {money_text(line.actual_amount)}, attainment {line.attainment} %")
    for line in sliced.lines:
        if line.segment_id is None and line.user_id is None:
            continue
        who = (f"segment {segment_names.get(line.segment_id)!r}" if line.segment_id is not None
               else f"owner {story.username(line.user_id)}")
        story.echo(f"  Plan {plan.name} · {who}: target {money_text(line.target_amount)}, "
                   f"actual {money_text(line.actual_amount)}, attainment {line.attainment} %")
