"""``crm demo``: the story of a small company, told on a fresh SQLite file.

The story is a list of chapters (:data:`CHAPTERS`), each a small function taking the
:class:`Story` (the app, the records made so far, a seeded random generator and ``echo``). The
core's chapters work on the bundled sample data in ``crmcore/data`` (see its ``PROVENANCE.md``)
through the same functions the ``crm`` commands call:

1. the company: teams, users and the role tree that says who manages whom;
2. accounts and their contacts;
3. the sample opportunities moved through the pipeline to where they stand;
4. activities (with reminders) and notes;
5. every plugin's chapters, through the ``crm_demo`` hook, in plugin order; the sales plugin
   (``plugins/sales``) imports two lead lists, checks and scores them, qualifies and converts
   the hot ones, and moves deals on today: a deal over 50,000 entering ``rfp_received`` wakes
   the guided-selling rule;
6. a day later the worker runs once (``crm worker --once``) and reminders are due
   (``crm reminders --as USER``).

Then :func:`summary` prints counts, the pipeline by stage, the parts plugins add through
``crm_demo_summary`` (the sales plugin's forecast by quarter), the reminders due per user, the
top accounts and the timeline of one account. To extend the story, write a plugin implementing
``crm_demo``.

The story is told around its ``today``; the rule engine and the job queue read the clock, so
what rules plan is dated from the moment the demo runs, and the worker runs a day after the
later of that moment and noon (UTC) of ``today``.
"""

from crmcore.demo.chapters import CHAPTERS, log_activities
from crmcore.demo.running import run, tell
from crmcore.demo.story import DEFAULT_PATH, Move, Story, money_text, read_data
from crmcore.demo.summary import summary

__all__ = ["CHAPTERS", "DEFAULT_PATH", "Move", "Story", "log_activities", "money_text", "read_data", "run", "summary", "tell"]
