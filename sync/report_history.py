"""The report's history section: the whole funnel per person, true from the first backfill.

Built on `sync.stage_history` (each person's first entry into every stage, whichever CRM record and origin it
came from: CRM field history, stage-date properties, conversion and creation dates, opportunities, leadsync's
own writes). Pure over the state; `window` comes from `sync.report`.

- `weeks`: persons entering each stage for the first time, per Monday-week of the window.
- `cohorts`: per week and stage, of the persons who first entered the stage that week, how many reached the
  next one before the window's end (lead → MQL → SQL → opportunity → customer; a person who skipped a stage,
  e.g. a fast-tracked SQL, counts as reaching every later stage they reached).
- `time_in_stage`: median days from the first entry into a stage to the first entry into the next, for the
  persons whose later entry falls in the window.
- `deals`: the window's opportunities opened and closed, won and lost, the win rate and median days to win.
- `origins`: for every stage, how many persons' first entry came from each origin — how much of the funnel is
  the CRMs' own history and how much leadsync's writes.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from mapping.model import ORIGINS
from sync.stage_history import PersonHistory

CHAIN: tuple[str, ...] = ("lead", "mql", "sql", "opportunity", "customer")
_WEEK = timedelta(days=7)


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _entered_next(h: PersonHistory, stage: str, until: datetime) -> bool:
    """Reached the next stage of the chain (or beyond: a skipped stage counts) after `stage`, before `until`."""
    start = h.at(stage)
    later = CHAIN[CHAIN.index(stage) + 1:]
    return start is not None and any((at := h.at(s)) is not None and start <= at < until for s in later)


def history_section(histories: Mapping[str, PersonHistory], since: datetime, until: datetime,
                    weeks: Sequence[datetime]) -> dict[str, Any]:
    people = [histories[k] for k in sorted(histories)]

    def in_week(at: datetime | None, start: datetime) -> bool:
        return at is not None and since <= at < until and start <= at < start + _WEEK

    week_rows, cohort_rows = [], []
    for start in weeks:
        entered = {s: [h for h in people if in_week(h.at(s), start)] for s in CHAIN}
        week_rows.append({"week_start": start.date().isoformat(), **{s: len(entered[s]) for s in CHAIN}})
        cohort: dict[str, Any] = {"week_start": start.date().isoformat()}
        for stage, nxt in zip(CHAIN, CHAIN[1:], strict=False):
            moved = sum(_entered_next(h, stage, until) for h in entered[stage])
            cohort[stage] = {"entered": len(entered[stage]), f"to_{nxt}": moved,
                             "rate": _rate(moved, len(entered[stage]))}
        cohort_rows.append(cohort)
    return {
        "persons": len(people),
        "weeks": week_rows,
        "total": {s: sum(w[s] for w in week_rows) for s in CHAIN},
        "cohorts": cohort_rows,
        "cohort_total": _cohort_total(people, since, until),
        "time_in_stage": _time_in_stage(people, since, until),
        "deals": _deals(people, since, until),
        "origins": {s: _origins(people, s) for s in CHAIN},
    }


def _cohort_total(people: Sequence[PersonHistory], since: datetime, until: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for stage, nxt in zip(CHAIN, CHAIN[1:], strict=False):
        cohort = [h for h in people if (at := h.at(stage)) is not None and since <= at < until]
        moved = sum(_entered_next(h, stage, until) for h in cohort)
        out[stage] = {"entered": len(cohort), f"to_{nxt}": moved, "rate": _rate(moved, len(cohort))}
    return out


def _time_in_stage(people: Sequence[PersonHistory], since: datetime, until: datetime) -> dict[str, Any]:
    """Days from the first entry into a stage to the first into the next one, for entries into the next one in
    the window (a person who skipped it is left out of that step)."""
    out = {}
    for stage, nxt in zip(CHAIN, CHAIN[1:], strict=False):
        days = [(b - a).total_seconds() / 86400.0 for h in people
                if (a := h.at(stage)) is not None and (b := h.at(nxt)) is not None and a <= b and since <= b < until]
        out[f"{stage}_to_{nxt}"] = {"persons": len(days), "median_days": _median(days)}
    return out


def _deals(people: Sequence[PersonHistory], since: datetime, until: datetime) -> dict[str, Any]:
    """Opportunities opened in the window, and the window's closed ones: won, lost, win rate, days to win."""
    opened = won = lost = still_open = 0
    days_to_win: list[float] = []
    seen: set[tuple[str, str]] = set()
    for h in people:
        for o in h.opportunities:
            if (o.source, o.id) in seen:
                continue
            seen.add((o.source, o.id))
            opened += since <= o.created_at < until
            closed = o.close_date  # a date: midnight UTC
            if not o.is_closed:
                still_open += 1
            elif closed is not None and since <= closed < until:
                if o.is_won:
                    won += 1
                    days_to_win.append(max(0.0, (closed - o.created_at).total_seconds() / 86400.0))
                else:
                    lost += 1
    return {"opened": opened, "won": won, "lost": lost, "open_now": still_open, "win_rate": _rate(won, won + lost),
            "median_days_to_win": _median(days_to_win)}


def _origins(people: Sequence[PersonHistory], stage: str) -> dict[str, int]:
    counts = Counter(o for h in people if (o := h.origin(stage)))
    return {o: counts.get(o, 0) for o in ORIGINS}
