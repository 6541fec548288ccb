"""The worker: due jobs run once in their own unit of work; failures are retried with an
exponential delay and kept with their error after the last attempt; jobs of stopped workers
are reclaimed; several worker processes never run a job twice (PostgreSQL: 4 processes and
1,000 jobs; SQLite: 4 processes on a database file); ``crm worker`` on the command line.

Time is frozen by passing ``now=`` to the worker functions: nothing sleeps."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import crmcore
from crmcore import ConfigError, ConflictError, EntityType, Field, PluginInfo, hookimpl
from crmcore.cli import CliState, main
from crmcore.fields import Integer
from crmcore.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    SUPERSEDED,
    TAKEN_OVER,
    Job,
    WorkerStats,
    claim,
    current_job,
    default_worker_id,
    enqueue,
    run_job,
    run_worker,
)

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


class Recorder:
    """A throwaway plugin: an ``execution`` entity its handlers write, one row per run."""

    PLUGIN = PluginInfo(name="recorder")
    conflicts = 0

    def __init__(self) -> None:
        self.seen: list[Any] = []

    @hookimpl
    def crm_entity_types(self):
        return [EntityType("execution", fields=(Field("n", Integer()),), auditable=False)]

    @hookimpl
    def crm_job_handlers(self):
        return {
            "test.record": self.record,
            "test.fail": self.fail,
            "test.chain": self.chain,
            "test.conflict": self.conflict,
            "test.commit": self.commit,
            "test.interrupt": self.interrupt,
            "test.seen": self.remember,
        }

    @staticmethod
    def record(uow, payload):
        uow.create("execution", n=payload["n"])

    @staticmethod
    def fail(uow, payload):
        uow.create("execution", n=payload["n"])  # rolled back with the failure
        raise RuntimeError(f"boom {payload['n']}")

    @staticmethod
    def chain(uow, payload):
        enqueue(uow, "test.record", {"n": payload["n"]}, run_at=payload["at"])

    def conflict(self, uow, payload):
        uow.create("execution", n=payload["n"])
        if not self.conflicts:
            self.conflicts += 1
            raise ConflictError("someone wrote first")

    @staticmethod
    def commit(uow, payload):
        uow.create("execution", n=payload["n"])
        uow.commit()

    @staticmethod
    def interrupt(uow, payload):
        raise KeyboardInterrupt

    def remember(self, uow, payload):
        self.seen.append(current_job())


@pytest.fixture
def app(crm_factory):
    return crm_factory(plugins=[Recorder()])


def queue(app, kind: str, n: int = 1, *, run_at: Any = T0, **kwargs: Any) -> int:
    with app.unit_of_work() as uow:
        job_id = enqueue(uow, kind, {"n": n}, run_at=run_at, **kwargs)
        uow.commit()
    return job_id


def job(app, job_id: int) -> Job:
    table = app.registry.table("job")
    with app.connect() as connection:
        return Job.from_row(connection.execute(sa.select(table).where(table.c.id == job_id)).mappings().one())


def all_jobs(app) -> list[Job]:
    table = app.registry.table("job")
    with app.connect() as connection:
        return [Job.from_row(r) for r in connection.execute(sa.select(table).order_by(table.c.id)).mappings()]


def executions(app) -> list[int]:
    table = app.registry.table("execution")
    with app.connect() as connection:
        return list(connection.execute(sa.select(table.c.n).order_by(table.c.id)).scalars())


# -- running --------------------------------------------------------------------------------------


def test_a_due_job_runs_once_and_is_done(app):
    job_id = queue(app, "test.record", 7)

    stats = run_worker(app, once=True, now=T0, worker_id="w1")
    again = run_worker(app, once=True, now=T0 + dt.timedelta(days=1), worker_id="w1")

    assert (stats.done, stats.ran, again.ran) == (1, 1, 0)
    done = job(app, job_id)
    assert (done.status, done.attempts, done.finished_at, done.locked_by, done.last_error) == (DONE, 1, T0, "w1", None)
    assert executions(app) == [7]


def test_a_handler_learns_its_job_and_the_workers_time(crm_factory):
    recorder = Recorder()
    app = crm_factory(plugins=[recorder])
    job_id = queue(app, "test.seen")

    run_worker(app, once=True, now=T0 + MINUTE, worker_id="w1")

    [running] = recorder.seen
    assert (running.job.id, running.job.attempts, running.now, running.worker_id) == (job_id, 1, T0 + MINUTE, "w1")
    assert current_job() is None


def test_a_job_waits_until_it_is_due(app):
    job_id = queue(app, "test.record", run_at=T0 + MINUTE)

    early = run_worker(app, once=True, now=T0)
    assert (early.ran, job(app, job_id).status) == (0, QUEUED)

    on_time = run_worker(app, once=True, now=T0 + MINUTE)
    assert (on_time.done, job(app, job_id).status) == (1, DONE)


def test_due_jobs_run_oldest_first_across_batches(app):
    for n in (3, 1, 2, 5, 4):
        queue(app, "test.record", n, run_at=T0 + n * MINUTE)

    stats = run_worker(app, once=True, now=T0 + dt.timedelta(hours=1), batch_size=2)

    assert stats.done == 5
    assert executions(app) == [1, 2, 3, 4, 5]


def test_jobs_a_handler_queues_run_in_the_same_pass_when_due(app):
    with app.unit_of_work() as uow:
        enqueue(uow, "test.chain", {"n": 4, "at": T0.isoformat()}, run_at=T0)
        uow.commit()

    stats = run_worker(app, once=True, now=T0)

    assert stats.done == 2
    assert executions(app) == [4]


# -- failures -------------------------------------------------------------------------------------


def test_a_failing_job_is_queued_again_later_and_its_writes_are_rolled_back(app):
    job_id = queue(app, "test.fail", 1, max_attempts=3)

    stats = run_worker(app, once=True, now=T0, worker_id="w1")

    assert (stats.retried, stats.ran) == (1, 1)
    failed = job(app, job_id)
    assert (failed.status, failed.attempts, failed.run_at) == (QUEUED, 1, T0 + dt.timedelta(seconds=30))
    assert failed.last_error.startswith("RuntimeError: boom 1 (in fail, test_worker.py:")
    assert (failed.locked_by, failed.locked_at, failed.finished_at) == (None, None, None)
    assert executions(app) == []


def test_retries_wait_twice_as_long_each_time_then_the_job_fails_keeping_its_error(app):
    job_id = queue(app, "test.fail", 1, max_attempts=4)
    now = T0
    for attempt, delay in ((1, 30), (2, 60), (3, 120)):
        assert run_worker(app, once=True, now=now, worker_id="w1").retried == 1
        waiting = job(app, job_id)
        assert (waiting.status, waiting.attempts, waiting.run_at) == (QUEUED, attempt, now + dt.timedelta(seconds=delay))
        assert run_worker(app, once=True, now=waiting.run_at - dt.timedelta(seconds=1)).ran == 0
        now = waiting.run_at

    last = run_worker(app, once=True, now=now, worker_id="w1")
    later = run_worker(app, once=True, now=now + dt.timedelta(days=30))

    assert (last.failed, later.ran) == (1, 0)
    failed = job(app, job_id)
    assert (failed.status, failed.attempts, failed.finished_at, failed.locked_by) == (FAILED, 4, now, "w1")
    assert failed.last_error.startswith("RuntimeError: boom 1")
    assert executions(app) == []


def test_a_job_of_a_kind_no_enabled_plugin_handles_fails_naming_the_kind(crm_factory):
    url = crm_factory.database_url(file=True)
    producer = crm_factory(plugins=[Recorder()], database=url)
    job_id = queue(producer, "test.record", max_attempts=1)
    without_the_plugin = crm_factory(database=url, create_schema=False)

    stats = run_worker(without_the_plugin, once=True, now=T0)

    assert stats.failed == 1
    failed = job(producer, job_id)
    assert failed.status == FAILED
    assert failed.last_error.startswith("NotFoundError: no handler for job kind 'test.record'; known kinds: 'reminder.due'")
    assert "; enable the plugin that handles it" in failed.last_error


def test_a_job_that_fails_while_a_newer_job_of_its_key_is_queued_is_cancelled(app):
    old = queue(app, "test.fail", 1, key="k")
    [claimed] = claim(app, "w1", now=T0)
    new = queue(app, "test.record", 2, key="k")

    assert run_job(app, claimed, "w1", now=T0) == SUPERSEDED

    assert [(j.id, j.status) for j in all_jobs(app)] == [(old, CANCELLED), (new, QUEUED)]
    assert job(app, old).last_error == "superseded by a newer job with the same key"
    assert run_worker(app, once=True, now=T0).done == 1
    assert executions(app) == [2]


def test_a_unit_that_lost_a_race_runs_again_at_once_without_counting_an_attempt(app):
    job_id = queue(app, "test.conflict", 5)

    stats = run_worker(app, once=True, now=T0)

    assert stats.done == 1
    assert (job(app, job_id).status, job(app, job_id).attempts) == (DONE, 1)
    assert executions(app) == [5]


def test_a_handler_that_commits_its_own_unit_still_completes_its_job(app):
    job_id = queue(app, "test.commit", 6)

    assert run_worker(app, once=True, now=T0).done == 1

    assert job(app, job_id).status == DONE
    assert executions(app) == [6]


def test_an_interrupted_job_goes_back_to_the_queue_uncounted(app):
    job_id = queue(app, "test.interrupt")

    with pytest.raises(KeyboardInterrupt):
        run_worker(app, once=True, now=T0)

    back = job(app, job_id)
    assert (back.status, back.attempts, back.locked_by) == (QUEUED, 0, None)


# -- stopped workers ------------------------------------------------------------------------------


def test_a_job_whose_worker_stopped_is_reclaimed_after_the_timeout_and_run_once(app):
    job_id = queue(app, "test.record", 3)
    [claimed] = claim(app, "w1", now=T0)  # ... and w1 dies

    before = run_worker(app, once=True, now=T0 + 14 * MINUTE, worker_id="w2")
    after = run_worker(app, once=True, now=T0 + 16 * MINUTE, worker_id="w2")

    assert (before.ran, before.reclaimed) == (0, 0)
    assert (after.reclaimed, after.done) == (1, 1)
    done = job(app, job_id)
    assert (done.status, done.attempts, done.locked_by) == (DONE, 2, "w2")
    assert done.last_error == "worker w1 stopped before finishing it (no result within 900 s)"
    # w1 comes back to life: its run is refused and writes nothing
    assert run_job(app, claimed, "w1", now=T0 + 17 * MINUTE) == TAKEN_OVER
    assert executions(app) == [3]


def test_a_stale_job_on_its_last_attempt_fails(app):
    job_id = queue(app, "test.record", max_attempts=1)
    claim(app, "w1", now=T0)

    stats = run_worker(app, once=True, now=T0 + dt.timedelta(hours=1), worker_id="w2")

    assert (stats.reclaimed, stats.ran) == (1, 0)
    failed = job(app, job_id)
    assert (failed.status, failed.locked_by, failed.finished_at) == (FAILED, "w1", T0 + dt.timedelta(hours=1))
    assert failed.last_error.startswith("worker w1 stopped before finishing it")


def test_the_lock_timeout_and_retry_delays_come_from_the_settings(crm_factory):
    settings = {"plugins": {"core.jobs": {"lock_timeout": 60, "retry_delay": 10, "retry_delay_max": 15}}}
    app = crm_factory(plugins=[Recorder()], settings=settings)
    stale = queue(app, "test.record")
    claim(app, "w1", now=T0)
    failing = queue(app, "test.fail", 2)

    run_worker(app, once=True, now=T0 + 2 * MINUTE)
    run_worker(app, once=True, now=T0 + 2 * MINUTE + dt.timedelta(seconds=10))

    assert job(app, stale).status == DONE
    assert job(app, failing).run_at == T0 + 2 * MINUTE + dt.timedelta(seconds=25)  # 10 s, then at most 15 s


@pytest.mark.parametrize(("key", "value"), [("batch_size", 0), ("lock_timeout", -1), ("retry_delay", "soon")])
def test_bad_worker_settings_stop_start_up_naming_the_key(crm_factory, key, value):
    with pytest.raises(ConfigError, match=f"core.jobs.*{key}"):
        crm_factory(settings={"plugins": {"core.jobs": {key: value}}})


def test_a_stale_claim_that_another_transaction_still_holds_is_left_alone_on_postgresql(app):
    if app.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: a worker's open unit blocks every other writer instead")
    job_id = queue(app, "test.record")
    [claimed] = claim(app, "w1", now=T0)
    table = app.registry.table("job")
    with app.connect() as holder, holder.begin():  # w1 is alive, in the middle of its job
        holder.execute(sa.select(table).where(table.c.id == job_id).with_for_update())
        stats = run_worker(app, once=True, now=T0 + dt.timedelta(hours=1), worker_id="w2")
    assert (stats.reclaimed, stats.ran) == (0, 0)
    assert job(app, claimed.id).status == RUNNING


# -- stopping -------------------------------------------------------------------------------------


def test_max_jobs_stops_the_worker_after_that_many_jobs(app):
    for n in range(5):
        queue(app, "test.record", n)

    stats = run_worker(app, once=True, max_jobs=2, now=T0, batch_size=10)

    assert stats.done == 2
    assert sorted(j.status for j in all_jobs(app)) == [DONE, DONE, QUEUED, QUEUED, QUEUED]


def test_stop_finishes_the_current_job_and_gives_the_rest_of_the_batch_back(app):
    for n in range(5):
        queue(app, "test.record", n)
    stop = threading.Event()

    stats = run_worker(app, now=T0, batch_size=10, stop=stop, on_job=lambda *_: stop.set())

    assert stats.done == 1
    rest = [j for j in all_jobs(app) if j.status != DONE]
    assert [(j.status, j.attempts, j.locked_by) for j in rest] == [(QUEUED, 0, None)] * 4


def test_without_once_the_worker_polls_until_stopped(crm_factory):
    app = crm_factory(plugins=[Recorder()], file=True)  # two threads: two connections
    stop = threading.Event()
    outcome: dict[str, WorkerStats] = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("stats", run_worker(app, poll=0.02, stop=stop)))
    thread.start()
    try:
        queue(app, "test.record", 8, run_at=dt.datetime.now(dt.UTC))
        deadline = time.monotonic() + 20
        while executions(app) != [8] and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(20)
    assert not thread.is_alive()
    assert outcome["stats"].done == 1
    assert executions(app) == [8]


# -- small parts ----------------------------------------------------------------------------------


def test_a_worker_is_named_after_its_host_and_process():
    name = default_worker_id()

    assert re.fullmatch(rf".+:{os.getpid()}:[0-9a-f]{{4}}", name)
    assert default_worker_id() != name


def test_worker_stats_say_what_happened_in_one_line():
    assert WorkerStats("w", seconds=0.04).summary() == "no jobs were due in 0.0 s"
    stats = WorkerStats("w", done=2, retried=1, failed=0, superseded=1, taken_over=1, reclaimed=2, seconds=1.25)
    assert stats.ran == 4
    assert stats.summary() == (
        "4 jobs run: 2 done, 1 to retry, 0 failed, 1 superseded by a newer job of their key; "
        "2 reclaimed from stopped workers; 1 taken over by other workers in 1.2 s"
    )


# -- crm worker -----------------------------------------------------------------------------------


@pytest.fixture
def cli_app(crm_factory):
    """An app on a database the command line can open too (an SQLite file or a PostgreSQL schema)."""
    url = crm_factory.database_url(file=True)
    return crm_factory(plugins=[Recorder()], database=url)


def crm_worker(app, *args: str):
    return CliRunner().invoke(main, ["--db", app.settings.database, "worker", *args], obj=CliState(plugins=[Recorder()]),
                              catch_exceptions=False)


def test_crm_worker_once_runs_what_is_due_and_prints_a_summary(cli_app):
    queue(cli_app, "test.record", 1)
    failing = queue(cli_app, "test.fail", 2)
    queue(cli_app, "test.record", 3, run_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))

    result = crm_worker(cli_app, "--once", "--id", "w9")

    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"worker w9: 2 jobs run: 1 done, 1 to retry, 0 failed in \d+\.\d s\n", result.stdout)
    # no progress when not on a terminal; the log names ids and error types, never the message
    assert re.fullmatch(
        rf"WARNING crmcore.jobs.worker: job {failing} \(test.fail\) failed attempt 1 of 5: RuntimeError; "
        r"next attempt at \S+\n",
        result.stderr,
    )
    assert executions(cli_app) == [1]


def test_crm_worker_max_jobs_and_nothing_due(cli_app):
    for n in range(3):
        queue(cli_app, "test.record", n)

    first = crm_worker(cli_app, "--max-jobs", "2", "--id", "w1")
    second = crm_worker(cli_app, "--once", "--id", "w1")
    third = crm_worker(cli_app, "--once", "--id", "w1")

    assert first.stdout.startswith("worker w1: 2 jobs run: 2 done")
    assert second.stdout.startswith("worker w1: 1 job run: 1 done")
    assert third.stdout.startswith("worker w1: no jobs were due")
    assert executions(cli_app) == [0, 1, 2]


def test_crm_worker_shows_each_job_on_a_terminal(cli_app, monkeypatch):
    monkeypatch.setattr(click.testing._NamedTextIOWrapper, "isatty", lambda self: True, raising=False)
    job_id = queue(cli_app, "test.record")

    result = crm_worker(cli_app, "--once")

    assert re.fullmatch(rf"job {job_id} test.record: done \(\d+ ms\)\n", result.stderr)


def test_crm_worker_refuses_bad_options(cli_app):
    result = crm_worker(cli_app, "--max-jobs", "0")

    assert result.exit_code == 2
    assert "--max-jobs" in result.stderr


def test_crm_worker_is_listed_in_the_help(cli_app):
    result = CliRunner().invoke(main, ["--db", cli_app.settings.database, "--help"])

    assert re.search(r"^\s+worker\s+Run due jobs", result.stdout, re.MULTILINE)
    assert re.search(r"^\s+reminders\s+", result.stdout, re.MULTILINE)


# -- several processes ----------------------------------------------------------------------------

RECORDER_SOURCE = textwrap.dedent("""
    import json, os, sys, time
    from crmcore import EntityType, Field, PluginInfo, create_app, hookimpl
    from crmcore.cli import CliState, main
    from crmcore.fields import Integer
    from crmcore.jobs import run_worker

    class Recorder:
        PLUGIN = PluginInfo(name="recorder")

        @hookimpl
        def crm_entity_types(self):
            return [EntityType("execution", fields=(Field("n", Integer()),), auditable=False)]

        @hookimpl
        def crm_job_handlers(self):
            return {"test.record": lambda uow, payload: uow.create("execution", n=payload["n"])}
""")

WORKER_SCRIPT = RECORDER_SOURCE + textwrap.dedent("""
    url, name, go = sys.argv[1:4]
    app = create_app({"crm": {"database": url}}, plugins=[Recorder()])
    with app.connect():
        pass
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.005)
    stats = run_worker(app, once=True, worker_id=name, batch_size=10)
    print(json.dumps({"done": stats.done, "ran": stats.ran, "taken_over": stats.taken_over}), flush=True)
    app.close()
""")

CLI_SCRIPT = RECORDER_SOURCE + textwrap.dedent("""
    main(sys.argv[1:], obj=CliState(plugins=[Recorder()]))
""")


def _environment() -> dict[str, str]:
    source = str(Path(crmcore.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
    return env


def _without_waiting_for_the_disk(url: str) -> str:
    """On PostgreSQL, commits that do not wait for the WAL to reach the disk: a job is one
    commit, and the test is about who runs what, not about durability."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url
    options = " ".join(p for p in (parsed.query.get("options"), "-csynchronous_commit=off") if p)
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


@pytest.mark.parametrize("workers", [4])
def test_worker_processes_side_by_side_run_each_job_exactly_once(crm_factory, tmp_path, workers):
    url = _without_waiting_for_the_disk(crm_factory.database_url(file=True))
    app = crm_factory(plugins=[Recorder()], database=url)
    # SQLite has one writer at a time: its workers take turns, so fewer jobs keep the test short
    count = 1000 if app.engine.dialect.name == "postgresql" else 200
    with app.unit_of_work() as uow:
        for n in range(count):
            enqueue(uow, "test.record", {"n": n}, run_at=T0)
        uow.commit()
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    go = tmp_path / "go"
    processes = [
        subprocess.Popen([sys.executable, str(script), url, f"w{i}", str(go)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=_environment())
        for i in range(workers)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready", process.stderr.read() if process.stderr else ""
        go.touch()
        outputs = [process.communicate(timeout=300) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    stats = [json.loads(out) for out, _ in outputs]
    runs = executions(app)
    jobs = all_jobs(app)
    assert len(runs) == count and sorted(runs) == list(range(count)), "a job ran twice or not at all"
    assert {j.status for j in jobs} == {DONE} and {j.attempts for j in jobs} == {1}
    assert sum(s["done"] for s in stats) == count
    assert sum(1 for s in stats if s["done"]) >= 2, f"the workers did not share the work: {stats}"


def test_crm_worker_exits_cleanly_on_sigterm(crm_factory, tmp_path):
    url = crm_factory.database_url(file=True)
    app = crm_factory(plugins=[Recorder()], database=url)
    script = tmp_path / "crm_worker.py"
    script.write_text(CLI_SCRIPT)
    process = subprocess.Popen([sys.executable, str(script), "--db", url, "worker", "--poll", "0.05", "--id", "w1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_environment())
    try:
        queue(app, "test.record", 1)
        deadline = time.monotonic() + 30
        while executions(app) != [1] and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert out.startswith("worker w1: 1 job run: 1 done"), out
