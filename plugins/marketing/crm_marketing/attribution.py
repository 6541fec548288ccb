"""Touches, lead tracking, attribution of won revenue to campaigns, and campaign results.

- A lead created with a ``campaign_id`` or a ``campaign_code`` (an import column, a web form,
  :func:`capture_lead`) records a ``lead`` touch of that campaign. When the lead converts, the
  sales plugin moves what referred to the lead to the contact, the account and the new
  opportunity, touches included: the deal carries its campaigns.
- :func:`link_opportunity` links an existing opportunity to a campaign after the fact.
- A won opportunity's touches are those on the opportunity, or else those on its account up to
  its close date (an opt-out is no touch). The attribution model shares its amount among them:
  ``first_touch`` (all of it to the earliest), ``last_touch`` (to the latest) or ``linear``
  (evenly among the campaigns, the cent left over to the earliest, so the shares sum to the
  amount exactly).
- :func:`campaign_results` answers, per campaign: members reached, members who responded
  (opened, clicked or answered: :func:`crm_marketing.campaigns.track`), leads, conversions, won deals,
  attributed revenue, the actual cost (the sum of its cost lines, counted **once** however many
  deals it won) and ROI = (revenue − cost) / cost.

Everything is read as the unit of work's actor: revenue the actor may not read is not counted.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.actors import Actor
from crmcore.errors import NotFoundError, ValidationError
from crmcore.money import Money

from crm_marketing import ATTRIBUTION_MODELS
from crm_marketing.settings import marketing_settings

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = [
    "CampaignResult",
    "adopt_leads",
    "attribute",
    "campaign_results",
    "capture_lead",
    "link_opportunity",
    "resolve_codes",
    "split",
    "won_condition",
]

_REACHED = ("sent", "visit", "call", "offer")
_RESPONDED = ("opened", "clicked", "response")
_CHUNK = 500


# -- leads ----------------------------------------------------------------------------------------


def resolve_codes(uow: UnitOfWork, items: Sequence[dict[str, Any]]) -> list[dict[str, Any] | None]:
    """For new or changed leads: the ``campaign_id`` of each ``campaign_code`` (one query for the
    batch). A code no campaign has yet is kept on the lead: the campaign created later with that
    code adopts the lead (:func:`adopt_leads`), as when a flyer's leads are imported first."""
    codes = sorted({v["campaign_code"] for v in items if v.get("campaign_code") and not v.get("campaign_id")})
    if not codes:
        return [None] * len(items)
    with uow.acting_as(Actor.system()):  # the code names the campaign, whoever may read it
        found = {c.values["code"]: c.id for c in uow.find_many("campaign", "code", codes)}
    return [{"campaign_id": found[v["campaign_code"]]}
            if v.get("campaign_code") in found and not v.get("campaign_id") else None for v in items]


def adopt_leads(uow: UnitOfWork, campaigns: Iterable[Record]) -> None:
    """New campaigns take the leads that carry their code and no campaign yet (bookkeeping, as
    the system: the code on a lead says where it came from)."""
    by_code = {c.values["code"]: c.id for c in campaigns if c.values.get("code")}
    if not by_code:
        return
    with uow.acting_as(Actor.system()):
        leads = [lead for lead in uow.find_many("lead", "campaign_code", sorted(by_code))
                 if lead.values.get("campaign_id") is None]
        if leads:
            uow.update_many("lead", [(lead, {"campaign_id": by_code[lead.values["campaign_code"]]}) for lead in leads])


def record_lead_touches(uow: UnitOfWork, leads: Iterable[Record], *, now: dt.datetime | None = None) -> None:
    """A ``lead`` touch for each lead that names a campaign (once per lead and campaign)."""
    rows = []
    for lead in leads:
        campaign = lead.values.get("campaign_id")
        if campaign is not None:
            rows.append({"campaign_id": campaign, "kind": "lead", "at": now or lead.values.get("created_at")
                         or dt.datetime.now(dt.UTC), "lead_id": lead.id, "account_id": lead.values.get("account_id"),
                         "key": f"{campaign}:lead:lead:{lead.id}"})
    if not rows:
        return
    known = {t.values["key"] for t in uow.find_many("campaign_touch", "key", [r["key"] for r in rows])}
    rows = [r for r in rows if r["key"] not in known]
    if rows:
        uow.create_many("campaign_touch", rows)


def capture_lead(uow: UnitOfWork, values: Mapping[str, Any], *, campaign: str | int) -> Record:
    """Create a lead from a web form for *campaign* (its code or id): the lead carries the
    campaign, which records its first touch.

    :raises ValidationError: for an unknown campaign code, or what the lead itself refuses.
    """
    data = dict(values)
    if isinstance(campaign, int):
        data["campaign_id"] = uow.get("campaign", campaign).id
    elif not uow.find_many("campaign", "code", [campaign]):
        raise ValidationError({"campaign": [f"no campaign has the code {campaign!r}; crm marketing campaigns lists "
                                            "the codes"]}, entity="lead")
    else:
        data["campaign_code"] = campaign
    data.setdefault("source", "campaign")
    return uow.create("lead", **data)


def link_opportunity(uow: UnitOfWork, opportunity: int | Record, campaign: int | Record,
                     *, at: dt.datetime | None = None) -> Record:
    """Link an existing *opportunity* to *campaign* after the fact (a ``linked`` touch, once).

    :returns: the touch.
    """
    deal = uow.get("opportunity", opportunity if isinstance(opportunity, int) else opportunity.id)
    source = uow.get("campaign", campaign if isinstance(campaign, int) else campaign.id)
    key = f"{source.id}:linked:opportunity:{deal.id}"
    existing = uow.find_many("campaign_touch", "key", [key])
    if existing:
        return existing[0]
    return uow.create("campaign_touch", campaign_id=source.id, kind="linked", key=key,
                      at=at or dt.datetime.now(dt.UTC), opportunity_id=deal.id,
                      account_id=deal.values.get("account_id"), contact_id=deal.values.get("contact_id"))


# -- attribution ----------------------------------------------------------------------------------


def won_condition(uow: UnitOfWork) -> dict[str, Any]:
    """A condition matching the opportunities in a won stage of their pipeline."""
    workflow = uow.crm.workflow
    default = workflow.defaults["opportunity"].name
    parts: list[Any] = []
    for pipeline in workflow.by_entity.get("opportunity", []):
        names = sorted(s.name for s in pipeline.stages if s.kind == "won")
        if names:
            which: Any = ("pipeline", "=", pipeline.name)
            if pipeline.name == default:
                which = {"any": [which, ("pipeline", "is null")]}
            parts.append({"all": [which, ("stage", "in", names)]})
    return {"any": parts} if parts else {"all": [("id", "is null")]}


def split(amount: Money, parts: int) -> list[Money]:
    """*amount* in *parts* equal shares to the cent; the cents left over go to the first shares,
    so the shares sum to *amount* exactly."""
    cents = int((amount.amount * 100).to_integral_value(decimal.ROUND_HALF_EVEN))
    base, extra = divmod(cents, parts)
    return [Money(decimal.Decimal(base + (1 if i < extra else 0)) / 100, amount.currency) for i in range(parts)]


def attribute(deals: Sequence[Mapping[str, Any]], touches: Sequence[Mapping[str, Any]],
              model: str) -> dict[int, list[tuple[int, Money]]]:
    """Share each won deal's amount among the campaigns that touched it (pure: no database).

    :param deals: ``{"id", "amount": Money | None, "account_id", "close_date"}``.
    :param touches: ``{"campaign_id", "at", "opportunity_id", "account_id", "kind"}``.
    :param model: one of :data:`crm_marketing.ATTRIBUTION_MODELS`.
    :returns: ``{campaign id: [(deal id, share), ...]}``.
    """
    if model not in ATTRIBUTION_MODELS:
        raise ValidationError({"model": [f"unknown attribution model {model!r}; use one of "
                                         f"{', '.join(ATTRIBUTION_MODELS)}"]})
    on_deal: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    on_account: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for touch in touches:
        if touch["kind"] == "opt_out":
            continue
        if touch.get("opportunity_id") is not None:
            on_deal[touch["opportunity_id"]].append(touch)
        elif touch.get("account_id") is not None:
            on_account[touch["account_id"]].append(touch)
    shares: dict[int, list[tuple[int, Money]]] = defaultdict(list)
    for deal in deals:
        amount = deal.get("amount")
        if amount is None:
            continue
        found = on_deal.get(deal["id"])
        if not found and deal.get("account_id") is not None:
            close = deal.get("close_date")
            found = [t for t in on_account.get(deal["account_id"], ())
                     if close is None or t["at"].date() <= close]
        if not found:
            continue
        ordered = sorted(found, key=lambda t: (t["at"], t["campaign_id"]))
        if model == "first_touch":
            shares[ordered[0]["campaign_id"]].append((deal["id"], amount))
        elif model == "last_touch":
            shares[ordered[-1]["campaign_id"]].append((deal["id"], amount))
        else:
            campaigns = list(dict.fromkeys(t["campaign_id"] for t in ordered))
            for campaign, share in zip(campaigns, split(amount, len(campaigns)), strict=True):
                shares[campaign].append((deal["id"], share))
    return dict(shares)


@attrs.frozen
class CampaignResult:
    """One campaign's results.

    :ivar cost: the sum of its cost lines (``None`` without any), counted once.
    :ivar revenue: attributed won revenue, per currency.
    :ivar roi: (revenue − cost) / cost in the cost's currency, or ``None`` without a cost.
    """

    campaign_id: int
    name: str
    reached: int
    responses: int
    leads: int
    conversions: int
    won: int
    revenue: dict[str, Money]
    cost: Money | None
    budget: Money | None

    @property
    def roi(self) -> decimal.Decimal | None:
        if self.cost is None or not self.cost.amount:
            return None
        revenue = self.revenue.get(self.cost.currency, Money(0, self.cost.currency))
        return ((revenue.amount - self.cost.amount) / self.cost.amount).quantize(decimal.Decimal("0.0001"))

    def __repr__(self) -> str:
        return f"<CampaignResult campaign={self.campaign_id} won={self.won} roi={self.roi}>"


def campaign_results(uow: UnitOfWork, campaigns: Sequence[int] | None = None, *,
                     model: str | None = None) -> list[CampaignResult]:
    """The results of *campaigns* (every readable one when ``None``), attributing with *model*
    (``[plugins.marketing] attribution`` when ``None``)."""
    model = model or marketing_settings(uow).attribution
    query = uow.query("campaign").order_by("id")
    if campaigns is not None:
        query = query.where(("id", "in", list(campaigns)))
    found = query.all()
    if campaigns is not None and len(found) < len(set(campaigns)):
        missing = sorted(set(campaigns) - {c.id for c in found})
        raise NotFoundError(f"campaign {missing[0]} not found")
    ids = [c.id for c in found]
    if not ids:
        return []
    touches = _touches(uow, ids)
    deals = _won_deals(uow, touches)
    shares = attribute(deals, touches, model)
    costs = _costs(uow, ids)
    results = []
    for campaign in found:
        own = [t for t in touches if t["campaign_id"] == campaign.id]
        reached = {(t["contact_id"], t["lead_id"], t["account_id"]) for t in own if t["kind"] in _REACHED}
        leads = [t for t in own if t["kind"] == "lead"]
        revenue: dict[str, Money] = {}
        for _, share in shares.get(campaign.id, ()):
            revenue[share.currency] = revenue.get(share.currency, Money(0, share.currency)) + share
        results.append(CampaignResult(
            campaign.id, campaign.values["name"], len(reached),
            len({(t["contact_id"], t["lead_id"], t["account_id"]) for t in own if t["kind"] in _RESPONDED}), len(leads),
            sum(1 for t in leads if t["lead_id"] is None and t["contact_id"] is not None),
            len({deal for deal, _ in shares.get(campaign.id, ())}), revenue, costs.get(campaign.id),
            campaign.values.get("budget"),
        ))
    return results


def _touches(uow: UnitOfWork, campaign_ids: Sequence[int]) -> list[dict[str, Any]]:
    fields = ("campaign_id", "kind", "at", "opportunity_id", "account_id", "contact_id", "lead_id")
    rows: list[dict[str, Any]] = []
    for start in range(0, len(campaign_ids), _CHUNK):
        chunk = list(campaign_ids[start:start + _CHUNK])
        rows += uow.select("campaign_touch", fields=fields).where(("campaign_id", "in", chunk)).all()
    return rows


def _won_deals(uow: UnitOfWork, touches: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The won deals the touches may concern: on a touched opportunity or a touched account."""
    deal_ids = sorted({t["opportunity_id"] for t in touches if t["opportunity_id"] is not None})
    account_ids = sorted({t["account_id"] for t in touches if t["account_id"] is not None})
    fields = ("id", "amount", "account_id", "close_date")
    won = won_condition(uow)
    found: dict[int, dict[str, Any]] = {}
    for field, values in (("id", deal_ids), ("account_id", account_ids)):
        for start in range(0, len(values), _CHUNK):
            select = uow.select("opportunity", fields=fields).where(won, (field, "in", values[start:start + _CHUNK]))
            for row in select.all():
                found[row["id"]] = row
    return [found[k] for k in sorted(found)]


def _costs(uow: UnitOfWork, campaign_ids: Sequence[int]) -> dict[int, Money]:
    """Each campaign's cost: its cost lines summed once (one aggregate query)."""
    rows = (uow.select("campaign_cost").where(("campaign_id", "in", list(campaign_ids)))
            .group_by("campaign_id").aggregate(sum=["amount"]))
    costs: dict[int, Money] = {}
    for row in rows:
        total = row["sum_amount"]
        if total is None:
            continue
        campaign = row["campaign_id"]
        if campaign in costs and costs[campaign].currency != total.currency:
            raise ValidationError({"amount": [f"campaign {campaign} has costs in {costs[campaign].currency} and "
                                              f"{total.currency}; record its costs in one currency"]},
                                  entity="campaign_cost")
        costs[campaign] = total
    return costs
