"""The story ``crm demo`` tells: its settings, the sample data it reads, the :class:`Story` its
chapters share and the :class:`Move` records of today's moves.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.resources
import importlib.util
import io
import json
import random
import zoneinfo
from collections.abc import Callable
from typing import Any

import attrs

from crmcore.actors import Actor
from crmcore.app import Crm
from crmcore.jobs import WorkerStats, due_reminders
from crmcore.money import Money
from crmcore.records import Record
from crmcore.transfer import ImportReport

__all__ = ["DEFAULT_PATH", "Move", "Story", "due_by_user", "money_text", "read_data"]

DEFAULT_PATH = "crm-demo.db"

#: Marks a database file as made by ``crm demo`` (SQLite ``PRAGMA application_id``), so that a
#: rerun replaces only its own files.
APPLICATION_ID = 0x43524D44  # "CRMD"

#: The sample close dates are spread around this day; the demo moves them around today.
DATA_ANCHOR = dt.date(2025, 6, 1)

OPEN_STAGES = ("initiation", "identification", "qualification", "rfp_received", "quotation_sent", "final_stage")
PROBABILITY = {
    "initiation": 10, "identification": 20, "qualification": 30, "rfp_received": 50,
    "quotation_sent": 65, "final_stage": 80, "won": 100, "lost": 0,
}
#: How many of a user's due reminders the worker chapter lists.
SHOWN = 5

Echo = Callable[[str], None]


def read_data(name: str) -> Any:
    """A bundled sample file: CSV as a list of dicts, JSON as parsed."""
    text = importlib.resources.files("crmcore").joinpath("data", name).read_text(encoding="utf-8")
    if name.endswith(".json"):
        return json.loads(text)
    return list(csv.DictReader(io.StringIO(text)))


@attrs.frozen
class Move:
    """A deal moved today: the deal after the move, the stage it left, and the activities and
    reminders the move made through the rules (the guided-selling meeting and its reminder)."""

    opportunity: Record
    source: str
    activities: tuple[Record, ...] = ()
    reminders: tuple[Record, ...] = ()


@attrs.define(eq=False)
class Story:
    """What the chapters share: the app, the records made so far, the clock and the dice.

    The core's chapters fill the company (``users``, ``roles``, ``managers``, ``teams``),
    ``accounts``, ``contacts`` and ``opportunities``; a plugin's chapters (``crm_demo``) add
    what they make: the sales plugin its lead ``imports``, ``leads``, ``conversions`` and
    today's ``moved`` deals.
    """

    crm: Crm
    echo: Echo
    today: dt.date
    company: dict[str, Any]
    rng: random.Random = attrs.field(factory=lambda: random.Random(20250601))
    users: dict[str, Record] = attrs.field(factory=dict)
    roles: dict[str, str] = attrs.field(factory=dict)
    managers: dict[str, str | None] = attrs.field(factory=dict)
    teams: dict[str, Record] = attrs.field(factory=dict)
    accounts: dict[str, Record] = attrs.field(factory=dict)
    contacts: dict[str, list[Record]] = attrs.field(factory=dict)
    imports: list[ImportReport] = attrs.field(factory=list)
    leads: list[Record] = attrs.field(factory=list)
    conversions: list[Any] = attrs.field(factory=list)
    opportunities: list[Record] = attrs.field(factory=list)
    moved: list[Move] = attrs.field(factory=list)
    worker_at: dt.datetime | None = None
    worker_stats: WorkerStats | None = None
    due: dict[str, list[Record]] = attrs.field(factory=dict)

    @property
    def currency(self) -> str:
        return str(self.company.get("currency", "USD"))

    @property
    def reps(self) -> list[str]:
        """Usernames of the sales reps, in the order of the company file."""
        return [name for name, role in self.roles.items() if role == "Sales rep"]

    @property
    def director(self) -> str:
        """The username of the sales director (the first user otherwise)."""
        return next((name for name, role in self.roles.items() if role == "Sales director"), next(iter(self.users)))

    def actor(self, username: str) -> Actor:
        """The actor of a demo user (the records they make are theirs in the audit trail)."""
        user = self.users[username]
        return Actor(user.id, username)

    def owner_name(self, record: Record) -> str:
        return next(name for name, user in self.users.items() if user.id == record.owner_id)

    def username(self, user_id: int | None) -> str:
        return next((name for name, user in self.users.items() if user.id == user_id), f"user {user_id}")

    def at(self, username: str, day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
        """A time on *day* in the user's own time zone."""
        tz = zoneinfo.ZoneInfo(self.users[username].timezone or "UTC")
        return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)

    def local(self, username: str, when: dt.datetime) -> str:
        """*when* in the user's time zone, as ``crm reminders`` shows times."""
        tz = zoneinfo.ZoneInfo(self.users[username].timezone or "UTC")
        return when.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")

    def __repr__(self) -> str:
        return f"<Story users={len(self.users)} accounts={len(self.accounts)} opportunities={len(self.opportunities)}>"


def money_text(value: Money | None) -> str:
    """A sum as the demo prints it: ``12,500.00 EUR``, or ``-`` for none."""
    return "-" if value is None else f"{value.amount:,.2f} {value.currency}"


def due_by_user(story: Story) -> dict[str, list[Record]]:
    """The due reminders of each user, read as that user (as ``crm reminders --as USER``)."""
    due: dict[str, list[Record]] = {}
    for name in story.users:
        with story.crm.unit_of_work(story.actor(name)) as uow:
            found = due_reminders(uow)
        if found:
            due[name] = found
    return due
