"""The marketing plugin's errors: kinds of crmcore's, so callers catch them as usual."""

from __future__ import annotations

from crmcore.errors import ConfigError, ValidationError

__all__ = ["CampaignError", "MarketingConfigError"]


class CampaignError(ValidationError):
    """A campaign cannot do what was asked (run a cancelled one, send without a template)."""


class MarketingConfigError(ConfigError):
    """A ``[plugins.marketing]`` setting is wrong."""
