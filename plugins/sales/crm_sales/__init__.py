"""The sales core: lead checks and scoring, lead conversion, opportunity details, forecasts.

The builtin plugin :mod:`crmcore.builtin.sales` declares the entity types and fields and wires
these functions into hooks and ``crm`` commands; each works inside a unit of work, as its
actor::

    from crm_sales import check_leads, convert_lead, score_leads, weighted_pipeline

    with crm.unit_of_work("ada") as uow:
        check_leads(uow)                         # sanity, authenticity, duplicates
        score_leads(uow)                         # score and hot/warm/cold
        lead = uow.move("lead", 7, "qualified")
        conversion = convert_lead(uow, lead, opportunity={"amount": "12000 EUR"})
        rows = weighted_pipeline(uow, period="quarter", by="owner")
        uow.commit()
"""

from __future__ import annotations

from crmcore.plugins import PluginInfo

from crm_sales.conversion import (
    LEAD_CONVERTED,
    Conversion,
    ConversionEvent,
    convert_lead,
    convert_leads,
)
from crm_sales.errors import ConversionError
from crm_sales.forecast import (
    ForecastRow,
    HistoryForecast,
    StageHistory,
    history_forecast,
    stage_history,
    weighted_pipeline,
)
from crm_sales.leads import Issue, LeadCheck, check_lead, check_leads
from crm_sales.scoring import LeadScore, score_leads
from crm_sales.settings import ISSUES, SalesSettings, ScoringRules

__all__ = [
    "ISSUES",
    "PLUGIN",
    "LEAD_CONVERTED",
    "Conversion",
    "ConversionError",
    "ConversionEvent",
    "ForecastRow",
    "HistoryForecast",
    "Issue",
    "LeadCheck",
    "LeadScore",
    "SalesSettings",
    "ScoringRules",
    "StageHistory",
    "check_lead",
    "check_leads",
    "convert_lead",
    "convert_leads",
    "history_forecast",
    "score_leads",
    "stage_history",
    "weighted_pipeline",
]

PLUGIN = PluginInfo(
    name="sales",
    title="Sales",
    sections=("sales",),
    description="Lead checks and scoring, lead conversion, forecasts; crm leads and crm forecast; the sales chapters of crm demo.",
)
