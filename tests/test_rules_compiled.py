"""Compiled conditions give exactly what the interpreter gives: result and values seen."""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import random

import pytest

from crmcore.money import Money
from crmcore.workflow.compiled import compile_condition
from crmcore.workflow.conditions import parse

CONDITIONS = [
    "amount > 50000", "amount <= 10", "probability >= 50 or amount < 1000", "stage = 'won'", "stage != 'lost'",
    "stage in ('won', 'lost')", "stage not in ('won', 'lost')", "not (probability < 30)", "name contains 'acme'",
    "close_date - today <= 30", "amount * probability / 100 >= 5000", "-probability < -50", "flag", "not flag",
    "description is null", "description is not null", "stage = 'won' and amount > 5 or probability = 0",
    "close_date > today and close_date < today + 90", "owner.username = 'rep1'", "probability in (10, 20)",
    "amount = 100", "stage = 5",
]
AMOUNTS = [None, 0, 5, 999, 1000, 50000, 50001, decimal.Decimal("12.5"), Money(decimal.Decimal("60000"), "EUR"), True, "x"]
STAGES = [None, "won", "lost", "open", 5]
TODAY = dt.date.today()


def values(rng: random.Random) -> dict[str, object]:
    return {
        "amount": rng.choice(AMOUNTS), "probability": rng.choice([None, 0, 10, 20, 30, 50, 80, True]),
        "stage": rng.choice(STAGES), "name": rng.choice([None, "ACME corp", "other"]),
        "close_date": rng.choice([None, TODAY, TODAY + dt.timedelta(days=40), TODAY - dt.timedelta(days=3)]),
        "description": rng.choice([None, "", "text"]), "flag": rng.choice([None, True, False, 0, 1]),
    }


@pytest.mark.parametrize("text", CONDITIONS)
def test_compiled_and_interpreted_agree(text: str) -> None:
    condition = parse(text)
    compiled = compile_condition(condition)
    rng = random.Random(text)
    for record in itertools.islice(iter(lambda: values(rng), None), 300):
        def lookup(path: tuple[str, ...], record: dict[str, object] = record) -> object:
            return "rep1" if path == ("owner", "username") else record.get(".".join(path))

        seen: dict[str, object] = {}
        expected = condition.evaluate(lookup)
        assert compiled(record, lookup, seen) == expected.result, record
        assert seen == expected.seen, record
