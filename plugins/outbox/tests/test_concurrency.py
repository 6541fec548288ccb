"""Workers side by side on one database never deliver the same request at once."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from outbox_support import items, post_items, requests

from crm_outbox import deliver


def test_two_workers_share_the_requests_without_delivering_one_twice(
    crm_factory: Any, tmp_path: Path, http_sink: Any
) -> None:
    settings = {
        "outbox": {"sinks": {"erp": {"type": "http", "url": http_sink.url}}},
        "plugins": {"outbox": {"batch_size": 5}},
    }
    url = crm_factory.database_url(file=True)
    first = crm_factory(plugins=["outbox"], settings=settings, database=url)
    second = crm_factory(plugins=["outbox"], settings=settings, database=url, create_schema=False)
    count = 120
    post_items(first, items(count, sink="erp"))
    http_sink.delay = 0.001
    results: dict[str, Any] = {}
    start = threading.Barrier(2)

    def work(name: str, crm: Any) -> None:
        start.wait()
        try:
            results[name] = deliver(crm, worker_id=name)
        except BaseException as exc:  # reported below
            results[name] = exc

    threads = [
        threading.Thread(target=work, args=(n, c)) for n, c in (("one", first), ("two", second))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    stats = [results["one"], results["two"]]
    assert not [s for s in stats if isinstance(s, BaseException)], stats
    assert sum(s.delivered for s in stats) == count
    assert all(s.delivered > 0 for s in stats), [s.summary() for s in stats]  # both took part
    assert len(http_sink.calls) == count and http_sink.duplicates == 0  # none sent twice
    assert {r.delivery for r in requests(first)} == {"delivered"}
    assert {r.attempts for r in requests(first)} == {1}
