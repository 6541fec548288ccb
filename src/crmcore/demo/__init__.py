"""``crm demo``: the story of a small company's sales, told on a fresh SQLite file.

The story is a list of chapters (:data:`CHAPTERS`), each a small function taking the
:class:`Story` (the app, the records made so far, a seeded random generator and ``echo``). The
core's chapters work on the bundled sample data in ``crmcore/data`` (see its ``PROVENANCE.md``)
through the same functions the ``crm`` commands call:

1. the company: teams, users and the role tree that says who manages whom;
2. accounts and their contacts;
3. two lead lists imported (``crm import``, deduplicated on e-mail, audited), checked and scored
   hot, warm or cold (``crm leads check``, ``crm leads score``);
4. the hot leads qualified through the lead pipeline and converted (``crm leads convert``);
5. the sample opportunities moved through the pipeline to where they stand;
6. activities (with reminders) and notes;
7. today's moves: a deal over 50,000 entering ``rfp_received`` wakes the guided-selling rule;
8. a day later the worker runs once (``crm worker --once``) and reminders are due
   (``crm reminders --as USER``).

Then every plugin tells its own chapter through the ``crm_demo`` hook, and :func:`summary`
prints counts, the pipeline by stage, the forecast by quarter, the reminders due per user, the
top accounts and the timeline of one account. To extend the story, add a chapter function to
:data:`CHAPTERS`.

The story is told around its ``today``; the rule engine and the job queue read the clock, so
what rules plan is dated from the moment the demo runs, and the worker runs a day after the
later of that moment and noon (UTC) of ``today``.
"""

from crmcore.demo.chapters import CHAPTERS
from crmcore.demo.running import run, tell
from crmcore.demo.story import DEFAULT_PATH, Move, Story, read_data
from crmcore.demo.summary import summary

__all__ = ["CHAPTERS", "DEFAULT_PATH", "Move", "Story", "read_data", "run", "summary", "tell"]
