"""Posting and delivering requests to the file sink: batches, leases, retries, failures."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from pathlib import Path
from typing import Any

import pytest
from crmcore import ConflictError, ValidationError, hookimpl
from crmcore.jobs import run_worker
from outbox_support import items, outbox_app, post_items, requests

from crm_outbox import OutboxItem, Outcome, SinkType, deliver, post
from crm_outbox.sinks import file_name


def test_posted_requests_are_delivered_once_each_as_json_files(
    crm_factory: Any, tmp_path: Path
) -> None:
    crm = outbox_app(crm_factory, tmp_path)
    ids = post_items(crm, items(3))
    stats = deliver(crm, batch_size=2)
    assert (stats.delivered, stats.batches, stats.failed) == (3, 2, 0)
    found = requests(crm)
    assert [r.id for r in found] == ids
    assert {r.delivery for r in found} == {"delivered"}
    assert all(r.attempts == 1 and r.locked_by is None and r.delivered_at for r in found)
    document = json.loads((tmp_path / "drop" / file_name("sales_order:2:production")).read_text())
    assert document["key"] == "sales_order:2:production"
    assert document["payload"] == {"order": 2, "lines": [{"sku": "P-2", "qty": "2"}]}
    assert document["source"] == {"entity": "sales_order", "id": 2}
    assert sorted(p.name for p in (tmp_path / "drop").iterdir()) == sorted(
        file_name(r.idempotency_key) for r in found
    )
    assert deliver(crm).handled == 0


def test_a_rolled_back_unit_posts_nothing(crm_factory: Any, tmp_path: Path) -> None:
    crm = outbox_app(crm_factory, tmp_path)
    with crm.unit_of_work() as uow:
        post(uow, items(2))
    assert requests(crm) == []
    assert deliver(crm).handled == 0


def test_the_worker_delivers_what_was_posted(crm_factory: Any, tmp_path: Path) -> None:
    crm = outbox_app(crm_factory, tmp_path)
    post_items(crm, items(2))
    post_items(crm, items(1, start=3))
    stats = run_worker(crm, once=True)
    assert stats.done == 1  # one delivery job for every post
    assert {r.delivery for r in requests(crm)} == {"delivered"}
    assert len(list((tmp_path / "drop").glob("*.json"))) == 3


def test_a_key_posted_twice_is_refused_naming_it(crm_factory: Any, tmp_path: Path) -> None:
    crm = outbox_app(crm_factory, tmp_path)
    post_items(crm, items(1))
    with pytest.raises(ConflictError, match="'sales_order:1:production' exists already"):
        post_items(crm, items(1))
    with pytest.raises(ValidationError, match="share the idempotency key 'k-1'"):
        post_items(
            crm,
            [
                OutboxItem("a", "production", {}, "x", 1, key="k-1"),
                OutboxItem("b", "production", {}, "x", 2, key="k-1"),
            ],
        )


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            OutboxItem("production", "nowhere", {}, "sales_order", 1),
            "unknown sink 'nowhere'; sinks in \\[outbox.sinks\\]: production",
        ),
        (OutboxItem("", "production", {}, "sales_order", 1), "kind must be a non-empty text"),
        (OutboxItem("p", "production", [1], "sales_order", 1), "payload must be a mapping"),  # type: ignore[arg-type]
        (
            OutboxItem("p", "production", {"total": decimal.Decimal("1.5")}, "sales_order", 1),
            "outbox item 0: payload must hold JSON values only \\(write decimals",
        ),
        (
            OutboxItem("p", "production", {}, "sales_order", 1, key="../etc"),
            "idempotency key '../etc' must be",
        ),
    ],
)
def test_a_bad_item_is_refused_naming_what_is_wrong(
    crm_factory: Any, tmp_path: Path, item: OutboxItem, message: str
) -> None:
    crm = outbox_app(crm_factory, tmp_path)
    with pytest.raises(ValidationError, match=message):
        post_items(crm, [item])
    assert requests(crm) == []


class _Flaky:
    """A sink refusing the first *failures* calls, then taking everything."""

    def __init__(self, name: str, failures: int, retry: bool = True) -> None:
        self.name, self.failures, self.retry, self.seen = name, failures, retry, []

    def deliver(self, requests: Any) -> list[Outcome]:
        self.seen.append([r.key for r in requests])
        if self.failures:
            self.failures -= 1
            return [Outcome.failed(r.key, "receiver busy", retry=self.retry) for r in requests]
        return [Outcome.delivered(r.key) for r in requests]


class _SinkPlugin:
    """Throwaway plugin adding sinks or sink types."""

    def __init__(self, *sinks: Any) -> None:
        self.sinks = list(sinks)

    @hookimpl
    def outbox_sinks(self) -> list[Any]:
        return self.sinks


def _with_sink(crm_factory: Any, tmp_path: Path, sink: Any, **settings: Any) -> Any:
    plugin = _SinkPlugin(sink)
    return outbox_app(
        crm_factory,
        tmp_path,
        plugins=(plugin,),
        settings={"plugins": {"outbox": settings}} if settings else None,
    )


def test_a_failed_attempt_is_retried_after_a_growing_delay(
    crm_factory: Any, tmp_path: Path
) -> None:
    sink = _Flaky("flaky", failures=2)
    crm = _with_sink(crm_factory, tmp_path, sink, retry_delay=10, retry_delay_max=15)
    post_items(crm, items(2, sink="flaky"))
    start = dt.datetime.now(dt.UTC)
    assert deliver(crm, now=start).retried == 2
    first = requests(crm)[0]
    assert (first.delivery, first.attempts, first.last_error) == ("pending", 1, "receiver busy")
    assert first.next_attempt_at == start + dt.timedelta(seconds=10)
    assert deliver(crm, now=start + dt.timedelta(seconds=9)).handled == 0  # not due yet
    assert deliver(crm, now=start + dt.timedelta(seconds=10)).retried == 2
    assert requests(crm)[0].next_attempt_at == start + dt.timedelta(seconds=25)  # 20, capped at 15
    stats = deliver(crm, now=start + dt.timedelta(seconds=25))
    assert stats.delivered == 2
    done = requests(crm)[0]
    assert (done.delivery, done.attempts, done.last_error) == ("delivered", 3, None)


def test_a_request_failing_its_last_attempt_is_kept_as_failed(
    crm_factory: Any, tmp_path: Path
) -> None:
    sink = _Flaky("flaky", failures=5)
    crm = _with_sink(crm_factory, tmp_path, sink, max_attempts=2, retry_delay=0)
    post_items(crm, items(1, sink="flaky"))
    now = dt.datetime.now(dt.UTC)
    assert deliver(crm, now=now).retried == 1
    assert deliver(crm, now=now).failed == 1
    failed = requests(crm)[0]
    assert (failed.delivery, failed.attempts, failed.last_error) == ("failed", 2, "receiver busy")
    assert deliver(crm, now=now + dt.timedelta(days=1)).handled == 0


def test_a_refusal_for_good_fails_at_once(crm_factory: Any, tmp_path: Path) -> None:
    crm = _with_sink(crm_factory, tmp_path, _Flaky("strict", failures=1, retry=False))
    post_items(crm, items(1, sink="strict"))
    assert deliver(crm).failed == 1
    assert requests(crm)[0].delivery == "failed"


def test_a_sink_that_raises_fails_its_batch_with_the_error(
    crm_factory: Any, tmp_path: Path
) -> None:
    class Broken:
        name = "broken"

        def deliver(self, requests: Any) -> Any:
            raise OSError("disk full")

    crm = _with_sink(crm_factory, tmp_path, Broken())
    post_items(crm, items(2, sink="broken"))
    assert deliver(crm).retried == 2
    assert requests(crm)[0].last_error == "sink 'broken' raised OSError: disk full"


def test_a_sink_type_from_a_plugin_is_built_from_its_settings(
    crm_factory: Any, tmp_path: Path
) -> None:
    built: list[tuple[str, Any]] = []

    def build(name: str, options: Any) -> Any:
        built.append((name, dict(options)))
        return _Flaky(name, failures=0)

    plugin = _SinkPlugin(SinkType("queue", build))
    crm = outbox_app(
        crm_factory, tmp_path, plugins=(plugin,), sinks={"erp": {"type": "queue", "depth": 3}}
    )
    assert built == [("erp", {"type": "queue", "depth": 3})]
    post_items(crm, items(1, sink="erp"))
    assert deliver(crm).delivered == 1


def test_a_lease_keeps_requests_from_other_workers_until_it_runs_out(
    crm_factory: Any, tmp_path: Path
) -> None:
    crm = outbox_app(crm_factory, tmp_path, settings={"plugins": {"outbox": {"lease_seconds": 60}}})
    post_items(crm, items(2))
    now = dt.datetime.now(dt.UTC)
    from crm_outbox.delivery import _claim
    from crm_outbox.settings import outbox_settings

    claimed = _claim(crm, outbox_settings(crm), "dead-worker", 10, now)
    assert len(claimed) == 2
    assert [(r.delivery, r.locked_by) for r in requests(crm)] == [("delivering", "dead-worker")] * 2
    assert deliver(crm, now=now + dt.timedelta(seconds=59)).handled == 0
    stats = deliver(crm, now=now + dt.timedelta(seconds=61), worker_id="heir")
    assert stats.delivered == 2
    assert [(r.delivery, r.attempts) for r in requests(crm)] == [("delivered", 2)] * 2


def test_an_interrupted_hand_over_gives_the_requests_back_at_once(
    crm_factory: Any, tmp_path: Path
) -> None:
    class Interrupted:
        name = "slow"

        def deliver(self, requests: Any) -> Any:
            raise KeyboardInterrupt

    crm = _with_sink(crm_factory, tmp_path, Interrupted())
    post_items(crm, items(2, sink="slow"))
    with pytest.raises(KeyboardInterrupt):
        deliver(crm)
    assert [(r.delivery, r.locked_by) for r in requests(crm)] == [("pending", None)] * 2


def test_a_run_with_retries_queues_the_worker_for_the_earliest_one(
    crm_factory: Any, tmp_path: Path
) -> None:
    from crmcore.jobs import QUEUED

    sink = _Flaky("flaky", failures=1)
    crm = _with_sink(crm_factory, tmp_path, sink, retry_delay=10)
    post_items(crm, items(2, sink="flaky"))
    assert run_worker(crm, once=True).done == 1  # the job of the posts: both fail once
    [request, _] = requests(crm)
    with crm.unit_of_work() as uow:
        queued = uow.query("job").where(kind="outbox.deliver", status=QUEUED).all()
    assert [job.run_at for job in queued] == [request.next_attempt_at]
    assert deliver(crm, now=request.next_attempt_at).delivered == 2
