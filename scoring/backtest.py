"""Backtesting a scoring model on a team's own history: when would each person have become MQL and SQL?

Pure: subjects in, verdicts and figures out; `now` never read. Point in time: a person is scored at the
end of each day on which something happened to them (their first day, and each day with engagement),
with only what was known by then, which is all a nightly rescore could have seen. Between those days
a score can only fall (decay, windows closing), so a first crossing of a threshold always happens on
one of them and no day is skipped that matters.

A person's replay stops at their first real outcome (opportunity or customer): once sales had them,
what the model says about activity afterwards predicts nothing, and a model must not earn credit for
it. So engagement after the outcome can never move a verdict.

Field values are those the profile holds now: the CRMs keep no history for fit fields that leadsync
reads, so a backtest assumes a person's title or company did not change over the window. The report
says so beside its figures.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from statistics import median
from typing import Any

from mapping.model import STAGE_RANK, Contact, Engagement, Stage
from scoring.schema import ScoringModel
from scoring.scorer import score

_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Subject:
    """One person's history: the merged profile, pooled engagement, and what really happened."""

    key: str
    contact: Contact
    engagements: tuple[Engagement, ...]
    first_seen: datetime | None = None  # the earliest record's creation; never scored before it
    opportunity_at: datetime | None = None
    customer_at: datetime | None = None
    owner: str | None = None

    @property
    def outcome_at(self) -> datetime | None:
        """The first real outcome: an opportunity, or a customer with no opportunity on record."""
        found = [t for t in (self.opportunity_at, self.customer_at) if t is not None]
        return min(found) if found else None


@dataclass(frozen=True, slots=True)
class Verdict:
    """When the model would have moved a person: first day at MQL or above, first day at SQL."""

    key: str
    mql_on: date | None
    sql_on: date | None
    owner: str | None
    outcome_on: date | None
    reasons: tuple[str, ...] = ()  # the summary that would have gone into the SQL task

    @property
    def caught(self) -> bool:
        """SQL before (or on the day of) the real outcome: the hand-off would have come first."""
        return self.sql_on is not None and self.outcome_on is not None and self.sql_on <= self.outcome_on


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


def _day_end(d: date) -> datetime:
    return datetime.combine(d, time(23, 59, 59), tzinfo=timezone.utc)


def _days(s: Subject, start: date, end: date) -> list[date]:
    """The days a score can first cross a threshold: the first day in the window, then engagement days."""
    stop = end
    if s.outcome_at is not None:
        stop = min(stop, _utc(s.outcome_at).date() - _DAY)  # the outcome's own day is already sales'
    first = max(start, _utc(s.first_seen).date()) if s.first_seen is not None else start
    if first > stop:
        return []
    days = {first}
    days.update(d for e in s.engagements if first <= (d := _utc(e.occurred_at).date()) <= stop)
    return sorted(days)


def replay(model: ScoringModel, s: Subject, start: date, end: date) -> Verdict:
    """Score `s` day by day over [start, end] (only the days that matter) until it reaches SQL."""
    mql_on = sql_on = None
    why: tuple[str, ...] = ()
    for d in _days(s, start, end):
        result = score(model, s.contact, s.engagements, _day_end(d))
        rank = STAGE_RANK[result.stage]
        if mql_on is None and rank >= STAGE_RANK[Stage.MQL]:
            mql_on = d
        if rank >= STAGE_RANK[Stage.SQL]:
            sql_on, why = d, tuple(r.text for r in result.reasons if r.points > 0)[:3]
            break
    outcome = _utc(s.outcome_at).date() if s.outcome_at is not None else None
    return Verdict(s.key, mql_on, sql_on, s.owner, outcome, why)


@dataclass(frozen=True)
class Backtest:
    """A model's verdicts over a window and what they would have meant for sales."""

    model: str
    start: date
    end: date
    verdicts: tuple[Verdict, ...]
    figures: dict[str, Any] = field(default_factory=dict)

    def by_key(self) -> dict[str, Verdict]:
        return {v.key: v for v in self.verdicts}


def _week(d: date) -> str:
    return (d - timedelta(days=d.weekday())).isoformat()


def figures(verdicts: Sequence[Verdict], subjects: Sequence[Subject], start: date, end: date) -> dict[str, Any]:
    """Precision and recall of "SQL" against real opportunities, speed to outcome, weekly load per owner.

    Precision: of the people the model made SQL, the share who later reached an opportunity or customer.
    Recall: of the people who reached one inside the window, the share the model made SQL first.
    """
    by_key = {s.key: s for s in subjects}
    sqls = [v for v in verdicts if v.sql_on is not None]
    converted = [v for v in sqls if v.caught]
    outcomes = [v for v in verdicts if v.outcome_on is not None and start <= v.outcome_on <= end]
    lead_days = [(v.outcome_on - v.sql_on).days for v in converted]  # type: ignore[operator]
    customers = sum(1 for v in converted if by_key[v.key].customer_at is not None)
    weekly: dict[str, Counter[str]] = defaultdict(Counter)
    for v in sqls:
        weekly[_week(v.sql_on)][v.owner or "(no owner)"] += 1  # type: ignore[arg-type]
    return {
        "persons": len(verdicts),
        "would_mql": sum(1 for v in verdicts if v.mql_on is not None),
        "would_sql": len(sqls),
        "sql_then_opportunity": len(converted),
        "sql_then_customer": customers,
        "median_days_sql_to_outcome": median(lead_days) if lead_days else None,
        "outcomes_in_window": len(outcomes),
        "outcomes_caught": sum(1 for v in outcomes if v.caught),
        "precision": round(len(converted) / len(sqls), 4) if sqls else None,
        "recall": round(sum(1 for v in outcomes if v.caught) / len(outcomes), 4) if outcomes else None,
        "sqls_per_week_per_owner": {w: dict(sorted(c.items())) for w, c in sorted(weekly.items())},
    }


def backtest(model: ScoringModel, subjects: Iterable[Subject], start: date, end: date) -> Backtest:
    subjects = list(subjects)
    verdicts = tuple(replay(model, s, start, end) for s in subjects)
    return Backtest(model.label, start, end, verdicts, figures(verdicts, subjects, start, end))


@dataclass(frozen=True, slots=True)
class Move:
    """How one person's hand-off differs between two models."""

    key: str
    kind: str  # earlier | later | gone | new
    before: date | None
    after: date | None

    @property
    def days(self) -> int | None:
        return (self.after - self.before).days if self.before and self.after else None


def compare(base: Backtest, other: Backtest) -> dict[str, Any]:
    """Persons whose SQL day moves between `base` and `other`, and the two sets of figures side by side."""
    theirs = other.by_key()
    moves: list[Move] = []
    for v in base.verdicts:
        w = theirs.get(v.key)
        after = w.sql_on if w is not None else None
        if v.sql_on == after:
            continue
        kind = ("new" if v.sql_on is None else "gone" if after is None
                else "earlier" if after < v.sql_on else "later")
        moves.append(Move(v.key, kind, v.sql_on, after))
    order = {"gone": 0, "new": 1, "earlier": 2, "later": 3}
    moves.sort(key=lambda m: (order[m.kind], -(abs(m.days) if m.days is not None else 0), m.key))
    return {"base": base.model, "other": other.model, "moves": Counter(m.kind for m in moves),
            "persons": moves, "figures": {"base": base.figures, "other": other.figures}}
