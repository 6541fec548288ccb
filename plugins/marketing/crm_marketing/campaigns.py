"""Running a campaign: snapshot its segment, then reach each member through the channel.

``run_campaign(uow, campaign)`` works as the unit of work's actor, in its transaction:

1. the segment's members the actor may read are snapshotted: one ``campaign_run`` and one
   ``campaign_member`` per member, with what this run did for it;
2. each member is reached once per campaign: a ``campaign_touch`` with a unique key records it,
   so running the campaign again (members added to the segment since, say) reaches only the
   new ones (``already_sent`` for the others);
3. by channel:

   - **email**: the templates (:mod:`crm_marketing.mailing`) are rendered per member and sent
     over SMTP in batches; a member who opted out (``email_opt_out``) or has no address is
     skipped and recorded so; a message the server refuses is ``failed`` and may be sent by a
     later run;
   - **letter**: the member is recorded as sent (the letters are printed from the snapshot);
   - **call** and **visit**: a planned activity (a call, a meeting) for the member's owner (a
     contact's account owner first), spread over the working days of the campaign's dates;
   - **offer**: with the orders plugin enabled, a draft quote for the member's account
     (:mod:`crm_marketing.offers`: the offered product, the offer's discount), owned by the
     member's owner (status ``quoted``); otherwise, and for a member without an account, a
     planned task to make the special offer, for the owner, on the first day.

   A call, visit or offer campaign with ``repeat_days`` is periodic: each run plans one round
   (``repeat_days`` long, from the round's first day) and queues the next round as a job
   (``marketing.campaign_round``, run by ``crm worker``) until the end date; each member is
   reached once per round.

E-mail is sent before the unit of work commits, and recorded in it: should the commit itself
fail, a later run sends those messages again.

A planned campaign becomes active on its first run; a cancelled or completed one cannot run.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.actors import Actor
from crmcore.errors import NotFoundError
from crmcore.jobs import current_job, enqueue

from crm_marketing import mailing, offers
from crm_marketing.entities import CHANNELS
from crm_marketing.errors import CampaignError
from crm_marketing.segments import member_chunks, members
from crm_marketing.settings import MarketingSettings, marketing_settings

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = [
    "ROUND_JOB", "TRACKED", "RunResult", "campaign_named", "channels_of", "handlers", "run_campaign", "schedule",
    "segments_of", "track", "unsubscribe",
]

#: The job kind of a periodic campaign's next round.
ROUND_JOB = "marketing.campaign_round"

_ACTIVITY = {"call": ("call", "call"), "visit": ("meeting", "visit"), "offer": ("task", "offer")}
_TOUCH = {"email": "sent", "letter": "sent", **{k: v[1] for k, v in _ACTIVITY.items()}}
_WORK_START = 9
_WORK_HOURS = 8


@attrs.frozen
class RunResult:
    """What one run did: the run's id and the number of members per status."""

    run_id: int
    campaign_id: int
    members: int
    counts: dict[str, int]

    @property
    def reached(self) -> int:
        return self.counts.get("sent", 0) + self.counts.get("planned", 0) + self.counts.get("quoted", 0)

    def __repr__(self) -> str:
        return f"<RunResult run={self.run_id} members={self.members} {self.counts}>"


def campaign_named(uow: UnitOfWork, ref: int | str | Record) -> Record:
    """The campaign *ref* (a record, an id, a code or a name) as the actor may read it."""
    if not isinstance(ref, int | str):
        return uow.get("campaign", ref.id)
    if isinstance(ref, int) or ref.isdigit():
        return uow.get("campaign", int(ref))
    found = uow.query("campaign").where({"any": [("code", "=", ref), ("name", "=", ref)]}).first()
    if found is None:
        raise NotFoundError(f"no campaign with code or name {ref!r}; crm marketing campaigns lists them")
    return found


def schedule(start: dt.date, end: dt.date | None, count: int) -> list[dt.datetime]:
    """*count* times spread evenly over the working days (Monday to Friday) from *start* to
    *end* (both included; *start* alone when *end* is empty or earlier), from 09:00 UTC, an
    hour apart on a day that holds several."""
    days = []
    day = start
    while end is not None and day <= end:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    days = days or [start]
    times = []
    used: dict[dt.date, int] = defaultdict(int)
    for k in range(count):
        day = days[k * len(days) // count]
        slot = used[day]
        used[day] += 1
        at = dt.datetime.combine(day, dt.time(_WORK_START), dt.UTC)
        times.append(at + dt.timedelta(hours=slot % _WORK_HOURS, minutes=15 * (slot // _WORK_HOURS % 4)))
    return times


def run_campaign(uow: UnitOfWork, campaign: int | str | Record, *, now: dt.datetime | None = None,
                 settings: MarketingSettings | None = None, progress: Callable[[int], Any] | None = None,
                 round_on: dt.date | None = None) -> RunResult:
    """Run *campaign* once (see the module docs).

    :param round_on: the first day of the round of a periodic campaign (default: its start).

    :param settings: the settings of this run (another SMTP server, say) instead of the app's.
    :param progress: called with the number of members just handled, after each chunk.

    :raises CampaignError: for a cancelled or completed campaign, one without a segment, an
        e-mail campaign without a message or with ``[plugins.marketing] secret`` unset.
    """
    record = campaign_named(uow, campaign)
    values = record.values
    now = now or dt.datetime.now(dt.UTC)
    if values["status"] in ("cancelled", "completed"):
        raise CampaignError({"status": [f"campaign {record.id} is {values['status']}; only planned or active "
                                        "campaigns run"]}, entity="campaign")
    targets = segments_of(uow, record)
    channels = channels_of(record)
    settings = settings or marketing_settings(uow)
    run = uow.create("campaign_run", campaign_id=record.id, run_at=now, members=0)
    at_once = any(channel in _ACTIVITY for channel in channels)  # planned work is spread per owner: read at once
    counts: dict[str, int] = defaultdict(int)
    total = 0
    start = round_on or values.get("starts_on") or now.date()
    span = _Span(start, values.get("ends_on"), "")
    repeat = values.get("repeat_days") if any(channel in _ACTIVITY for channel in channels) else None
    spans = dict.fromkeys(channels, span)
    if repeat:  # only the planned work repeats; e-mail and letters go once
        last = start + dt.timedelta(days=repeat - 1)
        round_span = _Span(start, min(last, span.end) if span.end else last, f":{start.isoformat()}")
        spans.update({channel: round_span for channel in channels if channel in _ACTIVITY})
    seen: set[tuple[str, int]] = set()  # a member of several target segments is reached once
    for segment in targets:
        entity = segment.values["member_entity"]
        chunks: Iterable[list[dict[str, Any]]] = (
            [members(uow, segment, roles=True)] if at_once else member_chunks(uow, segment, roles=True))
        for chunk in chunks:
            rows = [row for row in chunk if (entity, row["id"]) not in seen]
            seen.update((entity, row["id"]) for row in rows)
            total += len(rows)
            for channel in channels:
                for status in _reach(uow, record, run, entity, rows, now, settings, spans[channel], channel):
                    counts[status] += 1
            if progress is not None:
                progress(len(chunk))
    result = RunResult(run.id, record.id, total, dict(counts))
    uow.update(run, members=total, reached=result.reached)
    if values["status"] == "planned":
        uow.update(record, status="active")
    if repeat:
        following = start + dt.timedelta(days=repeat)
        if values.get("ends_on") is None or following <= values["ends_on"]:
            enqueue(uow, ROUND_JOB, {"campaign_id": record.id, "on": following.isoformat()},
                    run_at=dt.datetime.combine(following, dt.time(), dt.UTC), key=f"{ROUND_JOB}:{record.id}")
    return result


@attrs.frozen
class _Span:
    """The days a run plans work over, and the suffix of its touches' keys (the round)."""

    start: dt.date
    end: dt.date | None
    round: str


def _next_round(uow: UnitOfWork, payload: dict[str, Any]) -> None:
    """The job of a periodic campaign's next round: run it, unless it was cancelled or completed."""
    campaign = uow.get("campaign", payload["campaign_id"])
    if campaign.values["status"] in ("cancelled", "completed"):
        return
    job = current_job()
    run_campaign(uow, campaign, round_on=dt.date.fromisoformat(payload["on"]), now=job.now if job else None)


def handlers() -> dict[str, Callable[..., Any]]:
    """The job handlers of campaigns (``crm_job_handlers``)."""
    return {ROUND_JOB: _next_round}


def segments_of(uow: UnitOfWork, campaign: Record) -> list[Record]:
    """*campaign*'s target segment and its further ``segments`` (ids), each once, as the actor
    may read them.

    :raises CampaignError: for a campaign without a target segment, or further segments that
        are not a list of ids.
    """
    values = campaign.values
    if values.get("segment_id") is None:
        raise CampaignError({"segment_id": [f"campaign {campaign.id} has no target segment; set segment_id"]},
                            entity="campaign")
    further = values.get("segments") or []
    if not isinstance(further, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in further):
        raise CampaignError({"segments": [f"campaign {campaign.id} has further segments {further!r}; give a list "
                                          "of segment ids, e.g. [3, 4]"]}, entity="campaign")
    return [uow.get("segment", i) for i in dict.fromkeys([values["segment_id"], *further])]


def channels_of(campaign: Record) -> list[str]:
    """*campaign*'s channel and its further ``channels``, each once, in order.

    :raises CampaignError: for a further channel that is not one of :data:`CHANNELS`.
    """
    values = campaign.values
    found = [values["channel"]]
    for channel in values.get("channels") or []:
        if channel not in CHANNELS:
            raise CampaignError({"channels": [f"campaign {campaign.id} has unknown channel {channel!r}; use "
                                              f"{', '.join(CHANNELS)}"]}, entity="campaign")
        if channel not in found:
            found.append(channel)
    return found


def _reach(uow: UnitOfWork, campaign: Record, run: Record, entity: str, rows: list[dict[str, Any]],
           now: dt.datetime, settings: MarketingSettings, span: _Span, channel: str) -> list[str]:
    """Reach *rows* through *channel* (members not reached so before), snapshot them; the
    status of each."""
    keys = [f"{campaign.id}:{channel}:{entity}:{row['id']}{span.round}" for row in rows]
    with uow.acting_as(Actor.system()):  # a send by another user counts as sent
        done = {t.values["key"] for t in uow.find_many("campaign_touch", "key", keys)}
    status: dict[str, str] = {}
    todo = []
    for row, key in zip(rows, keys, strict=True):
        if key in done:
            status[key] = "already_sent"
        elif channel == "email" and row["opt_out"]:
            status[key] = "opted_out"
        elif channel == "email" and not row["email"]:
            status[key] = "no_address"
        else:
            todo.append((row, key))
    if channel == "email":
        reached = _send_email(uow, campaign, entity, todo, status, settings)
    elif channel == "letter":
        reached = [(row, key, None, None) for row, key in todo]
        status.update({key: "sent" for _, key in todo})
    elif channel == "offer" and offers.enabled(uow):
        reached = _make_offers(uow, campaign, entity, todo, span, status)
    else:
        reached = _plan_activities(uow, campaign, entity, todo, span, channel)
        status.update({key: "planned" for _, key in todo})
    touches = [{"campaign_id": campaign.id, "kind": _TOUCH[channel], "at": now, "key": key, "activity_id": activity_id,
                "quote_id": quote_id, **_links(entity, row)} for row, key, activity_id, quote_id in reached]
    # what this unit just read or wrote need not be looked up again by the reference checks
    known = {"campaign": [campaign.id], "campaign_run": [run.id], entity: [row["id"] for row in rows]}
    activities = [activity_id for _, _, activity_id, _ in reached if activity_id is not None]
    if touches:
        uow.create_many("campaign_touch", touches, known={**known, "activity": activities})
    uow.create_many("campaign_member", [
        {"run_id": run.id, "campaign_id": campaign.id, "member_entity": entity, "member_id": row["id"],
         "email": row["email"], "channel": channel, "status": status[key], **_links(entity, row)}
        for row, key in zip(rows, keys, strict=True)
    ], known=known)
    return [status[key] for key in keys]


def _links(entity: str, row: dict[str, Any]) -> dict[str, Any]:
    return {"account_id": row["account_id"], "contact_id": row["id"] if entity == "contact" else None,
            "lead_id": row["id"] if entity == "lead" else None}


_Reached = list[tuple[dict[str, Any], str, int | None, int | None]]  # row, key, activity, quote


def _send_email(uow: UnitOfWork, campaign: Record, entity: str, todo: Sequence[tuple[dict[str, Any], str]],
                status: dict[str, str], settings: MarketingSettings) -> _Reached:
    values = campaign.values
    if not todo:
        return []
    if not values.get("message"):
        raise CampaignError({"message": [f"e-mail campaign {campaign.id} has no message; write its template"]},
                            entity="campaign")
    if not settings.secret:
        raise CampaignError("e-mail campaigns need [plugins.marketing] secret, the key unsubscribe links are "
                            "signed with")
    templates = mailing.Templates(values.get("subject") or values["name"], values["message"])
    about = {"name": values["name"], "code": values.get("code"), "product_group": values.get("product_group")}

    def outgoing() -> Iterator[mailing.Outgoing]:
        for row, key in todo:
            token = mailing.make_token(settings.secret, campaign.id, entity, row["id"])
            link = mailing.unsubscribe_link(settings.unsubscribe_url, token)
            context = {"first_name": row.get("first_name") or "", "name": row.get("name") or "",
                       "company": row.get("company") or "", "email": row["email"], "campaign": about,
                       "unsubscribe_url": link}
            subject, body = templates.render(context)
            data = mailing.build(settings.sender, row["email"], subject, body, link)
            yield mailing.Outgoing(key, settings.sender, row["email"], data)

    sent, refused = mailing.send_all(settings.smtp_host, settings.smtp_port, outgoing(), batch_size=settings.batch_size,
                                     connections=settings.connections)
    ok = set(sent)
    for _, key in todo:
        status[key] = "sent" if key in ok else "failed"
    return [(row, key, None, None) for row, key in todo if key in ok]


def _owner(campaign: Record, row: dict[str, Any], actor: Actor) -> Any:
    """Who works on a member: its account's owner (a contact's), its own, the campaign's."""
    return row.get("account_owner_id") or row.get("owner_id") or campaign.values.get("owner_id") or actor.user_id


def _make_offers(uow: UnitOfWork, campaign: Record, entity: str, todo: Sequence[tuple[dict[str, Any], str]],
                 span: _Span, status: dict[str, str]) -> _Reached:
    """Quotes for the members with an account (:mod:`crm_marketing.offers`), planned tasks for
    the others."""
    quoted = [(row, key) for row, key in todo if row.get("account_id") is not None]
    others = [(row, key) for row, key in todo if row.get("account_id") is None]
    ids = offers.make_quotes(uow, campaign, quoted, [_owner(campaign, row, uow.actor) for row, _ in quoted])
    status.update({key: "quoted" for _, key in quoted})
    status.update({key: "planned" for _, key in others})
    made = [(row, key, None, quote_id) for (row, key), quote_id in zip(quoted, ids, strict=True)]
    return made + _plan_activities(uow, campaign, entity, others, span, "offer")


def _plan_activities(uow: UnitOfWork, campaign: Record, entity: str, todo: Sequence[tuple[dict[str, Any], str]],
                     span: _Span, channel: str) -> _Reached:
    if not todo:
        return []
    values = campaign.values
    kind, verb = _ACTIVITY[channel]
    by_owner: dict[Any, list[tuple[dict[str, Any], str]]] = defaultdict(list)
    for row, key in todo:
        by_owner[_owner(campaign, row, uow.actor)].append((row, key))
    start = span.start
    end = span.end if channel != "offer" else None
    subject = values.get("subject") or f"{verb.capitalize()}: {values['name']}"
    planned: list[tuple[dict[str, Any], str]] = []
    activities = []
    for owner, items in by_owner.items():
        for (row, key), due in zip(items, schedule(start, end, len(items)), strict=True):
            planned.append((row, key))
            activities.append({
                "kind": kind, "subject": subject[:200], "description": values.get("message"), "due_at": due,
                "starts_at": due if kind != "task" else None,
                "ends_at": due + dt.timedelta(minutes=45) if kind != "task" else None,
                "status": "planned", "owner_id": owner, **_links(entity, row),
            })
    made = uow.create_many("activity", activities)
    return [(row, key, activity.id, None) for (row, key), activity in zip(planned, made, strict=True)]


#: What a recipient's link can record (:func:`track`).
TRACKED = ("opened", "clicked", "response")


def track(uow: UnitOfWork, token: str, kind: str, *, now: dt.datetime | None = None,
          settings: MarketingSettings | None = None) -> Record:
    """Record that the recipient of a campaign's message *kind* (``opened`` it, ``clicked`` a
    link, sent a ``response``), once per recipient and kind, from the signed token of their
    message (the one their unsubscribe link carries). Runs as the system.

    :returns: the touch.
    :raises ValidationError: for an unknown kind or a token that is not validly signed.
    """
    from crmcore.errors import ValidationError

    if kind not in TRACKED:
        raise ValidationError({"kind": [f"cannot track {kind!r}; use one of {', '.join(TRACKED)}"]})
    settings = settings or marketing_settings(uow)
    campaign_id, entity, record_id = mailing.read_token(settings.secret, token)
    key = f"{campaign_id}:{kind}:{entity}:{record_id}"
    with uow.acting_as(Actor.system()):
        found = uow.find_many("campaign_touch", "key", [key])
        if found:
            return found[0]
        member = uow.get(entity, record_id)
        row = {"id": record_id, "account_id": member.id if entity == "account" else member.values.get("account_id")}
        return uow.create("campaign_touch", campaign_id=campaign_id, kind=kind, key=key,
                          at=now or dt.datetime.now(dt.UTC), **_links(entity, row))


def unsubscribe(uow: UnitOfWork, token: str, *, now: dt.datetime | None = None,
                settings: MarketingSettings | None = None) -> Record:
    """Honour the unsubscribe link *token*: the member gets ``email_opt_out`` and the campaign a
    ``opt_out`` touch (once). Runs as the system (the person clicking is not a user).

    :returns: the member's record.
    :raises ValidationError: for a token that is not validly signed.
    """
    settings = settings or marketing_settings(uow)
    campaign_id, entity, record_id = mailing.read_token(settings.secret, token)
    with uow.acting_as(Actor.system()):
        member = uow.get(entity, record_id)
        if not member.values.get("email_opt_out"):
            member = uow.update(member, email_opt_out=True)
        key = f"{campaign_id}:opt_out:{entity}:{record_id}"
        if not uow.find_many("campaign_touch", "key", [key]):
            row = {"id": record_id, "account_id": member.values["id"] if entity == "account"
                   else member.values.get("account_id")}
            uow.create("campaign_touch", campaign_id=campaign_id, kind="opt_out", key=key,
                       at=now or dt.datetime.now(dt.UTC), **_links(entity, row))
    return member
