"""The ``[sales]`` settings: lead checks, scoring rules, the conversion mapping, the forecast.

Everything has a default, so a deployment writes only what it changes::

    [sales]
    default_region = "GB"            # phone numbers without +CC are read as British
    check_deliverability = false     # true: look up each e-mail domain's MX record (DNS)
    dns_timeout = 5                  # seconds per DNS lookup
    disposable_domains = ["throwaway.example"]   # added to the bundled list
    require_contact = false          # true: a lead without e-mail and phone is refused
    check_on_commit = 0              # check and score up to N leads changed per unit of work

    [sales.scoring]
    hot = 60                         # a score at or above is hot
    warm = 30                        # at or above is warm; below is cold
    engagement_cap = 30              # at most this many points from activities
    fields = { email = 10, phone = 10, company = 10, title = 5, website = 5 }
    sources = { referral = 25, partner = 20, event = 15, web = 10 }
    activities = { meeting = 10, call = 5, email = 3, task = 2 }
    issues = { disposable_email = -40, invalid_email = -20 }

    [sales.conversion]
    statuses = ["qualified"]         # the lead statuses that may convert
    match_account_by = ["name", "domain"]
    match_contact_by = ["email"]
    account = { name = "company", website = "website" }    # account field = lead field
    contact = { first_name = "first_name", last_name = "last_name", email = "email" }
    opportunity = { name = "company" }

    [sales.forecast]
    min_history = 5                  # closed deals a stage needs before its own win rate is used

A mapping table replaces the default mapping of that entity type, and may name any field,
plugin and custom fields included (``region = "region"`` for custom fields called ``region``
on the lead and the account). Every key, field name and value is checked when the app starts:
a mistake stops it with a :class:`~crmcore.errors.ConfigError` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import ConfigError
from crmcore.fields import Choice

if TYPE_CHECKING:
    from crmcore import EntityType

__all__ = [
    "ACTIVITY_POINTS",
    "ConversionSettings",
    "ISSUES",
    "SalesSettings",
    "ScoringRules",
    "TEMPERATURES",
    "bundled_disposable_domains",
    "parse_sales_settings",
]

#: The quality issues a lead check finds, with what each means.
ISSUES: dict[str, str] = {
    "no_contact": "neither an e-mail address nor a phone number",
    "invalid_email": "the e-mail address is not valid",
    "undeliverable_email": "the e-mail domain cannot receive mail",
    "disposable_email": "the e-mail address is at a disposable (throwaway) domain",
    "invalid_phone": "the phone number is not a valid number",
    "duplicate_lead": "another lead has the same e-mail address or phone number",
    "duplicate_contact": "a contact has the same e-mail address or phone number",
}
#: Lead temperatures, hottest first.
TEMPERATURES = ("hot", "warm", "cold")

DEFAULT_FIELD_POINTS = {"email": 10, "phone": 10, "company": 10, "title": 5, "website": 5}
DEFAULT_SOURCE_POINTS = {
    "referral": 25, "partner": 20, "event": 15, "web": 10, "campaign": 10, "email": 5, "phone": 5,
}
ACTIVITY_POINTS = {"meeting": 10, "call": 5, "email": 3, "task": 2}
DEFAULT_ISSUE_POINTS = {
    "no_contact": -30, "invalid_email": -20, "undeliverable_email": -20, "disposable_email": -40,
    "invalid_phone": -10, "duplicate_lead": -10, "duplicate_contact": 0,
}

#: Free mail providers: their domains say nothing about a lead's company, so conversion does
#: not match accounts by them.
FREE_MAIL_DOMAINS = (
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "hotmail.com", "hotmail.co.uk",
    "hotmail.fr", "outlook.com", "live.com", "msn.com", "aol.com", "icloud.com", "me.com", "mac.com",
    "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com", "proton.me", "protonmail.com", "yandex.com",
    "yandex.ru", "mail.ru", "zoho.com", "qq.com", "163.com", "orange.fr", "free.fr", "laposte.net",
    "t-online.de", "btinternet.com",
)

DEFAULT_MAPPING: dict[str, dict[str, str]] = {
    "account": {"name": "company", "website": "website", "owner_id": "owner_id", "owner_group_id": "owner_group_id"},
    "contact": {
        "first_name": "first_name", "last_name": "last_name", "title": "title", "email": "email",
        "phone": "phone", "description": "description", "owner_id": "owner_id", "owner_group_id": "owner_group_id",
    },
    "opportunity": {"name": "company", "owner_id": "owner_id", "owner_group_id": "owner_group_id"},
}
MATCH_ACCOUNT = ("name", "domain")
MATCH_CONTACT = ("email",)
_TEXT_KINDS = frozenset({"string", "text"})
_TEXTUAL_SOURCES = frozenset({"string", "text", "email", "phone", "url", "choice"})


def bundled_disposable_domains() -> frozenset[str]:
    """The disposable domains shipped in ``crmcore/data/disposable_domains.txt``."""
    text = resources.files("crm_sales").joinpath("data/disposable_domains.txt").read_text(encoding="utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    )


@attrs.frozen
class ScoringRules:
    """Points per lead field with a value, per source, per activity, per quality issue.

    :param fields: ``{lead field: points}`` when the field has a value.
    :param sources: ``{source value: points}``.
    :param activities: ``{activity kind: points}`` per activity about the lead.
    :param engagement_cap: the most points activities can give.
    :param issues: ``{issue: points}`` (usually negative) per quality issue found.
    :param hot: the least score that is hot.
    :param warm: the least score that is warm; lower scores are cold.
    """

    fields: Mapping[str, int] = attrs.field(factory=lambda: dict(DEFAULT_FIELD_POINTS))
    sources: Mapping[str, int] = attrs.field(factory=lambda: dict(DEFAULT_SOURCE_POINTS))
    activities: Mapping[str, int] = attrs.field(factory=lambda: dict(ACTIVITY_POINTS))
    engagement_cap: int = 30
    issues: Mapping[str, int] = attrs.field(factory=lambda: dict(DEFAULT_ISSUE_POINTS))
    hot: int = 60
    warm: int = 30

    def score(self, values: Mapping[str, Any], activities: Mapping[str, int] | None = None) -> int:
        """The score of a lead given its field *values* and its number of *activities* per kind,
        between 0 and 100."""
        points = 0
        for name, worth in self.fields.items():
            value = values.get(name)
            if value is not None and value != "" and value != ():
                points += worth
        source = values.get("source")
        if source is not None:
            points += self.sources.get(source, 0)
        if activities:
            engagement = sum(self.activities.get(kind, 0) * count for kind, count in activities.items())
            points += min(engagement, self.engagement_cap)
        for issue in values.get("quality_issues") or ():
            points += self.issues.get(issue, 0)
        return max(0, min(100, points))

    def temperature(self, score: int) -> str:
        """``hot``, ``warm`` or ``cold`` for *score*."""
        if score >= self.hot:
            return "hot"
        return "warm" if score >= self.warm else "cold"


@attrs.frozen
class ConversionSettings:
    """How a lead converts.

    :param statuses: lead statuses that may convert.
    :param match_account_by: ``"name"`` (the lead's company, case-insensitively) and/or
        ``"domain"`` (the lead's website or e-mail domain against the account's ``domain``).
    :param match_contact_by: ``"email"`` (case-insensitively) or nothing.
    :param mapping: ``{"account" | "contact" | "opportunity": {target field: lead field}}``.
    """

    statuses: tuple[str, ...] = ("qualified",)
    match_account_by: tuple[str, ...] = MATCH_ACCOUNT
    match_contact_by: tuple[str, ...] = MATCH_CONTACT
    mapping: Mapping[str, Mapping[str, str]] = attrs.field(factory=lambda: {k: dict(v) for k, v in DEFAULT_MAPPING.items()})


@attrs.frozen
class SalesSettings:
    """The checked ``[sales]`` table of one app (see the module docs for every key)."""

    default_region: str | None = None
    check_deliverability: bool = False
    dns_timeout: float = 5.0
    disposable_domains: frozenset[str] = frozenset()
    free_mail_domains: frozenset[str] = frozenset(FREE_MAIL_DOMAINS)
    require_contact: bool = False
    check_on_commit: int = 0
    scoring: ScoringRules = ScoringRules()
    conversion: ConversionSettings = ConversionSettings()
    min_history: int = 5


_KEYS = {
    "default_region", "check_deliverability", "dns_timeout", "disposable_domains", "free_mail_domains",
    "require_contact", "check_on_commit", "scoring", "conversion", "forecast",
}
_SCORING_KEYS = {"hot", "warm", "engagement_cap", "fields", "sources", "activities", "issues"}
_CONVERSION_KEYS = {"statuses", "match_account_by", "match_contact_by", "account", "contact", "opportunity"}
_FORECAST_KEYS = {"min_history"}


def parse_sales_settings(table: Any, registry: Any, *, lead_statuses: tuple[str, ...]) -> SalesSettings:
    """Check the ``[sales]`` table against the registry and freeze it.

    :param table: the table as read from the settings (``None`` when absent).
    :param registry: the app's frozen registry (fields named in the table must exist).
    :param lead_statuses: the stages of the lead pipelines (``statuses`` must name some).
    :raises ConfigError: naming the key and the value at fault.
    """
    if table is None:
        table = {}
    _table(table, "sales")
    _keys(table, _KEYS, "sales")
    region = table.get("default_region")
    if region is not None:
        import phonenumbers

        if not isinstance(region, str) or region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ConfigError(
                f"sales.default_region must be a two-letter region code such as 'GB' or 'US', got {region!r}",
                key="sales.default_region",
            )
        region = region.upper()
    extra = _text_list(table.get("disposable_domains", []), "sales.disposable_domains")
    free = _text_list(table.get("free_mail_domains", list(FREE_MAIL_DOMAINS)), "sales.free_mail_domains")
    lead = registry.entity("lead")
    return SalesSettings(
        default_region=region,
        check_deliverability=_bool(table.get("check_deliverability", False), "sales.check_deliverability"),
        dns_timeout=float(_number(table.get("dns_timeout", 5), "sales.dns_timeout", minimum=0.1)),
        disposable_domains=bundled_disposable_domains() | {d.lower() for d in extra},
        free_mail_domains=frozenset(d.lower() for d in free),
        require_contact=_bool(table.get("require_contact", False), "sales.require_contact"),
        check_on_commit=int(_number(table.get("check_on_commit", 0), "sales.check_on_commit", minimum=0, integer=True)),
        scoring=_scoring(table.get("scoring", {}), lead),
        conversion=_conversion(table.get("conversion", {}), registry, lead_statuses),
        min_history=_forecast(table.get("forecast", {})),
    )


def _scoring(table: Any, lead: EntityType) -> ScoringRules:
    where = "sales.scoring"
    _table(table, where)
    _keys(table, _SCORING_KEYS, where)
    fields = _points(table.get("fields", DEFAULT_FIELD_POINTS), f"{where}.fields")
    for name in fields:
        if not lead.has_field(name):
            raise ConfigError(f"{where}.fields: lead has no field {name!r}; its fields: {', '.join(lead.field_names)}",
                              key=f"{where}.fields.{name}")
    sources = _points(table.get("sources", DEFAULT_SOURCE_POINTS), f"{where}.sources")
    source_type = lead.field("source").type if lead.has_field("source") else None
    if isinstance(source_type, Choice):
        for value in sources:
            if value not in source_type.choices:
                raise ConfigError(f"{where}.sources: {value!r} is not a lead source; sources: {', '.join(source_type.choices)}",
                                  key=f"{where}.sources.{value}")
    activities = _points(table.get("activities", ACTIVITY_POINTS), f"{where}.activities")
    for kind in activities:
        if kind not in ACTIVITY_POINTS:
            raise ConfigError(f"{where}.activities: unknown activity kind {kind!r}; kinds: {', '.join(ACTIVITY_POINTS)}",
                              key=f"{where}.activities.{kind}")
    issues = {**DEFAULT_ISSUE_POINTS, **_points(table.get("issues", {}), f"{where}.issues")}
    for issue in issues:
        if issue not in ISSUES:
            raise ConfigError(f"{where}.issues: unknown quality issue {issue!r}; issues: {', '.join(ISSUES)}",
                              key=f"{where}.issues.{issue}")
    hot = int(_number(table.get("hot", 60), f"{where}.hot", integer=True))
    warm = int(_number(table.get("warm", 30), f"{where}.warm", integer=True))
    if warm > hot:
        raise ConfigError(f"{where}: warm ({warm}) must not be above hot ({hot})", key=f"{where}.warm")
    cap = int(_number(table.get("engagement_cap", 30), f"{where}.engagement_cap", minimum=0, integer=True))
    return ScoringRules(fields, sources, activities, cap, issues, hot, warm)


def _conversion(table: Any, registry: Any, lead_statuses: tuple[str, ...]) -> ConversionSettings:
    where = "sales.conversion"
    _table(table, where)
    _keys(table, _CONVERSION_KEYS, where)
    statuses = tuple(_text_list(table.get("statuses", ["qualified"]), f"{where}.statuses"))
    for status in statuses:
        if status not in lead_statuses:
            raise ConfigError(f"{where}.statuses: {status!r} is not a lead status; statuses: {', '.join(lead_statuses)}",
                              key=f"{where}.statuses")
    by_account = tuple(_text_list(table.get("match_account_by", list(MATCH_ACCOUNT)), f"{where}.match_account_by"))
    for way in by_account:
        if way not in MATCH_ACCOUNT:
            raise ConfigError(f"{where}.match_account_by: unknown way {way!r}; use 'name' and/or 'domain'",
                              key=f"{where}.match_account_by")
    by_contact = tuple(_text_list(table.get("match_contact_by", list(MATCH_CONTACT)), f"{where}.match_contact_by"))
    for way in by_contact:
        if way not in MATCH_CONTACT:
            raise ConfigError(f"{where}.match_contact_by: unknown way {way!r}; use 'email' or nothing",
                              key=f"{where}.match_contact_by")
    lead = registry.entity("lead")
    mapping: dict[str, dict[str, str]] = {}
    for target_name, default in DEFAULT_MAPPING.items():
        spec = table.get(target_name, default)
        at = f"{where}.{target_name}"
        _table(spec, at)
        target = registry.entity(target_name)
        checked: dict[str, str] = {}
        for target_field, lead_field in spec.items():
            key = f"{at}.{target_field}"
            if not isinstance(lead_field, str):
                raise ConfigError(f"{key} must name a lead field, got {lead_field!r}", key=key)
            if not target.has_field(target_field) or target.field(target_field) not in target.fields:
                raise ConfigError(f"{key}: {target_name} has no field {target_field!r}; its fields: "
                                  f"{', '.join(target.field_names)}", key=key)
            if target.field(target_field).read_only:
                raise ConfigError(f"{key}: {target_name}.{target_field} is read-only; it is set by crmcore", key=key)
            if not lead.has_field(lead_field):
                raise ConfigError(f"{key}: lead has no field {lead_field!r}; its fields: {', '.join(lead.field_names)}", key=key)
            source, goal = lead.field(lead_field).type.kind, target.field(target_field).type.kind
            if source != goal and not (goal in _TEXT_KINDS and source in _TEXTUAL_SOURCES):
                raise ConfigError(
                    f"{key}: cannot carry lead.{lead_field} ({source}) into {target_name}.{target_field} ({goal}); "
                    "map fields of the same type, or text into a text field",
                    key=key,
                )
            checked[target_field] = lead_field
        mapping[target_name] = checked
    return ConversionSettings(statuses, by_account, by_contact, mapping)


def _forecast(table: Any) -> int:
    _table(table, "sales.forecast")
    _keys(table, _FORECAST_KEYS, "sales.forecast")
    return int(_number(table.get("min_history", 5), "sales.forecast.min_history", minimum=1, integer=True))


# -- small checks -------------------------------------------------------------------------------


def _table(value: Any, where: str) -> None:
    if not isinstance(value, Mapping):
        raise ConfigError(f"[{where}] must be a table, got {value!r}", key=where)


def _keys(table: Mapping[str, Any], known: set[str], where: str) -> None:
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"unknown key {where}.{key} = {value!r}; known keys: {', '.join(sorted(known))}",
                              key=f"{where}.{key}")


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}", key=where)
    return value


def _number(value: Any, where: str, *, minimum: float | None = None, integer: bool = False) -> float:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or (minimum is not None and value < minimum):
        what = "a whole number" if integer else "a number"
        bound = f" of at least {minimum:g}" if minimum is not None else ""
        raise ConfigError(f"{where} must be {what}{bound}, got {value!r}", key=where)
    return value


def _text_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where} must be a list of texts, got {value!r}", key=where)
    return [v.strip() for v in value]


def _points(value: Any, where: str) -> dict[str, int]:
    _table(value, where)
    for key, points in value.items():
        if isinstance(points, bool) or not isinstance(points, int):
            raise ConfigError(f"{where}.{key} must be a whole number of points, got {points!r}", key=f"{where}.{key}")
    return dict(value)
