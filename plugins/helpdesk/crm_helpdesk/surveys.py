"""Customer satisfaction surveys: one per resolution, answered through a token, not a login.

When a ticket is resolved, a ``csat_survey`` is created with a random token (the secret of the
link sent to the customer), the ticket's assignee and queue at that moment, and an expiry
(``survey_valid_days``); the signal ``helpdesk.survey-created`` carries it after the commit, for
whatever sends the e-mail. :func:`answer_survey` takes the token, a score from 1 to 5 and an
optional comment: it needs no user, since the token is the proof. A survey is answered once.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import NotFoundError, ValidationError

from crm_helpdesk.scope import system_scope
from crm_helpdesk.settings import helpdesk_settings

if TYPE_CHECKING:
    from crmcore import Crm, UnitOfWork
    from crmcore.records import Record

__all__ = ["SURVEY_CREATED", "SURVEY_ANSWERED", "SurveyEvent", "answer_survey", "create_survey"]

SURVEY_CREATED = "helpdesk.survey-created"
SURVEY_ANSWERED = "helpdesk.survey-answered"
_MAX_COMMENT = 4000


@attrs.frozen
class SurveyEvent:
    """What the survey signals carry (sender ``"csat_survey"``): the survey record."""

    record: Record


def create_survey(uow: UnitOfWork, ticket: Record) -> Record:
    """Create the survey of a resolution of *ticket* (as the system: the agent resolving it
    needs no privilege on surveys); an unanswered, unexpired survey of the ticket is reused.

    :returns: the survey.
    """
    now = dt.datetime.now(dt.UTC)
    with system_scope(uow, "a resolution sends the customer a satisfaction survey"):
        pending = (
            uow.query("csat_survey")
            .where(ticket_id=ticket.id, answered_at=None)
            .where(("expires_at", ">", now))
            .first()
        )
        if pending is not None:
            return pending
        days = helpdesk_settings(uow.crm).survey_valid_days
        survey = uow.create(
            "csat_survey",
            ticket_id=ticket.id,
            token=secrets.token_urlsafe(24),
            agent_id=ticket.values.get("assignee_id"),
            queue_id=ticket.values.get("queue_id"),
            sent_at=now,
            expires_at=now + dt.timedelta(days=days),
        )
    uow.announce(SURVEY_CREATED, "csat_survey", event=SurveyEvent(survey))
    return survey


def answer_survey(
    crm: Crm, token: str, score: Any, comment: str | None = None, *, now: dt.datetime | None = None
) -> Record:
    """Answer the survey of *token* with *score* (1 to 5) and an optional *comment*.

    :returns: the answered survey.
    :raises NotFoundError: for an unknown token (the token is not repeated in the message).
    :raises ValidationError: for a score outside 1..5, a survey already answered or expired.
    """
    score_field = crm.registry.entity("csat_survey").field("score")
    try:
        parsed = score_field.parse(score)
    except ValueError as exc:
        raise ValidationError(
            {"score": [f"{exc}; answer with 1 (very unhappy) to 5 (very happy)"]},
            entity="csat_survey",
        ) from None
    if parsed is None or not 1 <= parsed <= 5:
        raise ValidationError(
            {"score": [f"expected 1 (very unhappy) to 5 (very happy), got {score!r}"]},
            entity="csat_survey",
        )
    text = (comment or "").strip() or None
    if text is not None and len(text) > _MAX_COMMENT:
        raise ValidationError(
            {"comment": [f"at most {_MAX_COMMENT} characters, got {len(text)}"]},
            entity="csat_survey",
        )
    at = now or dt.datetime.now(dt.UTC)
    if not isinstance(token, str) or not token.strip():
        raise NotFoundError("no survey for this token; check the link", entity="csat_survey")
    with crm.unit_of_work() as uow:  # the system's: the token is the proof, not a login
        survey = uow.query("csat_survey").where(token=token.strip()).first()
        if survey is None:
            raise NotFoundError("no survey for this token; check the link", entity="csat_survey")
        if survey.answered_at is not None:
            raise ValidationError(
                f"survey {survey.id} was already answered on {survey.answered_at:%Y-%m-%d}; "
                "it is answered once",
                entity="csat_survey",
            )
        if survey.expires_at is not None and survey.expires_at < at:
            raise ValidationError(
                f"survey {survey.id} expired on {survey.expires_at:%Y-%m-%d}; "
                "it can no longer be answered",
                entity="csat_survey",
            )
        survey = uow.update(survey, score=parsed, comment=text, answered_at=at)
        uow.announce(SURVEY_ANSWERED, "csat_survey", event=SurveyEvent(survey))
        uow.commit()
    return survey
