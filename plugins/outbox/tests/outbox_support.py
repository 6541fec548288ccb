"""Helpers of the outbox's tests: an app with a file sink, and posting requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crm_outbox import OutboxItem, post


def outbox_app(
    crm_factory: Any,
    tmp_path: Path,
    *,
    settings: dict[str, Any] | None = None,
    plugins: tuple[Any, ...] = (),
    sinks: dict[str, Any] | None = None,
) -> Any:
    """An app with the outbox and a file sink ``production`` writing to ``tmp_path/drop``."""
    table = {"production": {"type": "file", "path": str(tmp_path / "drop")}, **(sinks or {})}
    return crm_factory(
        plugins=["outbox", *plugins], settings={"outbox": {"sinks": table}, **(settings or {})}
    )


def items(
    count: int, *, sink: str = "production", kind: str = "production", start: int = 1
) -> list[OutboxItem]:
    return [
        OutboxItem(
            kind, sink, {"order": n, "lines": [{"sku": f"P-{n}", "qty": "2"}]}, "sales_order", n
        )
        for n in range(start, start + count)
    ]


def post_items(crm: Any, batch: list[OutboxItem], actor: Any = None) -> list[int]:
    with crm.unit_of_work(actor) as uow:
        ids = post(uow, batch)
        uow.commit()
    return ids


def requests(crm: Any) -> list[Any]:
    with crm.unit_of_work() as uow:
        return uow.query("outbox_request").order_by("id").all()
