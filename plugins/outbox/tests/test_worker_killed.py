"""A worker process killed (SIGKILL) in the middle of a delivery run: another worker takes its
requests over once the lease has run out, and every request reaches its sink exactly once."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from outbox_support import items, post_items, requests

from crm_outbox import deliver
from crm_outbox.sinks import STALE_SECONDS, file_name, sweep_temporary_files

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

_WORKER = """
import json, sys
from crmcore import create_app
from crm_outbox import deliver
deliver(create_app(json.loads(sys.argv[1])))
"""
LEASE = 60
BATCH = 100


def _settings(url: str, sinks: dict[str, Any], batch_size: int = 10) -> dict[str, Any]:
    return {
        "crm": {"database": url, "plugins": ["outbox"]},
        "plugins": {"outbox": {"batch_size": batch_size, "lease_seconds": LEASE}},
        "outbox": {"sinks": sinks},
    }


def _kill_when(settings: dict[str, Any], ready: Callable[[], bool]) -> None:
    """Run a delivering worker process and SIGKILL it as soon as *ready* holds."""
    process = subprocess.Popen(
        [sys.executable, "-c", _WORKER, json.dumps(settings)], stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while not ready():
            if process.poll() is not None:
                raise AssertionError(
                    f"the worker ended before it was killed: {process.stderr.read().decode()}"
                )
            assert time.monotonic() < deadline, "the worker delivered nothing within 60 s"
            time.sleep(0.002)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
        assert process.stderr is not None
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL


def test_file_requests_of_a_killed_worker_are_written_once(
    crm_factory: Any, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    sinks = {"production": {"type": "file", "path": str(drop)}}
    settings = _settings(crm_factory.database_url(file=True), sinks, batch_size=BATCH)
    crm = crm_factory(settings=settings, database=settings["crm"]["database"])
    count = 3000
    post_items(crm, items(count))

    def mid_batch() -> bool:
        # files appear one by one while a batch is written: a count between two batches' worth
        # means the worker is writing one (claimed, not recorded)
        written = len(os.listdir(drop)) if drop.is_dir() else 0
        return written >= 3 * BATCH and BATCH // 5 <= written % BATCH < BATCH * 4 // 5

    _kill_when(settings, mid_batch)

    midway = requests(crm)
    holding = [r for r in midway if r.delivery == "delivering"]
    assert holding, "the worker was killed between two batches; nothing was mid-delivery"
    assert 0 < sum(r.delivery == "delivered" for r in midway) < count
    written = {p.name: p.stat().st_ino for p in drop.glob("*.json")}
    already = [r for r in holding if file_name(r.idempotency_key) in written]
    assert already  # written by the killed worker, not recorded as delivered

    early = deliver(crm, now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=LEASE / 2))
    assert early.taken_over == 0 and not any(
        r.delivery == "delivering" and r.locked_by == early.worker_id for r in requests(crm)
    )
    stats = deliver(crm, now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=LEASE + 1))

    final = requests(crm)
    assert {r.delivery for r in final} == {"delivered"}
    assert stats.duplicates == len(already)  # found there, not written again
    files = sorted(drop.glob("*.json"))
    assert [p.name for p in files] == sorted(file_name(r.idempotency_key) for r in final)
    assert written == {p.name: p.stat().st_ino for p in files if p.name in written}  # as they were
    assert sorted(json.loads(p.read_text())["key"] for p in files) == sorted(
        r.idempotency_key for r in final
    )
    leftovers = list(drop.glob(".*.tmp"))  # at most the file the worker was writing
    assert len(leftovers) <= 1
    for path in leftovers:
        os.utime(path, (time.time() - STALE_SECONDS - 1,) * 2)
    assert sweep_temporary_files(str(drop)) == len(leftovers)
    assert not list(drop.glob(".*.tmp"))
    for record in holding:
        assert next(r for r in final if r.id == record.id).attempts == 2


def test_http_requests_of_a_killed_worker_are_acted_on_once(
    crm_factory: Any, tmp_path: Path, http_sink: Any
) -> None:
    sinks = {"erp": {"type": "http", "url": http_sink.url}}
    settings = _settings(crm_factory.database_url(file=True), sinks)
    crm = crm_factory(settings=settings, database=settings["crm"]["database"])
    count = 400
    post_items(crm, items(count, sink="erp"))
    http_sink.delay = 0.002

    _kill_when(settings, lambda: len(http_sink.accepted) >= 55)

    midway = requests(crm)
    holding = [r for r in midway if r.delivery == "delivering"]
    assert holding
    acted = set(http_sink.accepted)
    resent = [r for r in holding if r.idempotency_key in acted]
    http_sink.delay = 0
    stats = deliver(crm, now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=LEASE + 1))

    final = requests(crm)
    assert {r.delivery for r in final} == {"delivered"}
    assert stats.handled == count - sum(r.delivery == "delivered" for r in midway)
    assert sorted(http_sink.accepted) == sorted(r.idempotency_key for r in final)
    assert http_sink.duplicates == len(resent)  # sent again with its key, not acted on again
    assert len(http_sink.calls) == count + len(resent)
