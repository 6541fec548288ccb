"""The ``rules_simulate`` benchmark: records against 50 rules, simulated, writing nothing.

N opportunities (default 10,000), given as field texts the way ``crm rules simulate`` and
imports receive them, are simulated on the ``updated`` event against 50 rules through
:meth:`crmcore.workflow.rule_engine.RuleEngine.simulate_many`: values parsed, every condition
evaluated by the safe interpreter, the actions of the rules that fire described. ``rows`` counts
rule evaluations (records × rules); the target is at least 50,000 per second. Floor: the same 50
comparisons written by hand in Python, on values already parsed.
"""

from __future__ import annotations

import datetime as dt
import decimal
import time
from collections.abc import Callable
from typing import Any

from common import Result, fresh_url, peak_rss_mb

from crmcore import create_app

__all__ = ["RULES", "run"]

RULE_COUNT = 50
STAGES = ("initiation", "identification", "qualification", "rfp_received", "quotation_sent", "final_stage")


def _rule(index: int) -> tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]:
    """Rule *index* and the same comparison written by hand."""
    threshold = 1_000 * (index + 1)
    stage = STAGES[index % len(STAGES)]
    kind = index % 5
    if kind == 0:
        when = f"amount > {threshold} and stage = '{stage}'"

        def floor(v: dict[str, Any]) -> bool:
            return v["amount"] > threshold and v["stage"] == stage
    elif kind == 1:
        when = f"probability >= {index} or amount < {threshold}"

        def floor(v: dict[str, Any]) -> bool:
            return v["probability"] >= index or v["amount"] < threshold
    elif kind == 2:
        when = f"stage in ('{stage}', 'final_stage') and not (probability < {index % 80})"

        def floor(v: dict[str, Any]) -> bool:
            return v["stage"] in (stage, "final_stage") and not v["probability"] < index % 80
    elif kind == 3:
        when = f"close_date - today <= {index} and amount * probability / 100 >= {threshold // 2}"

        def floor(v: dict[str, Any]) -> bool:
            return (v["close_date"] - dt.date.today()).days <= index and \
                v["amount"] * v["probability"] / 100 >= threshold // 2
    else:
        when = f"next_step contains 'call' and amount > {threshold}"

        def floor(v: dict[str, Any]) -> bool:
            return "call" in v["next_step"].lower() and v["amount"] > threshold
    rule = {"name": f"bench_{index}", "entity": "opportunity", "on": "updated", "when": when,
            "then": [{"action": "add_tag", "tag": f"r{index}"}, {"action": "set_field", "field": "next_step", "value": "review"}]}
    return rule, floor


RULES = [_rule(i) for i in range(RULE_COUNT)]


def _records(count: int) -> list[dict[str, str]]:
    today = dt.date.today()
    return [{
        "name": f"Deal {i}",
        "amount": f"{(i * 7919) % 100_000}.00",
        "stage": STAGES[i % len(STAGES)],
        "probability": str((i * 13) % 100),
        "close_date": (today + dt.timedelta(days=i % 90)).isoformat(),
        "next_step": "call the buyer" if i % 3 else "send the quote",
    } for i in range(count)]


def _parsed(record: dict[str, str]) -> dict[str, Any]:
    return {
        "amount": decimal.Decimal(record["amount"]), "stage": record["stage"], "probability": int(record["probability"]),
        "close_date": dt.date.fromisoformat(record["close_date"]), "next_step": record["next_step"],
    }


def run(rows: int, url: str | None, workdir: str) -> Result:
    records = _records(rows)
    with fresh_url(url, workdir, "rules") as database:
        app = create_app({"crm": {"database": database}, "rules": [rule for rule, _ in RULES]})
        try:
            app.create_schema()
            app.rules.simulate_many("opportunity", records[:100], event="updated")  # warm-up
            started = time.perf_counter()
            results = app.rules.simulate_many("opportunity", records, event="updated")
            seconds = time.perf_counter() - started
        finally:
            app.close()
    floors = [floor for _, floor in RULES]
    started = time.perf_counter()
    expected = 0
    for record in records:
        values = _parsed(record)
        expected += sum(1 for floor in floors if floor(values))
    floor_seconds = time.perf_counter() - started
    fired = sum(len(r) for r in results)
    if fired != expected:
        raise SystemExit(f"rules_simulate: crmcore fired {fired} rules, the hand-written comparisons {expected}")
    evaluations = rows * RULE_COUNT
    result = Result.make("rules_simulate", evaluations, seconds, floor_seconds, peak_rss_mb())
    result.update(records=rows, rules=RULE_COUNT, fired=fired, target_rows_per_s=50_000)
    return result
