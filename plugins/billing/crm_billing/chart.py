"""A chart of a customer's history and estimate per month, as PNG or SVG (matplotlib, the
``chart`` extra: ``pip install crm-billing[chart]``): bars of the net invoiced per past month,
then the estimate spread evenly over the horizon's months, its parts stacked (run-rate,
recurring, weighted pipeline)."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

from crmcore.errors import ConfigError

from crm_billing.estimate import Estimate

__all__ = ["render_chart"]


def _months(on: dt.date, before: int, after: int) -> list[str]:
    found = []
    for offset in range(-before, after):
        year, month = divmod(on.year * 12 + on.month - 1 + offset, 12)
        found.append(f"{year:04d}-{month + 1:02d}")
    return found


def render_chart(estimate: Estimate, on: dt.date, *, horizon: int = 12, history: int = 12, fmt: str = "svg") -> bytes:
    """The chart of *estimate* made on *on*, as ``svg`` or ``png`` bytes.

    :raises ConfigError: when matplotlib is not installed, or for another format.
    """
    if fmt not in ("svg", "png"):
        raise ConfigError(f"a chart is 'svg' or 'png', not {fmt!r}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError as exc:
        raise ConfigError("charts need matplotlib: pip install 'crm-billing[chart]'") from exc
    past = _months(on, history, 0)
    ahead = _months(on, 0, horizon)
    months = dict(estimate.history_months)
    per_month = [(part.amount / Decimal(horizon)) for part in (estimate.run_rate, estimate.recurring, estimate.pipeline)]
    figure, axes = pyplot.subplots(figsize=(10, 4))
    try:
        axes.bar(past, [float(months.get(m, 0)) for m in past], color="#4c72b0", label="invoiced")
        bottom = [0.0] * len(ahead)
        for label, value, color in zip(("run-rate", "recurring", "weighted pipeline"), per_month,
                                       ("#8fb0d9", "#55a868", "#dd8452"), strict=True):
            axes.bar(ahead, [float(value)] * len(ahead), bottom=bottom, color=color, label=label)
            bottom = [b + float(value) for b in bottom]
        axes.set_title(f"Account {estimate.account_id}: history and estimate ({estimate.currency})")
        axes.tick_params(axis="x", labelrotation=90, labelsize=7)
        axes.legend(loc="upper left", fontsize=8)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format=fmt)
    finally:
        pyplot.close(figure)
    return buffer.getvalue()
