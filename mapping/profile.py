"""A person's merged profile: each field from the record its rule prefers, with provenance. Pure.

The rules are the ones teams know from HubSpot's Salesforce connector, plus the mirror image:
`prefer_salesforce_unless_blank`, `prefer_hubspot_unless_blank`, `always_salesforce`, `always_hubspot`,
`two_way` (the most recent non-blank value, by the records' modification times) and `dont_sync` (the
person's anchor record alone decides). Sales-owned fields come from Salesforce by default, firmographics are
`two_way`, so a title that arrives only in Salesforce raises the fit of the HubSpot record's person too.

Engagement from every linked record is pooled; a touch logged in both CRMs counts once (see `dedupe_key`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from mapping.model import Contact, Engagement

RULES: frozenset[str] = frozenset({
    "prefer_salesforce_unless_blank", "prefer_hubspot_unless_blank", "always_salesforce", "always_hubspot",
    "two_way", "dont_sync",
})
#: Canonical fields the profile merges, with their default rule.
DEFAULT_RULES: Mapping[str, str] = MappingProxyType({
    "first_name": "two_way", "last_name": "two_way", "title": "two_way", "company": "two_way",
    "company_size": "two_way", "industry": "two_way", "country": "two_way",
    "owner_id": "prefer_salesforce_unless_blank", "lead_status": "prefer_salesforce_unless_blank",
    "extra": "two_way",
})


@dataclass(frozen=True, slots=True)
class Provenance:
    source: str
    record_id: str
    at: datetime | None


@dataclass(frozen=True, slots=True)
class Profile:
    """The merged canonical contact (named after the anchor record) and where each field came from."""

    contact: Contact
    provenance: Mapping[str, Provenance]

    def provenance_dict(self) -> dict[str, dict[str, Any]]:
        return {f: {"source": p.source, "record_id": p.record_id, "at": p.at.isoformat() if p.at else None}
                for f, p in sorted(self.provenance.items())}


def check_rules(rules: Mapping[str, str]) -> dict[str, str]:
    """Defaults overlaid with a team's rules; an unknown field or rule is a ValueError naming it."""
    out = dict(DEFAULT_RULES)
    for name, rule in rules.items():
        if name not in DEFAULT_RULES:
            raise ValueError(f"identity.field_rules: unknown field {name!r} (one of {', '.join(DEFAULT_RULES)})")
        if rule not in RULES:
            raise ValueError(f"identity.field_rules.{name}: unknown rule {rule!r} (one of {', '.join(sorted(RULES))})")
        out[name] = rule
    return out


def _blank(v: Any) -> bool:
    return v is None or v == "" or (v.__class__ is str and v.isspace())


def _recent(records: Sequence[Contact]) -> list[Contact]:
    """Live records before dead ones, then newest first (ties: source, id, so the result is stable)."""
    def order(c: Contact) -> tuple[bool, bool, float, str, str]:
        at = c.updated_at
        return c.archived or c.read_only, at is None, -at.timestamp() if at else 0.0, c.source, c.id
    return sorted(records, key=order)


def _pick(name: str, rule: str, ordered: Sequence[Contact], anchor: Contact) -> Contact | None:
    """The record whose value of `name` the profile takes (None: no record has one)."""
    if rule == "two_way":  # the most recent non-blank value (most fields, so first and cheapest)
        return next((c for c in ordered if not _blank(getattr(c, name))), None)
    if rule == "dont_sync":
        return anchor
    if rule in ("always_salesforce", "always_hubspot"):
        want = rule.removeprefix("always_")
        return next((c for c in ordered if c.source == want), anchor)
    want = rule.removeprefix("prefer_").removesuffix("_unless_blank")
    filled = [c for c in ordered if not _blank(getattr(c, name))]
    return next((c for c in filled if c.source == want), filled[0] if filled else None)


def merge(records: Sequence[Contact], rules: Mapping[str, str] = DEFAULT_RULES,
          anchor_key: str | None = None) -> Profile:
    """One profile for a person's records; a single record is its own profile, unchanged."""
    anchor = next((c for c in records if c.key == anchor_key), records[0])
    if len(records) == 1:
        return Profile(anchor, {})
    ordered = _recent(records)
    values: dict[str, Any] = {}
    provenance: dict[str, Provenance] = {}
    for name, rule in rules.items():
        if name == "extra":
            continue
        chosen = _pick(name, rule, ordered, anchor)
        if chosen is not None:
            values[name] = getattr(chosen, name)
            provenance[name] = Provenance(chosen.source, chosen.id, chosen.updated_at)
    extra: dict[str, Any] = {}
    for c in reversed(ordered) if rules.get("extra") != "dont_sync" else [anchor]:
        extra.update({k: v for k, v in c.extra.items() if not _blank(v) or k not in extra})
    merged = replace(anchor, **values, extra=MappingProxyType(extra),
                     do_not_contact=any(c.do_not_contact for c in records if not c.archived))
    return Profile(merged, provenance)


_SPACE = re.compile(r"\s+")


def dedupe_key(e: Engagement) -> tuple[str, int, str]:
    """The same touch logged in two CRMs: same kind, same minute, same detail (case and spacing aside).

    HubSpot's connector copies an email or a form fill into Salesforce with its time and subject; a campaign
    response synced both ways keeps its campaign name. Different naming in the two CRMs is not matched.
    """
    detail = e.detail.casefold()
    if "  " in detail or detail != detail.strip() or "\t" in detail or "\n" in detail:
        detail = _SPACE.sub(" ", detail.strip())
    return e.kind.value, int(e.occurred_at.timestamp()) // 60, detail


def pool(engagements: Iterable[Sequence[Engagement]]) -> tuple[list[Engagement], int]:
    """Every record's engagement as one history, and how many cross-CRM copies were dropped.

    Only copies across sources are dropped: two page views of one URL in one minute in one CRM are two views.
    The first source given keeps all of its own; a later source's engagement counts only past as many of the
    same key as earlier sources already hold.
    """
    histories = [h for h in engagements if h]
    if len(histories) <= 1:  # one record's history (most persons): nothing to de-duplicate
        return (list(histories[0]) if histories else []), 0
    out: list[Engagement] = []
    seen: Counter[tuple[str, int, str]] = Counter()
    dropped = 0
    for history in histories:
        here: Counter[tuple[str, int, str]] = Counter()
        for e in history:
            k = dedupe_key(e)
            here[k] += 1
            if here[k] <= seen[k]:
                dropped += 1
                continue
            out.append(e)
        for k, n in here.items():
            seen[k] = max(seen[k], n)
    out.sort(key=lambda e: (e.occurred_at, e.source, e.id))
    return out, dropped
