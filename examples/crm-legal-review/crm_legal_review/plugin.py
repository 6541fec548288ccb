"""The legal review plugin's hook implementations (the entry point ``legal_review``)."""

from __future__ import annotations

from typing import Any

from crmcore import hookimpl
from crmcore.workflow import PipelineBuilder

from crm_legal_review.phase import PIPELINE, extend_sales


@hookimpl
def crm_extend_pipeline(pipeline: PipelineBuilder, settings: dict[str, Any]) -> None:
    if pipeline.name == PIPELINE:
        extend_sales(pipeline, settings["threshold"])
