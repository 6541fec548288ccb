"""crm-marketing: geographies, segments, campaigns through every channel, lead attribution and
ROI, and market plans monitored against actuals, for crmcore.

Enable it per deployment with ``plugins = ["marketing"]`` (it requires ``sales``). The modules
beside this one hold the logic: the geography tree (:mod:`~crm_marketing.geography`), segments
and their members (:mod:`~crm_marketing.segments`), campaigns and their channels
(:mod:`~crm_marketing.campaigns`, :mod:`~crm_marketing.mailing`), touches, attribution and ROI
(:mod:`~crm_marketing.attribution`) and market plans (:mod:`~crm_marketing.plans`).
"""

from __future__ import annotations

from crmcore import PluginInfo, Setting

__all__ = ["ATTRIBUTION_MODELS", "PLUGIN"]

#: How won revenue is shared among the campaigns that touched a deal.
ATTRIBUTION_MODELS = ("first_touch", "last_touch", "linear")

PLUGIN = PluginInfo(
    name="marketing",
    title="Marketing",
    requires=("sales",),
    description=(
        "Geographies, segments, campaigns by e-mail, letter, phone call, visit and special "
        "offer, lead attribution and campaign ROI, market plans against actuals."
    ),
    settings={
        "attribution": Setting(
            str,
            default="first_touch",
            help="How won revenue is shared among campaigns: first_touch, last_touch or linear.",
        ),
        "smtp_host": Setting(str, default="127.0.0.1", help="The SMTP server e-mail goes out through."),
        "smtp_port": Setting(int, default=25, minimum=1, maximum=65535, help="Its port."),
        "sender": Setting(
            str, default="marketing@example.com", help="The From address of campaign e-mail."
        ),
        "unsubscribe_url": Setting(
            str,
            default="https://example.com/unsubscribe",
            help="The page an unsubscribe link opens; the signed token is added as ?token=.",
        ),
        "secret": Setting(
            str,
            default="",
            help="The key unsubscribe links are signed with; set it in every deployment that "
            "sends e-mail (sending refuses to start without it).",
        ),
        "batch_size": Setting(
            int, default=200, minimum=1, maximum=100000, help="Messages sent per SMTP connection."
        ),
        "connections": Setting(
            int, default=4, minimum=1, maximum=64,
            help="SMTP connections sending batches at the same time (1: one after the other).",
        ),
    },
)
