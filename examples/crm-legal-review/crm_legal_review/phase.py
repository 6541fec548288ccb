"""The legal review phase: how it changes the ``sales`` pipeline."""

from __future__ import annotations

from crmcore.errors import ConfigError
from crmcore.workflow import PipelineBuilder, Stage

__all__ = ["LEGAL_REVIEW", "PIPELINE", "extend_sales"]

#: The pipeline the phase joins.
PIPELINE = "sales"
#: The stage it adds.
LEGAL_REVIEW = Stage("legal_review", label="Legal review", probability=70)


def extend_sales(pipeline: PipelineBuilder, threshold: int) -> None:
    """Insert ``legal_review`` between ``quotation_sent`` and ``final_stage``.

    Moves between the two neighbours now pass through the review (both ways); the direct moves
    stay allowed for deals of at most *threshold* (or without an amount yet).

    :raises ConfigError: for a negative *threshold*.
    """
    if threshold < 0:
        raise ConfigError(
            f"plugins.legal_review.threshold must be zero or more, got {threshold!r}",
            key="plugins.legal_review.threshold",
        )
    pipeline.insert_stage(LEGAL_REVIEW, after="quotation_sent")
    small = f"amount is null or amount <= {threshold}"
    pipeline.add_transition("quotation_sent", "final_stage", guards=[small])
    pipeline.add_transition("final_stage", "quotation_sent")
