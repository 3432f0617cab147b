"""Backtest subjects from the state store: every person with their merged profile, pooled engagement and
real outcomes, read once (no CRM calls), for `leadsync backtest` and `calibrate --from-state`.

The person layer decides who is whom exactly as a sync would (`whole_identity`); the profile and the
pooled history are the same pure functions the scorer is fed by. Outcomes are the first time any of a
person's records reached opportunity or customer, from the stage history the state keeps.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timezone

from mapping.model import Contact, Engagement
from mapping.profile import DEFAULT_RULES, merge, pool
from scoring.backtest import Subject
from sync.persons import whole_identity
from sync.state import State, contact_from_json

#: (opportunity_at, customer_at) per record key.
Outcomes = Mapping[str, tuple[datetime | None, datetime | None]]


def _first(values: Iterator[datetime | None]) -> datetime | None:
    found = [v for v in values if v is not None]
    return min(found) if found else None


def subjects(state: State, outcomes: Outcomes, rules: Mapping[str, str] = DEFAULT_RULES) -> list[Subject]:
    """One Subject per person, in a stable order (by person key)."""
    identity, _ = whole_identity(state)
    records: dict[str, Contact] = {}
    for source, rid, _type, _email, data in state.identity_refs():
        records[f"{source}:{rid}"] = contact_from_json(data)
    history: dict[str, list[Engagement]] = {}
    by_source: dict[str, list[str]] = {}
    for c in records.values():
        by_source.setdefault(c.source, []).append(c.id)
    for source, ids in by_source.items():
        for rid, found in state.engagements_for(source, ids).items():
            history[f"{source}:{rid}"] = found
    out = []
    for person in sorted(identity.persons, key=lambda p: p.key):
        members = [records[k] for k in person.records if k in records]
        if not members:
            continue
        profile = merge(members, rules)
        pooled, _ = pool([history.get(c.key, ()) for c in members])
        pooled.sort(key=lambda e: (e.occurred_at, e.id))
        out.append(Subject(
            person.key, profile.contact, tuple(pooled),
            _first(c.created_at for c in members),
            _first(outcomes.get(c.key, (None, None))[0] for c in members),
            _first(outcomes.get(c.key, (None, None))[1] for c in members),
            profile.contact.owner_id,
        ))
    return out


def outcomes_from_state(state: State) -> dict[str, tuple[datetime | None, datetime | None]]:
    """First opportunity and customer times per record key: the stage history the CRMs keep (and leadsync's
    own), an opportunity's creation, and a won opportunity's close date."""
    out: dict[str, list[datetime | None]] = {}

    def note(key: str, slot: int, at: datetime | None) -> None:
        if at is None:
            return
        if at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
        pair = out.setdefault(key, [None, None])
        if pair[slot] is None or at < pair[slot]:  # type: ignore[operator]
            pair[slot] = at

    for e in state.stage_history():
        if e.stage in ("opportunity", "customer"):
            note(f"{e.source}:{e.contact_id}", 0 if e.stage == "opportunity" else 1, e.entered_at)
    for o in state.opportunities():
        if o.contact_id:
            note(f"{o.source}:{o.contact_id}", 0, o.created_at)
            if o.is_won:
                note(f"{o.source}:{o.contact_id}", 1, o.close_date)
    return {k: (a, b) for k, (a, b) in out.items()}
