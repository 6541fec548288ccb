"""The HTTP sink against a real local server (``http_sink`` of crmcore.testing)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from outbox_support import items, outbox_app, post_items, requests

from crm_outbox import deliver


def _app(crm_factory: Any, tmp_path: Path, url: str, **options: Any) -> Any:
    return outbox_app(
        crm_factory, tmp_path, sinks={"erp": {"type": "http", "url": url, "timeout": 5, **options}}
    )


def test_each_request_is_posted_as_json_with_its_idempotency_key(
    crm_factory: Any, tmp_path: Path, http_sink: Any
) -> None:
    crm = _app(
        crm_factory,
        tmp_path,
        http_sink.url + "hooks/crm?from=crm",
        headers={"Authorization": "Bearer s3cret"},
    )
    post_items(crm, items(3, sink="erp"))
    stats = deliver(crm)
    assert (stats.delivered, stats.failed) == (3, 0)
    assert [c["headers"]["Idempotency-Key"] for c in http_sink.calls] == [
        "sales_order:1:production",
        "sales_order:2:production",
        "sales_order:3:production",
    ]
    call = http_sink.calls[0]
    assert (call["method"], call["path"]) == ("POST", "/hooks/crm?from=crm")
    assert call["headers"]["Authorization"] == "Bearer s3cret"
    assert call["headers"]["Content-Type"] == "application/json"
    assert call["body"] == {
        "key": "sales_order:1:production",
        "kind": "production",
        "sink": "erp",
        "source": {"entity": "sales_order", "id": 1},
        "payload": {"order": 1, "lines": [{"sku": "P-1", "qty": "2"}]},
    }
    assert {r.delivery for r in requests(crm)} == {"delivered"}


def test_a_failing_receiver_is_retried_and_acts_once_per_key(
    crm_factory: Any, tmp_path: Path, http_sink: Any
) -> None:
    crm = _app(crm_factory, tmp_path, http_sink.url)
    post_items(crm, items(2, sink="erp"))
    http_sink.fail_first = 3
    now = dt.datetime.now(dt.UTC)
    assert deliver(crm, now=now).retried == 2
    first = requests(crm)[0]
    assert first.last_error == (
        f'POST {http_sink.url} answered 503 Service Unavailable: {{"error": "failing on purpose"}}'
    )
    stats = deliver(crm, now=now + dt.timedelta(hours=1))
    assert (stats.delivered, stats.retried) == (1, 1)
    assert deliver(crm, now=now + dt.timedelta(hours=2)).delivered == 1
    assert len(http_sink.calls) == 5
    assert sorted(http_sink.accepted) == ["sales_order:1:production", "sales_order:2:production"]
    assert [r.attempts for r in requests(crm)] == [3, 2]  # the first one failed three times


def test_a_client_error_fails_the_request_at_once(
    crm_factory: Any, tmp_path: Path, http_sink: Any
) -> None:
    crm = _app(crm_factory, tmp_path, http_sink.url)
    http_sink.fail_first, http_sink.fail_status = 1, 422
    post_items(crm, items(1, sink="erp"))
    assert deliver(crm).failed == 1
    failed = requests(crm)[0]
    assert failed.delivery == "failed"
    assert "answered 422" in failed.last_error


def test_an_unreachable_receiver_is_retried_with_the_network_error(
    crm_factory: Any, tmp_path: Path, http_sink: Any
) -> None:
    url = http_sink.url
    http_sink.stop()  # nobody listens on that port any more
    crm = _app(crm_factory, tmp_path, url, timeout=2)
    post_items(crm, items(1, sink="erp"))
    assert deliver(crm).retried == 1
    assert requests(crm)[0].last_error.startswith(f"POST {url}: ConnectionRefusedError")


def test_a_synchronous_answer_sets_the_supply_state_and_calls_the_hook(
    crm_factory: Any, tmp_path: Path, http_sink: Any
) -> None:
    from crmcore import hookimpl

    seen: list[tuple[str, str, str]] = []

    class Follower:
        @hookimpl
        def outbox_answered(self, uow: Any, items: Any) -> None:
            seen.extend((r.idempotency_key, old, new) for r, old, new in items)

    crm = outbox_app(
        crm_factory,
        tmp_path,
        plugins=(Follower(),),
        sinks={"erp": {"type": "http", "url": http_sink.url}},
    )
    http_sink.answer = {"state": "accepted"}
    post_items(crm, items(2, sink="erp"))
    stats = deliver(crm)
    assert (stats.delivered, stats.answered) == (2, 2)
    assert [r.supply_state for r in requests(crm)] == ["accepted", "accepted"]
    assert all(r.answered_at is not None for r in requests(crm))
    assert seen == [
        ("sales_order:1:production", "requested", "accepted"),
        ("sales_order:2:production", "requested", "accepted"),
    ]


def test_a_hook_refusing_a_synchronous_answer_keeps_the_delivery(
    crm_factory: Any, tmp_path: Path, http_sink: Any
) -> None:
    from crmcore import ValidationError, hookimpl

    class Refuser:
        @hookimpl
        def outbox_answered(self, uow: Any, items: Any) -> None:
            uow.create("note", body="written, then rolled back with the answers")
            raise ValidationError("order 1 is on hold")

    crm = outbox_app(
        crm_factory,
        tmp_path,
        plugins=(Refuser(),),
        sinks={"erp": {"type": "http", "url": http_sink.url}},
    )
    http_sink.answer = {"state": "accepted"}
    post_items(crm, items(1, sink="erp"))
    stats = deliver(crm)
    assert (stats.delivered, stats.answered) == (1, 0)
    [request] = requests(crm)
    assert (request.delivery, request.supply_state) == ("delivered", "requested")
    assert request.last_error == (
        "delivered, but its answer was not recorded: order 1 is on hold (answer: accepted)"
    )
    with crm.unit_of_work() as uow:
        assert uow.query("note").count() == 0


def test_a_batch_taking_too_long_leaves_the_rest_for_later(
    crm_factory: Any, tmp_path: Path, http_sink: Any
) -> None:
    crm = _app(crm_factory, tmp_path, http_sink.url, batch_seconds=0.05)
    http_sink.delay = 0.06
    post_items(crm, items(3, sink="erp"))
    stats = deliver(crm)
    assert (stats.delivered, stats.retried) == (1, 2)
    assert len(http_sink.calls) == 1
    later = requests(crm)[1]
    assert (
        later.last_error
        == f"not sent: the batch to {http_sink.url} took over 0.05 s (batch_seconds)"
    )
