"""Finding duplicates: groups of records of one entity type that are probably one company or
one person, scored, among the records the actor may read.

The rules come from the entity's fields: every e-mail field (normalised: lower case, and a
Gmail-style ``+tag`` dropped from the local part), every phone field (normalised to E.164 with
``phonenumbers``, numbers without a country code read in ``[plugins.core] phone_region``,
default ``"US"``), a tax id (``tax_id``, ``vat_id``, ``vat_number``: letters and digits only,
upper case) and the name (the entity's title field, or first and last name), compared fuzzily
with ``rapidfuzz`` (token sort ratio, within blocks of names sharing their first letter).

Each match scores: the same tax id 1.0, the same e-mail 0.95, the same phone 0.85, a name
``ratio`` percent alike ``0.8 * ratio / 100`` (from 90 percent on). Several matches between two
records combine as independent evidence (``1 - prod(1 - s)``). Pairs scoring at least
``min_score`` join groups (transitively); a group's score is the best of its pairs. One read
of the candidates' matching fields, set-based; the pairing runs in memory.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs
import phonenumbers
from rapidfuzz import fuzz, process

from crmcore.errors import ValidationError
from crmcore.fields import Email, Phone

if TYPE_CHECKING:
    from crmcore.registry import EntityType
    from crmcore.storage.uow import UnitOfWork

__all__ = ["DuplicateGroup", "find_duplicates", "normal_email", "normal_name", "normal_phone", "normal_tax_id"]

_TAX_FIELDS = ("tax_id", "vat_id", "vat_number")
_SCORES = {"tax_id": 1.0, "email": 0.95, "phone": 0.85}
_NAME_WEIGHT = 0.8
_NAME_CUTOFF = 90
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]+")
_LEGAL = re.compile(r"\b(inc|ltd|llc|gmbh|sa|sas|srl|bv|ag|plc|co|corp|lda|limited)\b\.?")


@attrs.frozen
class DuplicateGroup:
    """Records of *entity* that are probably duplicates: their *ids* (ascending), the group's
    *score* (0 to 1, the best pair's) and the *reasons* (``"email"``, ``"phone"``,
    ``"tax_id"``, ``"name 96%"``) of its pairs."""

    entity: str
    ids: tuple[int, ...]
    score: float
    reasons: tuple[str, ...]

    def __repr__(self) -> str:
        return f"<DuplicateGroup {self.entity} {list(self.ids)} score={self.score:.2f}>"


def normal_email(value: Any) -> str | None:
    """``Ana.Ferreira+news@Exemplo.PT`` → ``ana.ferreira@exemplo.pt``."""
    if not isinstance(value, str) or "@" not in value:
        return None
    local, _, domain = value.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def normal_phone(value: Any, region: str = "US") -> str | None:
    """The number in E.164 (``+442079460958``), or its digits when it does not parse."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        digits = "".join(ch for ch in value if ch.isdigit())
        return digits or None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normal_tax_id(value: Any) -> str | None:
    """``DE 123.456.789`` → ``DE123456789``."""
    if not isinstance(value, str):
        return None
    return _NON_ALNUM.sub("", value).upper() or None


def normal_name(value: Any) -> str:
    """Lower case, legal forms (Inc, GmbH, Lda...) and punctuation dropped, spaces collapsed."""
    if not isinstance(value, str):
        return ""
    text = _LEGAL.sub(" ", value.lower())
    return " ".join(_NON_ALNUM.sub(" ", text).split())


def _name_fields(etype: EntityType) -> tuple[str, ...]:
    names = {f.name for f in etype.fields}
    if {"first_name", "last_name"} <= names:
        return ("first_name", "last_name")
    if etype.title_field and etype.title_field in names:
        return (etype.title_field,)
    return ("name",) if "name" in names else ()


def find_duplicates(uow: UnitOfWork, entity: str, min_score: float = 0.8) -> list[DuplicateGroup]:
    """The groups of probable duplicates among the records of *entity* the actor may read,
    best score first (then by smallest id).

    :param min_score: the least score of a pair that joins a group, 0 to 1.
    :raises ValidationError: for a score outside 0 to 1, or an entity type with nothing to
        match on (no e-mail, phone, tax id or name field).
    """
    if not 0 < min_score <= 1:
        raise ValidationError(f"min_score must be above 0 and at most 1, got {min_score!r}", entity=entity)
    etype = uow.registry.entity(entity)
    hidden = uow.hidden_fields(entity)
    emails = [f.name for f in etype.fields if isinstance(f.type, Email) and f.name not in hidden]
    phones = [f.name for f in etype.fields if isinstance(f.type, Phone) and f.name not in hidden]
    taxes = [f.name for f in etype.fields if f.name in _TAX_FIELDS and f.name not in hidden]
    names = [n for n in _name_fields(etype) if n not in hidden]
    wanted = [*emails, *phones, *taxes, *names]
    if not wanted:
        raise ValidationError(
            f"{entity} has no e-mail, phone, tax id or name field the actor may read to find duplicates by", entity=entity,
        )
    rows = uow.select(entity, fields=("id", *wanted)).order_by("id").all()
    region = str(uow.crm.plugin_settings.get("core", {}).get("phone_region", "US"))
    evidence: dict[tuple[int, int], dict[str, float]] = defaultdict(dict)
    keys: dict[str, dict[str, list[int]]] = {"email": defaultdict(list), "phone": defaultdict(list), "tax_id": defaultdict(list)}
    for row in rows:
        rid = row["id"]
        for kind, fields, normal in (("email", emails, normal_email), ("tax_id", taxes, normal_tax_id)):
            for key in {normal(row[f]) for f in fields}:
                if key is not None:
                    keys[kind][key].append(rid)
        for key in {normal_phone(row[f], region) for f in phones}:
            if key is not None:
                keys["phone"][key].append(rid)
    for kind, by_key in keys.items():
        for ids in by_key.values():
            for a, b in _pairs(ids):
                evidence[(a, b)][kind] = _SCORES[kind]
    if names:
        _name_evidence(rows, names, evidence)
    return _groups(entity, evidence, min_score)


def _pairs(ids: list[int]) -> Iterable[tuple[int, int]]:
    unique = sorted(set(ids))
    if len(unique) > 50:  # a shared switchboard or a role address: not evidence of one record
        return ()
    return ((a, b) for i, a in enumerate(unique) for b in unique[i + 1:])


def _name_evidence(rows: list[dict[str, Any]], names: list[str], evidence: dict[tuple[int, int], dict[str, float]]) -> None:
    blocks: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for row in rows:
        text = normal_name(" ".join(str(row[n]) for n in names if row[n]))
        if len(text) >= 3:
            blocks[text[0]].append((row["id"], text))
    for members in blocks.values():
        if len(members) < 2:
            continue
        ids = [m[0] for m in members]
        texts = [m[1] for m in members]
        # each name against the ones after it (process.extract: no numpy, which cdist needs)
        for i, text in enumerate(texts[:-1]):
            later = texts[i + 1:]
            found = process.extract(text, later, scorer=fuzz.token_sort_ratio, score_cutoff=_NAME_CUTOFF, limit=len(later))
            for _, score, offset in found:
                ratio = float(score)
                a, b = sorted((ids[i], ids[i + 1 + offset]))
                evidence[(a, b)][f"name {ratio:.0f}%"] = _NAME_WEIGHT * ratio / 100


def _groups(entity: str, evidence: dict[tuple[int, int], dict[str, float]], min_score: float) -> list[DuplicateGroup]:
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    scored: dict[tuple[int, int], tuple[float, list[str]]] = {}
    for pair, found in evidence.items():
        miss = 1.0
        for score in found.values():
            miss *= 1 - score
        score = round(1 - miss, 4)
        if score >= min_score:
            scored[pair] = (score, sorted(found))
            parent[root(pair[0])] = root(pair[1])
    members: dict[int, list[int]] = defaultdict(list)
    for x in list(parent):
        members[root(x)].append(x)
    groups = []
    for ids in members.values():
        if len(ids) < 2:
            continue
        inside = [v for (a, b), v in scored.items() if root(a) == root(ids[0])]
        reasons = sorted({r for _, rs in inside for r in rs})
        groups.append(DuplicateGroup(entity, tuple(sorted(ids)), max(s for s, _ in inside), tuple(reasons)))
    return sorted(groups, key=lambda g: (-g.score, g.ids[0]))
