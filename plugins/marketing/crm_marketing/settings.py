"""The checked ``[plugins.marketing]`` settings of one app (``crm.state(MarketingSettings)``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from crm_marketing import ATTRIBUTION_MODELS
from crm_marketing.errors import MarketingConfigError

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["MarketingSettings", "marketing_settings"]


@attrs.frozen
class MarketingSettings:
    """See :data:`crm_marketing.PLUGIN` for what each setting means."""

    attribution: str = "first_touch"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    sender: str = "marketing@example.com"
    unsubscribe_url: str = "https://example.com/unsubscribe"
    secret: str = ""
    batch_size: int = 200
    connections: int = 4

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> MarketingSettings:
        model = table.get("attribution", "first_touch")
        if model not in ATTRIBUTION_MODELS:
            raise MarketingConfigError(
                f"plugins.marketing.attribution: unknown model {model!r}; use one of "
                f"{', '.join(ATTRIBUTION_MODELS)}",
                key="plugins.marketing.attribution",
            )
        names = {f.name for f in attrs.fields(cls)}
        return cls(**{k: v for k, v in table.items() if k in names})


def marketing_settings(uow: UnitOfWork) -> MarketingSettings:
    """The app's marketing settings (the defaults when the plugin was not configured)."""
    return uow.crm.find_state(MarketingSettings) or MarketingSettings()
