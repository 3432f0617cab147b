"""Stage history per person: the read API the report, a backtest and point-in-time calibration build on.

`State.stage_history()` gives per-record `StageEntry`s (CRM history and leadsync's own writes, each with its
origin) and `State.opportunities()` the records' deals; this module joins them per person through the person
layer (`sync.persons.whole_identity`) and answers "when did this human first reach each stage, and says who":

- `PersonHistory.first` — stage → the earliest `StageEntry` into it over all the person's records and origins;
  an opportunity's CreatedDate counts as entering `opportunity`, a won one's CloseDate as `customer` (origin
  `crm_history`: both are the CRM's own record).
- `PersonHistory.at(stage)` — that entry's time, None if the person never got there.
- `person_histories(state)` — every person who has any history, by person key.

Pure over what the state returns (no CRM calls, no clock).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timezone

from mapping.model import ORIGINS, Opportunity, StageEntry
from sync.state import State


@dataclass(frozen=True)
class PersonHistory:
    """One human's stage entries (all their records, time order) and deals."""

    key: str
    records: tuple[str, ...]
    entries: tuple[StageEntry, ...]
    opportunities: tuple[Opportunity, ...] = ()
    first: Mapping[str, StageEntry] = field(default_factory=dict)

    def at(self, stage: str) -> datetime | None:
        entry = self.first.get(stage)
        return entry.entered_at if entry else None

    def origin(self, stage: str) -> str | None:
        entry = self.first.get(stage)
        return entry.origin if entry else None


def deal_entries(opportunities: Iterable[Opportunity]) -> list[StageEntry]:
    """What deals say about stages: opened → opportunity, won → customer (on the close date, midnight UTC)."""
    out = []
    for o in opportunities:
        if o.contact_id is None:
            continue
        out.append(StageEntry(o.source, o.contact_id, "opportunity", o.created_at, "crm_history"))
        if o.is_won and o.close_date is not None:
            closed = o.close_date if o.close_date.tzinfo else o.close_date.replace(tzinfo=timezone.utc)
            if closed.time() == time(0):  # a date: the deal cannot have closed before it opened
                closed = max(closed, o.created_at)
            out.append(StageEntry(o.source, o.contact_id, "customer", closed, "crm_history"))
    return out


def first_entries(entries: Iterable[StageEntry]) -> dict[str, StageEntry]:
    """Stage → its earliest entry (ties: the more trustworthy origin, `mapping.model.ORIGINS` order)."""
    best: dict[str, StageEntry] = {}
    for e in entries:
        cur = best.get(e.stage)
        if cur is None or (e.entered_at, ORIGINS.index(e.origin)) < (cur.entered_at, ORIGINS.index(cur.origin)):
            best[e.stage] = e
    return best


def build(key: str, records: Sequence[str], entries: Iterable[StageEntry], opportunities: Iterable[Opportunity]
          ) -> PersonHistory:
    opps = tuple(sorted(opportunities, key=lambda o: (o.created_at, o.id)))
    every = tuple(sorted([*entries, *deal_entries(opps)], key=lambda e: (e.entered_at, e.stage, e.origin)))
    return PersonHistory(key, tuple(records), every, opps, first_entries(every))


def person_histories(state: State) -> dict[str, PersonHistory]:
    """Every person with at least one stage entry or deal, by person key (O(records), one read per table)."""
    from sync.persons import whole_identity

    identity, _ = whole_identity(state)
    by_record: dict[str, list[StageEntry]] = defaultdict(list)
    for e in state.stage_history():
        by_record[f"{e.source}:{e.contact_id}"].append(e)
    deals: dict[str, list[Opportunity]] = defaultdict(list)
    for o in state.opportunities():
        if o.contact_id:
            deals[f"{o.source}:{o.contact_id}"].append(o)
    out = {}
    for p in identity.persons:
        entries = [e for k in p.records for e in by_record.get(k, ())]
        opps = [o for k in p.records for o in deals.get(k, ())]
        if entries or opps:
            out[p.key] = build(p.key, p.records, entries, opps)
    return out
